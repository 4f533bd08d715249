"""The warehouse's DDL, created from the table declarations (``tables.py``, ``views.py``).

``sql/`` keeps what reads better as SQL: the schemas (``0*.sql``, before the tables) and the
roles and grants (``9*.sql``, after the views). Files named ``*.postgres.sql`` hold what only
PostgreSQL has and are skipped on DuckDB. Tables are created if missing and gain the columns
added to their declarations since (additive schema evolution); views are replaced.
"""

from __future__ import annotations

import hashlib
import logging
from importlib.resources import files
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.schema import CreateIndex, CreateTable

from transforms.core.ethnicity import dimension_rows
from transforms.core.periods import utcnow
from transforms.warehouse.engine import DDL_LOCK, is_duckdb
from transforms.warehouse.tables import (
    POSTGRES_ONLY,
    RETIRED_INDEXES,
    audit_ddl_applied,
    brin_indexes,
    core_dim_ethnicity,
    metadata,
)
from transforms.warehouse.views import view_statements

log = logging.getLogger(__name__)

LOADER_ROLE = "hei_loader"
"""The role the pipeline writes as on PostgreSQL; made by ``sql/002_roles.postgres.sql``."""
FULL, TABLES = "fingerprint", "tables_fingerprint"  # columns of audit.ddl_applied
SQL_DIR = Path(str(files("transforms.warehouse") / "sql"))  # package data
POSTGRES_ONLY_SQL = ".postgres.sql"
INFORMATION_SCHEMA = "information_schema"
_tables = sa.table(
    "tables", sa.column("table_schema"), sa.column("table_name"), schema=INFORMATION_SCHEMA
)
_columns = sa.table(
    "columns",
    sa.column("table_schema"),
    sa.column("table_name"),
    sa.column("column_name"),
    schema=INFORMATION_SCHEMA,
)


def ddl_files(on_duckdb: bool) -> list[Path]:
    """The DDL files for a dialect, in apply order (``*.postgres.sql`` only on PostgreSQL)."""
    files = sorted(SQL_DIR.glob("[0-9]*.sql"))
    return [f for f in files if not (on_duckdb and f.name.endswith(POSTGRES_ONLY_SQL))]


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


def _file_statements(on_duckdb: bool, *, before_tables: bool) -> list[str]:
    """Statements of the ``0*.sql`` files (schemas) or of the others (roles, grants)."""
    return [
        statement
        for path in ddl_files(on_duckdb)
        if path.name.startswith("0") == before_tables
        for statement in sql_statements(path)
    ]


def table_statements(dialect: Dialect) -> list[str]:
    """``create table if not exists`` for every declared table, in the dialect's SQL."""
    return [
        str(CreateTable(table, if_not_exists=True).compile(dialect=dialect)).strip()
        for table in metadata.sorted_tables
    ]


def index_statements(dialect: Dialect) -> list[str]:
    """``create index if not exists`` for every declared index the dialect gets, and on
    PostgreSQL ``drop index if exists`` for those retired (``tables.RETIRED_INDEXES``) and
    ``autosummarize`` reset on BRIN indexes, which earlier versions made with it on (loads
    now summarise their own ranges: ``bulk.summarise_block_ranges``)."""
    on_duckdb = dialect.name == "duckdb"
    retired = [] if on_duckdb else [f"drop index if exists {name}" for name in RETIRED_INDEXES]
    created = [
        str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect)).strip()
        for table in metadata.sorted_tables
        for index in sorted(table.indexes, key=lambda i: str(i.name))
        if not (on_duckdb and index.info.get(POSTGRES_ONLY))
    ]
    reset = [
        f"alter index if exists {name} reset (autosummarize)"
        for table in ([] if on_duckdb else metadata.sorted_tables)
        for name in brin_indexes(table)
    ]
    return retired + created + reset


def ddl_statements(dialect: Dialect) -> list[str]:
    """All the DDL ``apply_ddl`` runs for a dialect, in order, but for the columns it adds to
    existing tables (which follow from the tables' declarations)."""
    on_duckdb = dialect.name == "duckdb"
    return [
        *_file_statements(on_duckdb, before_tables=True),
        *table_statements(dialect),
        *index_statements(dialect),
        *view_statements(dialect),
        *_file_statements(on_duckdb, before_tables=False),
    ]


def ddl_fingerprint(dialect: Dialect) -> str:
    """A digest of all the DDL ``apply_ddl`` would run for a dialect, and the rows it writes."""
    return _digest(ddl_statements(dialect))


def tables_fingerprint(dialect: Dialect) -> str:
    """A digest of the tables part of the DDL: what the loader applies by itself."""
    return _digest([*table_statements(dialect), *index_statements(dialect)])


