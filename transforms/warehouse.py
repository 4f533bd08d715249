"""The warehouse behind a SQLAlchemy URL: DuckDB by default, PostgreSQL in production.

Only this module knows the two dialects apart. Bulk writes go through each engine's fast
path (DuckDB scans an Arrow table in place; PostgreSQL takes ``COPY`` from CSV written by
Arrow), never row-by-row inserts. DDL lives in ``sql/`` for the fixed schemas (files named
``*.postgres.sql`` hold what only PostgreSQL has, such as roles and grants, and are skipped on
DuckDB); staging tables are generated from the source catalogue so that a new source needs
no SQL.

Concurrency on PostgreSQL, where tasks run in parallel: writers take turns per subject with
advisory locks (``lock``), DDL never runs beside a writer (``apply_ddl``), and a transaction
PostgreSQL aborts for a conflict with another is run again (``retry_on_conflict``).
"""

from __future__ import annotations

import hashlib
import io
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TypeVar

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from transforms.audit import utcnow
from transforms.ethnicity import dimension_rows
from transforms.sources import SOURCES, Source

log = logging.getLogger(__name__)
T = TypeVar("T")

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
# COPY ends only once the server has parsed all it was sent, so each chunk is sent in small
# batches: the server parses one while Arrow writes the next (about 10% faster than 250k).
COPY_BATCH_ROWS = 10_000
# DuckDB caches table data up to its memory limit (80% of RAM by default), so without a cap a
# long run's memory grows with the history it touches. Larger work spills to disk instead.
DUCKDB_MEMORY = "512MB"
POSTGRES_ONLY = ".postgres.sql"
DDL_LOCK = "hei:ddl"
# PostgreSQL's codes for a transaction aborted because of another: rerunning it is the remedy.
CONFLICTS = {"40001": "a serialization failure", "40P01": "a deadlock"}
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)  # seconds before each new attempt, before jitter


@cache
def make_engine(url: str) -> Engine:
    """The process's engine for the warehouse URL; a DuckDB file's folder is created if missing.

    One engine per URL and process: for DuckDB that means one database instance and one
    memory limit, however many tasks run in the process (as under ``hei run``).
    """
    parsed = sa.make_url(url)
    if parsed.drivername == "duckdb" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    if parsed.drivername == "duckdb":
        return sa.create_engine(url, connect_args={"config": {"memory_limit": DUCKDB_MEMORY}})
    return sa.create_engine(url, pool_pre_ping=True)


def is_duckdb(conn: Connection | Engine) -> bool:
    return conn.dialect.name == "duckdb"


def ddl_files(on_duckdb: bool) -> list[Path]:
    """The DDL files for a dialect, in apply order (``*.postgres.sql`` only on PostgreSQL)."""
    files = sorted(SQL_DIR.glob("[0-9]*.sql"))
    return [f for f in files if not (on_duckdb and f.name.endswith(POSTGRES_ONLY))]


def is_data_error(exc: BaseException) -> bool:
    """True if the warehouse refused a value (the driver's PEP 249 ``DataError``, raised by
    the driver itself during a bulk write or wrapped by SQLAlchemy), not if it could not be
    reached or failed: the first is the file's fault, the second is worth a retry."""
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return False
        exc = exc.orig
    return isinstance(exc, (psycopg.DataError, duckdb.DataError))


def sql_statements(path: Path) -> list[str]:
    """The statements of a DDL file (split on ``;`` at line ends, comments dropped).

    A ``;`` inside a dollar-quoted body (a ``do $$ ... $$`` block) does not end the statement.
    """
    body = "\n".join(
        line for line in path.read_text().splitlines() if not line.strip().startswith("--")
    )
    statements, pending = [], ""
    for piece in body.split(";\n"):
        pending = f"{pending};\n{piece}" if pending else piece
        if pending.count("$$") % 2 == 0:
            statements.append(pending)
            pending = ""
    return [s.strip() for s in statements if s.strip().rstrip(";")]


def staging_ddl(source: Source) -> str:
    """``create table`` for a source's staging table: its columns plus lineage columns."""
    columns = [f"{c.name} {c.sql_type}" for c in source.output_columns]
    lineage = ["period varchar not null", "load_id varchar not null", "row_number bigint not null"]
    return f"create table if not exists {source.qualified_table} ({', '.join(columns + lineage)})"


