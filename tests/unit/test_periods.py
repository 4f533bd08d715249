from datetime import date

import pytest

from transforms.core.periods import month_after, periods

TWO_YEARS = [month_after("2024-11", i) for i in range(24)]  # 2024-11 .. 2026-10


def test_months_are_calendar_months():
    [december] = periods("month", ["2024-12"])
    assert (december.start, december.end, december.label) == (
        date(2024, 12, 1),
        date(2024, 12, 31),
        "2024-12",
    )


def test_rolling_years_need_all_twelve_months():
    found = periods("rolling_12m", TWO_YEARS)
    assert [p.label for p in (found[0], found[-1])] == ["2024-11..2025-10", "2025-11..2026-10"]
    assert len(found) == 13
    assert (
        periods("rolling_12m", [m for m in TWO_YEARS if m != "2025-06"])[0].months[-1] == "2026-06"
    )


def test_flu_seasons_run_october_to_march_and_only_complete_ones_count():
    seasons = periods("season_flu", TWO_YEARS)  # the 2024/25 season lacks October 2024
    assert [(s.start, s.end) for s in seasons] == [(date(2025, 10, 1), date(2026, 3, 31))]


def test_covid_autumn_campaign_is_september_to_december():
    campaigns = periods("campaign_covid_autumn", TWO_YEARS)
    assert [c.label for c in campaigns] == ["2025-09..2025-12"]


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown period kind"):
        periods("fortnight", TWO_YEARS)
