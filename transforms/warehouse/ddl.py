"""The warehouse's DDL: ``sql/`` for the fixed schemas, staging tables from the catalogue.

Files named ``*.postgres.sql`` hold what only PostgreSQL has, such as roles and grants, and
are skipped on DuckDB. Staging tables are generated from the source catalogue so that a new
source needs no SQL.
"""

from __future__ import annotations

import hashlib
from importlib.resources import files
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from transforms.config.sources import SOURCES, Source
from transforms.core.ethnicity import dimension_rows
from transforms.core.periods import utcnow
from transforms.warehouse.engine import DDL_LOCK, is_duckdb

SQL_DIR = Path(str(files("transforms.warehouse") / "sql"))  # package data
POSTGRES_ONLY = ".postgres.sql"


def ddl_files(on_duckdb: bool) -> list[Path]:
    """The DDL files for a dialect, in apply order (``*.postgres.sql`` only on PostgreSQL)."""
    files = sorted(SQL_DIR.glob("[0-9]*.sql"))
    return [f for f in files if not (on_duckdb and f.name.endswith(POSTGRES_ONLY))]


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
