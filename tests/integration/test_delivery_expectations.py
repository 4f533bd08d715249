"""Great Expectations on deliveries as they land: each expectation fails on a crafted delivery.

Real suites on real warehouses (DuckDB and PostgreSQL). A ``reject`` expectation failing
refuses the delivery and rolls its load back; a ``warn`` one loads it and stores a warning.
Either way the delivery's Data Docs page shows the failure.

The Data Docs must work on a laptop without internet: a real browser (Debian's ``chromium``,
which ``.ci/run`` installs when missing, driven headless by Playwright), with every network
request refused, shows the index table (built by the vendored jQuery and bootstrap-table) and
a delivery's page, and nothing tries to reach an outside host. Without chromium those tests
skip, unless ``CI`` or ``REQUIRE_BROWSER=1`` is set.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.browser import open_offline
from transforms import tasks as pipeline
from transforms.config.settings import Settings
from transforms.ingest import load as ingest
from transforms.ingest.audit import LoadRecord
from transforms.quality import validation
from transforms.warehouse.engine import make_engine

HEADER = (
    "appointment_id,nhs_number,practice_code,appointment_date,appointment_status,"
    "appointment_mode,hcp_type,ethnic_category"
)
REGISTER_HEADER = "nhs_number,practice_code,age,sex,ethnic_category"


def nhs_number(serial: int) -> str:
    """A valid NHS number in the 999 test range (serials whose check digit would be 10 are
    skipped by the caller)."""
    digits = f"999{serial:06d}"
    total = sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True))
    check = (11 - total % 11) % 11
    return f"{digits}{check}" if check != 10 else ""


PEOPLE = [n for n in (nhs_number(i) for i in range(1, 2000)) if n][:600]
STRANGERS = PEOPLE[300:]  # never on the register below


def appointments(
    month: str,
    n: int,
    *,
    status: Callable[[int], str] = lambda i: "DNA" if i % 10 == 0 else "Attended",
    practice: Callable[[int], str] = lambda i: "P92001" if i % 2 else "P92002",
    day: Callable[[int], int] = lambda i: 1 + i % 28,
    ethnic: Callable[[int], str] = lambda i: "A",
    people: list[str] = PEOPLE[:300],
) -> list[str]:
    return [
        f"{month}-{i},{people[i % len(people)]},{practice(i)},{month}-{day(i):02d},"
        f"{status(i)},Video,GP,{ethnic(i)}"
        for i in range(n)
    ]


def deliver(settings: Settings, source: str, month: str, lines: list[str], header: str) -> None:
    path = settings.landing_dir / source / f"{source}_{month}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *lines]) + "\n")
    os.utime(path, (path.stat().st_mtime - 60,) * 2)


def deliver_appointments(settings: Settings, month: str, lines: list[str]) -> None:
    deliver(settings, "gp_appointments", month, lines, HEADER)


def deliver_register(settings: Settings, month: str, people: list[str]) -> None:
    lines = [f"{p},P92001,40,1,A" for p in people]
    deliver(settings, "gp_register", month, lines, REGISTER_HEADER)


def run(settings: Settings, source: str = "gp_appointments") -> list[dict]:
    pipeline.prepare_warehouse(settings)
    groups = pipeline.find_deliveries(settings, source, None)
    records = [r for g in groups for r in pipeline.load_month(settings, g, "test-run")]
    pipeline.render_data_docs(settings, [records])
    return records


def query(settings: Settings, sql: str, **params: object) -> list[tuple]:
    with make_engine(settings.warehouse_url).connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params)]


def page(settings: Settings, month: str, severity: str) -> str:
    """The delivery's Data Docs page for one suite (there must be exactly one)."""
    site = settings.var_dir / "data_docs" / "validations" / "gp_appointments" / severity
    [found] = [p for p in site.rglob("*.html") if f"gp_appointments_{month}.csv {month}" in str(p)]
    return found.read_text()


def loaded_history(settings: Settings, months: int = 2) -> None:
    """Two ordinary months (300 rows each) that later months are compared with."""
    for month in ("2025-01", "2025-02")[:months]:
        deliver_appointments(settings, month, appointments(month, 300))
    assert {r["status"] for r in run(settings)} == {"loaded"}


def assert_rejected(record: dict, settings: Settings, month: str, *phrases: str) -> None:
    assert record["status"] == "rejected"
    error = record["error"]
    assert error.startswith(f"[failed_validation] gp_appointments_{month}.csv: ")
    assert "Great Expectations suite gp_appointments.reject failed, so nothing was loaded" in error
    for phrase in phrases:
        assert phrase in error
    assert "The Data Docs show the delivery's checks" in error
    assert query(
        settings, "select count(*) from staging.stg_gp_appointments where period = :p", p=month
    ) == [(0,)]
    assert "Failed" in page(settings, month, "reject") or "failed" in page(
        settings, month, "reject"
    )


