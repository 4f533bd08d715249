"""Loading one delivery: read, check, pseudonymise, replace the source-month, audit.

All of a delivery's effects (staging rows, quarantine rows, audit rows, superseding the
previous load) happen in one transaction, so a failure leaves the warehouse exactly as it
was and a rerun starts clean. Rows stream in chunks straight into the month's emptied staging
partition; the duplicate checks and the counts are set-based SQL in the warehouse.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from transforms.config.sources import Source, get_source
from transforms.core.periods import utcnow
from transforms.ingest import audit, landing
from transforms.ingest.audit import Action, LoadRecord, Planned
from transforms.ingest.errors import DeliveryInProgress, DeliveryRejected
from transforms.ingest.landing import Delivery
from transforms.ingest.reading import CHANGED, DeliveryReader, MalformedLine, ReadLimits
from transforms.ingest.rules import check_rows, pseudonymise_rows
from transforms.quality import completeness, validation
from transforms.warehouse.bulk import append_arrow, refresh_statistics, summarise_block_ranges
from transforms.warehouse.engine import index_lookups_preferred, is_data_error, lock
from transforms.warehouse.tables import STAGING, quality_quarantine

log = logging.getLogger(__name__)

DUPLICATE_ID = "duplicate_id"  # the quarantine reason of repeats and records of other months
T = TypeVar("T")


def prefetch(items: Iterator[T]) -> Iterator[T]:
    """Produce the next item in a worker thread while the caller consumes this one.

    Reading and checking (Arrow), validating and writing (the warehouse driver) mostly
    release the GIL, so chained prefetches overlap the stages; each holds at most one chunk
    ahead, so memory stays bounded. If the consumer stops early (a failed write), the item in
    flight is waited for and the source is closed, so no stage runs on behind a rollback.
    """
    done = object()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as pool:
        upcoming = pool.submit(next, items, done)
        try:
            while (item := upcoming.result()) is not done:
                upcoming = pool.submit(next, items, done)
                yield item
        finally:
            wait([upcoming])
            close = getattr(items, "close", None)
            if close is not None:
                close()


@dataclass(frozen=True)
class LoadContext:
    """What a load needs besides the file: the warehouse, the pseudonym key, the run, the
    Great Expectations context (see transforms.quality.validation) and the limits on reading."""

    engine: Engine
    key: bytes
    run_id: str | None = None
    gx: Any = None
    limits: ReadLimits = ReadLimits()


def ingest(planned: Planned, ctx: LoadContext) -> LoadRecord | None:
    """Apply one planned delivery and return its audit record.

    None if, by the time this process had the source's turn, another had applied the file.
    """
    delivery = planned.delivery
    entry = LoadRecord(
        load_id=uuid.uuid4().hex,
        source=delivery.source,
        file_name=delivery.file_name,
        period=delivery.period,
        sha256=delivery.sha256,
        status=planned.action,
        file_modified_at=delivery.modified_at,
        started_at=utcnow(),
        run_id=ctx.run_id,
    )
    try:
        refused = landing.refusal(delivery)
        if refused:
            raise refused
        with ctx.engine.begin() as conn:
            action = _take_turn(conn, delivery)
            if action is None:
                return None
            if action == "unchanged":
                entry = audit.record(conn, replace(entry, status=action))
                log.info(
                    "%s: same bytes as the loaded file for %s; nothing to do",
                    delivery.file_name,
                    delivery.period,
                )
                return entry
            entry = _load(conn, entry, get_source(delivery.source), ctx, planned)
    except DeliveryRejected as rejection:
        if _caught_changing(delivery, rejection):
            rejection = DeliveryInProgress(delivery.file_name, CHANGED)
        return _refuse(ctx, entry, delivery, rejection)
    except Exception as exc:
        if not is_data_error(exc):
            raise  # the warehouse is down or failing: the task fails and is retried
        return _refuse(ctx, entry, delivery, _refused_by_warehouse(delivery.file_name, exc))
    log.info(
        "%s: read %d, loaded %d, quarantined %d",
        entry.file_name,
        entry.rows_read,
        entry.rows_loaded,
        entry.rows_quarantined,
    )
    return entry


def _take_turn(conn: Connection, delivery: Delivery) -> Action | None:
    """Wait for the source's turn, then decide again what the delivery needs.

    Months of one source may load in parallel on PostgreSQL; the cross-month duplicate check
    must see the other loads' rows, so a source's loads take turns. While this one waited,
    another process (a second run, a parallel DAG) may have applied the same file: deciding
    only before the wait loaded such files twice.
    """
    lock(conn, f"hei:load:{delivery.source}")
    now = audit.plan(conn, [delivery])
    return now[0].action if now else None


def _caught_changing(delivery: Delivery, rejection: DeliveryRejected) -> bool:
    """A file that looked wrong while it was being read may just have been half written:
    if it has changed since it was found, it is in progress, not rejected."""
    return (
        delivery.refused is None
        and not isinstance(rejection, DeliveryInProgress)
        and landing.changed_since_found(delivery)
    )


def _refuse(
    ctx: LoadContext, entry: LoadRecord, delivery: Delivery, rejection: DeliveryRejected
) -> LoadRecord | None:
    """Record a delivery that changed nothing: rejected, or in progress (planned again by
    the next run). None if another process recorded it meanwhile."""
    in_progress = isinstance(rejection, DeliveryInProgress)
    entry = replace(
        entry,
        status="in_progress" if in_progress else "rejected",
        error=f"[{rejection.reason}] {rejection}",
        rows_read=0,
        rows_loaded=0,
        rows_quarantined=0,
    )
    with ctx.engine.begin() as conn:
        if _take_turn(conn, delivery) is None:
            return None
        entry = audit.record(conn, entry)
    log.warning("%s %s", entry.status.replace("_", " "), entry.error)
    return entry


def _refused_by_warehouse(file_name: str, exc: Exception) -> DeliveryRejected:
    """A value no row rule caught but the warehouse cannot store. Only the error's class is
    named: the database's message quotes the value."""
    kind = type(getattr(exc, "orig", None) or exc).__name__
    return DeliveryRejected(
        "unstorable_value",
        file_name,
        f"the warehouse refused a value in it ({kind}) that passed every row rule, so "
        "nothing was loaded",
        "Look for unusual characters or values in the file and resend it; tell the data "
        "engineers too, so that a row rule can quarantine such rows in future.",
    )


