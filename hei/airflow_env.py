"""A project-local Airflow for ``hei run``: AIRFLOW_HOME, SQLite metadata, the DAGs folder.

Airflow reads its configuration when first imported, so everything here happens before any
``airflow`` import. An ``AIRFLOW_HOME`` already in the environment is respected, so the same
command works against a deployment's own metadata database.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path
from typing import TextIO

DAGS_FOLDER = Path(str(files("dags")))  # the DAG files ship in the package `dags`
PRIVATE_UMASK = 0o077  # new files rw------- and folders rwx------: the user's alone
LINEAGE_EVENTS = Path("lineage") / "openlineage.jsonl"  # under var/: one JSON event a line
LINEAGE_NAMESPACE = "health-equity-indicators"  # the OpenLineage namespace of the DAGs' jobs
# Variables that tell the OpenLineage provider where events go (the standard OpenLineage
# ones and Airflow's [openlineage] options); with none of them set, they go to the file.
LINEAGE_TARGETS = (
    "OPENLINEAGE_URL",
    "OPENLINEAGE_CONFIG",
    "OPENLINEAGE__TRANSPORT",
    "AIRFLOW__OPENLINEAGE__TRANSPORT",
    "AIRFLOW__OPENLINEAGE__CONFIG_PATH",
    "AIRFLOW__OPENLINEAGE__CONFIG_CONN_ID",
)
# Run-configuration keys whose values Airflow hides (logs, the DAG runs' OpenLineage events):
# a second line of defence, as no run's configuration may hold a secret (factory._settings).
SENSITIVE_SETTINGS = ("warehouse_url", "pseudonym_key", "publish_url")


def keep_files_private() -> None:
    """Make everything this process and its children create private to the user.

    ``var/`` holds the development key, the DuckDB warehouse (pseudonymised records), the logs,
    Airflow's metadata and the validation results; none of it is for other local users. A
    umask covers what Airflow, Great Expectations and DuckDB create too, which explicit modes
    on our own files would not.
    """
    os.umask(PRIVATE_UMASK)


def configure(var_dir: Path) -> Path:
    """Point Airflow at the project's DAGs and a local home; returns AIRFLOW_HOME."""
    home = Path(os.environ.setdefault("AIRFLOW_HOME", str((var_dir / "airflow").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS_FOLDER))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
    hide_sensitive_settings()
    default_lineage(var_dir)
    return home


def hide_sensitive_settings() -> None:
    """Add the settings that may hold a secret to Airflow's sensitive names, so their values
    are masked where Airflow masks by name (logs, the DAG runs' lineage events; not the
    tasks' events, whose copy of the configuration the provider's redactor misses)."""
    named = os.environ.get("AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES", "")
    names = [n for n in named.split(",") if n.strip()]
    missing = [n for n in SENSITIVE_SETTINGS if n not in names]
    os.environ["AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES"] = ",".join([*names, *missing])


def default_lineage(var_dir: Path) -> None:
    """OpenLineage events to ``var/lineage/openlineage.jsonl`` unless the environment sends
    them elsewhere (deploy/DEPLOY.md): a local file needs no server and works offline."""
    os.environ.setdefault("AIRFLOW__OPENLINEAGE__NAMESPACE", LINEAGE_NAMESPACE)
    # In a thread of the task's process, not a fork of it per event (the provider's default):
    # a forked child imports the OpenLineage client anew for every event and throws it away,
    # seconds per task when dag.test() runs every task in one process.
    os.environ.setdefault("AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD", "True")
    if any(key.startswith(LINEAGE_TARGETS) and value for key, value in os.environ.items()):
        return
    events = (var_dir / LINEAGE_EVENTS).resolve()
    events.parent.mkdir(parents=True, exist_ok=True)
    transport = {"type": "file", "log_file_path": str(events), "append": True}
    os.environ["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps(transport)


def lineage_destination() -> str:
    """Where this process's OpenLineage events go, for people to read."""
    flags = (
        os.environ.get(k, "") for k in ("AIRFLOW__OPENLINEAGE__DISABLED", "OPENLINEAGE_DISABLED")
    )
    if any(flag.lower() in ("true", "1", "t") for flag in flags):
        return "off (OpenLineage disabled)"
    transport = json.loads(os.environ.get("AIRFLOW__OPENLINEAGE__TRANSPORT") or "{}")
    if transport.get("type") == "file":
        return f"{transport['log_file_path']} (OpenLineage events)"
    return "OpenLineage events as configured (deploy/DEPLOY.md)"


@contextmanager
def one_run_at_a_time(home: Path, terminal: TextIO) -> Iterator[None]:
    """Hold ``<home>/hei-run.lock`` for a whole ``hei run``; another one on this home waits.

    The local Airflow metadata is SQLite, which takes one writer at a time. And the kernel
    drops the lock when its process dies however it dies (``kill -9`` included), so while it is
    held no other ``hei run`` on this home is alive: any of its DAG runs still marked running
    was abandoned (see ``runner.fail_abandoned_runs``).
    """
    with (home / "hei-run.lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for the other hei run using {home} to finish ...", file=terminal)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def migrate_if_needed(home: Path) -> bool:
    """Create or upgrade the metadata database once per Airflow version; True if it ran."""
    marker = home / f".migrated-{version('apache-airflow-core')}"
    if marker.exists():
        return False
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    marker.touch()
    return True


# `airflow scheduler` (its LocalExecutor runs the tasks) and `airflow celery worker`
TASK_RUNNERS = {"scheduler", "celery"}
LOCAL_SETTINGS = """\"\"\"Airflow imports this at start (see hei.airflow_env).\"\"\"

from hei.airflow_env import preload_task_code

preload_task_code()
"""


def preload_task_code() -> None:
    """Import the pipeline's task code once in the processes that run tasks.

    A task process is forked from the executor's worker (the scheduler's LocalExecutor pool,
    or a Celery worker's pool), so with the code imported there each task starts with pandas,
    SciPy, Matplotlib and Great Expectations loaded, instead of spending seconds importing
    them (on a busy two-core machine, a minute) for a few seconds of work. Other components
    (api-server, dag-processor, one-off commands) stay light.
    """
    if not TASK_RUNNERS & set(sys.argv[1:2]):
        return
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # as transforms.quality.validation
    import great_expectations  # noqa: F401

    import transforms.report.build  # noqa: F401  (imported by its task alone)
    import transforms.tasks  # noqa: F401


def write_local_settings(home: Path) -> Path:
    """``<home>/config/airflow_local_settings.py``, which makes Airflow call
    :func:`preload_task_code` in every component it starts."""
    path = home / "config" / "airflow_local_settings.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(LOCAL_SETTINGS)
    return path


def warehouse_pool_slots(is_duckdb: bool) -> int:
    """DuckDB allows one writing process, so its writers queue on one slot; PostgreSQL does not."""
    return 1 if is_duckdb else int(os.environ.get("HEI_WAREHOUSE_POOL_SLOTS", "8"))


def standalone() -> None:
    """``make airflow``: Airflow standalone on the project's DAGs, with the warehouse pool set."""
    from transforms.config.settings import Settings

    keep_files_private()
    settings = Settings()
    home = configure(settings.var_dir)
    write_local_settings(home)
    migrate_if_needed(home)
    slots = warehouse_pool_slots(settings.is_duckdb)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow",
            "pools",
            "set",
            "warehouse",
            str(slots),
            "warehouse writers",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(f"Airflow home {home}; pool 'warehouse' has {slots} slot(s); UI on http://localhost:8080")
    # standalone starts its components as `airflow ...` subprocesses: they must find ours
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    os.execv(sys.executable, [sys.executable, "-m", "airflow", "standalone"])


if __name__ == "__main__" and sys.argv[1:] == ["standalone"]:
    standalone()
