"""Late deliveries from the audit rows, and the daily check's alerts, on DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from tests.support.audit_rows import record_load
from transforms import tasks as pipeline
from transforms.config.settings import Settings
from transforms.config.sources import SOURCES
from transforms.ingest.landing import landed_months
from transforms.ops.deliveries import late_deliveries
from transforms.warehouse import ddl
from transforms.warehouse.engine import make_engine
from transforms.warehouse.tables import audit_delivery_alerts

DEATHS_LATE = "deaths 2025-10: {days} late (due 2025-11-15); its delivery was rejected"
WORKFORCE_LATE = "workforce 2025-10: {days} late (due 2025-11-15); a file is still arriving"


@pytest.fixture
def audited(settings: Settings) -> Settings:
    """Deaths: August and September loaded (September resubmitted), October rejected.
    Workforce: September loaded, October still arriving. No other source has delivered."""
    ddl.apply_ddl(make_engine(settings.warehouse_url))
    record_load(settings.warehouse_url, "deaths", "2025-08", "loaded")
    record_load(settings.warehouse_url, "deaths", "2025-09", "superseded")
    record_load(settings.warehouse_url, "deaths", "2025-09", "loaded", minute=1)
    record_load(settings.warehouse_url, "deaths", "2025-10", "rejected")
    record_load(settings.warehouse_url, "workforce", "2025-09", "loaded")
    record_load(settings.warehouse_url, "workforce", "2025-10", "in_progress")
    return settings


def late_on(settings: Settings, today: date, expected_from: str | None = None) -> list[str]:
    landed = landed_months(settings.landing_dir, SOURCES)
    with make_engine(settings.warehouse_url).connect() as conn:
        return [d.message for d in late_deliveries(conn, today, expected_from, landed=landed)]


def test_the_audit_rows_give_the_late_months_with_what_became_of_them(audited):
    assert late_on(audited, date(2025, 11, 15)) == []
    assert late_on(audited, date(2025, 11, 20)) == [
        DEATHS_LATE.format(days="5 days"),
        WORKFORCE_LATE.format(days="5 days"),
    ]


def test_a_configured_start_expects_sources_that_never_delivered(audited):
    late = late_on(audited, date(2025, 11, 16), expected_from="2025-10")
    assert "recruitment 2025-10: 1 day late (due 2025-11-15); no file has arrived" in late
    assert not any(m.startswith("ae_attendances") for m in late)  # due on the 21st


def test_a_late_month_that_loads_is_no_longer_late(audited):
    record_load(audited.warehouse_url, "deaths", "2025-10", "loaded", minute=5)
    assert late_on(audited, date(2025, 11, 20)) == [WORKFORCE_LATE.format(days="5 days")]


def test_the_check_says_which_late_months_have_a_file_waiting_in_the_landing_zone(audited, webhook):
    url, received = webhook
    settings = audited.model_copy(
        update={"alert_webhook_url": url, "deliveries_expected_from": "2025-10"}
    )
    folder = settings.landing_dir / "recruitment"
    folder.mkdir(parents=True)
    (folder / "recruitment_2025-10.csv").write_text("a 05:00 load still running, or failed\n")
    (folder / ".recruitment_2025-11.csv").write_text("hidden: still arriving\n")
    late = pipeline.check_deliveries(settings, date(2025, 11, 16), "run-16")
    assert (
        "recruitment 2025-10: 1 day late (due 2025-11-15); its file has landed and waits for "
        "the next ingest run" in late
    )
    assert "gp_appointments 2025-10: 1 day late (due 2025-11-15); no file has arrived" in late
    assert received and "recruitment 2025-10" in received[0]["text"]


def alerts(settings: Settings) -> list[tuple]:
    a = audit_delivery_alerts.c
    with make_engine(settings.warehouse_url).connect() as conn:
        query = sa.select(a.source, a.period, a.alerted_on, a.days_late)
        return [tuple(r) for r in conn.execute(query.order_by(a.alerted_on, a.source))]


def test_the_check_alerts_on_the_first_day_late_then_weekly(audited, webhook):
    url, received = webhook
    settings = audited.model_copy(update={"alert_webhook_url": url})
    for day in (15, 16, 16, 20, 23):  # not yet late, late, a rerun, four days on, a week on
        pipeline.check_deliveries(settings, date(2025, 11, day), f"run-{day}")
    assert [r["title"] for r in received] == [
        "health-equity-indicators: 2 late deliveries on 2025-11-16",
        "health-equity-indicators: 2 late deliveries on 2025-11-23",
    ]
    assert received[1]["text"].splitlines()[:2] == [
        DEATHS_LATE.format(days="8 days"),
        WORKFORCE_LATE.format(days="8 days"),
    ]
    assert alerts(settings) == [
        ("deaths", "2025-10", date(2025, 11, 16), 1),
        ("workforce", "2025-10", date(2025, 11, 16), 1),
        ("deaths", "2025-10", date(2025, 11, 23), 8),
        ("workforce", "2025-10", date(2025, 11, 23), 8),
    ]


def test_an_alert_the_webhook_did_not_take_is_sent_the_next_day(audited, webhook):
    url, received = webhook
    down = audited.model_copy(update={"alert_webhook_url": "http://127.0.0.1:9/nowhere"})
    late = pipeline.check_deliveries(down, date(2025, 11, 16), "run-16")
    assert len(late) == 2 and alerts(down) == []
    up = audited.model_copy(update={"alert_webhook_url": url})
    pipeline.check_deliveries(up, date(2025, 11, 17), "run-17")
    assert len(received) == 1 and len(alerts(up)) == 2