def _load(
    conn: Connection, entry: LoadRecord, source: Source, ctx: LoadContext, planned: Planned
) -> LoadRecord:
    """Replace the month's rows with the delivery's; returns the ``loaded`` record."""
    rows_read = 0
    log.info("%s: loading (load %s)", entry.file_name, entry.load_id)
    with DeliveryReader(planned.delivery, source, ctx.limits) as reader:
        extra, absent = _names(reader.header.extra), _names(reader.header.absent)
        lineage = {"period": entry.period, "load_id": entry.load_id}
        staged = STAGING[source.name]
        conn.execute(sa.delete(staged).where(staged.c.period == entry.period))
        # Three overlapping stages, one thread each: read and check, pseudonymise, write.
        checked_chunks = prefetch(check_rows(chunk, source, entry.period) for chunk in reader)
        for checked in prefetch(pseudonymise_rows(c, ctx.key) for c in checked_chunks):
            rows_read += checked.rows
            good = checked.good
            for name, value in lineage.items():
                column = pa.repeat(pa.scalar(value, pa.string()), good.num_rows)
                good = good.append_column(name, column)
            append_arrow(conn, staged, good)
            _quarantine(conn, entry, checked.quarantined)
        rows_read += len(reader.malformed)
        _quarantine_malformed(conn, entry, reader.malformed)
    if rows_read == 0:
        raise DeliveryRejected(
            "no_rows",
            entry.file_name,
            "the file has a header but no data rows",
            "A month with no activity is unlikely: check the extract and resend it.",
        )
    summarise_block_ranges(conn, staged)
    refresh_statistics(conn, staged)
    _quarantine_repeats(conn, source, entry)
    loaded, quarantined = _count_outcomes(conn, source, entry, rows_read)
    if loaded == 0:
        raise DeliveryRejected(
            "no_valid_rows",
            entry.file_name,
            f"none of its {rows_read} rows passed the row rules, so it would empty the month "
            f"({_commonest_reasons(conn, entry)})",
            "Check that it is the right source and month and that its coded fields follow the "
            "data contract, then resend it.",
        )
    completeness.record_delivery(conn, source, entry.period)
    found = validation.validate_delivery(
        ctx.gx, conn, source, entry.period, entry.file_name, entry.load_id, loaded
    )
    _reject_if_invalid(found, entry)
    warnings = validation.record_warnings(
        conn, found.warnings, entry.source, entry.period, entry.load_id, entry.run_id
    )
    audit.supersede(conn, entry.source, entry.period)
    outcome = replace(
        entry,
        status="loaded",
        rows_read=rows_read,
        rows_loaded=loaded,
        rows_quarantined=quarantined,
        extra_columns=extra,
        absent_columns=absent,
        warnings=tuple(warnings),
    )
    return audit.record(conn, outcome)


