"""Indicator assembly on hand-made counts: groups, periods, comparisons, disclosure."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from transforms import aggregation, indicators
from transforms.catalogue import catalogue
from transforms.periods import Period, periods
from transforms.warehouse import make_engine

JANUARY = Period("month", date(2025, 1, 1), date(2025, 1, 31), ("2025-01",))
MONTH = {"period_type": "month", "period_start": JANUARY.start, "period_end": JANUARY.end}


def counts(by_code: dict[str, int]) -> pd.DataFrame:
    rows = [{**MONTH, "ethnic_code": c, "age_band": "all", "n": n} for c, n in by_code.items()]
    return pd.DataFrame(rows)


def acc02(numerator: dict[str, int], denominator: dict[str, int]) -> pd.DataFrame:
    frame = indicators.indicator_values(
        catalogue()["ACC02"], "proportion", counts(numerator), counts(denominator), [JANUARY]
    )
    return frame.set_index(["breakdown", "group_label"])


@pytest.mark.parametrize(
    ("age", "band"), [(0, "0-4"), (4, "0-4"), (5, "5-9"), (89, "85-89"), (90, "90+"), (104, "90+")]
)
def test_age_band_follows_esp2013(age, band):
    with make_engine("duckdb:///:memory:").connect() as conn:
        assert conn.execute(sa.select(aggregation.age_band(sa.literal(age)))).scalar() == band


def test_acsc_prefixes_expand_ranges_and_drop_the_filler_x():
    chronic = aggregation.acsc_prefixes("chronic")
    assert {"J45", "I10", "E100", "E108", "I240"} <= set(chronic)
    assert "E109" not in chronic and "L03" not in chronic  # range end; an acute condition


def test_person_years_are_the_mean_of_the_monthly_snapshots():
    months = [f"2024-{m:02d}" for m in range(1, 13)]
    monthly = pd.DataFrame(
        {"month": months, "ethnic_code": "A", "age_band": "0-4", "n": range(100, 112)}
    )
    (year,) = periods("rolling_12m", months)
    summed = indicators.in_periods(monthly, [year], mean=True)
    assert summed["n"].tolist() == [sum(range(100, 112)) / 12]


def test_codes_roll_up_to_groups_and_empty_groups_show_as_zero():
    table = acc02({"A": 10, "B": 5, "H": 9}, {"A": 200, "B": 100, "H": 90, "Z": 30})
    assert table.loc[("ethnicity_5", "White"), "numerator"] == 15
    assert table.loc[("ethnicity_5", "White"), "denominator"] == 300
    assert table.loc[("ethnicity_5", "Black or Black British"), "denominator"] == 0
    assert table.loc[("all", "All persons"), "denominator"] == 420
    assert len(table.loc["ethnicity_16"]) == 18 and len(table.loc["ethnicity_5"]) == 7


def test_ratio_to_white_is_the_risk_ratio_with_a_log_scale_interval():
    table = acc02({"A": 40, "H": 30}, {"A": 1000, "H": 500})
    asian = table.loc[("ethnicity_5", "Asian or Asian British")]
    se = math.sqrt(1 / 30 - 1 / 500 + 1 / 40 - 1 / 1000)  # Katz et al. 1978
    assert asian["ratio"] == pytest.approx(1.5, rel=1e-12)
    assert asian["ratio_lower95_0cl"] == pytest.approx(1.5 * math.exp(-1.959964 * se), rel=1e-6)
    assert asian["ratio_upper95_0cl"] == pytest.approx(1.5 * math.exp(1.959964 * se), rel=1e-6)
    assert asian["significance_vs_reference_95_0"] == "Similar"


def test_reference_unknown_groups_and_all_persons_are_not_compared():
    table = acc02({"A": 40, "H": 300, "Z": 20}, {"A": 1000, "H": 1000, "Z": 100})
    white = table.loc[("ethnicity_5", "White")]
    assert white["ratio"] == 1.0 and white["significance_vs_reference_95_0"] == "Not compared"
    for label in ("Not stated", "Not known"):
        row = table.loc[("ethnicity_5", label)]
        assert math.isnan(row["ratio"]) and row["significance_vs_all_95_0"] == "Not compared"
    assert table.loc[("all", "All persons"), "significance_vs_all_95_0"] == "Not compared"
    # ACC02 (DNA) has polarity low_is_good: a much higher DNA share is Worse
    assert table.loc[("ethnicity_5", "Asian or Asian British"), "significance_vs_all_95_0"] == (
        "Worse"
    )


def test_small_sixteen_group_cell_is_protected_within_its_five_group():
    table = acc02(
        {"A": 400, "H": 3, "J": 40, "K": 50, "M": 60, "N": 70},
        {"A": 4000, "H": 300, "J": 400, "K": 500, "M": 600, "N": 700},
    )
    sixteen = table.loc["ethnicity_16"]
    hidden = sixteen[sixteen["published_numerator"].isna()].index.tolist()
    assert "Asian or Asian British - Indian" in hidden
    assert "Asian or Asian British - Pakistani" in hidden  # the smallest sibling, same parent
    assert not any(label.startswith("Black") for label in hidden)
    indian = sixteen.loc["Asian or Asian British - Indian"]
    assert indian["suppressed"] and "small_count" in indian["suppression_reason"]


def test_completeness_shows_each_organisation_and_the_source_total():
    rows = [
        ("ae_attendances", "RRF", 80, 100),
        ("ae_attendances", "R0A", 5, 10),
        ("ae_attendances", "ALL", 85, 110),
        ("deaths", "ALL", 30, 32),  # no organisation column: its total is its only row
    ]
    counts = pd.DataFrame(rows, columns=["source", "organisation", "known", "records"])
    table = indicators.completeness_values(catalogue()["DQ01"], counts.assign(**MONTH))
    table = table.set_index("group_label")
    assert sorted(table.index) == [
        "ae_attendances: R0A",
        "ae_attendances: RRF",
        "ae_attendances: all organisations",
        "deaths: all organisations",
    ]
    assert table.loc["deaths: all organisations", "value"] == pytest.approx(100 * 30 / 32)
    assert table.loc["ae_attendances: R0A", "suppressed"]  # 5 known: a small count
    assert table.loc["ae_attendances: RRF", "suppressed"]  # else R0A = total - RRF
