"""Runs the pipeline's DAGs in dependency order through Airflow (``dag.test()``).

This is what ``hei run`` does: real DAG runs, recorded in Airflow's metadata database, with
the same task code a scheduler would execute. Airflow's own log output goes to a file under
``var/logs`` so the terminal shows progress, not thousands of log lines.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from transforms.config.sources import SOURCES

if TYPE_CHECKING:
    from airflow.sdk import DAG

PIPELINE_ORDER = (
    *(f"ingest_{name}" for name in SOURCES),
    "assess_ethnicity",
    "compute_indicators",
    "publish_partnership",
    "assurance_report",
)


@dataclass
class DagOutcome:
    dag_id: str
    run_id: str
    state: str
    seconds: float


@contextmanager
def output_to(log_path: Path) -> Iterator[TextIO]:
    """Send file descriptors 1 and 2 to ``log_path``; yield a stream to the real terminal."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(2), "w", buffering=1)
    with log_path.open("a") as log_file:
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
        try:
            yield terminal
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)
            terminal.close()


def without_retries(dag: DAG) -> DAG:
    """Fail fast: ``dag.test()`` waits out every retry delay, which a person at a terminal
    should not; a scheduler keeps the DAG's own retries for transient failures."""
    for task in dag.tasks:
        task.retries = 0
    return dag


def fail_abandoned_runs() -> list[str]:
    """Mark the DAG runs a killed ``hei run`` left running as failed; returns them.

    ``dag.test()`` runs (triggered by TEST) are only made by ``hei run``, which holds the run
    lock (``airflow_env.one_run_at_a_time``): while it is held, such a run still marked
    running or queued belongs to a process that died. It is marked failed the way the UI's
    "mark failed" does it: the task that was running fails, those not started are skipped.
    Runs made by a scheduler are its own to handle.
    """
    import sqlalchemy as sa
    from airflow.api.common.mark_tasks import set_dag_run_state_to_failed
    from airflow.models.dagrun import DagRun
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType

    with create_session() as session:
        runs = session.scalars(
            sa.select(DagRun).where(
                DagRun.state.in_([DagRunState.RUNNING, DagRunState.QUEUED]),
                DagRun.triggered_by == DagRunTriggeredByType.TEST,
            )
        ).all()
        for run in runs:
            set_dag_run_state_to_failed(
                dag=SerializedDagModel.get_dag(run.dag_id, session=session),
                run_id=run.run_id,
                commit=True,
                session=session,
            )
        return [f"{run.dag_id} {run.run_id}" for run in runs]


def run_dags(dag_ids: tuple[str, ...], log_path: Path, conf: dict) -> list[DagOutcome]:
    """Test-run each DAG in order with ``conf`` as its run configuration; later DAGs run
    even if an earlier one failed."""
    from airflow.dag_processing.dagbag import DagBag

    from hei.airflow_env import DAGS_FOLDER

    outcomes = []
    with output_to(log_path) as terminal:
        for abandoned in fail_abandoned_runs():
            print(
                f"  marked failed: {abandoned}, left running by a run that was killed",
                file=terminal,
            )
        bag = DagBag(str(DAGS_FOLDER))
        if bag.import_errors:
            raise RuntimeError(f"DAG import errors: {bag.import_errors}")
        for dag_id in dag_ids:
            print(f"  running {dag_id} ...", file=terminal, flush=True)
            started = time.monotonic()
            run = without_retries(bag.dags[dag_id]).test(run_conf=conf)
            outcome = DagOutcome(dag_id, run.run_id, str(run.state), time.monotonic() - started)
            print(
                f"  {dag_id}: {outcome.state} in {outcome.seconds:.1f} s", file=terminal, flush=True
            )
            outcomes.append(outcome)
    return outcomes