def warnings_of(settings: Settings, month: str) -> list[tuple[str, str]]:
    return query(
        settings,
        "select kind, message from quality.warnings where period = :p order by kind",
        p=month,
    )


# --- reject ----------------------------------------------------------------------------------


def test_a_delivery_a_third_the_size_of_recent_months_is_rejected_and_rolls_back(settings):
    loaded_history(settings)
    deliver_appointments(settings, "2025-03", appointments("2025-03", 90))
    [record] = run(settings)
    assert_rejected(record, settings, "2025-03", "90 rows loaded", "median of 2025-01, 2025-02")
    assert "rows loaded" in page(settings, "2025-03", "reject")


def test_a_delivery_three_times_the_size_of_recent_months_is_rejected(settings):
    loaded_history(settings)
    deliver_appointments(settings, "2025-03", appointments("2025-03", 1000))
    [record] = run(settings)
    assert_rejected(record, settings, "2025-03", "1,000 rows loaded")


def test_record_ids_repeating_after_de_duplication_reject_the_delivery(settings, monkeypatch):
    """The row rules keep the first of each id; if that ever failed, GX refuses the month."""
    monkeypatch.setattr(ingest, "_quarantine_repeats", lambda *_args: None)
    lines = appointments("2025-01", 150)
    deliver_appointments(settings, "2025-01", [*lines, lines[0], lines[1]])
    [record] = run(settings)
    assert_rejected(record, settings, "2025-01", "2 repeated appointment_id")


# --- warn ------------------------------------------------------------------------------------


def test_events_piled_on_one_date_warn(settings):
    lines = appointments("2025-01", 200, day=lambda i: 1 if i % 5 else 2 + i % 27)
    deliver_appointments(settings, "2025-01", lines)
    [record] = run(settings)
    assert record["status"] == "loaded"
    [(kind, message)] = warnings_of(settings, "2025-01")
    assert kind == "date_spread"
    assert "160 of 200 rows (80.0%) dated 2025-01-01" in message
    assert "more than 50% of the rows" in message
    assert "2025-01-01" in page(settings, "2025-01", "warn")  # the date, named


def test_a_shift_in_the_mix_of_status_codes_warns_and_loads(settings):
    loaded_history(settings)
    lines = appointments("2025-03", 300, status=lambda i: "DNA" if i % 2 else "Attended")
    deliver_appointments(settings, "2025-03", lines)
    [record] = run(settings)
    assert record["status"] == "loaded"
    [(kind, message)] = warnings_of(settings, "2025-03")
    assert kind == "code_shares"
    assert "appointment_status = DNA: 50.0% of rows (recent months 10.0%" in message
    assert message in record["warnings"]
    assert "appointment_status = DNA" in page(settings, "2025-03", "warn")


def test_fewer_people_found_in_the_register_warns(settings):
    for month in ("2024-12", "2025-01", "2025-02"):
        deliver_register(settings, month, PEOPLE[:300])
    assert {r["status"] for r in run(settings, "gp_register")} == {"loaded"}
    loaded_history(settings)
    lines = appointments("2025-03", 300, people=PEOPLE[:100] + STRANGERS[:200])
    deliver_appointments(settings, "2025-03", lines)
    [record] = run(settings)
    assert record["status"] == "loaded"
    [(kind, message)] = warnings_of(settings, "2025-03")
    assert kind == "register_share"
    assert "100 of 300 rows (33.3%) are of people in the register snapshot of 2025-02" in message
    assert "recent months 100.0%" in message


def test_the_register_check_is_skipped_when_last_months_snapshot_was_not_loaded(settings):
    deliver_register(settings, "2025-01", PEOPLE[:300])
    deliver_register(settings, "2025-02", [])  # a header alone: rejected, nothing loaded
    assert [r["status"] for r in run(settings, "gp_register")] == ["loaded", "rejected"]
    loaded_history(settings)
    lines = appointments("2025-03", 300, people=STRANGERS[:300])
    deliver_appointments(settings, "2025-03", lines)
    [record] = run(settings)
    assert record["status"] == "loaded" and record["warnings"] == []
    [(statistics,)] = query(
        settings,
        "select statistics from quality.validation_runs "
        "where period = '2025-03' and suite = 'gp_appointments.warn'",
    )
    skipped = json.loads(statistics)["skipped"]
    assert skipped["register_share"] == "last month's register snapshot is not loaded"


