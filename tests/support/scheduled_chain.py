"""The whole pipeline under a running Airflow: a month of deliveries in the landing zone,
then the scheduler's own runs, watched through the REST API until the chain has settled."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hei.runner import PIPELINE_ORDER
from synth import generate
from tests.support import postgres
from tests.support.airflow_cluster import AirflowCluster, running_cluster
from transforms.core.periods import last_complete_month

DAILY = ("check_deliveries",)
"""DAGs on a daily clock of their own, outside the Asset chain: a fresh deployment runs them too."""
MONTH = last_complete_month()  # the interval the scheduler runs first on a fresh deployment
SCALE = 0.02  # about 6,600 registered people: small enough for a few minutes on two cores
SEED = 13
PSEUDONYM_KEY = secrets.token_hex(32)  # one per session: runs on the same data compare equal
CHAIN_TIMEOUT = 900


@dataclass
class ChainRun:
    """What a settled chain left: its DAG runs, DAGs and task instances as the REST API gave
    them (Airflow is stopped by then), and the warehouse and files, still there."""

    root: Path
    runs: list[dict]
    dags: list[dict]
    task_instances: list[dict]
    truth: dict
    warehouse_url: str
    seconds: float
    observed: object = None


def settings_env(root: Path, warehouse_url: str) -> dict[str, str]:
    """The ``HEI_*`` settings of a production deployment, under ``root``."""
    return {
        "HEI_ENVIRONMENT": "production",
        "HEI_PSEUDONYM_KEY": PSEUDONYM_KEY,
        "HEI_WAREHOUSE_URL": warehouse_url,
        "HEI_LANDING_DIR": str(root / "landing"),
        "HEI_PUBLISH_URL": str(root / "publish"),
        "HEI_REPORTS_DIR": str(root / "reports"),
        "HEI_VAR_DIR": str(root / "var"),
    }


@contextmanager
def scheduled_chain(
    root: Path,
    warehouse_url: str,
    *,
    while_running: Callable[[AirflowCluster], object] | None = None,
    **cluster_options: object,
) -> Iterator[ChainRun]:
    """Deliveries of ``MONTH`` in ``root/landing``, then Airflow started on a new metadata
    database; ``while_running`` (if any) acts on the cluster while the chain runs and what it
    returns is kept as ``observed``. Once every DAG has run and nothing is left to run, Airflow
    is stopped and its database dropped, and the run is yielded."""
    truth = generate(root / "landing", MONTH, MONTH, scale=SCALE, seed=SEED, faults=0.0)
    started = time.monotonic()
    env = settings_env(root, warehouse_url)
    with (
        postgres.scratch_database("hei_sched_meta_") as metadata_url,
        running_cluster(root, metadata_url, env, **cluster_options) as cluster,
    ):
        observed = while_running(cluster) if while_running is not None else None
        runs = cluster.wait_for_chain([*PIPELINE_ORDER, *DAILY], timeout=CHAIN_TIMEOUT)
        seconds = time.monotonic() - started
        dags = cluster.get("/dags", limit=100)["dags"]
        task_instances = cluster.task_instances()
    print(f"{cluster_options or 'LocalExecutor'}: the chain settled in {seconds:.0f} s")
    yield ChainRun(root, runs, dags, task_instances, truth, warehouse_url, seconds, observed)
