"""The ``check_deliveries`` DAG, run by ``dag.test()`` on given days: it alerts the webhook
on the first day a month is late, and the run's own day is its clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from airflow.dag_processing.dagbag import DagBag

from hei.airflow_env import DAGS_FOLDER
from tests.support.audit_rows import record_load
from transforms.warehouse import ddl
from transforms.warehouse.engine import make_engine


@pytest.fixture
def late_deaths(tmp_path, monkeypatch) -> str:
    """A DuckDB warehouse where deaths loaded September 2025 and October's file was rejected."""
    monkeypatch.chdir(tmp_path)
    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    ddl.apply_ddl(make_engine(url))
    record_load(url, "deaths", "2025-09", "loaded")
    record_load(url, "deaths", "2025-10", "rejected")
    make_engine(url).dispose()  # the task opens the file itself
    return url


def run_on(day: int, conf: dict) -> str:
    dag = DagBag(str(DAGS_FOLDER)).dags["check_deliveries"]
    run_after = datetime(2025, 11, day, 6, tzinfo=UTC)
    return str(dag.test(run_after=run_after, logical_date=run_after, run_conf=conf).state)


def test_the_daily_check_alerts_the_webhook_once_a_month_is_late(
    airflow_db, late_deaths, webhook, tmp_path, monkeypatch
):
    url, received = webhook
    monkeypatch.setenv("HEI_ALERT_WEBHOOK_URL", url)  # a secret: from the deployment, not a run
    settings = {"warehouse_url": late_deaths, "var_dir": str(tmp_path)}
    assert run_on(16, {"settings": settings}) == "success"
    assert run_on(17, {"settings": settings}) == "success"  # alerted yesterday: not again
    assert received == [
        {
            "title": "health-equity-indicators: 1 late delivery on 2025-11-16",
            "text": "deaths 2025-10: 1 day late (due 2025-11-15); its delivery was rejected\n"
            "(reminded every 7 days until loaded; hei status)",
        }
    ]
