"""Several processes on one warehouse, as under a scheduler running DAGs in parallel or two
``hei run`` at once: a delivery is loaded once, DDL never deadlocks with a load, a compute
that waited for another's turn does not fail, and a conflict PostgreSQL does report is
retried. Ingest runs on DuckDB and PostgreSQL; the rest is about PostgreSQL's concurrency."""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from transforms import tasks as pipeline
from transforms.config.settings import Settings
from transforms.indicators import store as indicator_store
from transforms.ingest import load as ingest
from transforms.ingest.audit import Planned
from transforms.ingest.landing import Delivery
from transforms.quality import validation
from transforms.warehouse import ddl
from transforms.warehouse import engine as warehouse

POSTGRES_ONLY = pytest.mark.parametrize(
    "warehouse_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
HEADER = (
    "appointment_id,nhs_number,practice_code,appointment_date,appointment_status,"
    "appointment_mode,hcp_type,ethnic_category"
)


def deliver(landing: Path, months: list[int], rows: int) -> None:
    for month in months:
        path = landing / "gp_appointments" / f"gp_appointments_2025-{month:02d}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = (
            f"A{month}-{i},9434765919,P92001,2025-{month:02d}-15,Attended,Video,GP,A"
            for i in range(rows)
        )
        path.write_text("\n".join([HEADER, *lines]) + "\n")


def query(url: str, sql: str) -> list[tuple]:
    with warehouse.make_engine(url).connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def in_thread(outcome: dict, name: str, work: Callable[[], object]) -> threading.Thread:
    """Run ``work`` in a thread, keeping its result or its exception under ``name``."""

    def run() -> None:
        try:
            outcome[name] = work()
        except Exception as error:  # the test reports it
            outcome[name] = error

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def wait_until_someone_waits_for_a_lock(url: str) -> None:
    waiting = (
        "select count(*) from pg_locks where not granted and database = "
        "(select oid from pg_database where datname = current_database())"
    )
    deadline = time.monotonic() + 30
    while query(url, waiting) == [(0,)]:
        assert time.monotonic() < deadline, "nobody waited for a lock"
        time.sleep(0.05)


@pytest.fixture
def fresh_postgres(postgres_url: str) -> Iterator[str]:
    """An empty PostgreSQL database of its own (no schema yet)."""
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    name = f"hei_fresh_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"create database {name}"))
    url = sa.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    yield url
    warehouse.make_engine(url).dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f"drop database if exists {name} with (force)"))
    admin.dispose()


def test_a_delivery_another_process_loaded_since_it_was_planned_is_not_loaded_again(settings):
    deliver(settings.landing_dir, [1], rows=5)
    pipeline.prepare_warehouse(settings)
    [group] = pipeline.find_deliveries(settings, "gp_appointments", None)
    planned = Planned(Delivery(**group["deliveries"][0]), "load")  # by both processes
    ctx = ingest.LoadContext(
        warehouse.make_engine(settings.warehouse_url),
        settings.pseudonym_secret,
        "run",
        validation.gx_context(settings.var_dir),
    )
    first = ingest.ingest(planned, ctx)  # one process loads it...
    second = ingest.ingest(planned, ctx)  # ...then the other has its turn, with its old plan
    assert first.status == "loaded" and second is None
    assert query(settings.warehouse_url, "select status, rows_loaded from audit.file_loads") == [
        ("loaded", 5)
    ]


def run_the_pipeline(url: str, landing: Path, var: Path) -> list[str]:
    """One run: the DAGs' steps as their tasks call them; returns the files it loaded."""
    settings = Settings(
        warehouse_url=url,
        landing_dir=landing,
        var_dir=var,
        pseudonym_key="test-key-not-secret",
        settle_seconds=0,  # the files were written moments ago
    )
    pipeline.prepare_warehouse(settings)
    loaded = []
    for group in pipeline.find_deliveries(settings, "gp_appointments", None):
        loaded += [r["file_name"] for r in pipeline.load_month(settings, group, str(var))]
    pipeline.link_ethnicity(settings)
    pipeline.compute_indicators(settings, str(var))
    return loaded


@pytest.mark.postgres
def test_two_runs_at_once_on_a_new_warehouse_load_each_file_once_and_neither_fails(
    fresh_postgres, tmp_path
):
    """Two runs, each with its own var/ (as on two machines), on the same deliveries."""
    landing = tmp_path / "landing"
    deliver(landing, [1, 2, 3, 4], rows=10_000)
    for var in ("var-a", "var-b"):  # opening a GX context is not thread-safe; using one is
        validation.gx_context(tmp_path / var)
    outcome: dict = {}
    runs = [
        in_thread(
            outcome, var, lambda v=var: run_the_pipeline(fresh_postgres, landing, tmp_path / v)
        )
        for var in ("var-a", "var-b")
    ]
    for run in runs:
        run.join(timeout=300)
    assert all(isinstance(loaded, list) for loaded in outcome.values()), outcome
    assert sorted(outcome["var-a"] + outcome["var-b"]) == [
        f"gp_appointments_2025-0{m}.csv" for m in (1, 2, 3, 4)
    ]
    assert query(
        fresh_postgres, "select file_name, status from audit.file_loads order by file_name"
    ) == [(f"gp_appointments_2025-0{m}.csv", "loaded") for m in (1, 2, 3, 4)]


