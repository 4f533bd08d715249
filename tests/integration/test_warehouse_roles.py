"""The warehouse's roles in practice, on a real PostgreSQL: after ``hei warehouse-roles`` the
whole pipeline (every task, without Airflow) runs as the loader, twice; the loader writes its
own schemas and nothing else, an engineer reads everything and writes nothing, an analyst
reads only mart."""

from __future__ import annotations

import argparse
import logging
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from hei import cli
from synth import generate
from tests.support import postgres, roles
from tests.support.cli import hei, user_env
from tests.support.pipeline import run_every_task, settings_for
from transforms.warehouse import ddl, logins, tables
from transforms.warehouse import engine as warehouse

pytestmark = pytest.mark.postgres
START, END = "2025-01", "2025-03"
LOADER_SCHEMAS = ("staging", "core", "quality", "indicators", "audit")
EVERY_SCHEMA = (*LOADER_SCHEMAS, "mart")


def administer(url: str, root: Path) -> subprocess.CompletedProcess:
    """``hei warehouse-roles`` on ``url``, as a user with an empty ``var/`` under ``root``."""
    return hei("warehouse-roles", "--warehouse", url, env=user_env(root))


@pytest.fixture(scope="module")
def admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database set up by ``hei warehouse-roles`` as the server's superuser."""
    server = sa.create_engine(postgres.server_url(), isolation_level="AUTOCOMMIT")
    name = f"hei_roles_{uuid.uuid4().hex[:10]}"
    with server.connect() as conn:
        conn.execute(sa.text(f"create database {name}"))
    url = sa.make_url(postgres.server_url()).set(database=name)
    url = url.render_as_string(hide_password=False)
    set_up = administer(url, tmp_path_factory.mktemp("admin"))
    assert set_up.returncode == 0, set_up.stderr
    yield url
    warehouse.make_engine(url).dispose()
    with server.connect() as conn:
        conn.execute(sa.text(f"drop database if exists {name} with (force)"))
    roles.drop_logins(url)
    server.dispose()