def _digest(statements: list[str]) -> str:
    digest = hashlib.sha256()
    for statement in statements:
        digest.update(f"{statement}\n;\n".encode())
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

    On PostgreSQL only an administrator (who may create schemas in the database) applies it
    all: schemas, roles, views and grants. Anyone else, the loader, applies the tables part
    alone, as ``hei_loader`` so that the role owns what it creates, and says when the rest is
    out of date (the views and grants wait for ``hei warehouse-roles``).
    """
    fingerprints = {
        FULL: ddl_fingerprint(engine.dialect),
        TABLES: tables_fingerprint(engine.dialect),
    }
    if not force:
        with engine.connect() as conn:
            if _up_to_date(conn, fingerprints):
                return
    with engine.begin() as conn:
        if not is_duckdb(conn):
            conn.execute(sa.text("select pg_advisory_xact_lock(hashtext(:n))"), {"n": DDL_LOCK})
        if not force and _up_to_date(conn, fingerprints):
            return  # another process applied it while this one waited
        if administers(conn):
            _apply_all(conn)
            _record(conn, fingerprints)
        else:
            applied = _applied(conn)
            if not applied:
                raise NotSetUp(
                    "the warehouse has not been set up: an administrator must run "
                    "`hei warehouse-roles` with the database owner's URL before the pipeline "
                    "runs as the loader"
                )
            conn.execute(sa.text(f"set local role {LOADER_ROLE}"))
            _apply_tables(conn)
            _record(conn, {FULL: applied.get(FULL) or "", TABLES: fingerprints[TABLES]})


class NotSetUp(Exception):
    """The loader (or an engineer) met a PostgreSQL warehouse no administrator set up."""


def administers(conn: Connection) -> bool:
    """Whether this user applies all the DDL: always on DuckDB; on PostgreSQL, a user who may
    create schemas in the database (a superuser or the database's owner), unlike the loader."""
    return (
        is_duckdb(conn)
        or conn.execute(
            sa.text("select has_database_privilege(current_database(), 'CREATE')")
        ).scalar_one()
    )


def _apply_all(conn: Connection) -> None:
    on_duckdb = is_duckdb(conn)
    for statement in _file_statements(on_duckdb, before_tables=True):
        conn.execute(sa.text(statement))
    if not on_duckdb:  # the loader owns the tables, whoever makes them
        conn.execute(sa.text(f"set local role {LOADER_ROLE}"))
    _apply_tables(conn)
    if not on_duckdb:
        conn.execute(sa.text("reset role"))
    for statement in view_statements(conn.dialect):
        conn.execute(sa.text(statement))
    for statement in _file_statements(on_duckdb, before_tables=False):
        conn.execute(sa.text(statement))


def _apply_tables(conn: Connection) -> None:
    for statement in table_statements(conn.dialect):
        conn.execute(sa.text(statement))
    _add_missing_columns(conn)
    for statement in index_statements(conn.dialect):
        conn.execute(sa.text(statement))
    _refresh_dim_ethnicity(conn)


def _up_to_date(conn: Connection, fingerprints: dict[str, str]) -> bool:
    """Whether this user has nothing to apply: all of it matches, or the tables part does
    and the rest is the administrator's to apply (which is then logged)."""
    applied = _applied(conn)
    if applied.get(FULL) == fingerprints[FULL]:
        return True
    if applied.get(TABLES) != fingerprints[TABLES] or administers(conn):
        return False
    log.warning(
        "the warehouse's schemas, mart views or grants are older than this code: an "
        "administrator should run `hei warehouse-roles` (the tables are up to date)"
    )
    return True


def _record(conn: Connection, fingerprints: dict[str, str]) -> None:
    conn.execute(sa.delete(audit_ddl_applied))
    conn.execute(sa.insert(audit_ddl_applied).values(**fingerprints, applied_at=utcnow()))


def _applied(conn: Connection) -> dict[str, str | None]:
    """The fingerprints recorded (none in a new warehouse; an older one has only ``FULL``)."""
    exists = conn.execute(
        sa.select(sa.func.count())
        .select_from(_tables)
        .where(
            _tables.c.table_schema == audit_ddl_applied.schema,
            _tables.c.table_name == audit_ddl_applied.name,
        )
    ).scalar_one()
    if not exists:
        return {}
    row = conn.execute(sa.text(f"select * from {audit_ddl_applied.fullname}")).mappings().first()
    return dict(row) if row else {}


def _refresh_dim_ethnicity(conn: Connection) -> None:
    conn.execute(sa.delete(core_dim_ethnicity))
    conn.execute(sa.insert(core_dim_ethnicity), dimension_rows())


def _add_missing_columns(conn: Connection) -> None:
    """Additive schema evolution: a column added to a declaration is added to its table
    (nullable, since existing rows have no value for it)."""
    schemas = sorted({str(t.schema) for t in metadata.sorted_tables})
    existing = set(
        conn.execute(
            sa.select(_columns.c.table_schema, _columns.c.table_name, _columns.c.column_name).where(
                _columns.c.table_schema.in_(schemas)
            )
        ).tuples()
    )
    preparer = conn.dialect.identifier_preparer
    for table in metadata.sorted_tables:
        for column in table.columns:
            if (table.schema, table.name, column.name) not in existing:
                kind = column.type.compile(dialect=conn.dialect)
                conn.execute(
                    sa.text(
                        f"alter table {preparer.format_table(table)} "
                        f"add column {preparer.format_column(column)} {kind}"
                    )
                )
