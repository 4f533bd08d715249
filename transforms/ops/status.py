"""What the audit trail says: the latest load per source and month, a run's totals, and
what the indicator tables hold."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.quality.completeness import ALL_ORGANISATIONS
from transforms.warehouse.tables import (
    audit_file_loads,
    indicators_catalogue,
    indicators_not_computed,
    indicators_values,
    quality_ethnicity_completeness,
    quality_quarantine,
    quality_warnings,
)

CURRENT = ("loaded", "rejected", "in_progress")
"""The statuses that say what a file is now (the others are history)."""


def _latest() -> sa.Select:
    loads = audit_file_loads
    recency = sa.func.row_number().over(
        partition_by=[loads.c.source, sa.func.coalesce(loads.c.period, loads.c.file_name)],
        order_by=[loads.c.finished_at.desc(), loads.c.load_id],
    )
    ranked = (
        sa.select(loads, recency.label("recency")).where(loads.c.status.in_(CURRENT)).cte("ranked")
    )
    done = quality_ethnicity_completeness.c
    completeness = (
        sa.select(
            done.source,
            done.period,
            sa.func.max(sa.case((done.basis == "recorded", done.pct_known))).label("recorded"),
            sa.func.max(sa.case((done.basis == "linked", done.pct_known))).label("linked"),
        )
        .where(done.organisation == ALL_ORGANISATIONS)
        .group_by(done.source, done.period)
        .cte("completeness")
    )
    raised = (
        sa.select(quality_warnings.c.load_id, sa.func.count().label("warnings"))
        .group_by(quality_warnings.c.load_id)
        .cte("raised")
    )
    r, c = ranked.c, completeness.c
    return (
        sa.select(
            r.source,
            r.period,
            r.file_name,
            r.status,
            r.rows_read,
            r.rows_loaded,
            r.rows_quarantined,
            sa.func.round(sa.cast(c.recorded, sa.Numeric), 1).label("known_recorded_pct"),
            sa.func.round(sa.cast(c.linked, sa.Numeric), 1).label("known_linked_pct"),
            sa.func.coalesce(raised.c.warnings, 0).label("warnings"),
            r.error,
            r.finished_at,
        )
        .select_from(
            ranked.outerjoin(
                completeness,
                sa.and_(c.source == r.source, c.period == r.period, r.status == "loaded"),
            ).outerjoin(raised, raised.c.load_id == r.load_id)
        )
        .where(r.recency == 1)
        .order_by(r.source, r.period, r.file_name)
    )


def _rows(engine: Engine, query: sa.Select) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def latest_loads(engine: Engine, source: str | None = None) -> list[dict]:
    """The latest load of each source and month, with its completeness and warning count."""
    return [r for r in _rows(engine, _latest()) if source is None or r["source"] == source]


def indicator_summary(engine: Engine) -> list[dict]:
    """Per indicator and measure: periods computed, the latest, values and how many are
    suppressed for partners."""
    v, c = indicators_values.c, indicators_catalogue.c
    query = (
        sa.select(
            v.indicator_id,
            c.title,
            v.measure,
            sa.func.count(sa.distinct(v.period_start)).label("periods"),
            sa.func.max(v.period_end).label("latest_period_end"),
            sa.func.count().label("values"),
            sa.func.sum(sa.case((v.suppressed, 1), else_=0)).label("suppressed"),
            sa.func.max(v.computed_at).label("computed_at"),
        )
        .select_from(
            indicators_values.outerjoin(indicators_catalogue, c.indicator_id == v.indicator_id)
        )
        .group_by(v.indicator_id, c.title, v.measure)
        .order_by(v.indicator_id, v.measure)
    )
    return _rows(engine, query)


def not_computed(engine: Engine) -> list[dict]:
    """Complete periods left out on purpose (a campaign without its vaccination dates)."""
    n = indicators_not_computed.c
    query = sa.select(n.indicator_id, n.period_type, n.period_start, n.period_end, n.note)
    return _rows(engine, query.order_by(n.indicator_id, n.period_start))


def _of_current_loads(table: sa.Table) -> sa.Join:
    """``table`` joined to the loads it came from that are still loaded."""
    loads = audit_file_loads.c
    return table.join(
        audit_file_loads, sa.and_(loads.load_id == table.c.load_id, loads.status == "loaded")
    )


def first_seen(engine: Engine, source: str, period: str) -> date | None:
    """When the month's current file was first loaded or refused (its modification time, if
    the audit has it, else its first decision)."""
    loads = audit_file_loads.c
    query = sa.select(
        sa.func.min(sa.func.coalesce(loads.file_modified_at, loads.started_at))
    ).where(loads.source == source, loads.period == period, loads.status.in_(CURRENT))
    with engine.connect() as conn:
        first = conn.execute(query).scalar_one_or_none()
    return first.date() if first is not None else None


def quarantine_reasons(engine: Engine, source: str, period: str) -> list[dict]:
    """Why rows of the month's current delivery were quarantined, with counts."""
    q = quality_quarantine.c
    rows = sa.func.count()
    query = (
        sa.select(
            q.file_name,
            q.reason,
            rows.label("rows"),
            sa.func.min(q.row_number).label("first_row"),
            sa.func.min(q.detail).label("example"),
        )
        .select_from(_of_current_loads(quality_quarantine))
        .where(q.source == source, q.period == period)
        .group_by(q.file_name, q.reason)
        .order_by(rows.desc(), q.reason)
    )
    return _rows(engine, query)


def current_warnings(engine: Engine, source: str | None = None) -> list[dict]:
    """Data-quality warnings raised by the deliveries currently loaded."""
    w = quality_warnings.c
    query = (
        sa.select(w.source, w.period, w.message)
        .select_from(_of_current_loads(quality_warnings))
        .order_by(w.source, w.period)
    )
    if source is not None:
        query = query.where(w.source == source)
    return _rows(engine, query)


def run_totals(engine: Engine, run_ids: Sequence[str]) -> list[dict]:
    """Files and rows per source and outcome for these Airflow runs."""
    if not run_ids:
        return []
    f = audit_file_loads.c
    query = (
        sa.select(
            f.source,
            f.status,
            sa.func.count().label("files"),
            sa.func.sum(f.rows_read).label("rows_read"),
            sa.func.sum(f.rows_loaded).label("rows_loaded"),
            sa.func.sum(f.rows_quarantined).label("rows_quarantined"),
        )
        .where(f.run_id.in_(list(run_ids)))
        .group_by(f.source, f.status)
        .order_by(f.source, f.status)
    )
    return _rows(engine, query)


def refused_in_runs(engine: Engine, run_ids: Sequence[str]) -> list[dict]:
    """Files these runs rejected or left in progress, with why."""
    f = audit_file_loads.c
    query = (
        sa.select(f.status, f.file_name, f.error)
        .where(f.status.in_(["rejected", "in_progress"]), f.run_id.in_(list(run_ids)))
        .order_by(f.status.desc(), f.file_name)
    )
    return _rows(engine, query)


def warnings_in_runs(engine: Engine, run_ids: Sequence[str]) -> list[str]:
    w = quality_warnings.c
    query = sa.select(w.message).where(w.run_id.in_(list(run_ids))).order_by(w.source, w.period)
    return [r["message"] for r in _rows(engine, query)]


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
