"""Ethnicity completeness, and each person's best-known ethnicity.

Completeness is reported two ways. ``recorded``: as the source sent it, computed for each
delivery inside its load transaction, so a month's figure always matches its data. ``linked``:
after giving every person their best-known ethnicity from all sources (GP record first, then
the most recent known code in secondary care), recomputed across all history whenever data
changes. All of it is set-based SQL in the warehouse.
"""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.config.sources import SOURCES, Source
from transforms.core.ethnicity import NOT_KNOWN_CODE, NOT_STATED_CODE, STATUSES
from transforms.core.periods import utcnow
from transforms.warehouse.tables import (
    STAGING,
    audit_file_loads,
    core_person_ethnicity,
    quality_ethnicity_completeness,
)

log = logging.getLogger(__name__)

ALL_ORGANISATIONS = "ALL"  # the organisation of the whole-source row of each period
UNKNOWN_ORGANISATION = "UNKNOWN"  # the organisation of rows that name none
SECONDARY_CARE = {  # source -> event date, in tie-break priority order (as NHS Digital's rule)
    "inpatient_spells": "admission_date",
    "ae_attendances": "arrival_date",
    "outpatient_appointments": "appointment_date",
}
HUNDRED = Decimal("100.0")  # pct_known is computed in exact numeric, as it always was


def _classified(source: Source, *, linked: bool) -> sa.Select:
    """Each staged row's period, organisation (if the source has one) and ethnicity
    status, as recorded or, for person-level sources, after linkage through
    ``core.person_ethnicity`` (a person with no row there is ``not_known``)."""
    staged = STAGING[source.name]
    status, rows = staged.c.ethnic_status, staged
    if linked and source.person_level:  # staff and applicants cannot be linked
        best = core_person_ethnicity.c
        status = sa.case(
            (best.ethnic_code == NOT_STATED_CODE, "not_stated"),
            (best.ethnic_code != NOT_KNOWN_CODE, "known"),
            else_="not_known",
        )
        rows = staged.outerjoin(core_person_ethnicity, best.person_id == staged.c.person_id)
    columns = [staged.c.period, status.label("status")]
    if source.organisation:
        named = sa.func.coalesce(staged.c[source.organisation], UNKNOWN_ORGANISATION)
        columns.append(named.label("organisation"))
    return sa.select(*columns).select_from(rows)


def _insert_completeness(conn: Connection, source: Source, basis: str, rows: sa.Select) -> None:
    """Insert per-organisation rows and an ``ALL`` row for each period of ``rows``
    (``_classified``). The rows are grouped once, by organisation, and the ``ALL`` rows are
    summed from those groups: grouping the rows twice took twice as long, and grouping sets,
    which read them once, run on a single core on PostgreSQL."""
    r = rows.subquery("classified")
    counted = ["records", *STATUSES]
    everyone = sa.literal(ALL_ORGANISATIONS).label("organisation")
    tallies = [
        sa.func.count().label("records"),
        *(sa.func.count().filter(r.c.status == status).label(status) for status in STATUSES),
    ]
    if source.organisation:
        grouped = sa.select(r.c.period, r.c.organisation, *tallies)
        per_organisation = grouped.group_by(r.c.period, r.c.organisation).cte("organisations")
        totals = sa.select(
            per_organisation.c.period,
            everyone,
            *(sa.func.sum(per_organisation.c[name]) for name in counted),
        ).group_by(per_organisation.c.period)
        all_rows = sa.union_all(sa.select(per_organisation), totals)
    else:
        all_rows = sa.select(r.c.period, everyone, *tallies).group_by(r.c.period)
    counts = all_rows.subquery("counts")
    pct_known = HUNDRED * counts.c.known / counts.c.records
    threshold = sa.literal(source.completeness_threshold, sa.Double)
    done = quality_ethnicity_completeness.c
    conn.execute(
        sa.insert(quality_ethnicity_completeness).from_select(
            [
                done.source,
                done.period,
                done.organisation,
                done.basis,
                done.records,
                *(done[status] for status in STATUSES),
                done.pct_known,
                done.threshold,
                done.below_threshold,
                done.computed_at,
            ],
            sa.select(
                sa.literal(source.name),
                counts.c.period,
                counts.c.organisation,
                sa.literal(basis),
                counts.c.records,
                *(counts.c[status] for status in STATUSES),
                pct_known,
                threshold,
                pct_known < threshold,
                sa.literal(utcnow(), sa.DateTime),
            ),
        )
    )


def record_delivery(conn: Connection, source: Source, period: str) -> None:
    """Recorded completeness for a just-loaded month: the one computation of completeness.

    Great Expectations judges these rows against the threshold (``suites.py``), and its
    failures are the completeness warnings (``warning_message``).
    """
    if not source.has_ethnicity:
        return
    done = quality_ethnicity_completeness.c
    conn.execute(
        sa.delete(quality_ethnicity_completeness).where(
            done.source == source.name, done.period == period, done.basis == "recorded"
        )
    )
    rows = _classified(source, linked=False).where(STAGING[source.name].c.period == period)
    _insert_completeness(conn, source, "recorded", rows)


BELOW_THRESHOLD = "ethnicity recorded for less than the"


