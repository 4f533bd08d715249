"""What the audit trail says: the latest load per source and month, and a run's totals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

LATEST = """
select source, period, file_name, status, rows_read, rows_loaded, rows_quarantined, error,
       finished_at
from (
    select f.*, row_number() over (
        partition by source, coalesce(period, file_name) order by finished_at desc, load_id
    ) as recency
    from audit.file_loads f
) latest
where recency = 1
order by source, period, file_name
"""

RUN_TOTALS = """
select source, status, count(*) as files, sum(rows_read) as rows_read,
       sum(rows_loaded) as rows_loaded, sum(rows_quarantined) as rows_quarantined
from audit.file_loads
where run_id in :run_ids
group by source, status
order by source, status
"""


def latest_loads(engine: Engine, source: str | None = None) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(LATEST)).mappings().all()
    return [dict(r) for r in rows if source is None or r["source"] == source]


def run_totals(engine: Engine, run_ids: Sequence[str]) -> list[dict]:
    if not run_ids:
        return []
    statement = sa.text(RUN_TOTALS).bindparams(sa.bindparam("run_ids", expanding=True))
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(statement, {"run_ids": list(run_ids)}).mappings()]


def rejected_in_runs(engine: Engine, run_ids: Sequence[str]) -> list[dict]:
    statement = sa.text(
        "select file_name, error from audit.file_loads "
        "where status = 'rejected' and run_id in :ids order by file_name"
    ).bindparams(sa.bindparam("ids", expanding=True))
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(statement, {"ids": list(run_ids)}).mappings()]


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