@pytest.mark.postgres
def test_an_existing_warehouse_gets_the_brin_indexes_loads_summarise(fresh_postgres):
    """Earlier versions indexed period with a B-tree, then with an autosummarized BRIN index
    (autovacuum's queue dropped most of its requests; loads now summarise their ranges)."""
    engine = sa.create_engine(fresh_postgres)
    ddl.apply_ddl(engine)
    with engine.begin() as conn:  # as earlier versions left them
        conn.execute(sa.text("drop index staging.stg_deaths_period_brin"))
        conn.execute(sa.text("create index stg_deaths_period on staging.stg_deaths (period)"))
        conn.execute(
            sa.text("alter index staging.stg_ae_attendances_period_brin set (autosummarize = on)")
        )
    ddl.apply_ddl(engine, force=True)
    found = query(
        fresh_postgres,
        "select indexname, indexdef from pg_indexes where tablename in "
        "('stg_deaths', 'stg_ae_attendances') and indexdef like '%(period)%' order by 1",
    )
    assert found == [
        (
            f"stg_{name}_period_brin",
            f"CREATE INDEX stg_{name}_period_brin ON staging.stg_{name} USING brin (period)",
        )
        for name in ("ae_attendances", "deaths")
    ]
    engine.dispose()


@pytest.mark.postgres
def test_ddl_applied_by_several_processes_at_once_on_a_new_warehouse_succeeds(fresh_postgres):
    outcome: dict = {}
    threads = [
        in_thread(outcome, str(n), lambda: ddl.apply_ddl(sa.create_engine(fresh_postgres)))
        for n in range(4)
    ]
    for thread in threads:
        thread.join(timeout=120)
    assert outcome == {str(n): None for n in range(4)}
    assert query(fresh_postgres, "select count(*) from audit.ddl_applied") == [(1,)]


@POSTGRES_ONLY
def test_ddl_applied_during_a_load_waits_for_it_and_neither_fails(settings, monkeypatch, tmp_path):
    """A new release's DDL meets a load under way (it deadlocked: the DDL held the quarantine
    table while waiting for the staging table the load was writing, and the load then needed
    the quarantine table)."""
    url = settings.warehouse_url
    deliver(settings.landing_dir, [1], rows=1_000)
    pipeline.prepare_warehouse(settings)
    [group] = pipeline.find_deliveries(settings, "gp_appointments", None)
    written, resume = threading.Event(), threading.Event()
    refresh_statistics = ingest.refresh_statistics

    def pause_once_the_rows_are_written(conn: sa.Connection, table: str) -> None:
        written.set()  # the duplicate checks, which write the quarantine table, come next
        resume.wait(timeout=60)
        refresh_statistics(conn, table)

    monkeypatch.setattr(ingest, "refresh_statistics", pause_once_the_rows_are_written)
    outcome: dict = {}
    load = in_thread(outcome, "load", lambda: pipeline.load_month(settings, group, "run"))
    assert written.wait(timeout=60)
    release = tmp_path / "sql"  # the new release: one more table
    shutil.copytree(ddl.SQL_DIR, release)
    (release / "999_test_release.sql").write_text("create table audit.test_release (n integer);\n")
    monkeypatch.setattr(ddl, "SQL_DIR", release)
    applying = in_thread(outcome, "ddl", lambda: ddl.apply_ddl(warehouse.make_engine(url)))
    wait_until_someone_waits_for_a_lock(url)
    resume.set()
    load.join(timeout=120)
    applying.join(timeout=120)
    assert outcome["ddl"] is None, outcome["ddl"]
    assert [r["status"] for r in outcome["load"]] == ["loaded"], outcome["load"]
    assert query(url, "select count(*) from audit.test_release") == [(0,)]


@POSTGRES_ONLY
def test_a_compute_that_waited_for_another_does_not_fail_on_what_that_one_wrote(settings):
    url = settings.warehouse_url
    pipeline.prepare_warehouse(settings)
    pipeline.compute_indicators(settings, "earlier")  # the catalogue rows exist
    other = warehouse.make_engine(url).connect()  # another compute, under way
    other.execute(sa.text("select pg_advisory_lock(hashtext('hei:indicators'))"))
    other.commit()
    outcome: dict = {}
    waiting = in_thread(outcome, "compute", lambda: pipeline.compute_indicators(settings, "this"))
    wait_until_someone_waits_for_a_lock(url)
    with warehouse.make_engine(url).begin() as conn:  # what the other compute writes
        conn.execute(sa.text("update indicators.catalogue set updated_at = current_timestamp"))
    other.execute(sa.text("select pg_advisory_unlock(hashtext('hei:indicators'))"))
    other.commit()
    other.close()
    waiting.join(timeout=120)
    assert isinstance(outcome["compute"], dict), outcome["compute"]


@POSTGRES_ONLY
def test_a_compute_aborted_by_a_serialization_failure_is_run_again(settings, monkeypatch):
    url = settings.warehouse_url
    pipeline.prepare_warehouse(settings)
    pipeline.compute_indicators(settings, "earlier")
    compute = indicator_store.compute
    attempts: list[str] = []

    def conflicting_once(conn: sa.Connection, run_id: str | None, **kwargs: bool) -> dict:
        attempts.append(run_id or "")
        if len(attempts) == 1:  # a real one: a row changed by another since our snapshot
            conn.execute(sa.text("select count(*) from indicators.catalogue"))
            with warehouse.make_engine(url).begin() as other:
                other.execute(sa.text("update indicators.catalogue set updated_at = now()"))
            conn.execute(sa.text("update indicators.catalogue set updated_at = now()"))
        return compute(conn, run_id, **kwargs)

    monkeypatch.setattr(indicator_store, "compute", conflicting_once)
    assert isinstance(pipeline.compute_indicators(settings, "this"), dict)
    assert attempts == ["this", "this"]
