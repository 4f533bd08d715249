"""What ``hei run`` prints at the end, on a PostgreSQL warehouse whose URL has a password."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hei import cli
from hei.runner import DagOutcome
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
