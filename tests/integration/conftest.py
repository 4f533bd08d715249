"""Fixtures of the integration tests: a small synthetic Wigan, loaded and computed once."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.browser import chromium
from tests.support.pipeline import compute, small_wigan
from transforms.warehouse import engine as warehouse

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture(scope="session")
def computed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse with 14 months loaded and every indicator computed."""
    root = tmp_path_factory.mktemp("publication")
    url = small_wigan(root)
    compute(url)
    warehouse.make_engine(url).dispose()  # DuckDB checkpoints on close: the copies see it all
    return root


@pytest.fixture
def url(computed: Path, tmp_path: Path) -> str:
    """A private copy of the computed warehouse."""
    shutil.copy(computed / "loaded.duckdb", tmp_path / "warehouse.duckdb")
    return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium (see tests/support/browser.py)."""
    with chromium() as opened:
        yield opened
