"""transforms.report.spc against NHSRplotthedots' own output, and its edge cases.

The fixtures in tests/fixtures/spc are the R package run on reference cases (see the README
there): every point's every column, every group summary, icon, assurance and rule-helper case
must be reproduced, numbers to a relative 1e-9 and everything else exactly.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from transforms.report.spc import (
    ASSURANCE_LABELS,
    MINIMUM_POINTS,
    VARIATION_LABELS,
    SpcOptions,
    assurance_type,
    part_of_seven_trend,
    part_of_two_in_three,
    seven_point_one_side_mean,
    seven_point_trend,
    spc,
    summarise,
    two_in_three,
)

SPC = Path(__file__).resolve().parent.parent / "fixtures" / "spc"
RTOL = 1e-9
NUMBERS = ["y", "mean", "lpl", "upl"]
FLAGS = ["outside_limits", "close_to_limits"]  # NA where the limits are NaN
EXACT = ["rebase_group", "relative_to_mean", "special_cause_type", "point_type"]
BOOLEANS = ["special_cause_flag", "short_group_warning"]


def read(name: str) -> pd.DataFrame:
    """A fixture with every column as text, so NA, NaN and labels are read as written."""
    return pd.read_csv(SPC / name, dtype=str, keep_default_na=False)


INDEX = read("index.csv").set_index("case_id")


def options(case_id: str) -> SpcOptions:
    """The case's ``ptd_spc()`` arguments from index.csv."""
    case = INDEX.loc[case_id]
    return SpcOptions(
        improvement_direction=case["improvement_direction"],
        screen_outliers=case["screen_outliers"] == "TRUE",
        fix_after_n_points=int(case["fix_after_n_points"]) if case["fix_after_n_points"] else None,
        rebase_dates=tuple(date.fromisoformat(d) for d in case["rebase_dates"].split(";") if d),
        target=float(case["target"]) if case["target"] else None,
    )


def charts(case_id: str):
    """(facet, expected rows, chart) per facet of a case: the module charts one facet a call."""
    expected = read(INDEX.loc[case_id, "file"])
    for facet, rows in expected.groupby("facet", sort=False):
        rows = rows.reset_index(drop=True)
        dates = [date.fromisoformat(d) for d in rows["date"]]
        yield facet, rows, spc(dates, rows["y"].astype(float), options(case_id))


def flags(values: pd.Series) -> list[str]:
    """Nullable booleans written as the package writes them: TRUE, FALSE or NA."""
    return [("TRUE" if v else "FALSE") if pd.notna(v) else "NA" for v in values]


# --- the package's output, point by point -----------------------------------------------------


@pytest.mark.parametrize("case_id", INDEX.index)
def test_every_point_of_every_reference_chart_matches_the_package(case_id):
    for _, expected, got in charts(case_id):
        assert got["date"].tolist() == pd.to_datetime(expected["date"]).tolist()
        assert_allclose(got[NUMBERS], expected[NUMBERS].astype(float), rtol=RTOL)
        for column in FLAGS:
            assert flags(got[column]) == expected[column].tolist(), column
        for column in EXACT:
            assert got[column].astype(str).tolist() == expected[column].tolist(), column
        for column in BOOLEANS:
            assert flags(got[column]) == expected[column].tolist(), column


def test_the_chart_is_sorted_by_date_whatever_the_input_order():
    dates = [date(2024, 1, 1) + timedelta(days=i) for i in range(15)]
    values = [float(v) for v in (3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9)]
    forward = spc(dates, values)
    backward = spc(dates[::-1], values[::-1])
    pd.testing.assert_frame_equal(forward, backward)


@pytest.mark.parametrize(
    "row",
    read("summary.csv").to_dict("records"),
    ids=lambda r: f"{r['case_id']}-{r['rebase_group']}",
)
def test_each_group_summary_matches_the_packages_summary(row):
    facet_rows = [got for facet, _, got in charts(row["case_id"]) if facet == row["facet"]]
    chart = facet_rows[0]
    group = chart[chart["rebase_group"] == int(row["rebase_group"])]
    summary = summarise(group, options(row["case_id"]))
    assert summary.n == int(row["n"])
    assert_allclose(
        [summary.mean, summary.lpl, summary.upl],
        [float(row[c]) for c in ("mean", "lpl", "upl")],
        rtol=RTOL,
    )
    assert summary.variation == row["variation_type"]
    counts = {
        "common_cause": (~group["special_cause_flag"]).sum(),
        "special_cause_improvement": (group["point_type"] == "special_cause_improvement").sum(),
        "special_cause_concern": (group["point_type"] == "special_cause_concern").sum(),
    }
    assert counts == {c: int(row[c]) for c in counts}