def warning_message(source: Source, period: str, below: list[tuple[str, float]]) -> str:
    """The warning for the month's organisations (``ALL``: the whole source) whose recorded
    completeness is below the threshold, as (organisation, % known)."""
    below = sorted(below, key=lambda row: row[1])
    overall = next((pct for organisation, pct in below if organisation == ALL_ORGANISATIONS), None)
    organisations = [row for row in below if row[0] != ALL_ORGANISATIONS]
    parts = []
    if overall is not None:
        parts.append(f"{overall:.1f}% known overall")
    if organisations:
        worst = ", ".join(f"{organisation} {pct:.1f}%" for organisation, pct in organisations[:5])
        parts.append(f"{len(organisations)} organisation(s) below, lowest: {worst}")
    return (
        f"{source.name} {period}: {BELOW_THRESHOLD} "
        f"{source.completeness_threshold:g}% threshold ({'; '.join(parts)})"
    )


def _snapshot_day(period: sa.ColumnElement[str]) -> sa.ColumnElement[date]:
    """The last day of a ``YYYY-MM`` period: the day its register snapshot describes."""
    first = sa.cast(period + "-01", sa.Date)
    month, day = (sa.cast(sa.literal(span), sa.Interval) for span in ("1 month", "1 day"))
    return sa.cast(first + month - day, sa.Date)


def _latest(partition: list[sa.ColumnElement], *order: sa.ColumnElement) -> sa.Label[int]:
    return sa.func.row_number().over(partition_by=partition, order_by=order).label("latest")


def person_ethnicity_current(conn: Connection) -> bool:
    """Whether best-known ethnicity was rebuilt after the last delivery was applied, so
    linking again would change nothing (``hei run`` then leaves ``assess_ethnicity`` out).

    Judged by time stamps, which is exact for ``hei run``'s own sequence of DAG runs. A load
    committing during a rebuild in another process (a scheduler) can look older than the
    links; the scheduler's own Asset event for that load relinks it.
    """
    applied = sa.select(sa.func.max(audit_file_loads.c.finished_at)).where(
        audit_file_loads.c.status.in_(["loaded", "superseded"])
    )
    rebuilt = sa.select(sa.func.max(core_person_ethnicity.c.computed_at))
    both = sa.select(applied.scalar_subquery(), rebuilt.scalar_subquery())
    last_load, last_rebuild = conn.execute(both).one()
    return last_load is None or (last_rebuild is not None and last_rebuild >= last_load)


def rebuild_person_ethnicity(conn: Connection) -> None:
    """Best-known ethnicity per person over everything loaded (see ``core.person_ethnicity``
    in transforms/warehouse/tables.py)."""
    register = STAGING["gp_register"].c
    known = register.ethnic_status == "known"
    gp = sa.select(
        register.person_id,
        register.ethnic_code,
        known.label("is_known"),
        _snapshot_day(register.period).label("recorded_on"),
        _latest([register.person_id], register.period.desc()),
        _latest([register.person_id, known], register.period.desc()).label("latest_of_kind"),
    ).cte("gp")
    gp_known = (
        sa.select(gp.c.person_id, gp.c.ethnic_code, gp.c.recorded_on)
        .where(gp.c.is_known, gp.c.latest_of_kind == 1)
        .cte("gp_known")
    )
    known_codes = sa.union_all(
        *(
            sa.select(
                staged.c.person_id,
                staged.c.ethnic_code,
                sa.literal(name).label("source"),
                staged.c[day].label("recorded_on"),
                sa.literal(rank).label("priority"),
            ).where(staged.c.ethnic_status == "known")
            for rank, (name, day) in enumerate(SECONDARY_CARE.items())
            for staged in [STAGING[name]]
        )
    ).subquery("known_codes")
    codes = known_codes.c
    secondary = sa.select(
        codes.person_id,
        codes.ethnic_code,
        codes.source,
        codes.recorded_on,
        _latest([codes.person_id], codes.recorded_on.desc(), codes.priority, codes.ethnic_code),
    ).cte("secondary")
    people = sa.union(sa.select(gp.c.person_id), sa.select(secondary.c.person_id)).cte("people")
    k, s, g = gp_known.alias("k"), secondary.alias("s"), gp.alias("g")
    best = sa.select(
        people.c.person_id,
        sa.func.coalesce(
            k.c.ethnic_code,
            s.c.ethnic_code,
            sa.case((g.c.ethnic_code == NOT_STATED_CODE, NOT_STATED_CODE), else_=NOT_KNOWN_CODE),
        ),
        sa.case(
            (k.c.person_id.is_not(None), "gp_register"),
            (s.c.person_id.is_not(None), s.c.source),
            (g.c.person_id.is_not(None), "gp_register"),
            else_="none",
        ),
        sa.func.coalesce(k.c.recorded_on, s.c.recorded_on, g.c.recorded_on),
        sa.literal(utcnow(), sa.DateTime),
    ).select_from(
        people.outerjoin(k, k.c.person_id == people.c.person_id)
        .outerjoin(s, sa.and_(s.c.person_id == people.c.person_id, s.c.latest == 1))
        .outerjoin(g, sa.and_(g.c.person_id == people.c.person_id, g.c.latest == 1))
    )
    target = core_person_ethnicity.c
    conn.execute(sa.delete(core_person_ethnicity))
    conn.execute(
        sa.insert(core_person_ethnicity).from_select(
            [
                target.person_id,
                target.ethnic_code,
                target.source,
                target.recorded_on,
                target.computed_at,
            ],
            best,
        )
    )


def rebuild_linked(conn: Connection) -> None:
    """Linked completeness for every source and period, from ``core.person_ethnicity``."""
    done = quality_ethnicity_completeness.c
    conn.execute(sa.delete(quality_ethnicity_completeness).where(done.basis == "linked"))
    for source in SOURCES.values():
        if source.has_ethnicity:
            _insert_completeness(conn, source, "linked", _classified(source, linked=True))
