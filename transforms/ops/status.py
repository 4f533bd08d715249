"""What the audit trail says: the latest load per source and month, a run's totals, and
what the indicator tables hold."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

LATEST = """
with ranked as (
    select f.*, row_number() over (
        partition by source, coalesce(period, file_name) order by finished_at desc, load_id
    ) as recency
    from audit.file_loads f
    where status in ('loaded', 'rejected', 'in_progress')  -- the others are history
),
completeness as (
    select source, period,
           max(case when basis = 'recorded' then pct_known end) as recorded,
           max(case when basis = 'linked' then pct_known end) as linked
    from quality.ethnicity_completeness
    where organisation = 'ALL'
    group by source, period
),
warnings as (
    select load_id, count(*) as warnings from quality.warnings group by load_id
)
select r.source, r.period, r.file_name, r.status, r.rows_read, r.rows_loaded,
       r.rows_quarantined, round(cast(c.recorded as numeric), 1) as known_recorded_pct,
       round(cast(c.linked as numeric), 1) as known_linked_pct,
       coalesce(w.warnings, 0) as warnings, r.error, r.finished_at
from ranked r
left join completeness c on c.source = r.source and c.period = r.period and r.status = 'loaded'
left join warnings w on w.load_id = r.load_id
where r.recency = 1
order by r.source, r.period, r.file_name
"""

QUARANTINE_REASONS = """
select q.file_name, q.reason, count(*) as rows, min(q.row_number) as first_row,
       min(q.detail) as example
from quality.quarantine q
join audit.file_loads f on f.load_id = q.load_id and f.status = 'loaded'
where q.source = :source and q.period = :period
group by q.file_name, q.reason
order by rows desc, q.reason
"""

WARNINGS = """
select w.source, w.period, w.message
from quality.warnings w
join audit.file_loads f on f.load_id = w.load_id and f.status = 'loaded'
where :source is null or w.source = :source
order by w.source, w.period
"""

RUN_TOTALS = """
select source, status, count(*) as files, sum(rows_read) as rows_read,
       sum(rows_loaded) as rows_loaded, sum(rows_quarantined) as rows_quarantined
from audit.file_loads
where run_id in :run_ids
group by source, status
order by source, status
"""


def _rows(engine: Engine, sql: str, **params: object) -> list[dict]:
    """Run an audit query; ``run_ids`` expands to an IN list, ``source`` may be None."""
    statement = sa.text(sql)
    if "run_ids" in params:
        params["run_ids"] = list(params["run_ids"])  # type: ignore[arg-type]
        statement = statement.bindparams(sa.bindparam("run_ids", expanding=True))
    if "source" in params:
        statement = statement.bindparams(sa.bindparam("source", type_=sa.String))
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(statement, params).mappings()]


def latest_loads(engine: Engine, source: str | None = None) -> list[dict]:
    """The latest load of each source and month, with its completeness and warning count."""
    return [r for r in _rows(engine, LATEST) if source is None or r["source"] == source]


INDICATORS = """
select v.indicator_id, c.title, v.measure, count(distinct v.period_start) as periods,
       max(v.period_end) as latest_period_end, count(*) as "values",
       sum(case when v.suppressed then 1 else 0 end) as suppressed,
       max(v.computed_at) as computed_at
from indicators."values" v
left join indicators.catalogue c on c.indicator_id = v.indicator_id
group by v.indicator_id, c.title, v.measure
order by v.indicator_id, v.measure
"""


def indicator_summary(engine: Engine) -> list[dict]:
    """Per indicator and measure: periods computed, the latest, values and how many are
    suppressed for partners."""
    return _rows(engine, INDICATORS)


def quarantine_reasons(engine: Engine, source: str, period: str) -> list[dict]:
    """Why rows of the month's current delivery were quarantined, with counts."""
    return _rows(engine, QUARANTINE_REASONS, source=source, period=period)


def current_warnings(engine: Engine, source: str | None = None) -> list[dict]:
    """Data-quality warnings raised by the deliveries currently loaded."""
    return _rows(engine, WARNINGS, source=source)


def run_totals(engine: Engine, run_ids: Sequence[str]) -> list[dict]:
    """Files and rows per source and outcome for these Airflow runs."""
    return _rows(engine, RUN_TOTALS, run_ids=run_ids) if run_ids else []


def refused_in_runs(engine: Engine, run_ids: Sequence[str]) -> list[dict]:
    """Files these runs rejected or left in progress, with why."""
    return _rows(
        engine,
        "select status, file_name, error from audit.file_loads "
        "where status in ('rejected', 'in_progress') and run_id in :run_ids "
        "order by status desc, file_name",
        run_ids=run_ids,
    )


def warnings_in_runs(engine: Engine, run_ids: Sequence[str]) -> list[str]:
    rows = _rows(
        engine,
        "select message from quality.warnings where run_id in :run_ids order by source, period",
        run_ids=run_ids,
    )
    return [r["message"] for r in rows]


def format_table(rows: list[dict], columns: Sequence[str]) -> str:
    """A plain fixed-width table for the terminal."""
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    return "\n".join([line(list(columns)), line(["-" * w for w in widths]), *map(line, cells)])


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)