def test_an_organisation_that_delivered_last_month_and_not_this_one_warns(settings):
    loaded_history(settings)
    one_practice = appointments("2025-03", 300, practice=lambda i: "P92001")
    deliver_appointments(settings, "2025-03", one_practice)
    [record] = run(settings)
    assert record["status"] == "loaded"
    [(kind, message)] = warnings_of(settings, "2025-03")
    assert kind == "organisations"
    assert "P92002: 150 rows in 2025-02, 0 now" in message
    assert "P92002" in page(settings, "2025-03", "warn")


def test_ethnicity_completeness_below_threshold_warns_from_the_one_sql_computation(settings):
    lines = appointments("2025-01", 200, ethnic=lambda i: "A" if i % 4 == 0 else "99")
    deliver_appointments(settings, "2025-01", lines)
    [record] = run(settings)
    assert record["status"] == "loaded"
    [(kind, message)] = warnings_of(settings, "2025-01")
    assert kind == "ethnicity_completeness"
    assert message.startswith(
        "gp_appointments 2025-01: ethnicity recorded for less than the 90% threshold "
        "(25.0% known overall; 2 organisation(s) below"
    )
    stored = query(
        settings,
        "select pct_known from quality.ethnicity_completeness where source = 'gp_appointments' "
        "and organisation = 'ALL' and basis = 'recorded'",
    )
    assert [round(float(p), 1) for (p,) in stored] == [25.0]
    assert "ALL" in page(settings, "2025-01", "warn")


# --- the first delivery, and what is recorded ------------------------------------------------


def test_the_first_delivery_skips_the_history_checks_visibly_and_passes(settings):
    deliver_appointments(settings, "2025-01", appointments("2025-01", 300))
    [record] = run(settings)
    assert record["status"] == "loaded" and record["warnings"] == []
    runs = query(
        settings,
        "select suite, success, rows_validated, statistics from quality.validation_runs "
        "order by suite",
    )
    assert [(s, ok, n) for s, ok, n, _ in runs] == [
        ("gp_appointments.reject", True, 300),
        ("gp_appointments.warn", True, 300),
    ]
    skipped = json.loads(runs[0][3])["skipped"]
    assert "first delivery of the source" in skipped["volume"]
    assert "first delivery of the source" in skipped["code_shares"]
    assert "Skipped: first delivery of the source" in page(settings, "2025-01", "reject")
    assert "Skipped: first delivery of the source" in page(settings, "2025-01", "warn")


def test_an_ordinary_month_after_history_passes_every_expectation(settings):
    loaded_history(settings)
    deliver_appointments(settings, "2025-03", appointments("2025-03", 310))
    [record] = run(settings)
    assert record["status"] == "loaded" and record["warnings"] == []
    assert query(
        settings,
        "select suite, success, evaluated, successful from quality.validation_runs "
        "where period = '2025-03' order by suite",
    ) == [("gp_appointments.reject", True, 2, 2), ("gp_appointments.warn", True, 5, 5)]


def test_data_docs_have_one_page_per_delivery_and_suite_named_for_the_file_and_month(settings):
    loaded_history(settings)
    site = settings.var_dir / "data_docs"
    pages = sorted(p.relative_to(site / "validations") for p in site.rglob("validations/**/*.html"))
    assert len(pages) == 4  # two deliveries, two suites
    for path in pages:
        suite, severity, run_name, run_time, batch = path.parts
        assert suite == "gp_appointments" and severity in ("reject", "warn")
        assert run_name.startswith(("gp_appointments_2025-01.csv 2025-01 load ",
                                    "gp_appointments_2025-02.csv 2025-02 load "))  # fmt: skip
        assert re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z", run_time), run_time  # when validated
        assert batch == f"gp_appointments_{run_name[16:23]}.html"
    index = (site / "index.html").read_text()
    assert "__none__" not in index and "gp_appointments_2025-02.csv (2025-02)" in index
    assert "Data asset: None" not in index


def test_the_data_docs_index_lists_only_the_newest_results_and_keeps_every_page(
    settings, monkeypatch
):
    monkeypatch.setattr(validation, "INDEX_RESULTS", 2)  # one delivery's two suites
    for month in ("2025-01", "2025-02"):
        deliver_appointments(settings, month, appointments(month, 300))
        assert {r["status"] for r in run(settings)} == {"loaded"}
    site = settings.var_dir / "data_docs"
    index = (site / "index.html").read_text()
    assert "gp_appointments_2025-02.csv (2025-02)" in index
    assert "gp_appointments_2025-01.csv" not in index
    assert len(list(site.rglob("validations/**/*.html"))) == 4  # the older pages stay


