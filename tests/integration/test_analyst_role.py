"""Partner analysts on PostgreSQL: ``hei grant-analyst`` makes a login in ``hei_analyst``, and
that login reads the ``mart`` views (which run with their owner's rights) and nothing else."""

from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa

from transforms.warehouse import ddl, logins
from transforms.warehouse import engine as warehouse

ON_POSTGRES = pytest.mark.parametrize(
    "warehouse_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
PRIVATE_SCHEMAS = ("staging", "core", "quality", "indicators", "audit")


def hei(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hei.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def scram_matches(verifier: str, password: str) -> bool:
    """Whether a stored SCRAM-SHA-256 verifier is that of ``password`` (RFC 5802, 7677)."""
    _, iterations_salt, keys = verifier.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key = keys.split(":")[0]
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored_key


@pytest.fixture(scope="module")
def analyst(postgres_url: str) -> Iterator[tuple[str, str]]:
    """A login made by ``hei grant-analyst`` (name, password); dropped afterwards. Roles
    belong to the server, so it outlives the tests' resets of the warehouse's schemas."""
    name = f"analyst_{uuid.uuid4().hex[:8]}"
    made = hei("grant-analyst", name, "--warehouse", postgres_url)
    assert made.returncode == 0, made.stderr
    assert f"created login {name} in role hei_analyst" in made.stderr
    yield name, made.stdout.removeprefix("password: ").strip()
    with warehouse.make_engine(postgres_url).begin() as conn:
        conn.execute(sa.text(f"drop role if exists {name}"))


def connect_as(url: str, name: str, password: str) -> sa.Connection:
    as_analyst = sa.make_url(url).set(username=name, password=password)
    return sa.create_engine(as_analyst, poolclass=sa.pool.NullPool).connect()


@ON_POSTGRES
def test_grant_analyst_makes_a_login_whose_password_is_the_one_printed(warehouse_url, analyst):
    name, password = analyst
    with warehouse.make_engine(warehouse_url).connect() as conn:
        login, verifier, member_of = conn.execute(
            sa.text(
                "select rolcanlogin, rolpassword, array(select g.rolname from pg_auth_members m "
                "join pg_roles g on g.oid = m.roleid where m.member = a.oid) "
                "from pg_authid a where rolname = :name"
            ),
            {"name": name},
        ).one()
    assert login and member_of == ["hei_analyst"]
    assert verifier.startswith("SCRAM-SHA-256$") and scram_matches(verifier, password)
    again = hei(
        "grant-analyst",
        name,
        "--warehouse",
        warehouse_url,
        "--password-stdin",
        stdin="a-new-password-of-some-length\n",
    )
    assert again.returncode == 0 and again.stdout == ""  # a typed password is not echoed
    assert f"updated login {name}" in again.stderr
    with warehouse.make_engine(warehouse_url).connect() as conn:
        verifier = conn.execute(
            sa.text("select rolpassword from pg_authid where rolname = :name"), {"name": name}
        ).scalar_one()
    assert scram_matches(verifier, "a-new-password-of-some-length")
    logins.grant_login(warehouse_url, "analyst", name, password)  # as the other tests know it


@ON_POSTGRES
def test_an_analyst_reads_the_mart_views_and_nothing_else(warehouse_url, analyst):
    owner = warehouse.make_engine(warehouse_url)
    ddl.apply_ddl(owner)
    with owner.begin() as conn:  # a view made after the grants, over a table analysts never see
        conn.execute(sa.text("create view mart.test_loads as select load_id from audit.file_loads"))
        conn.execute(
            sa.text(
                "insert into audit.file_loads (load_id, source, file_name, sha256, status, "
                "rows_read, rows_loaded, rows_quarantined, started_at, finished_at) values "
                "('L1', 'deaths', 'deaths_2025-01.csv', 'x', 'loaded', 1, 1, 0, now(), now())"
            )
        )
        tables = conn.execute(
            sa.text(
                "select format('%I.%I', table_schema, table_name) from information_schema.tables "
                "where table_schema in :schemas"
            ).bindparams(sa.bindparam("schemas", expanding=True)),
            {"schemas": list(PRIVATE_SCHEMAS)},
        ).scalars()
        tables = sorted(tables)
    assert len(tables) > 15
    with connect_as(warehouse_url, *analyst) as conn:
        assert conn.execute(sa.text("select count(*) from mart.indicator_values")).scalar() == 0
        assert conn.execute(sa.text("select load_id from mart.test_loads")).scalars().all() == [
            "L1"  # through the view, with its owner's rights
        ]
        conn.rollback()
        for table in tables:
            with pytest.raises(sa.exc.ProgrammingError) as denied:
                conn.execute(sa.text(f"select * from {table} limit 0"))
            assert isinstance(denied.value.orig, psycopg.errors.InsufficientPrivilege), table
            conn.rollback()
        for create in (
            "create table mart.mine (n integer)",
            "create table public.mine (n integer)",
            "create table staging.mine (n integer)",
            "create temporary table mine (n integer)",
            "create schema mine",
            "create view mart.mine as select 1 as n",
        ):
            with pytest.raises(sa.exc.ProgrammingError) as denied:
                conn.execute(sa.text(create))
            assert isinstance(denied.value.orig, psycopg.errors.InsufficientPrivilege), create
            conn.rollback()


@ON_POSTGRES
def test_mart_views_run_with_their_owners_rights(warehouse_url):
    ddl.apply_ddl(warehouse.make_engine(warehouse_url))
    with warehouse.make_engine(warehouse_url).connect() as conn:
        views = conn.execute(
            sa.text(
                "select c.relname, c.reloptions from pg_class c join pg_namespace n "
                "on n.oid = c.relnamespace where n.nspname = 'mart' and c.relkind = 'v'"
            )
        ).all()
    assert views
    for name, options in views:
        assert not any(
            o.startswith("security_invoker=") and not o.endswith(("false", "off", "0"))
            for o in options or []
        ), name


def test_grant_analyst_refuses_duckdb(tmp_path):
    with pytest.raises(logins.LoginError, match="DuckDB has no roles or logins"):
        logins.grant_login(f"duckdb:///{tmp_path / 'w.duckdb'}", "analyst", "alice", "x" * 20)
    assert not (tmp_path / "w.duckdb").exists()


@ON_POSTGRES
@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("Robert'; drop table x; --", "cannot be a login name"),
        ("pg_monitor", "cannot be a login name"),
        ("hei_analyst", "cannot be a login name"),
        ("hei_loader", "cannot be a login name"),
        ("postgres", "is not only a member of hei_analyst"),  # the server's superuser
    ],
)
def test_grant_analyst_refuses_names_that_are_not_new_or_analysts(warehouse_url, name, why):
    with pytest.raises(logins.LoginError, match=why):
        logins.grant_login(warehouse_url, "analyst", name, "a-password-long-enough")
