"""A project-local Airflow for ``hei run``: AIRFLOW_HOME, SQLite metadata, the DAGs folder.

Airflow reads its configuration when first imported, so everything here happens before any
``airflow`` import. An ``AIRFLOW_HOME`` already in the environment is respected, so the same
command works against a deployment's own metadata database.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DAGS_FOLDER = PROJECT_ROOT / "dags"


def configure(var_dir: Path) -> Path:
    """Point Airflow at the project's DAGs and a local home; returns AIRFLOW_HOME."""
    home = Path(os.environ.setdefault("AIRFLOW_HOME", str((var_dir / "airflow").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS_FOLDER))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
    return home


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


def warehouse_pool_slots(is_duckdb: bool) -> int:
    """DuckDB allows one writing process, so its writers queue on one slot; PostgreSQL does not."""
    return 1 if is_duckdb else int(os.environ.get("HEI_WAREHOUSE_POOL_SLOTS", "8"))


def standalone() -> None:
    """``make airflow``: Airflow standalone on the project's DAGs, with the warehouse pool set."""
    from transforms.settings import Settings

    settings = Settings()
    home = configure(settings.var_dir)
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
