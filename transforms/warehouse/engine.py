"""The warehouse behind a SQLAlchemy URL: DuckDB by default, PostgreSQL in production.

This package is the only dialect-aware code. This module opens the engine and lets writers
take turns: on PostgreSQL, where tasks run in parallel, writers take turns per subject with
advisory locks (``lock``), DDL never runs beside a writer (``ddl.apply_ddl``), and a
transaction PostgreSQL aborts for a conflict with another is run again
(``retry_on_conflict``).
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TypeVar

import duckdb
import pandas as pd
import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)
T = TypeVar("T")

# DuckDB caches table data up to its memory limit (80% of RAM by default), so without a cap a
# long run's memory grows with the history it touches. Larger work spills to disk instead.
DUCKDB_MEMORY = "512MB"
# PostgreSQL memory per sort or hash of a transaction that groups all history (linking).
GROUPING_MEMORY = "64MB"
# PostgreSQL's cost of a random page read, relative to a sequential one's 1: solid-state disks.
RANDOM_PAGE_COST = "1.1"
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


def allow_grouping_memory(conn: Connection) -> None:
    """Give this PostgreSQL transaction's sorts and hashes ``GROUPING_MEMORY`` each.

    With the server's default (4 MB) the planner avoided a hash aggregate that would spill,
    and read the GP register through its person index instead, row by random row: best-known
    ethnicity at Wigan scale took 33 s that way and 9 s with 64 MB (README, Figures). ``set
    local`` ends with the transaction. DuckDB has its own limit (``DUCKDB_MEMORY``).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(f"set local work_mem = '{GROUPING_MEMORY}'"))


@contextmanager
def index_lookups_preferred(conn: Connection) -> Iterator[None]:
    """Within the block, this PostgreSQL transaction's planner takes a random page read to
    cost about what a sequential one does (``random_page_cost`` 1.1), then the setting it had
    is put back.

    For the check that a delivery's records are not already loaded for another month: with
    the server's default of 4 (for spinning disks), PostgreSQL hashed every other month of
    the source rather than look each record up in the record-id index, so the check slowed
    with each month of history (README, Figures).
    Only there: set for a whole load, it made the check of the delivery's people against the
    register choose a plan fifteen times slower.
    """
    if conn.dialect.name != "postgresql":
        yield
        return
    setting = sa.text("select set_config('random_page_cost', :value, true)")
    before = conn.execute(sa.text("show random_page_cost")).scalar_one()
    conn.execute(setting, {"value": RANDOM_PAGE_COST})
    yield  # an error rolls the transaction back, and the setting with it
    conn.execute(setting, {"value": before})


def duckdb_holder(url: str) -> str | None:
    """Which other program holds a DuckDB warehouse file open (so this one cannot write it).

    DuckDB lets one process open a file for writing and no other open it meanwhile. Checked
    once, before a run, so that a notebook or DBeaver left open gives one clear message
    rather than a traceback from every task. None when the file is free, absent or not DuckDB.
    """
    parsed = sa.make_url(url)
    path = parsed.database
    if parsed.drivername != "duckdb" or path in (None, "", ":memory:") or not Path(path).exists():
        return None
    try:
        duckdb.connect(path).close()
    except duckdb.IOException as error:
        held = re.search(r"lock is held in (.*?)\.? See also", str(error))
        if "Could not set lock" not in str(error):
            raise
        return held.group(1) if held else "another process"
    return None


def fetch_frame(conn: Connection, query: sa.Executable) -> pd.DataFrame:
    """A query's result as a DataFrame. Rows go to pandas as plain tuples: given SQLAlchemy
    rows, pandas probes each one attribute by attribute, ten times slower."""
    result = conn.execute(query)
    keys = list(result.keys())
    return pd.DataFrame.from_records([tuple(row) for row in result.all()], columns=keys)


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
