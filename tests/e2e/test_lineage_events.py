"""OpenLineage events of a whole pipeline run through ``dag.test()``, read back from the
default file transport (``var/lineage/openlineage.jsonl``): every task's start and end, the
datasets each task read and wrote, a release file traced back to the landing files, and no
secret or NHS number in any event. (A warehouse password given to ``hei run`` is checked in
``test_pipeline.py``.)
"""

from __future__ import annotations

import os

import pytest
from airflow.dag_processing.dagbag import DagBag

from hei.airflow_env import DAGS_FOLDER, LINEAGE_EVENTS
from synth import generate
from tests.support.cli import user_env
from tests.support.lineage import (
    datasets,
    read_events,
    run_dags_with_conf,
    task_job,
    trace_back,
)
from transforms.core.identifiers import holds_nhs_number

pytestmark = pytest.mark.e2e
START, END = "2025-02", "2025-03"
CANARY_KEY = "canary-pseudonym-key-5f0c2e9a"
CANARY_WEBHOOK = "http://127.0.0.1:9/hooks/canary-webhook-token"
REFUSED = "deaths_9990001707.csv"  # a file name holding an NHS number: refused, never read


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("lineage")
    landing = root / "landing"
    generate(landing, START, END, scale=0.02, seed=11, faults=0.0)
    (landing / "deaths" / REFUSED).write_text("person_id,date_of_death\n")
    url = f"duckdb:///{root / 'warehouse.duckdb'}"
    settings = {"landing_dir": str(landing), "warehouse_url": url, "settle_seconds": 0}
    env = {k: v for k, v in user_env(root).items() if not k.startswith("OPENLINEAGE")} | {
        "HEI_PSEUDONYM_KEY": CANARY_KEY,  # secrets come from the deployment's environment
        "HEI_ALERT_WEBHOOK_URL": CANARY_WEBHOOK,
    }
    states = run_dags_with_conf(root, {"settings": settings, "until": END}, env)
    events_file = root / "var" / LINEAGE_EVENTS
    warehouse = f"duckdb://{os.path.abspath(root / 'warehouse.duckdb')}"
    return {
        "root": root,
        "landing": landing,
        "url": url,
        "warehouse": warehouse,
        "states": states,
        "text": events_file.read_text(),
        "events": read_events(events_file),
    }


def of_task(run: dict, job: str) -> list[dict]:
    return [e for e in run["events"] if task_job(e) == job]


def read_and_written(events: list[dict]) -> tuple[set, set]:
    read = set().union(*(datasets(e, "inputs") for e in events))
    return read, set().union(*(datasets(e, "outputs") for e in events))


def release_file(run: dict, name: str) -> tuple[str, str]:
    return ("file", str(run["root"] / "var" / "publish" / "releases" / f"release={END}" / name))


def test_every_task_of_every_dag_has_a_start_and_an_end_event(run) -> None:
    assert set(run["states"].values()) == {"success"}, run["states"]
    bag = DagBag(str(DAGS_FOLDER))
    for dag_id in run["states"]:
        for task_id in bag.dags[dag_id].task_ids:
            kinds = {e["eventType"] for e in of_task(run, f"{dag_id}.{task_id}")}
            assert {"START", "COMPLETE"} <= kinds, (dag_id, task_id, kinds)


def test_a_load_reads_its_landing_file_and_writes_its_staging_table(run) -> None:
    [delivered] = (run["landing"] / "deaths").glob(f"deaths_{START}.*")
    loads = of_task(run, "ingest_deaths.load_month")
    month = [e for e in loads if ("file", str(delivered)) in datasets(e, "inputs")]
    assert month, "no load_month event names the delivery"
    written = set().union(*(datasets(e, "outputs") for e in month))
    assert (run["warehouse"], "staging.stg_deaths") in written
    assert (run["warehouse"], "audit.file_loads") in written


def test_the_compute_reads_staging_and_core_and_writes_indicator_values(run) -> None:
    read, written = read_and_written(of_task(run, "compute_indicators.compute"))
    warehouse = run["warehouse"]
    assert {(warehouse, "staging.stg_gp_register"), (warehouse, "core.person_ethnicity")} <= read
    assert (warehouse, "indicators.values") in written


def test_the_publish_reads_the_partners_rows_and_writes_the_release_files(run) -> None:
    read, written = read_and_written(of_task(run, "publish_partnership.publish"))
    assert (run["warehouse"], "indicators.published") in read
    assert release_file(run, "indicator_values.parquet") in written
    assert release_file(run, "manifest.json") in written


def test_the_report_is_made_from_the_release_files(run) -> None:
    read, written = read_and_written(of_task(run, "assurance_report.build_report"))
    assert release_file(run, "indicator_values.parquet") in read
    report = run["root"] / "var" / "reports" / END / "assurance_report.pdf"
    assert ("file", str(report)) in written


def test_a_published_value_traces_back_to_every_landing_file_loaded(run) -> None:
    reached = trace_back(run["events"], release_file(run, "indicator_values.parquet"))
    landing = {("file", str(p)) for p in run["landing"].rglob("*_20*") if p.name != REFUSED}
    assert landing
    assert landing <= reached
    through = {(run["warehouse"], t) for t in ("staging.stg_deaths", "core.person_ethnicity")}
    assert through <= reached  # by the rows counted, not only by the loads' audit


def test_no_secret_of_the_deployment_reaches_an_event(run) -> None:
    """The key and the webhook are in the tasks' environment; the events carry the run's
    configuration (which may hold no secret) and no environment variable."""
    for secret in (CANARY_KEY, "canary-webhook-token"):
        assert secret not in run["text"]
    confs = [
        e["run"]["facets"]["airflow"]["dagRun"]["conf"]
        for e in of_task(run, "compute_indicators.compute")
        if "airflow" in e["run"]["facets"]
    ]
    assert confs and all(conf["until"] == END for conf in confs)


def test_no_nhs_number_reaches_an_event(run) -> None:
    assert "9990001707" not in run["text"]
    assert not [line for line in run["text"].splitlines() if holds_nhs_number(line)]
