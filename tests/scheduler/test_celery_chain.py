"""The chain with the CeleryExecutor: two workers, each as on a machine of its own (its own
working directory, Airflow home and ``HEI_VAR_DIR``; shared only the landing zone, the publish
target, the reports folder and the databases), Redis as broker, PostgreSQL as result backend.

While the GP register's load runs, its worker is killed with SIGKILL (with every process
under it, as when a machine goes down). The scheduler notices the silent task, retries it,
and the other worker loads the file; the warehouse must then equal the LocalExecutor's on
the same data, row for row.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hei.runner import PIPELINE_ORDER
from tests.support.airflow_cluster import AirflowCluster, ChainFailed, empty_redis_db
from tests.support.deliveries import fetch
from tests.support.scheduled_chain import DAILY, ChainRun, scheduled_chain
from transforms.config.sources import SOURCES

pytestmark = [pytest.mark.celery, pytest.mark.postgres]
BROKER = os.environ.get("HEI_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
WORKERS = ("worker-1", "worker-2")
KILLED = "ingest_gp_register"  # the largest delivery: its load lasts longest
LOAD_STARTED, TASK_DONE = ": loading (load ", "Done. Returned value"


def load_log(root: Path, worker: str, attempt: int) -> str:
    """The GP register load's task log of one try on one worker ("" if it has none)."""
    pattern = f"dag_id={KILLED}/*/task_id=load_month/map_index=0/attempt={attempt}.log"
    found = list((root / worker / "airflow" / "logs").glob(pattern))
    return found[0].read_text(errors="replace") if found else ""


def kill_the_worker_running_a_load(cluster: AirflowCluster) -> str:
    """Watch the REST API until the GP register's load runs, find the worker whose task log
    says the load has started, and SIGKILL that worker; returns its name."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        cluster.check_running()
        running = [
            t
            for t in cluster.task_instances(KILLED)
            if t["task_id"] == "load_month" and t["state"] == "running"
        ]
        for worker in WORKERS if running else ():
            text = load_log(cluster.root, worker, attempt=1)
            if LOAD_STARTED in text and TASK_DONE not in text:
                cluster.kill(worker)
                return worker
        time.sleep(0.2)
    raise ChainFailed(f"{KILLED}.load_month was not seen loading")


@pytest.fixture(scope="module")
def celery_chain(
    tmp_path_factory: pytest.TempPathFactory, new_warehouse, local_chain: ChainRun
) -> Iterator[ChainRun]:
    """After the LocalExecutor's chain (``local_chain``), the same data under Celery."""
    root = tmp_path_factory.mktemp("celery")
    with (
        empty_redis_db(BROKER) as broker,
        new_warehouse() as url,
        scheduled_chain(
            root,
            url,
            while_running=kill_the_worker_running_a_load,
            executor="CeleryExecutor",
            celery_workers=len(WORKERS),
            broker_url=broker,
        ) as run,
    ):
        yield run


def test_every_dag_of_the_chain_succeeds_on_the_workers_left(celery_chain):
    assert {r["dag_id"] for r in celery_chain.runs} == {*PIPELINE_ORDER, *DAILY}
    assert {r["state"] for r in celery_chain.runs} == {"success"}


def test_the_killed_load_is_retried_and_succeeds_on_the_other_worker(celery_chain):
    killed = celery_chain.observed
    [survivor] = [w for w in WORKERS if w != killed]
    [load] = [
        t
        for t in celery_chain.task_instances
        if t["dag_id"] == KILLED and t["task_id"] == "load_month"
    ]
    assert (load["state"], load["try_number"]) == ("success", 2)
    first = load_log(celery_chain.root, killed, 1)
    assert LOAD_STARTED in first and TASK_DONE not in first  # killed part-way through
    assert TASK_DONE in load_log(celery_chain.root, survivor, 2)


def rows(url: str, table: str, leave_out: set[str]) -> list[tuple]:
    """Every row of ``table`` but the columns of ``leave_out`` (ids and times of one run)."""
    schema, name = table.split(".")
    columns = [
        c
        for (c,) in fetch(
            url,
            "select column_name from information_schema.columns where table_schema = "
            f"'{schema}' and table_name = '{name}' order by ordinal_position",
        )
        if c not in leave_out
    ]
    listed = ", ".join(f'"{c}"' for c in columns)
    return fetch(url, f"select {listed} from {table} order by {listed}")


# What differs between two runs on the same data: ids, and when things happened.
RUN_COLUMNS = {"load_id", "run_id", "computed_at", "started_at", "finished_at", "file_modified_at"}


@pytest.mark.parametrize(
    "table",
    [
        *(f"staging.stg_{name}" for name in SOURCES),
        "indicators.values",
        "audit.file_loads",
        "core.person_ethnicity",
    ],
)
def test_the_warehouse_equals_the_local_executors_row_for_row(celery_chain, local_chain, table):
    local = rows(local_chain.warehouse_url, table, RUN_COLUMNS)
    assert local
    assert rows(celery_chain.warehouse_url, table, RUN_COLUMNS) == local


def test_one_audit_row_per_file(celery_chain):
    names = fetch(celery_chain.warehouse_url, "select file_name from audit.file_loads")
    files = celery_chain.truth["files"]
    delivered = [Path(k).name for k, v in files.items() if v["source"] in SOURCES]
    assert sorted(n for (n,) in names) == sorted(delivered)
