"""What ``hei run`` prints: its summary without a password; one clear error for a held file."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa

from hei import cli
from hei.runner import DagOutcome
from tests.support.cli import user_env
from transforms.config.settings import Settings
from transforms.warehouse import ddl
from transforms.warehouse import engine as warehouse


@pytest.mark.parametrize(
    "warehouse_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_the_run_summary_names_the_warehouse_without_its_password(warehouse_url, tmp_path, capsys):
    url = sa.make_url(warehouse_url).set(password="hunter2-not-real")  # trust: not checked
    settings = Settings(
        warehouse_url=url.render_as_string(hide_password=False),
        var_dir=tmp_path / "var",
        pseudonym_key="test-key-not-secret",
    )
    ddl.apply_ddl(warehouse.make_engine(settings.warehouse_url))
    outcomes = [DagOutcome("ingest_deaths", "manual__1", "success", 1.0)]
    cli._print_summary(settings, outcomes, tmp_path / "hei-run.log", tmp_path / "airflow")
    printed = capsys.readouterr().out
    assert f"warehouse:  {url.render_as_string(hide_password=True)}" in printed
    assert "hunter2" not in printed


def test_a_warehouse_file_held_by_another_program_gives_one_clear_error(tmp_path):
    """A notebook or DBeaver holding the DuckDB file: one message naming the holder, no
    traceback, no DAG run, a non-zero exit."""
    path = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_FILE, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        env = user_env(tmp_path)
        (tmp_path / "landing").mkdir()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "hei.cli",
                "run",
                "--landing",
                str(tmp_path / "landing"),
                "--warehouse",
                f"duckdb:///{path}",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 3
    assert f"(PID {holder.pid})" in done.stderr
    assert "Close it there" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "airflow" / "airflow.db").exists()  # no DAG ran


HOLD_FILE = """
import sys, time, duckdb
connection = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(300)
"""