def staging_indexes(source: Source, on_duckdb: bool) -> list[str]:
    """Indexes of a staging table (none on DuckDB, whose zone maps already prune by period)."""
    return [
        f"create index if not exists {source.table}_{column} on {source.qualified_table} ({column})"
        for column in ([] if on_duckdb else ["period", source.record_id])
    ]


def ddl_fingerprint(on_duckdb: bool) -> str:
    """A digest of all the DDL ``apply_ddl`` would run for a dialect, and the rows it writes."""
    digest = hashlib.sha256()
    for path in ddl_files(on_duckdb):
        digest.update(f"{path.name}\n{path.read_text()}\n".encode())
    for source in SOURCES.values():
        digest.update(
            "\n".join([staging_ddl(source), *staging_indexes(source, on_duckdb)]).encode()
        )
    digest.update(repr(dimension_rows()).encode())
    return digest.hexdigest()


def lock(conn: Connection, name: str) -> None:
    """Serialise writers of ``name`` across processes until the transaction ends.

    PostgreSQL deployments run tasks in parallel (advisory lock); a DuckDB file has one
    writing process at a time anyway. Every writer also holds the DDL lock shared, so DDL
    (which holds it exclusively) never runs beside a write (see ``apply_ddl``).
    """
    if not is_duckdb(conn):
        conn.execute(sa.text("select pg_advisory_xact_lock_shared(hashtext(:n))"), {"n": DDL_LOCK})
        conn.execute(sa.text("select pg_advisory_xact_lock(hashtext(:name))"), {"name": name})


def try_lock(conn: Connection, name: str) -> bool:
    """Take ``name`` until the transaction ends if no other process holds it; True if taken."""
    if is_duckdb(conn):
        return True
    return conn.execute(
        sa.text("select pg_try_advisory_xact_lock(hashtext(:name))"), {"name": name}
    ).scalar_one()


@contextmanager
def locked_snapshot(engine: Engine, name: str) -> Iterator[Connection]:
    """A transaction holding ``name`` that sees one snapshot of the warehouse throughout.

    On PostgreSQL a long read (the indicator compute) would otherwise see loads that commit
    part-way through, and count a numerator and its denominator in different states, so it
    runs REPEATABLE READ. Such a transaction's snapshot is taken by its first statement, so
    the lock is taken before it begins (for the session): a compute that waited for another's
    turn then sees what that one wrote, rather than failing to serialise with it. A DuckDB
    transaction is a snapshot already.
    """
    with engine.connect() as conn:
        if is_duckdb(conn):
            with conn.begin():
                yield conn
            return
        keys = {"ddl": DDL_LOCK, "name": name}
        try:
            conn.execute(sa.text("select pg_advisory_lock_shared(hashtext(:ddl))"), keys)
            conn.execute(sa.text("select pg_advisory_lock(hashtext(:name))"), keys)
            conn.commit()
            conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn
        finally:  # session locks outlive transactions: never hand them back to the pool
            if not conn.invalidated:  # a lost connection took its locks with it
                conn.rollback()
                conn.execute(
                    sa.text(
                        "select pg_advisory_unlock(hashtext(:name)), "
                        "pg_advisory_unlock_shared(hashtext(:ddl))"
                    ),
                    keys,
                )
                conn.commit()


def retry_on_conflict(work: Callable[[], T], what: str) -> T:
    """Run ``work``, one whole transaction, again if PostgreSQL aborted it for a conflict.

    A serialization failure or a deadlock rolls the transaction back and names no fault in
    it: running it again is PostgreSQL's documented remedy. The delays grow and are jittered,
    so two processes that collided do not collide again.
    """
    for delay in RETRY_DELAYS:
        try:
            return work()
        except sa.exc.DBAPIError as error:
            conflict = CONFLICTS.get(getattr(error.orig, "sqlstate", None) or "")
            if conflict is None:
                raise
            log.warning("%s: %s with another transaction; again in %.1f s", what, conflict, delay)
            time.sleep(delay * (1 + random.random()))
    return work()


