"""The monthly assurance report, built from a release of a small synthetic Wigan: what it
names, that it rebuilds identically, that it prints nothing the release withholds, that it
opens offline in Chromium with no accessibility violation, and its tagged PDF."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from bs4 import BeautifulSoup
from pypdf import PdfReader

from tests.support.browser import open_offline, run_axe
from tests.support.cli import hei, user_env
from transforms.publish import release
from transforms.report import build
from transforms.report.content import number
from transforms.report.inputs import load_release, report_of_latest_release_exists
from transforms.warehouse import engine as warehouse

MONTH = "2025-10"
HEADINGS = [
    "Summary for the board",
    "Data quality: how completely ethnicity is recorded",
    "Pipeline health, October 2025",
    "Methods and disclosure",
]


@pytest.fixture(scope="module")
def built(computed: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("report")
    shutil.copy(computed / "loaded.duckdb", root / "warehouse.duckdb")
    engine = warehouse.make_engine(f"duckdb:///{root / 'warehouse.duckdb'}")
    release.publish(engine, str(root / "publish"))
    result = build.build(engine, str(root / "publish"), root / "reports")
    return {
        "root": root,
        "engine": engine,
        "result": result,
        "html": result.html.read_text(),
        "release": load_release(str(root / "publish")),
    }


def test_the_report_is_written_for_the_release_month_and_names_its_release(built):
    result, chosen = built["result"], built["release"]
    assert result.html == built["root"] / "reports" / MONTH / "assurance_report.html"
    assert result.pdf.exists() and result.month == MONTH
    assert chosen.release_id in built["html"] and chosen.manifest_sha256 in built["html"]


def test_rebuilding_from_the_same_release_gives_the_same_html(built):
    again = build.render_html(built["release"], built["engine"])
    assert again == built["html"]


def test_the_html_loads_nothing_and_needs_no_script(built):
    page = BeautifulSoup(built["html"], "html.parser")
    assert page.find("script") is None and page.find("link") is None
    assert page.find("img") is None  # charts are inline SVG
    assert not re.search(r"(src|href)=\"(https?:)?//", built["html"])
    assert page.html["lang"] == "en-GB"


def tables_with(page: BeautifulSoup, header: str) -> list:
    return [
        t
        for t in page.find_all("table")
        if header in [th.get_text() for th in t.thead.find_all("th")]
    ]


def test_no_count_of_1_to_7_and_no_unpublished_value_is_printed(built):
    """Every count, value and interval in the indicator tables is the release's own, and a
    withheld one reads "withheld"; no number anywhere in a table is a count of 1 to 7."""
    page = BeautifulSoup(built["html"], "html.parser")
    values = built["release"].tables["indicator_values"]
    checked = 0
    for article in page.select("article.block[aria-labelledby$='-heading']"):
        indicator = article["aria-labelledby"].removesuffix("-heading")
        published = values[values["indicator_id"] == indicator]
        if published.empty:
            continue
        table = tables_with(article, "Numerator")[0]
        period = table.caption.get_text().rsplit(", ", 1)[1].removesuffix(" (the chart's data)")
        for tr in table.tbody.find_all("tr"):
            label = tr.th.get_text()
            value, _, numerator, denominator = (td.get_text() for td in tr.find_all("td")[:4])
            row = _published_row(published, label, period)
            assert numerator == (number(row["numerator"], 0) or "withheld"), (indicator, label)
            assert denominator == (number(row["denominator"], 0) or "withheld"), (indicator, label)
            assert value == (number(row["value"]) or "withheld"), (indicator, label)
            checked += 1
    assert checked > 50
    for cell in page.select("td"):
        for count in re.findall(r"(?<![\w.,])(\d{1,3}(?:,\d{3})*)(?![\w.,%])", cell.get_text()):
            shown = int(count.replace(",", ""))
            assert not 1 <= shown <= 7, f"a count of {shown} in {cell}"


def _published_row(published: pd.DataFrame, label: str, period: str) -> pd.Series:
    """The release row a table row shows: the group (or All persons) in the table's period."""
    from transforms.report.content import period_label

    labelled = published.assign(period=published.apply(period_label, axis=1))
    chosen = labelled[(labelled["group_label"] == label) & (labelled["period"] == period)]
    chosen = chosen[chosen["breakdown"].isin(["ethnicity_5", "all"])]
    measures = list(chosen["measure"])
    preferred = "dsr" if "dsr" in measures else measures[0]
    return chosen[chosen["measure"] == preferred].iloc[0]


def test_pipeline_health_lists_every_source_for_the_month(built):
    page = BeautifulSoup(built["html"], "html.parser")
    section = page.find(id="pipeline-health")
    rows = section.find("table").tbody.find_all("tr")
    assert len(rows) == 10
    statuses = {tr.find_all("td")[0].get_text() for tr in rows}
    assert statuses == {"loaded"}


def test_the_pdf_is_a4_titled_in_english_and_has_every_section(built):
    reader = PdfReader(built["result"].pdf)
    assert len(reader.pages) > 5
    width, height = (float(v) for v in reader.pages[0].mediabox[2:])
    assert (round(width), round(height)) == (595, 842)  # A4 in points
    assert reader.metadata.title == "Race equality assurance report, October 2025"
    catalog = reader.trailer["/Root"]
    assert catalog["/Lang"] == "en-GB" and "/StructTreeRoot" in catalog  # tagged
    text = " ".join(page.extract_text() for page in reader.pages)
    for heading in HEADINGS:
        assert heading in text, heading
    assert re.search(r"Page 1 of \d+", text)


def test_the_report_opens_offline_with_no_accessibility_violation(built, browser, tmp_path):
    page, attempted = open_offline(browser, built["result"].html)
    assert page.locator("h1").inner_text() == "Race equality assurance report, October 2025"
    assert page.locator("svg[role=img]").count() > 10
    violations = run_axe(page)
    page.screenshot(path=str(tmp_path / "assurance_report.png"), full_page=True)
    print(f"screenshot: {tmp_path / 'assurance_report.png'}")
    assert attempted == []
    assert violations == [], [(v["id"], v["nodes"][0]["target"]) for v in violations]


def test_hei_report_says_when_there_is_no_release(tmp_path):
    env = user_env(tmp_path)
    missing = hei(
        "report",
        "--warehouse",
        f"duckdb:///{tmp_path / 'w.duckdb'}",
        "--publish",
        str(tmp_path),
        env=env,
    )
    assert missing.returncode == 1
    assert "no release has been published" in missing.stderr


def test_hei_run_knows_the_latest_releases_report_is_built_only_from_its_html_and_pdf(
    built, tmp_path
):
    publish, reports = str(built["root"] / "publish"), built["root"] / "reports"
    assert report_of_latest_release_exists(publish, reports)
    assert report_of_latest_release_exists(str(tmp_path / "nothing published"), tmp_path)
    assert not report_of_latest_release_exists(publish, tmp_path / "no reports")
    copy = tmp_path / "reports"
    shutil.copytree(reports, copy)
    html = copy / MONTH / "assurance_report.html"
    release_id = built["release"].release_id
    html.write_text(html.read_text().replace(f">{release_id}<", ">2025-09<"))
    assert not report_of_latest_release_exists(publish, copy)  # built from an older release
    shutil.copytree(reports, copy, dirs_exist_ok=True)
    (copy / MONTH / "assurance_report.pdf").unlink()
    assert not report_of_latest_release_exists(publish, copy)  # its PDF was never written
