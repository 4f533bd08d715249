"""The warehouse behind a SQLAlchemy URL: DuckDB by default, PostgreSQL in production.

Only this module knows the two dialects apart. Bulk writes go through each engine's fast
path (DuckDB scans an Arrow table in place; PostgreSQL takes ``COPY`` from CSV written by
Arrow), never row-by-row inserts. DDL lives in ``sql/`` for the fixed schemas; staging
tables are generated from the source catalogue so that a new source needs no SQL.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from transforms.ethnicity import dimension_rows
from transforms.sources import SOURCES, Source

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
# COPY ends only once the server has parsed all it was sent, so each chunk is sent in small
# batches: the server parses one while Arrow writes the next (about 10% faster than 250k).
COPY_BATCH_ROWS = 10_000
# DuckDB caches table data up to its memory limit (80% of RAM by default), so without a cap a
# long run's memory grows with the history it touches. Larger work spills to disk instead.
DUCKDB_MEMORY = "512MB"


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
    """The statements of a DDL file (split on ``;`` at line ends, comments dropped)."""
    body = "\n".join(
        line for line in path.read_text().splitlines() if not line.strip().startswith("--")
    )
    return [s.strip() for s in body.split(";\n") if s.strip().rstrip(";")]


def staging_ddl(source: Source) -> str:
    """``create table`` for a source's staging table: its columns plus lineage columns."""
    columns = [f"{c.name} {c.sql_type}" for c in source.output_columns]
    lineage = ["period varchar not null", "load_id varchar not null", "row_number bigint not null"]
    return f"create table if not exists {source.qualified_table} ({', '.join(columns + lineage)})"


def snapshot_connection(engine: Engine) -> Connection:
    """A connection whose transaction sees one snapshot of the warehouse throughout.

    On PostgreSQL a long read (the indicator compute) would otherwise see loads that commit
    part-way through, and count a numerator and its denominator in different states. A
    DuckDB transaction is a snapshot already.
    """
    conn = engine.connect()
    return conn if is_duckdb(conn) else conn.execution_options(isolation_level="REPEATABLE READ")


def lock(conn: Connection, name: str) -> None:
    """Serialise writers of ``name`` across processes until the transaction ends.

    PostgreSQL deployments run tasks in parallel (advisory lock); a DuckDB file has one
    writing process at a time anyway.
    """
    if not is_duckdb(conn):
        conn.execute(sa.text("select pg_advisory_xact_lock(hashtext(:name))"), {"name": name})


def apply_ddl(engine: Engine) -> None:
    """Create every schema and table that does not exist yet (safe to run every time)."""
    with engine.begin() as conn:
        lock(conn, "hei:ddl")
        for path in sorted(SQL_DIR.glob("[0-9]*.sql")):
            for statement in sql_statements(path):
                conn.execute(sa.text(statement))
        for source in SOURCES.values():
            conn.execute(sa.text(staging_ddl(source)))
            _add_missing_columns(conn, source)
            if not is_duckdb(conn):  # DuckDB's zone maps already prune by period
                for column in ("period", source.record_id):
                    conn.execute(
                        sa.text(
                            f"create index if not exists {source.table}_{column} "
                            f"on {source.qualified_table} ({column})"
                        )
                    )
        _refresh_dim_ethnicity(conn)


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