def apply_ddl(engine: Engine, *, force: bool = False) -> None:
    """Bring the warehouse up to this code's DDL: safe to run every time, and concurrently.

    The fingerprint of the DDL applied is kept in ``audit.ddl_applied``; while it matches,
    nothing runs and no lock is taken (the usual case for the many tasks that call this).
    Otherwise the DDL runs in one transaction holding the DDL lock exclusively. Every writer
    holds it shared (``lock``), so DDL waits for the writes under way and new writes wait for
    the DDL: neither can hold a table the other is waiting for. (Beside a load, DDL deadlocked:
    ``create index if not exists`` locks its table even when the index exists.) ``force``
    applies it all again, e.g. to restore a role dropped by hand.
    """
    on_duckdb = is_duckdb(engine)
    fingerprint = ddl_fingerprint(on_duckdb)
    if not force:
        with engine.connect() as conn:
            if _applied_fingerprint(conn) == fingerprint:
                return
    with engine.begin() as conn:
        if not on_duckdb:
            conn.execute(sa.text("select pg_advisory_xact_lock(hashtext(:n))"), {"n": DDL_LOCK})
        if not force and _applied_fingerprint(conn) == fingerprint:
            return  # another process applied it while this one waited
        for path in ddl_files(on_duckdb):
            for statement in sql_statements(path):
                conn.execute(sa.text(statement))
        for source in SOURCES.values():
            conn.execute(sa.text(staging_ddl(source)))
            _add_missing_columns(conn, source)
            for statement in staging_indexes(source, on_duckdb):
                conn.execute(sa.text(statement))
        _refresh_dim_ethnicity(conn)
        conn.execute(sa.text("delete from audit.ddl_applied"))
        conn.execute(
            sa.text("insert into audit.ddl_applied (fingerprint, applied_at) values (:f, :now)"),
            {"f": fingerprint, "now": utcnow()},
        )


def _applied_fingerprint(conn: Connection) -> str | None:
    exists = conn.execute(
        sa.text(
            "select count(*) from information_schema.tables "
            "where table_schema = 'audit' and table_name = 'ddl_applied'"
        )
    ).scalar_one()
    if not exists:
        return None
    return conn.execute(sa.text("select max(fingerprint) from audit.ddl_applied")).scalar_one()


def _refresh_dim_ethnicity(conn: Connection) -> None:
    rows = dimension_rows()
    conn.execute(sa.text("delete from core.dim_ethnicity"))
    conn.execute(
        sa.text(
            f"insert into core.dim_ethnicity ({', '.join(rows[0])}) "
            f"values ({', '.join(':' + k for k in rows[0])})"
        ),
        rows,
    )


def _add_missing_columns(conn: Connection, source: Source) -> None:
    """Additive schema evolution: a column added to the catalogue is added to the table."""
    existing = set(
        conn.execute(
            sa.text(
                "select column_name from information_schema.columns "
                "where table_schema = 'staging' and table_name = :table"
            ),
            {"table": source.table},
        ).scalars()
    )
    for column in source.output_columns:
        if column.name not in existing:
            conn.execute(
                sa.text(
                    f"alter table {source.qualified_table} "
                    f"add column {column.name} {column.sql_type}"
                )
            )


def refresh_statistics(conn: Connection, table: str) -> None:
    """Sample ``table`` again, inside the open transaction, for the queries that follow.

    Right after a month is written its rows are in no statistics (autovacuum cannot see
    uncommitted rows), so PostgreSQL planned the duplicate checks, counts and completeness
    that follow for a few thousand rows: for 5M it sorted the month on disk to find 60
    practices, and probed the record-id index for every row with no other month loaded.
    The sample costs a fraction of a second; DuckDB keeps its statistics as it writes.
    """
    if not is_duckdb(conn):
        conn.execute(sa.text(f"analyze {table}"))


def append_arrow(conn: Connection, table: str, data: pa.Table) -> None:
    """Append an Arrow table to ``table`` inside the connection's open transaction."""
    if data.num_rows == 0:
        return
    columns = ", ".join(data.column_names)
    raw = conn.connection.driver_connection
    if is_duckdb(conn):
        # from_arrow copies the batch; a registered Arrow view would stay referenced (and its
        # memory held) until the transaction commits, so memory would grow with file size.
        raw.from_arrow(data.select(raw.table(table).columns)).insert_into(table)
        return
    with (
        raw.cursor() as cursor,
        cursor.copy(f"copy {table} ({columns}) from stdin with (format csv)") as copy,
    ):
        for batch in data.to_batches(max_chunksize=COPY_BATCH_ROWS):
            buffer = io.BytesIO()
            pacsv.write_csv(batch, buffer, pacsv.WriteOptions(include_header=False))
            copy.write(buffer.getbuffer())
