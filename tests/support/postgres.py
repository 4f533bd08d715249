"""The test PostgreSQL server (``HEI_TEST_POSTGRES_URL``) and emptying a warehouse on it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
WAREHOUSE_SCHEMAS = ("staging", "core", "quality", "indicators", "audit")


def server_url() -> str:
    """The server to create test databases on; skips the test (fails it under
    ``REQUIRE_POSTGRES=1``) with a one-line reason when there is none."""
    url = os.environ.get("HEI_TEST_POSTGRES_URL", DEFAULT_PG)
    try:
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        return url
    except Exception as exc:  # any failure means "no server here"
        where = sa.make_url(url).render_as_string()
        reason = f"PostgreSQL not reachable at {where}: {type(exc).__name__}"
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)


def reset(url: str) -> None:
    """Drop every warehouse schema, leaving an empty warehouse."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for schema in WAREHOUSE_SCHEMAS:
            conn.execute(sa.text(f"drop schema if exists {schema} cascade"))
    engine.dispose()


@contextmanager
def scratch_database(prefix: str, options: str = "") -> Iterator[str]:
    """A new database ``<prefix><random>`` on the test server (``create database`` with
    ``options``), dropped afterwards (with any session still connected to it); yields its
    URL."""
    server = server_url()
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"create database {name} {options}"))
    try:
        yield sa.make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"drop database if exists {name} with (force)"))
        admin.dispose()
