"""Ethnicity completeness, and each person's best-known ethnicity.

Completeness is reported two ways. ``recorded``: as the source sent it, computed for each
delivery inside its load transaction, so a month's figure always matches its data. ``linked``:
after giving every person their best-known ethnicity from all sources (GP record first, then
the most recent known code in secondary care), recomputed across all history whenever data
changes. All of it is set-based SQL in the warehouse.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.config.sources import SOURCES, Source
from transforms.core.ethnicity import NOT_KNOWN_CODE, NOT_STATED_CODE
from transforms.core.periods import utcnow
from transforms.warehouse.tables import (
    STAGING,
    core_person_ethnicity,
    quality_ethnicity_completeness,
)

log = logging.getLogger(__name__)

COMPLETENESS = quality_ethnicity_completeness.fullname
PERSON_ETHNICITY_TABLE = core_person_ethnicity.fullname
GP_REGISTER_TABLE = STAGING["gp_register"].fullname
ALL_ORGANISATIONS = "ALL"  # the organisation of the whole-source row of each period
SECONDARY_CARE = {  # source -> event date, in tie-break priority order (as NHS Digital's rule)
    "inpatient_spells": "admission_date",
    "ae_attendances": "arrival_date",
    "outpatient_appointments": "appointment_date",
}
COUNTS = """
    count(*) as records,
    sum(case when {status} = 'known' then 1 else 0 end) as known,
    sum(case when {status} = 'not_stated' then 1 else 0 end) as not_stated,
    sum(case when {status} = 'not_known' then 1 else 0 end) as not_known,
    sum(case when {status} = 'invalid' then 1 else 0 end) as invalid
"""


def _insert_completeness(
    conn: Connection,
    source: Source,
    basis: str,
    select_from: str,
    status: str,
    where: str,
    params: dict,
) -> None:
    """Insert per-organisation rows and an ``ALL`` row for each period of ``select_from``."""
    counts = COUNTS.format(status=status)
    grouped = (
        f"select s.period as period, '{ALL_ORGANISATIONS}' as organisation, {counts} "
        f"from {select_from} where {where} group by s.period"
    )
    if source.organisation:
        organisation = f"coalesce(s.{source.organisation}, 'UNKNOWN')"
        grouped += (
            f" union all select s.period, {organisation}, {counts} from {select_from} "
            f"where {where} group by s.period, {organisation}"
        )
    conn.execute(
        sa.text(
            f"insert into {COMPLETENESS} (source, period, organisation, basis, records, known, "
            "not_stated, not_known, invalid, pct_known, threshold, below_threshold, computed_at) "
            f"select :source, period, organisation, :basis, records, known, not_stated, not_known, "
            f"invalid, 100.0 * known / records, :threshold, 100.0 * known / records < :threshold, "
            f":now from ({grouped}) as counts"
        ),
        params
        | {
            "source": source.name,
            "basis": basis,
            "threshold": source.completeness_threshold,
            "now": utcnow(),
        },
    )


def record_delivery(conn: Connection, source: Source, period: str) -> None:
    """Recorded completeness for a just-loaded month: the one computation of completeness.

    Great Expectations judges these rows against the threshold (``suites.py``), and its
    failures are the completeness warnings (``warning_message``).
    """
    if not source.has_ethnicity:
        return
    params = {"period": period}
    conn.execute(
        sa.text(
            f"delete from {COMPLETENESS} where source = :source and period = :period "
            "and basis = 'recorded'"
        ),
        params | {"source": source.name},
    )
    _insert_completeness(
        conn,
        source,
        "recorded",
        f"{source.qualified_table} as s",
        "s.ethnic_status",
        "s.period = :period",
        params,
    )


BELOW_THRESHOLD = "ethnicity recorded for less than the"


def is_completeness_warning(message: str) -> bool:
    return BELOW_THRESHOLD in message


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


def rebuild_person_ethnicity(conn: Connection) -> None:
    """Best-known ethnicity per person over everything loaded (see ``core.person_ethnicity``
    in transforms/warehouse/tables.py)."""
    secondary = " union all ".join(
        f"select person_id, ethnic_code, '{name}' as source, {date} as recorded_on, "
        f"{rank} as priority from {SOURCES[name].qualified_table} where ethnic_status = 'known'"
        for rank, (name, date) in enumerate(SECONDARY_CARE.items())
    )
    snapshot_day = (
        "cast(cast(period || '-01' as date) + interval '1 month' - interval '1 day' as date)"
    )
    conn.execute(sa.text(f"delete from {PERSON_ETHNICITY_TABLE}"))
    conn.execute(
        sa.text(f"""
        insert into {PERSON_ETHNICITY_TABLE}
            (person_id, ethnic_code, source, recorded_on, computed_at)
        with gp as (
            select person_id, ethnic_code, ethnic_status, {snapshot_day} as recorded_on,
                   row_number() over (partition by person_id order by period desc) as latest,
                   row_number() over (partition by person_id, ethnic_status = 'known'
                                      order by period desc) as latest_of_kind
            from {GP_REGISTER_TABLE}
        ),
        gp_known as (
            select person_id, ethnic_code, recorded_on from gp
            where ethnic_status = 'known' and latest_of_kind = 1
        ),
        secondary as (
            select person_id, ethnic_code, source, recorded_on,
                   row_number() over (partition by person_id
                                      order by recorded_on desc, priority, ethnic_code) as latest
            from ({secondary}) as known_codes
        ),
        people as (
            select person_id from gp union select person_id from secondary
        )
        select p.person_id,
               coalesce(k.ethnic_code, s.ethnic_code,
                        case when g.ethnic_code = '{NOT_STATED_CODE}' then '{NOT_STATED_CODE}'
                             else '{NOT_KNOWN_CODE}' end),
               case when k.person_id is not null then 'gp_register'
                    when s.person_id is not null then s.source
                    when g.person_id is not null then 'gp_register'
                    else 'none' end,
               coalesce(k.recorded_on, s.recorded_on, g.recorded_on),
               :now
        from people as p
        left join gp_known as k on k.person_id = p.person_id
        left join secondary as s on s.person_id = p.person_id and s.latest = 1
        left join gp as g on g.person_id = p.person_id and g.latest = 1
    """),
        {"now": utcnow()},
    )


def rebuild_linked(conn: Connection) -> None:
    """Linked completeness for every source and period, from ``core.person_ethnicity``."""
    conn.execute(sa.text(f"delete from {COMPLETENESS} where basis = 'linked'"))
    # No person_ethnicity row (pe.ethnic_code null) falls through to not_known.
    linked_status = (
        f"case when pe.ethnic_code = '{NOT_STATED_CODE}' then 'not_stated' "
        f"when pe.ethnic_code <> '{NOT_KNOWN_CODE}' then 'known' else 'not_known' end"
    )
    for source in SOURCES.values():
        if not source.has_ethnicity:
            continue
        if source.person_level:
            select_from = (
                f"{source.qualified_table} as s left join {PERSON_ETHNICITY_TABLE} as pe "
                "on pe.person_id = s.person_id"
            )
            status = linked_status
        else:  # staff and applicants cannot be linked: linked is as recorded
            select_from, status = f"{source.qualified_table} as s", "s.ethnic_status"
        _insert_completeness(conn, source, "linked", select_from, status, "1 = 1", {})
