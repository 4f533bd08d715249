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

from tests.support import postgres
from transforms.config.settings import Settings

# Airflow reads its configuration on first import: give the tests their own home.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="hei-test-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session."""
    with postgres.scratch_database("hei_test_") as url:
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
