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

from transforms.config.sources import REGISTER, SOURCES, Source
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
# Source -> event date, in tie-break priority order (as NHS Digital's rule); at most ten, as
# the priority is one digit of the key that picks a person's code (_latest_in_secondary_care).
SECONDARY_CARE = {
    "inpatient_spells": "admission_date",
    "ae_attendances": "arrival_date",
    "outpatient_appointments": "appointment_date",
}
HUNDRED = Decimal("100.0")  # pct_known is computed in exact numeric, as it always was
PERIOD_CHARS = len("YYYY-MM")
BYTEWISE = "C"
"""The collation of the keys that pick a person's latest row (period, or priority, then
code): a database whose default collation reads digit runs as numbers would otherwise
compare "2024-01" + "99" above "2024-02" + "Z"."""


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


def _latest_on_register() -> sa.Subquery:
    """Per person on the GP register: the code and day of their latest snapshot, and of
    their latest snapshot with a known code.

    A person has one row per snapshot (the register's record id is the person), so the
    latest is the maximum of the period followed by the code: one grouped scan of the
    register instead of sorting all its history by person (ten times faster, README).
    """
    register = STAGING[REGISTER].c
    keyed = (register.period + sa.func.coalesce(register.ethnic_code, "")).collate(BYTEWISE)
    by_person = (
        sa.select(
            register.person_id,
            sa.func.max(keyed).label("latest"),
            sa.func.max(keyed).filter(register.ethnic_status == "known").label("known"),
        )
        .group_by(register.person_id)
        .subquery("register_keys")
    )
    return sa.select(
        by_person.c.person_id,
        *(
            column
            for name in ("latest", "known")
            for column in (
                sa.func.substr(by_person.c[name], PERIOD_CHARS + 1).label(f"{name}_code"),
                _snapshot_day(sa.func.substr(by_person.c[name], 1, PERIOD_CHARS)).label(
                    f"{name}_on"
                ),
            )
        ),
    ).subquery("register")


def _latest_in_secondary_care() -> sa.Subquery:
    """Per person seen in secondary care with a known code: the most recent one, ties on
    the day broken by the sources' priority (``SECONDARY_CARE``), then by the code.

    Grouped like the register's (``_latest_on_register``): the latest day per person, then
    the least of priority followed by code among that day's codes.
    """
    known_codes = sa.union_all(
        *(
            sa.select(
                staged.c.person_id,
                staged.c.ethnic_code,
                staged.c[day].label("recorded_on"),
                sa.literal(str(rank)).label("priority"),
            ).where(staged.c.ethnic_status == "known")
            for rank, (name, day) in enumerate(SECONDARY_CARE.items())
            for staged in [STAGING[name]]
        )
    ).cte("known_codes")
    codes = known_codes.c
    latest = (
        sa.select(codes.person_id, sa.func.max(codes.recorded_on).label("recorded_on"))
        .group_by(codes.person_id)
        .subquery("latest_day")
    )
    chosen = (
        sa.select(
            codes.person_id,
            latest.c.recorded_on,
            sa.func.min((codes.priority + codes.ethnic_code).collate(BYTEWISE)).label("choice"),
        )
        .join(
            latest,
            sa.and_(
                latest.c.person_id == codes.person_id, latest.c.recorded_on == codes.recorded_on
            ),
        )
        .group_by(codes.person_id, latest.c.recorded_on)
        .subquery("chosen")
    )
    source = sa.case(
        {str(rank): name for rank, name in enumerate(SECONDARY_CARE)},
        value=sa.func.substr(chosen.c.choice, 1, 1),
    )
    return sa.select(
        chosen.c.person_id,
        sa.func.substr(chosen.c.choice, 2).label("ethnic_code"),
        source.label("source"),
        chosen.c.recorded_on,
    ).subquery("secondary")


def rebuild_person_ethnicity(conn: Connection) -> None:
    """Best-known ethnicity per person over everything loaded (see ``core.person_ethnicity``
    in transforms/warehouse/tables.py)."""
    g, s = _latest_on_register(), _latest_in_secondary_care()
    best = sa.select(
        sa.func.coalesce(g.c.person_id, s.c.person_id),
        sa.func.coalesce(
            g.c.known_code,
            s.c.ethnic_code,
            sa.case((g.c.latest_code == NOT_STATED_CODE, NOT_STATED_CODE), else_=NOT_KNOWN_CODE),
        ),
        sa.case(
            (g.c.known_code.is_not(None), REGISTER),
            (s.c.person_id.is_not(None), s.c.source),
            else_=REGISTER,
        ),
        sa.func.coalesce(g.c.known_on, s.c.recorded_on, g.c.latest_on),
        sa.literal(utcnow(), sa.DateTime),
    ).select_from(g.join(s, g.c.person_id == s.c.person_id, full=True))
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