def test_a_run_with_more_results_than_the_index_lists_still_renders_every_page(
    settings, monkeypatch
):
    monkeypatch.setattr(validation, "INDEX_RESULTS", 2)  # one delivery's two suites
    loaded_history(settings)  # two deliveries, four results, rendered together
    site = settings.var_dir / "data_docs"
    assert len(list(site.rglob("validations/**/*.html"))) == 4
    index = (site / "index.html").read_text()
    assert "gp_appointments_2025-02.csv (2025-02)" in index
    assert "gp_appointments_2025-01.csv" not in index


def test_data_docs_load_nothing_from_outside_hosts(settings):
    loaded_history(settings, months=1)
    site = settings.var_dir / "data_docs"
    for html in site.rglob("*.html"):
        text = html.read_text()
        assert "https://cdn" not in text and "unpkg.com" not in text, html
        assert "amazonaws" not in text and "data_context_id" not in text, html
    assert (site / "static" / "vendor" / "jquery" / "dist" / "jquery.min.js").exists()
    readme = (site / "static" / "vendor" / "README").read_text().splitlines()
    assert len([line for line in readme if "@" in line]) == 10  # the packages, with licences


# --- the Data Docs in a browser, offline -----------------------------------------------------


@pytest.fixture
def docs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    settings = Settings(
        var_dir=tmp_path / "var",
        landing_dir=tmp_path / "landing",
        warehouse_url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
        pseudonym_key="test-key-not-secret",
        settle_seconds=0,
    )
    for month in ("2025-01", "2025-02"):
        deliver_appointments(settings, month, appointments(month, 300))
    lines = appointments("2025-03", 300, status=lambda i: "DNA" if i % 2 else "Attended")
    deliver_appointments(settings, "2025-03", lines)
    assert [r["status"] for r in run(settings)] == ["loaded"] * 3
    return settings.var_dir / "data_docs"


def test_the_index_table_shows_with_the_network_blocked(browser, docs):
    page, attempted = open_offline(browser, docs / "index.html")
    rows = page.locator("table tbody tr", has_text=" load ")  # filled in by bootstrap-table
    rows.first.wait_for(state="visible", timeout=10_000)
    assert rows.count() == 6  # three deliveries, two suites each
    text = page.locator("body").inner_text()
    assert "gp_appointments_2025-03.csv (2025-03)" in text
    assert "gp_appointments_2025-01.csv 2025-01 load" in text
    assert attempted == []


def test_a_delivery_page_shows_its_failed_expectation_with_the_network_blocked(browser, docs):
    [path] = [
        p
        for p in (docs / "validations" / "gp_appointments" / "warn").rglob("*.html")
        if "2025-03 load" in str(p)
    ]
    page, attempted = open_offline(browser, path)
    page.get_by_text("appointment_status = DNA").first.wait_for(state="visible", timeout=10_000)
    body = page.locator("body").inner_text()
    assert "appointment_status = DNA" in body
    assert "WARN unless each code's share" in body
    assert attempted == []


def test_results_of_a_load_that_never_committed_leave_the_data_docs(settings, monkeypatch):
    """GX stores a delivery's results just before the load commits; a load that dies then
    (here: the audit write fails) leaves results for rows that were rolled back. The next
    render deletes them, so the Data Docs show nothing that is not in the warehouse."""
    loaded_history(settings, months=1)
    deliver_appointments(settings, "2025-02", appointments("2025-02", 300))

    def die(*_args):
        raise RuntimeError("the worker died before the commit")

    with monkeypatch.context() as patched, pytest.raises(RuntimeError, match="before the commit"):
        patched.setattr(ingest.audit, "record", die)
        run(settings)
    stored = settings.var_dir / "gx" / "uncommitted" / "validations" / "gp_appointments"
    assert any("2025-02 load" in str(p) for p in stored.rglob("*.json"))  # written, never committed
    died = LoadRecord(
        load_id="0", source="gp_appointments", file_name="gp_appointments_2025-02.csv",
        period="2025-02", sha256="0" * 64, status="loaded",
    )  # fmt: skip
    pipeline.render_data_docs(settings, [[died.to_xcom()]])
    assert not any("2025-02 load" in str(p) for p in stored.rglob("*.json"))
    site = settings.var_dir / "data_docs" / "validations"
    assert not any("2025-02 load" in str(p) for p in site.rglob("*.html"))
    assert any("2025-01 load" in str(p) for p in site.rglob("*.html"))  # committed: kept