def _commonest_reasons(conn: Connection, entry: LoadRecord, shown: int = 3) -> str:
    """Why the delivery's rows were quarantined, commonest first, each with its first row: the
    rows themselves roll back with the refused load, so the message is all that is left."""
    held = quality_quarantine.c
    rows = sa.func.count().label("rows")
    reasons = conn.execute(
        sa.select(held.reason, held.detail, rows, sa.func.min(held.row_number))
        .where(held.load_id == entry.load_id)
        .group_by(held.reason, held.detail)
        .order_by(rows.desc(), held.reason, held.detail)
    ).all()
    said = [
        f"{count} row(s) {reason}: {detail}, first at row {first}"
        for reason, detail, count, first in reasons[:shown]
    ]
    if len(reasons) > shown:
        said.append(f"and {len(reasons) - shown} other reason(s)")
    return "; ".join(said)


def _names(columns: list[str]) -> str | None:
    """Column names as the audit stores them: a JSON list, or null when there are none."""
    return json.dumps(columns) if columns else None


def _reject_if_invalid(found: validation.DeliveryOutcome, entry: LoadRecord) -> None:
    """A ``reject`` expectation failed on the delivery as it would land: refuse it (the load
    rolls back), saying what was expected and what the delivery holds."""
    if found.rejections:
        actions = dict.fromkeys(action for _, action in found.rejections)
        raise DeliveryRejected(
            "failed_validation",
            entry.file_name,
            f"Great Expectations suite {entry.source}.reject failed, so nothing was loaded: "
            + "; ".join(failure for failure, _ in found.rejections),
            " ".join(actions) + " The Data Docs show the delivery's checks. If the delivery "
            "is right, tell the data engineers: the source's limits are set in "
            "transforms/config/sources.py.",
        )


def _quarantine(conn: Connection, entry: LoadRecord, rows: pa.Table) -> None:
    if rows.num_rows == 0:
        return
    n = rows.num_rows
    constant = {
        "load_id": entry.load_id,
        "source": entry.source,
        "file_name": entry.file_name,
        "period": entry.period,
    }
    table = pa.table(
        {k: pa.repeat(pa.scalar(v, pa.string()), n) for k, v in constant.items()}
        | {c: rows[c] for c in ("row_number", "reason", "detail")}
    )
    append_arrow(conn, quality_quarantine, table)


