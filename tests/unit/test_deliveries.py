"""When a month's delivery is due, which months are late, and when to alert again: pure dates."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from transforms.config.sources import SOURCES
from transforms.ops.deliveries import (
    ALERT_LINES,
    History,
    LateDelivery,
    alert_text,
    alerts_due,
    due_date,
    expected_months,
    late_months,
)

DEATHS = SOURCES["deaths"]  # due on the 15th of the following month


def history(periods: set[str], loaded: set[str], latest: dict[str, str] | None = None) -> History:
    return History(frozenset(periods), frozenset(loaded), latest or {})


def test_a_month_is_due_on_its_day_of_the_following_month():
    assert due_date("2025-10", 15) == date(2025, 11, 15)
    assert due_date("2025-12", 21) == date(2026, 1, 21)


def test_a_month_is_expected_only_once_its_due_day_has_passed():
    assert expected_months("2025-09", date(2025, 11, 15), 15) == ["2025-09"]
    assert expected_months("2025-09", date(2025, 11, 16), 15) == ["2025-09", "2025-10"]


def test_nothing_is_expected_before_the_first_month_is_due():
    assert expected_months("2025-10", date(2025, 11, 1), 15) == []


def test_every_source_is_due_on_a_day_every_month_has():
    assert all(1 <= s.delivery_day <= 28 for s in SOURCES.values())
    with pytest.raises(ValueError, match="delivery_day must be 1-28"):
        replace(DEATHS, delivery_day=31)


def test_the_first_day_late_is_one_day_late():
    (late,) = late_months(DEATHS, history({"2025-09"}, {"2025-09"}), date(2025, 11, 16))
    assert (late.period, late.due, late.days_late) == ("2025-10", date(2025, 11, 15), 1)
    assert late.message == "deaths 2025-10: 1 day late (due 2025-11-15); no file has arrived"


def test_a_gap_in_the_middle_of_the_history_is_late():
    loaded = {"2025-07", "2025-09"}
    late = late_months(DEATHS, history(loaded, loaded), date(2025, 10, 20))
    assert [(d.period, d.days_late) for d in late] == [("2025-08", 35)]


def test_a_rejected_delivery_leaves_its_month_late_and_says_so():
    seen = history({"2025-09", "2025-10"}, {"2025-09"}, {"2025-10": "rejected"})
    (late,) = late_months(DEATHS, seen, date(2025, 11, 20))
    assert late.attempt == "rejected"
    assert late.message.endswith("5 days late (due 2025-11-15); its delivery was rejected")


def test_a_month_loaded_after_a_rejection_is_delivered():
    seen = history({"2025-10"}, {"2025-10"}, {"2025-10": "rejected"})
    assert late_months(DEATHS, seen, date(2025, 12, 1)) == []


def test_a_source_that_never_delivered_is_expected_only_from_a_configured_start():
    never = history(set(), set())
    assert late_months(DEATHS, never, date(2025, 12, 1)) == []
    late = late_months(DEATHS, never, date(2025, 12, 1), expected_from="2025-09")
    assert [d.period for d in late] == ["2025-09", "2025-10"]


def test_a_configured_start_stops_expecting_earlier_months():
    seen = history({"2024-01", "2025-10"}, {"2025-10"})
    assert late_months(DEATHS, seen, date(2025, 12, 1), expected_from="2025-10") == []


LATE = LateDelivery("deaths", "2025-10", date(2025, 11, 15), 1)


def test_a_late_month_never_alerted_is_alerted():
    assert alerts_due([LATE], {}, date(2025, 11, 16)) == [LATE]


@pytest.mark.parametrize(
    ("last", "today", "again"),
    [
        (date(2025, 11, 16), date(2025, 11, 16), False),  # a rerun the same day
        (date(2025, 11, 16), date(2025, 11, 22), False),
        (date(2025, 11, 16), date(2025, 11, 23), True),  # a week on: reminded
        (date(2025, 11, 16), date(2026, 2, 1), True),  # the check was off for weeks
    ],
)
def test_a_late_month_is_alerted_again_only_weekly(last, today, again):
    assert alerts_due([LATE], {("deaths", "2025-10"): last}, today) == ([LATE] if again else [])


def test_the_alert_names_each_source_month_and_days_late():
    other = LateDelivery("workforce", "2025-09", date(2025, 10, 15), 33, "in_progress")
    title, lines = alert_text([LATE, other], date(2025, 11, 17))
    assert title == "health-equity-indicators: 2 late deliveries on 2025-11-17"
    assert lines[:2] == [
        "deaths 2025-10: 1 day late (due 2025-11-15); no file has arrived",
        "workforce 2025-09: 33 days late (due 2025-10-15); a file is still arriving",
    ]


def test_a_long_list_of_late_months_is_cut_short_and_counted():
    many = [replace(LATE, period=f"20{y:02d}-01") for y in range(ALERT_LINES + 5)]
    title, lines = alert_text(many, date(2025, 11, 17))
    assert title.startswith(f"health-equity-indicators: {ALERT_LINES + 5} late deliveries")
    assert lines[ALERT_LINES - 1].startswith("deaths 20")
    assert lines[ALERT_LINES:] == [
        "... and 5 more",
        "(reminded every 7 days until loaded; hei status)",
    ]


def test_a_late_month_whose_file_has_landed_but_not_loaded_says_so():
    seen = history({"2025-09"}, {"2025-09"})
    (late,) = late_months(DEATHS, seen, date(2025, 11, 16), landed={"2025-10", "2025-11"})
    assert late.attempt == "landed"
    assert late.message.endswith(
        "(due 2025-11-15); its file has landed and waits for the next ingest run"
    )


def test_a_failed_attempt_says_more_than_a_landed_file():
    seen = history({"2025-09", "2025-10"}, {"2025-09"}, {"2025-10": "rejected"})
    (late,) = late_months(DEATHS, seen, date(2025, 11, 20), landed={"2025-10"})
    assert late.attempt == "rejected"