@pytest.mark.parametrize("row", read("icons.csv").to_dict("records"), ids=lambda r: r["case_id"])
def test_the_icons_come_from_the_last_point_and_the_latest_group(row):
    chart = next(got for facet, _, got in charts(row["case_id"]) if facet == row["facet"])
    summary = summarise(chart, options(row["case_id"]))
    assert chart["date"].iat[-1] == pd.Timestamp(row["last_date"])
    assert summary.variation == row["variation_point_type"]
    assert summary.variation_icon == row["variation_icon"]
    assert (summary.assurance or "NA") == row["assurance_type"]
    assert (summary.assurance_icon or "NA") == row["assurance_icon"]


@pytest.mark.parametrize("row", read("assurance.csv").to_dict("records"), ids=lambda r: r["row_id"])
def test_assurance_is_strict_at_the_limits_as_in_the_package(row):
    target = None if row["target"] == "NA" else float(row["target"])
    got = assurance_type(float(row["lpl"]), float(row["upl"]), target, row["improvement_direction"])
    assert (got or "NA") == row["expected_ptd"]


# --- the rule helpers, on the package's unit-test vectors ----------------------------------------


def vector(text: str) -> np.ndarray:
    return np.array([int(v) for v in text.split()], dtype=int)


HELPERS = {
    "seven_point_one_side_mean": lambda a, _: seven_point_one_side_mean(a),
    "part_of_seven_trend": lambda a, _: part_of_seven_trend(a),
    "seven_point_trend": lambda a, _: seven_point_trend(a),
    "two_in_three": two_in_three,
    # arg1 is close_to_limits, arg2 relative_to_mean, as the package's test composes them
    "part_of_two_in_three": part_of_two_in_three,
}


@pytest.mark.parametrize(
    "row",
    read("helper_functions.csv").to_dict("records"),
    ids=lambda r: f"{r['function']}[{r['arg1']}|{r['arg2']}]",
)
def test_the_rule_helpers_match_the_packages_unit_tests(row):
    got = HELPERS[row["function"]](vector(row["arg1"]), vector(row["arg2"]))
    assert got.tolist() == vector(row["expected"]).tolist()


# --- policies the reference cases do not pin down -----------------------------------------------


def monthly(n: int) -> list[date]:
    return [date(2020 + i // 12, i % 12 + 1, 1) for i in range(n)]


def test_a_group_shorter_than_the_minimum_still_gets_trial_limits_with_a_warning():
    values = [10.0, 12.0, 11.0, 13.0, 9.0, 10.0, 12.0, 11.0, 10.0, 13.0, 12.0, 11.0, 10.0]
    short = spc(monthly(MINIMUM_POINTS - 1), values[:-1])
    full = spc(monthly(MINIMUM_POINTS), values)
    assert short["short_group_warning"].all() and np.isfinite(short[["lpl", "upl"]]).all().all()
    assert not full["short_group_warning"].any()


def test_a_perfectly_flat_series_is_all_common_cause_with_no_limits():
    chart = spc(monthly(20), [7.0] * 20, SpcOptions(improvement_direction="increase", target=5))
    assert (chart["point_type"] == "common_cause").all()
    assert chart[["lpl", "upl"]].isna().all().all()
    assert chart["outside_limits"].isna().all()
    assert summarise(chart, SpcOptions(target=5)).assurance is None


def test_every_icon_has_a_plain_english_label():
    variation_icons = set(read("icons.csv")["variation_icon"]) | {"neutral_high", "neutral_low"}
    assert variation_icons <= VARIATION_LABELS.keys()
    assert set(ASSURANCE_LABELS) == {"pass", "inconsistent", "fail"}


def test_missing_values_are_refused():
    with pytest.raises(ValueError, match="finite"):
        spc(monthly(3), [1.0, float("nan"), 2.0])
