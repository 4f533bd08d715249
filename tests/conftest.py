"""Shared fixtures: warehouses (DuckDB file, and a throwaway database on a real PostgreSQL).

PostgreSQL tests use ``HEI_TEST_POSTGRES_URL`` (a server and a database to connect to). Each
test session creates its own database there and drops it at the end. Without a server they
skip with a one-line reason, unless ``REQUIRE_POSTGRES=1`` (as in CI), when they fail.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from hei.airflow_env import DAGS_FOLDER, migrate_if_needed
from tests.support import postgres
from tests.support.webhook import receiving_webhook
from transforms.config.settings import Settings

# Airflow reads its configuration on first import: give the tests their own home.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="hei-test-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS_FOLDER))  # for dag.test()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session."""
    prefix = os.environ.get("HEI_TEST_DB_PREFIX", "hei_test_")  # helpers sharing a server
    with postgres.scratch_database(prefix) as url:
        yield url
        sa.create_engine(url).dispose()


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty warehouse of each supported kind."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    url = request.getfixturevalue("postgres_url")
    postgres.reset(url)
    return url


@pytest.fixture
def settings(tmp_path: Path, warehouse_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(tmp_path)
    return Settings(
        var_dir=tmp_path / "var",
        landing_dir=tmp_path / "landing",
        warehouse_url=warehouse_url,
        pseudonym_key="test-key-not-secret",
        settle_seconds=0,  # tests write a file and load it at once
    )


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    """A local webhook's URL and the alerts it received (see tests/support/webhook.py)."""
    with receiving_webhook() as (url, received):
        yield url, received


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """The tests' Airflow home with its SQLite metadata created, for ``dag.test()``."""
    home = Path(os.environ["AIRFLOW_HOME"])
    migrate_if_needed(home)
    return home
