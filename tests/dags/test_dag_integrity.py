"""Policy tests over every DAG, in the style of Airflow's own example-DAG tests."""

from __future__ import annotations

import os
import subprocess
import sys
from unittest import mock

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.timetables.interval import CronDataIntervalTimetable
from airflow.timetables.trigger import CronTriggerTimetable

from hei.airflow_env import DAGS_FOLDER
from transforms.config.sources import SOURCES

INGEST_DAG_IDS = {f"ingest_{name}" for name in SOURCES}
EXPECTED_DAG_IDS = INGEST_DAG_IDS | {
    "assess_ethnicity",
    "compute_indicators",
    "publish_partnership",
    "assurance_report",
    "check_deliveries",
}
WAREHOUSE_TASKS = {"prepare_warehouse", "find_deliveries", "load_month"}


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(str(DAGS_FOLDER))


def test_every_dag_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}


def test_exactly_the_expected_dags_exist(dagbag):
    assert set(dagbag.dag_ids) == EXPECTED_DAG_IDS


def test_parsing_touches_no_connection_variable_or_warehouse():
    with (
        mock.patch(
            "airflow.sdk.BaseHook.get_connection", side_effect=AssertionError("connection")
        ) as conn,
        mock.patch("airflow.sdk.Variable.get", side_effect=AssertionError("variable")) as variable,
        mock.patch("sqlalchemy.create_engine", side_effect=AssertionError("engine")) as engine,
    ):
        bag = DagBag(str(DAGS_FOLDER))
    assert bag.import_errors == {}
    assert (conn.call_count, variable.call_count, engine.call_count) == (0, 0, 0)


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS_FOLDER.glob("*.py")))
def test_parsing_imports_no_heavy_libraries(dag_file):
    probe = (
        "import runpy, sys; runpy.run_path(sys.argv[1]);"
        "heavy = ('pandas', 'pyarrow', 'duckdb', 'psycopg', 'great_expectations', 'numpy');"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(DAGS_FOLDER / dag_file)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip().splitlines()[-1:] in ([], [""])


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAG_IDS))
def test_dag_policy(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.tags
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert dag.is_paused_upon_creation is False  # a paused link would stop the chain
    for task in dag.tasks:
        assert task.owner == "hei-data-engineering"
        assert task.retries >= 2
        assert task.on_failure_callback


def test_retries_wait_five_minutes_unless_airflow_is_configured_otherwise(dagbag):
    probe = (
        "import sys; from airflow.dag_processing.dagbag import DagBag;"
        "bag = DagBag(sys.argv[1]);"
        "print({t.retry_delay.total_seconds() for d in bag.dags.values() for t in d.tasks})"
    )
    shortened = subprocess.run(
        [sys.executable, "-c", probe, str(DAGS_FOLDER)],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "7"},
    )
    by_default = {t.retry_delay.total_seconds() for d in dagbag.dags.values() for t in d.tasks}
    assert (by_default, shortened.stdout.strip().splitlines()[-1]) == ({300.0}, "{7.0}")


@pytest.mark.parametrize("dag_id", sorted(INGEST_DAG_IDS))
def test_ingest_dags_run_daily_on_a_data_interval_timetable(dagbag, dag_id):
    """Daily, so a month delivered by its due day is loaded before the next delivery check."""
    timetable = dagbag.dags[dag_id].timetable
    assert isinstance(timetable, CronDataIntervalTimetable)
    assert timetable.summary == "0 5 * * *"


def test_assess_runs_when_any_staging_table_changes(dagbag):
    dag = dagbag.dags["assess_ethnicity"]
    condition = dag.timetable.asset_condition
    assert type(condition).__name__ == "AssetAny"
    watched = {asset.uri for asset in condition.objects}
    assert watched == {f"warehouse://staging/stg_{name}" for name in SOURCES}


def test_indicators_follow_the_ethnicity_linkage_and_announce_their_values(dagbag):
    dag = dagbag.dags["compute_indicators"]
    assert dag.timetable.asset_condition.uri == "warehouse://core/person_ethnicity"
    assess = dagbag.dags["assess_ethnicity"].tasks[0]
    assert "warehouse://core/person_ethnicity" in {o.uri for o in assess.outlets}
    (compute,) = dag.tasks
    assert compute.pool == "warehouse"
    assert [o.uri for o in compute.outlets] == ["warehouse://indicators/values"]


def test_publication_follows_the_indicator_values_and_announces_the_release(dagbag):
    dag = dagbag.dags["publish_partnership"]
    assert dag.timetable.asset_condition.uri == "warehouse://indicators/values"
    (publish,) = dag.tasks
    assert publish.pool == "warehouse"  # it reads the warehouse: one DuckDB user at a time
    assert [o.uri for o in publish.outlets] == ["publish://partnership/release"]


def test_the_report_follows_the_release(dagbag):
    dag = dagbag.dags["assurance_report"]
    assert dag.timetable.asset_condition.uri == "publish://partnership/release"
    (build,) = dag.tasks
    assert [o.uri for o in build.outlets] == ["report://partnership/assurance"]


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_ingest_dag_wiring_pool_and_asset(dagbag, source):
    dag = dagbag.dags[f"ingest_{source}"]
    tasks = {t.task_id: t for t in dag.tasks}
    assert tasks["prepare_warehouse"].downstream_task_ids == {"find_deliveries"}
    assert tasks["find_deliveries"].downstream_task_ids == {"load_month"}
    assert tasks["load_month"].downstream_task_ids == {
        "announce",
        "check_quality",
        "render_data_docs",
    }
    assert {t for t in tasks if tasks[t].pool == "warehouse"} == WAREHOUSE_TASKS
    assert [o.uri for o in tasks["announce"].outlets] == [f"warehouse://staging/stg_{source}"]


def test_the_delivery_check_runs_each_morning_in_the_warehouse_pool(dagbag):
    """Daily at 06:00 UTC, after the night's loads; it writes audit.delivery_alerts, so on
    DuckDB it must take its turn with the other writers."""
    dag = dagbag.dags["check_deliveries"]
    assert isinstance(dag.timetable, CronTriggerTimetable)
    assert dag.timetable.summary == "0 6 * * *"
    (check,) = dag.tasks
    assert check.pool == "warehouse" and not check.outlets