def _quarantine_malformed(conn: Connection, entry: LoadRecord, lines: list[MalformedLine]) -> None:
    rows = pa.table(
        {
            "row_number": pa.array([m.row_number for m in lines], pa.int64()),
            "reason": pa.array(["malformed_line"] * len(lines), pa.string()),
            "detail": pa.array(
                [
                    f"the line has {m.actual_fields} fields but the header has "
                    f"{m.expected_fields}; check for an unquoted comma"
                    for m in lines
                ],
                pa.string(),
            ),
        }
    )
    _quarantine(conn, entry, rows)


def _quarantine_duplicates(
    conn: Connection, entry: LoadRecord, rows: sa.Select, detail: str
) -> int:
    """Quarantine the staged rows whose ``row_number`` ``rows`` selects, as duplicates."""
    constant = {
        "load_id": entry.load_id,
        "source": entry.source,
        "file_name": entry.file_name,
        "period": entry.period,
        "reason": DUPLICATE_ID,
        "detail": detail,
    }
    found = rows.subquery("duplicates")
    insert = sa.insert(quality_quarantine).from_select(
        [*constant, "row_number"],
        sa.select(*(sa.literal(v, sa.String) for v in constant.values()), found.c.row_number),
    )
    # An INSERT's row count is kept only when asked for (SQLAlchemy 2), else -1 on psycopg.
    return conn.execute(insert.execution_options(preserve_rowcount=True)).rowcount


def _quarantine_repeats(conn: Connection, source: Source, entry: LoadRecord) -> None:
    """Keep the first row of each identifier; quarantine repeats and records from other months.

    Repeats are rare, so they are found with a grouped count over the month just written and
    only their rows are ranked. An event already loaded for another month is quarantined too
    (not for snapshots, where every month lists everyone again).
    """
    staged, name = STAGING[source.name], source.record_id
    rid, in_month = staged.c[name], staged.c.period == entry.period
    repeated = sa.select(rid).where(in_month).group_by(rid).having(sa.func.count() > 1)
    copies = (
        sa.select(
            staged.c.row_number,
            sa.func.row_number().over(partition_by=rid, order_by=staged.c.row_number).label("copy"),
        )
        .where(in_month, rid.in_(repeated))
        .subquery("repeats")
    )
    found = _quarantine_duplicates(
        conn,
        entry,
        sa.select(copies.c.row_number).where(copies.c.copy > 1),
        f"{name} repeats an earlier row of this file; the first row was kept (send each once)",
    )
    held = quality_quarantine.c
    quarantined = sa.select(held.row_number).where(held.load_id == entry.load_id)
    if not source.snapshot:
        other = staged.alias("other")
        elsewhere = sa.exists().where(other.c.period != entry.period, other.c[name] == rid)
        with index_lookups_preferred(conn):
            found += _quarantine_duplicates(
                conn,
                entry,
                sa.select(staged.c.row_number).where(
                    in_month, elsewhere, staged.c.row_number.not_in(quarantined)
                ),
                f"{name} is already loaded for another month; send each record in one month "
                "only (resubmit the other month if the record moved)",
            )
    if found == 0:  # the usual case: nothing to take out of the month
        return
    conn.execute(
        sa.delete(staged).where(
            in_month, staged.c.row_number.in_(quarantined.where(held.reason == DUPLICATE_ID))
        )
    )


def _count_outcomes(
    conn: Connection, source: Source, entry: LoadRecord, rows_read: int
) -> tuple[int, int]:
    """Rows loaded and quarantined, counted in the tables themselves; nothing may be lost."""
    loaded, quarantined = (
        conn.execute(
            sa.select(sa.func.count()).where(
                table.c.period == entry.period, table.c.load_id == entry.load_id
            )
        ).scalar_one()
        for table in (STAGING[source.name], quality_quarantine)
    )
    if rows_read != loaded + quarantined:
        raise RuntimeError(
            f"{entry.file_name}: read {rows_read} rows but loaded {loaded} and quarantined "
            f"{quarantined}; the load was rolled back. This is a bug."
        )
    return loaded, quarantined
