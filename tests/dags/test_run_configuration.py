"""What a DAG run loads up to, and which settings its tasks use, come from the run itself.

Options reach the tasks as the run's configuration (``hei run`` passes them), never through
the environment: a stray ``HEI_*`` variable in an engineer's shell must not change what a
scheduled run does.
"""

from __future__ import annotations

from types import SimpleNamespace

import pendulum
import pytest
from airflow.sdk.exceptions import AirflowFailException

from dags.common import factory
from transforms.core.periods import last_complete_month


def context(run_type: str, conf: dict | None, interval_end: str | None) -> dict:
    end = pendulum.parse(interval_end) if interval_end else None
    return {"dag_run": SimpleNamespace(run_type=run_type, conf=conf), "data_interval_end": end}


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch):
    def use(run_context: dict) -> None:
        monkeypatch.setattr(factory, "get_current_context", lambda: run_context)

    monkeypatch.setenv("HEI_UNTIL", "2020-01")  # a leftover in the shell: must change nothing
    monkeypatch.setenv("HEI_LANDING_DIR", "/from/the/deployment")
    return use


def test_a_scheduled_run_loads_up_to_the_last_month_complete_at_its_interval_end(run) -> None:
    run(context("scheduled", {"until": "2024-01"}, "2025-03-16T05:00:00"))
    assert factory._until() == "2025-02"
    run(context("scheduled", None, "2025-03-01T05:00:00"))
    assert factory._until() == "2025-02"


def test_a_run_started_by_hei_run_loads_up_to_its_until(run) -> None:
    run(context("manual", {"until": "2024-06", "settings": {}}, "2025-03-01"))
    assert factory._until() == "2024-06"


def test_a_manual_run_without_until_loads_up_to_the_last_complete_month(run) -> None:
    run(context("manual", None, None))
    assert factory._until() == last_complete_month()


def test_settings_are_the_deployments_with_the_runs_overrides(run) -> None:
    run(context("manual", {"settings": {"warehouse_url": "duckdb:///given.duckdb"}}, None))
    settings = factory._settings()
    assert settings.warehouse_url == "duckdb:///given.duckdb"
    assert str(settings.landing_dir) == "/from/the/deployment"
    assert not hasattr(settings, "until")


@pytest.mark.parametrize(
    "secret",
    [
        {"pseudonym_key": "a-key-given-at-trigger-time"},
        {"alert_webhook_url": "https://hooks.example/T0/B0/token"},
        {"warehouse_url": "postgresql+psycopg://loader:hunter2@db/warehouse"},
    ],
)
def test_a_run_whose_configuration_holds_a_secret_is_refused(run, secret) -> None:
    """Airflow keeps a run's configuration and copies it into every lineage event."""
    run(context("manual", {"settings": secret}, None))
    with pytest.raises(AirflowFailException, match=f"holds {next(iter(secret))}"):
        factory._settings()
