"""Debian's Chromium, headless, with the network refused: how the browser tests open pages.

Without chromium the browser tests skip, unless ``CI`` or ``REQUIRE_BROWSER=1`` is set
(``.ci/run`` installs it and sets it), when they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE = Path(__file__).resolve().parents[2] / "tools" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def _missing(what: str) -> None:
    if os.environ.get("CI") or os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(what)
    pytest.skip(what)


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium (Debian's), closed afterwards."""
    if not Path(CHROMIUM).exists():
        _missing(f"no chromium at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser
        finally:
            browser.close()


def open_offline(browser: Browser, path: Path) -> tuple[Page, list[str]]:
    """The page at ``path`` with every non-file request refused; returns it and the list of
    URLs it tried to fetch from anywhere else."""
    page = browser.new_page()
    attempted: list[str] = []

    def refuse(route: Route) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:", "about:")):
            route.continue_()
        else:
            attempted.append(url)
            route.abort()

    page.route("**/*", refuse)
    page.goto(path.as_uri(), wait_until="load")
    return page, attempted


def run_axe(page: Page) -> list[dict]:
    """axe-core's WCAG 2.2 A and AA violations on the page (axe from ``tools/``)."""
    if not AXE.exists():
        _missing(f"axe-core is not installed at {AXE} (run `make node-tools`)")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_22_AA
    )
    return result["violations"]
