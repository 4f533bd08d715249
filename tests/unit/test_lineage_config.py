"""Where ``hei`` sends OpenLineage events, and which run settings Airflow masks in them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hei import airflow_env, cli


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A private copy of the environment, without any OpenLineage setting, for one test."""
    clean = {k: v for k, v in os.environ.items() if "OPENLINEAGE" not in k}
    clean.pop("AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES", None)
    clean.pop("HEI_WAREHOUSE_URL", None)
    clean.pop("HEI_PUBLISH_URL", None)
    monkeypatch.setattr(os, "environ", clean)
    return clean


def test_without_any_openlineage_setting_events_go_to_a_file_under_var(
    environ: dict[str, str], tmp_path: Path
) -> None:
    airflow_env.default_lineage(tmp_path / "var")
    transport = json.loads(environ["AIRFLOW__OPENLINEAGE__TRANSPORT"])
    events = tmp_path / "var" / "lineage" / "openlineage.jsonl"
    assert transport == {"type": "file", "log_file_path": str(events), "append": True}
    assert events.parent.is_dir()
    assert environ["AIRFLOW__OPENLINEAGE__NAMESPACE"] == "health-equity-indicators"
    assert environ["AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD"] == "True"
    assert airflow_env.lineage_destination() == f"{events} (OpenLineage events)"


@pytest.mark.parametrize(
    "setting",
    [
        ("OPENLINEAGE_URL", "http://marquez:5000"),
        ("OPENLINEAGE__TRANSPORT__TYPE", "console"),
        ("AIRFLOW__OPENLINEAGE__TRANSPORT", '{"type": "console"}'),
        ("AIRFLOW__OPENLINEAGE__CONFIG_PATH", "/etc/openlineage.yml"),
    ],
)
def test_a_standard_openlineage_setting_wins_over_the_file(
    environ: dict[str, str], tmp_path: Path, setting: tuple[str, str]
) -> None:
    key, value = setting
    environ[key] = value
    airflow_env.default_lineage(tmp_path / "var")
    assert environ.get("AIRFLOW__OPENLINEAGE__TRANSPORT") == (
        value if key == "AIRFLOW__OPENLINEAGE__TRANSPORT" else None
    )
    assert not (tmp_path / "var" / "lineage").exists()


def test_settings_that_may_hold_secrets_join_the_names_airflow_masks(
    environ: dict[str, str],
) -> None:
    environ["AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES"] = "site_token,warehouse_url"
    airflow_env.hide_sensitive_settings()
    airflow_env.hide_sensitive_settings()
    names = environ["AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES"].split(",")
    assert names == ["site_token", "warehouse_url", "pseudonym_key", "publish_url"]


def test_lineage_said_to_be_off_when_disabled(environ: dict[str, str]) -> None:
    environ["AIRFLOW__OPENLINEAGE__DISABLED"] = "True"
    assert airflow_env.lineage_destination() == "off (OpenLineage disabled)"


def test_hei_run_passes_a_warehouse_password_through_its_environment_not_the_run(
    environ: dict[str, str],
) -> None:
    """The run's configuration is stored by Airflow and copied into every lineage event."""
    url = "postgresql+psycopg://loader:hunter2@db/warehouse"
    conf = cli._keep_secrets_out({"warehouse_url": url, "landing_dir": "/data/landing"})
    assert conf == {"landing_dir": "/data/landing"}
    assert environ["HEI_WAREHOUSE_URL"] == url


def test_hei_run_passes_a_warehouse_without_a_password_in_the_run(
    environ: dict[str, str],
) -> None:
    conf = cli._keep_secrets_out({"warehouse_url": "duckdb:///var/w.duckdb"})
    assert conf == {"warehouse_url": "duckdb:///var/w.duckdb"}
    assert "HEI_WAREHOUSE_URL" not in environ


@pytest.mark.parametrize(
    "url",
    [
        "s3://AKIAEXAMPLE:not-a-real-secret@releases/hwp",
        "abfs://releases/hwp?sas_token=sv%3D2024-not-real",
    ],
)
def test_hei_run_passes_a_publish_url_with_a_credential_through_its_environment(
    environ: dict[str, str], url: str
) -> None:
    conf = cli._keep_secrets_out({"publish_url": url, "landing_dir": "/data/landing"})
    assert conf == {"landing_dir": "/data/landing"}
    assert environ["HEI_PUBLISH_URL"] == url


@pytest.mark.parametrize("url", ["var/publish", "/srv/releases", "az://releases/hwp"])
def test_hei_run_passes_a_publish_target_without_a_credential_in_the_run(
    environ: dict[str, str], url: str
) -> None:
    assert cli._keep_secrets_out({"publish_url": url}) == {"publish_url": url}
    assert "HEI_PUBLISH_URL" not in environ
