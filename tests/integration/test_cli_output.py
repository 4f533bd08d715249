"""What ``hei`` prints: the run summary without a password; one clear error for a held
file; the late deliveries in ``hei status``."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import pytest
import sqlalchemy as sa

from hei import cli
from hei.runner import DagOutcome
from tests.support.audit_rows import record_load
from tests.support.cli import user_env
from transforms.config.settings import Settings
from transforms.core import periods
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


def hei_status(url: str, *options: str) -> None:
    assert cli.cmd_status(cli._parser().parse_args(["status", "--warehouse", url, *options])) == 0


def test_hei_status_names_each_late_month_with_its_days_late(settings, capsys, monkeypatch):
    """Deaths loaded September 2025 and its October file was rejected; the register loaded
    September and has sent nothing since. Seen on 20 November: both owe October."""
    url = settings.warehouse_url
    ddl.apply_ddl(warehouse.make_engine(url))
    record_load(url, "deaths", "2025-09", "loaded")
    record_load(url, "deaths", "2025-10", "rejected")
    record_load(url, "gp_register", "2025-09", "loaded")
    monkeypatch.setattr(periods, "utc_today", lambda: date(2025, 11, 20))
    hei_status(url)
    printed = capsys.readouterr().out
    assert printed.endswith(
        "\nLate deliveries on 2025-11-20 (2):\n"
        "  gp_register 2025-10: 10 days late (due 2025-11-10); no file has arrived\n"
        "  deaths 2025-10: 5 days late (due 2025-11-15); its delivery was rejected\n"
    )
    hei_status(url, "--source", "deaths")
    only_deaths = capsys.readouterr().out
    assert "Late deliveries on 2025-11-20 (1):" in only_deaths
    assert "gp_register 2025-10" not in only_deaths


def test_hei_status_shows_no_late_section_when_every_due_month_loaded(
    settings, capsys, monkeypatch
):
    url = settings.warehouse_url
    ddl.apply_ddl(warehouse.make_engine(url))
    record_load(url, "deaths", "2025-10", "loaded")
    monkeypatch.setattr(periods, "utc_today", lambda: date(2025, 12, 15))  # November due today
    hei_status(url)
    assert "Late deliveries" not in capsys.readouterr().out
