"""Running ``hei`` as a user would: a child process with a fresh user's environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def user_env(root: Path) -> dict[str, str]:
    """This environment without any ``HEI_*`` or Airflow setting, with ``var/`` and the
    Airflow home under ``root``: what a newcomer's shell would give ``hei``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEI_", "AIRFLOW"))}
    return env | {"HEI_VAR_DIR": str(root / "var"), "AIRFLOW_HOME": str(root / "airflow")}


def hei(
    *args: str, env: dict[str, str], timeout: float = 900, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """``python -m hei.cli ARGS``, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "hei.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
