"""The task code preloaded by ``airflow_local_settings.py`` only where tasks are forked."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hei.airflow_env import write_local_settings

TASK_CODE = ["great_expectations", "transforms.report.build", "transforms.tasks"]
PROBE = (
    "import os, runpy, sys; sys.argv = ['airflow', os.environ['COMPONENT']];"
    "runpy.run_path(os.environ['SETTINGS']);"
    "print(sorted(m for m in os.environ['MODULES'].split() if m in sys.modules))"
)


@pytest.mark.parametrize(
    ("component", "loaded"),
    [
        ("scheduler", TASK_CODE),
        ("api-server", []),
    ],
)
def test_only_the_components_that_run_tasks_preload_their_code(tmp_path, component, loaded):
    settings = write_local_settings(tmp_path)
    probe = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ
        | {"SETTINGS": str(settings), "COMPONENT": component, "MODULES": " ".join(TASK_CODE)},
    )
    assert probe.stdout.strip().splitlines()[-1] == str(loaded)
