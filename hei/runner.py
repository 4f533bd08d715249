"""Runs the pipeline's DAGs in dependency order through Airflow (``dag.test()``).

This is what ``hei run`` does: real DAG runs, recorded in Airflow's metadata database, with
the same task code a scheduler would execute. Airflow's own log output goes to a file under
``var/logs`` so the terminal shows progress, not thousands of log lines.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from transforms.config.settings import Settings
from transforms.config.sources import SOURCES

if TYPE_CHECKING:
    from airflow.sdk import DAG
    from sqlalchemy.engine import Engine

PIPELINE_ORDER = (
    *(f"ingest_{name}" for name in SOURCES),
    "assess_ethnicity",
    "compute_indicators",
    "publish_partnership",
    "assurance_report",
)


NOT_RUN = "not run"


@dataclass
class DagOutcome:
    dag_id: str
    run_id: str  # empty for a DAG left out
    state: str  # a DAG run's state, or NOT_RUN
    seconds: float
    reason: str = ""  # why it was left out


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


Skip = Callable[[str, list[DagOutcome]], "str | None"]
"""Why a DAG need not run, given the runs made so far, or None to run it."""


def work_left(settings: Settings, until: str) -> Skip:
    """What ``hei run`` leaves out, as a scheduler would: an ingest DAG with no file to load or
    record; ``assess_ethnicity`` when no ingest ran and the links postdate the last load;
    ``compute_indicators`` when neither the catalogue's nor WRES's inputs changed since their
    last compute; ``publish_partnership`` when the latest release holds what the warehouse
    does; the report when the latest release has one. Each is the same comparison the DAG's
    own task makes, asked when the DAG's turn comes (after the DAGs before it), so a run cut
    short is finished by the next. A check that cannot tell (a publish target it cannot read)
    runs the DAG, whose own error then says what is wrong."""
    from transforms.ingest import audit
    from transforms.quality import completeness
    from transforms.warehouse import ddl
    from transforms.warehouse import engine as warehouse

    engine = warehouse.make_engine(settings.warehouse_url)
    ddl.apply_ddl(engine)
    with engine.connect() as conn:
        found = audit.sources_to_load(
            conn, settings.landing_dir, SOURCES, until, settings.settle_seconds
        )

    def skip(dag_id: str, done: list[DagOutcome]) -> str | None:
        source = dag_id.removeprefix("ingest_")
        if source in SOURCES:
            return None if source in found else "nothing new to load"
        loaded = any(o.dag_id.startswith("ingest_") and o.state != NOT_RUN for o in done)
        if dag_id == "assess_ethnicity" and not loaded:
            with engine.connect() as conn:
                if completeness.person_ethnicity_current(conn):
                    return "ethnicity already linked after the last load"
        if dag_id == "compute_indicators" and _settled(lambda: not _compute_pending(engine)):
            return "indicators and WRES already computed from what is loaded"
        if dag_id == "publish_partnership" and _settled(
            lambda: not _publish_pending(engine, settings.publish_url)
        ):
            return "the latest release holds what the warehouse does"
        if dag_id == "assurance_report" and _settled(lambda: _report_built(settings)):
            return "the latest release's report is built"
        return None

    return skip


def _settled(check: Callable[[], bool]) -> bool:
    """Whether ``check`` says there is nothing to do; any error (a storage or warehouse
    error) counts as work, so the DAG runs and its own error says what is wrong."""
    try:
        return check()
    except Exception:
        return False


def _compute_pending(engine: Engine) -> bool:
    from transforms.indicators import store as indicator_store
    from transforms.indicators import wres_store

    with engine.connect() as conn:
        return indicator_store.pending(conn) or wres_store.pending(conn)


def _publish_pending(engine: Engine, publish_url: str) -> bool:
    from transforms.publish import release

    return release.pending(engine, publish_url)


def _report_built(settings: Settings) -> bool:
    from transforms.report.inputs import report_of_latest_release_exists

    return report_of_latest_release_exists(settings.publish_url, settings.reports_dir)


def run_dags(
    dag_ids: tuple[str, ...], log_path: Path, conf: dict, skip: Skip | None = None
) -> list[DagOutcome]:
    """Test-run each DAG in order with ``conf`` as its run configuration, but those ``skip``
    gives a reason to leave out; later DAGs run even if an earlier one failed."""
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
            reason = skip(dag_id, outcomes) if skip else None
            if reason:
                print(f"  {dag_id}: {NOT_RUN}, {reason}", file=terminal, flush=True)
                outcomes.append(DagOutcome(dag_id, "", NOT_RUN, 0.0, reason))
                continue
            print(f"  running {dag_id} ...", file=terminal, flush=True)
            started = time.monotonic()
            run = without_retries(bag.dags[dag_id]).test(run_conf=conf)
            outcome = DagOutcome(dag_id, run.run_id, str(run.state), time.monotonic() - started)
            print(
                f"  {dag_id}: {outcome.state} in {outcome.seconds:.1f} s", file=terminal, flush=True
            )
            outcomes.append(outcome)
    return outcomes