@pytest.fixture(scope="module")
def runs(admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every task of the pipeline as the loader on a few months of synthetic deliveries,
    twice: the row counts after each run, and what the second run logged."""
    root = tmp_path_factory.mktemp("roles")
    generate(root / "landing", START, END, scale=0.01, seed=3, faults=0.0)
    settings = settings_for(root, roles.loader_url(admin_url))
    counts = []
    for run in ("first", "second"):
        run_every_task(settings, run)
        counts.append(row_counts(admin_url))
    warehouse.make_engine(settings.warehouse_url).dispose()
    return {"root": root, "counts": counts}


def row_counts(url: str) -> dict[str, int]:
    with sa.create_engine(url, poolclass=sa.pool.NullPool).connect() as conn:
        return {
            table.fullname: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
            for table in tables.metadata.sorted_tables
            if table is not tables.audit_ddl_applied
        }


def relations(url: str, schemas: tuple[str, ...]) -> list[str]:
    with sa.create_engine(url, poolclass=sa.pool.NullPool).connect() as conn:
        found = conn.execute(
            sa.text(
                "select format('%I.%I', n.nspname, c.relname) from pg_class c join pg_namespace n "
                "on n.oid = c.relnamespace where c.relkind in ('r', 'p', 'v') "
                "and n.nspname in :schemas order by 1"
            ).bindparams(sa.bindparam("schemas", expanding=True)),
            {"schemas": list(schemas)},
        )
        return list(found.scalars())


def refused(url: str, statement: str) -> bool:
    """Whether PostgreSQL refuses ``statement`` to this login for want of a right."""
    login = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    with login.connect() as conn:  # autocommit: CREATE DATABASE runs in no transaction
        try:
            conn.execute(sa.text(statement))
        except sa.exc.ProgrammingError as error:
            return isinstance(error.orig, psycopg.errors.InsufficientPrivilege)
    return False


def test_the_whole_pipeline_runs_as_the_loader_and_a_rerun_changes_nothing(admin_url, runs):
    first, second = runs["counts"]
    assert first["staging.stg_gp_register"] > 0 and first["indicators.values"] > 0
    assert second == first
    assert (runs["root"] / "var" / "publish" / "latest.json").exists()
    assert (runs["root"] / "var" / "reports" / END / "assurance_report.pdf").exists()
    with sa.create_engine(admin_url, poolclass=sa.pool.NullPool).connect() as conn:
        owners = dict(
            conn.execute(
                sa.text(
                    "select n.nspname || '.' || c.relname, c.relowner::regrole::text "
                    "from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                    "where c.relkind in ('r', 'v') and n.nspname in :schemas"
                ).bindparams(sa.bindparam("schemas", expanding=True)),
                {"schemas": list(EVERY_SCHEMA)},
            ).all()
        )
    assert {t.fullname for t in tables.metadata.sorted_tables} <= owners.keys()
    assert {o for r, o in owners.items() if not r.startswith("mart.")} == {"hei_loader"}
    administrator = sa.make_url(admin_url).username
    assert {o for r, o in owners.items() if r.startswith("mart.")} == {administrator}


@pytest.mark.parametrize(
    "statement",
    [
        "create role hei_roles_intruder",
        "create database hei_roles_intruder",
        "create schema intruder",
        "create table public.intruder (n integer)",
        "create table mart.intruder (n integer)",
        "create view mart.intruder as select 1 as n",
        "create or replace view mart.indicator_values as select 1 as n",
        "drop view mart.indicator_values",
        "drop view mart.wres",
        "drop schema staging cascade",
        "create temporary table intruder (n integer)",
        "alter role current_user createrole",
    ],
)
def test_the_loader_does_no_ddl_outside_its_schemas(admin_url, runs, statement):
    assert refused(roles.loader_url(admin_url), statement)


def test_the_loader_is_no_administrator_but_does_ddl_in_its_schemas(admin_url, runs):
    loader = roles.loader_url(admin_url)
    with sa.create_engine(loader, poolclass=sa.pool.NullPool).begin() as conn:
        attributes = conn.execute(
            sa.text(
                "select rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
                "from pg_roles where rolname in (session_user, 'hei_loader')"
            )
        ).all()
        assert attributes and not any(any(row) for row in attributes)
        conn.execute(sa.text("create table staging.scratch (n integer)"))
        conn.execute(sa.text("analyze staging.stg_deaths"))
        conn.execute(sa.text("drop table staging.scratch"))


def test_an_engineer_reads_every_schema_and_changes_nothing(admin_url, runs):
    engineer = roles.login_url(admin_url, "engineer")
    every = relations(admin_url, EVERY_SCHEMA)
    assert len(every) > 20
    with sa.create_engine(engineer, poolclass=sa.pool.NullPool).connect() as conn:
        for relation in every:
            conn.execute(sa.text(f"select * from {relation} limit 1")).all()
    with sa.create_engine(engineer, poolclass=sa.pool.NullPool).connect() as conn:
        writable = conn.execute(
            sa.text(
                "select r from unnest(cast(:every as text[])) r where has_table_privilege(r, "
                "'insert, update, delete, truncate, references, trigger')"
            ),
            {"every": every},
        )
        assert writable.scalars().all() == []
    for table in relations(admin_url, LOADER_SCHEMAS):  # and trying, for the tables
        for change in (
            f"insert into {table} default values",
            f"update {table} set {first_column(admin_url, table)} = null",
            f"delete from {table}",
            f"truncate {table}",
        ):
            assert refused(engineer, change), change
    for schema in (*EVERY_SCHEMA, "public"):
        assert refused(engineer, f"create table {schema}.mine (n integer)"), schema
    assert refused(engineer, "create temporary table mine (n integer)")
    assert refused(engineer, "create schema mine")
    ddl.apply_ddl(sa.create_engine(engineer, poolclass=sa.pool.NullPool))  # as hei status does


def first_column(url: str, relation: str) -> str:
    with sa.create_engine(url, poolclass=sa.pool.NullPool).connect() as conn:
        return list(conn.execute(sa.text(f"select * from {relation} limit 0")).keys())[0]


def test_an_analyst_reads_only_mart_on_a_warehouse_the_loader_made(admin_url, runs):
    analyst = roles.login_url(admin_url, "analyst")
    with sa.create_engine(analyst, poolclass=sa.pool.NullPool).connect() as conn:
        assert conn.execute(sa.text("select count(*) from mart.indicator_values")).scalar() > 0
    for relation in relations(admin_url, LOADER_SCHEMAS):
        assert refused(analyst, f"select * from {relation} limit 0"), relation


def test_the_loader_adds_a_new_column_itself_and_warns_the_views_wait_for_the_administrator(
    admin_url, runs, caplog, tmp_path
):
    loader = sa.create_engine(roles.loader_url(admin_url), poolclass=sa.pool.NullPool)
    with sa.create_engine(admin_url, poolclass=sa.pool.NullPool).begin() as conn:
        conn.execute(sa.text("alter table quality.warnings drop column run_id"))
        conn.execute(
            sa.text(
                "update audit.ddl_applied set fingerprint = 'older release', "
                "tables_fingerprint = 'older release'"
            )
        )
    with caplog.at_level(logging.WARNING, logger=ddl.__name__):
        ddl.apply_ddl(loader)  # applies the tables part
        ddl.apply_ddl(loader)  # nothing left that the loader may apply
    with loader.connect() as conn:
        conn.execute(sa.select(tables.quality_warnings.c.run_id)).all()
        applied = conn.execute(sa.select(tables.audit_ddl_applied)).mappings().one()
    assert applied["fingerprint"] == "older release"
    assert applied["tables_fingerprint"] == ddl.tables_fingerprint(loader.dialect)
    assert "an administrator should run `hei warehouse-roles`" in caplog.text
    set_up = administer(admin_url, tmp_path)
    assert set_up.returncode == 0, set_up.stderr
    with loader.connect() as conn:
        applied = conn.execute(sa.select(tables.audit_ddl_applied)).mappings().one()
    assert applied["fingerprint"] == ddl.ddl_fingerprint(loader.dialect)


@pytest.mark.parametrize("kind", ["loader", "engineer"])
def test_grant_login_makes_a_login_in_its_kinds_role_only(admin_url, kind, capsys):
    name = f"{sa.make_url(admin_url).database}_cli_{kind}"
    other = "engineer" if kind == "loader" else "loader"
    try:
        assert cli.cmd_grant_login(grant(kind, name, admin_url)) == 0
        printed = capsys.readouterr()
        rights = cli.LOGIN_RIGHTS[kind]
        assert f"created login {name} in role hei_{kind} ({rights})" in printed.err
        password = printed.out.removeprefix("password: ").strip()
        login = sa.make_url(admin_url).set(username=name, password=password)
        with sa.create_engine(login, poolclass=sa.pool.NullPool).connect() as conn:
            member_of = conn.execute(
                sa.text(
                    "select array(select g.rolname from pg_auth_members m join pg_roles g "
                    "on g.oid = m.roleid where m.member = session_user::regrole)"
                )
            ).scalar()
        assert member_of == [f"hei_{kind}"]
        assert cli.cmd_grant_login(grant(other, name, admin_url)) == 2
        assert f"is not only a member of hei_{other}" in capsys.readouterr().err
    finally:
        with sa.create_engine(admin_url, poolclass=sa.pool.NullPool).begin() as conn:
            conn.execute(sa.text(f"drop role if exists {name}"))


def grant(kind: str, name: str, url: str) -> argparse.Namespace:
    return cli._parser().parse_args(["grant-login", kind, name, "--warehouse", url])


def test_setting_up_the_roles_is_refused_to_the_loader(admin_url, runs):
    with pytest.raises(logins.LoginError, match="set up by an administrator"):
        logins.set_up_roles(roles.loader_url(admin_url))


def test_a_database_owner_who_is_not_a_superuser_administers_the_roles():
    """As on a managed PostgreSQL (Azure, RDS), where no one is a superuser: the owner of the
    warehouse's database, with CREATEROLE, sets the roles up, and the loader writes."""
    server = sa.make_url(postgres.server_url())
    name = f"hei_roles_{uuid.uuid4().hex[:10]}"
    superuser = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with superuser.connect() as conn:
        conn.execute(sa.text(f"create role {name}_owner login createrole"))
        conn.execute(sa.text(f"create database {name} owner {name}_owner"))
    owner_url = server.set(database=name, username=f"{name}_owner")
    owner_url = owner_url.render_as_string(hide_password=False)
    try:
        logins.set_up_roles(owner_url)
        loader = sa.create_engine(roles.loader_url(owner_url), poolclass=sa.pool.NullPool)
        ddl.apply_ddl(loader)
        with loader.begin() as conn:
            conn.execute(
                sa.text(
                    "insert into audit.file_loads (load_id, source, file_name, sha256, status, "
                    "rows_read, rows_loaded, rows_quarantined, started_at, finished_at) values "
                    "('L1', 'deaths', 'deaths_2025-01.csv', 'x', 'loaded', 1, 1, 0, now(), now())"
                )
            )
            conn.execute(sa.text("analyze core.dim_ethnicity"))
            assert conn.execute(sa.text("select count(*) from mart.indicator_values")).scalar() == 0
        assert refused(roles.loader_url(owner_url), "drop view mart.wres")
        inside = sa.create_engine(server.set(database=name), poolclass=sa.pool.NullPool)
        with inside.connect() as conn:
            owners = conn.execute(
                sa.text(
                    "select distinct c.relname = 'wres', c.relowner::regrole::text from pg_class c "
                    "where c.oid in ('mart.wres'::regclass, 'audit.file_loads'::regclass)"
                )
            ).all()
        assert sorted(owners) == [(False, "hei_loader"), (True, f"{name}_owner")]
    finally:
        with superuser.connect() as conn:
            conn.execute(sa.text(f"drop database if exists {name} with (force)"))
            roles.drop_logins(server.set(database=name).render_as_string(hide_password=False))
            conn.execute(sa.text(f"drop role if exists {name}_owner"))
        superuser.dispose()


def test_the_loader_on_a_warehouse_no_administrator_set_up_is_told_to_run_warehouse_roles():
    server = sa.make_url(postgres.server_url())
    name = f"hei_roles_{uuid.uuid4().hex[:10]}"
    superuser = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with superuser.connect() as conn:
        conn.execute(sa.text(f"create database {name}"))
        conn.execute(sa.text(f"create role {name}_loader login in role hei_loader"))
    loader = server.set(database=name, username=f"{name}_loader")
    try:
        with pytest.raises(ddl.NotSetUp, match="must run `hei warehouse-roles`"):
            ddl.apply_ddl(sa.create_engine(loader, poolclass=sa.pool.NullPool))
    finally:
        with superuser.connect() as conn:
            conn.execute(sa.text(f"drop database if exists {name} with (force)"))
            conn.execute(sa.text(f"drop role if exists {name}_loader"))
        superuser.dispose()
