"""The pipeline as a deployment runs it: Airflow's scheduler, DAG processor and API server as
separate processes, PostgreSQL for Airflow's metadata and for the warehouse, LocalExecutor.

Deliveries of the last complete month are in the landing zone before Airflow starts, as on a
fresh deployment's first day. Nobody unpauses or triggers anything: the DAGs start unpaused,
the scheduler makes each (daily) ingest DAG's latest run, which loads up to the last
complete month, and the Assets drive the rest of the chain. The test only watches, through
the REST API.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from hei.runner import PIPELINE_ORDER
from tests.support.deliveries import fetch
from tests.support.scheduled_chain import DAILY, MONTH
from transforms.config.sources import SOURCES

pytestmark = [pytest.mark.scheduler, pytest.mark.postgres]


def test_a_fresh_deployment_has_every_dag_unpaused(local_chain):
    paused = {d["dag_id"]: d["is_paused"] for d in local_chain.dags}
    assert paused == dict.fromkeys((*PIPELINE_ORDER, *DAILY), False)


def test_the_scheduler_runs_every_dag_of_the_chain_to_success(local_chain):
    outcomes = {(r["dag_id"], r["run_type"], r["state"]) for r in local_chain.runs}
    ingest = {(f"ingest_{name}", "scheduled", "success") for name in SOURCES}
    downstream = {(d, "asset_triggered", "success") for d in PIPELINE_ORDER[len(SOURCES) :]}
    daily = {(d, "scheduled", "success") for d in DAILY}
    assert outcomes == ingest | downstream | daily


def test_every_task_succeeds_at_its_first_try(local_chain):
    """Parallel tasks share the machine's Great Expectations store: none may trip another."""
    outcomes = {(t["state"], t["try_number"]) for t in local_chain.task_instances}
    assert outcomes <= {("success", 1), ("skipped", 1)}


def test_each_daily_ingest_run_loads_the_month_complete_when_its_interval_ends(local_chain):
    ends = {
        r["dag_id"]: date.fromisoformat(r["data_interval_end"][:10])
        for r in local_chain.runs
        if r["run_type"] == "scheduled" and r["dag_id"] not in DAILY
    }
    assert set(ends) == {f"ingest_{name}" for name in SOURCES}
    loaded = {(end.replace(day=1) - timedelta(days=1)).strftime("%Y-%m") for end in ends.values()}
    assert loaded == {MONTH}


def test_the_last_report_is_built_from_the_last_release(local_chain):
    [last] = [r["dag_run_id"] for r in local_chain.runs if r["dag_id"] == "assurance_report"][-1:]
    [build] = [t for t in local_chain.task_instances if t["dag_run_id"] == last]
    assert build["state"] == "success"
    latest = json.loads((local_chain.root / "publish" / "latest.json").read_text())
    assert latest["release"] == MONTH
    release = local_chain.root / "publish" / latest["path"]
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["covers"]["last_month"] == MONTH
    assert all((release / f["path"]).is_file() for f in manifest["files"])
    report = local_chain.root / "reports" / MONTH
    assert (report / "assurance_report.html").stat().st_size > 0
    assert (report / "assurance_report.pdf").read_bytes().startswith(b"%PDF")


def test_the_warehouse_holds_every_delivery_and_the_indicators(local_chain):
    url, truth = local_chain.warehouse_url, local_chain.truth
    files = {Path(k).name: v for k, v in truth["files"].items() if v["source"] in SOURCES}
    audit = fetch(url, "select file_name, status, rows_loaded from audit.file_loads")
    expected = [(name, "loaded", t["expected_rows_loaded"]) for name, t in files.items()]
    assert sorted(audit) == sorted(expected)
    for source in SOURCES:
        [(rows,)] = fetch(url, f"select count(*) from staging.stg_{source}")
        delivered = [t["expected_rows_loaded"] for t in files.values() if t["source"] == source]
        assert rows == sum(delivered)
    [(values,)] = fetch(url, "select count(*) from indicators.values")
    assert values > 0
