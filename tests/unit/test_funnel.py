"""transforms.report.funnel against PHEindicatormethods' own funnel test data, and its checks.

The fixtures in tests/fixtures/phe/funnels are the R package's test files (see the README in
tests/fixtures/phe): every row must be reproduced to the precision the file is written in.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from numpy.testing import assert_allclose

from transforms.report.funnel import FunnelLimits, funnel_limits, funnel_significance

FUNNELS = Path(__file__).resolve().parent.parent / "fixtures" / "phe" / "funnels"
INPUTS = pd.read_csv(FUNNELS / "testdata_funnel_prop_inputs.csv")
LIMITS = ["lower_95", "upper_95", "lower_998", "upper_998"]


def as_frame(limits: list[FunnelLimits]) -> pd.DataFrame:
    return pd.DataFrame([vars(row) for row in limits])


# --- the package's test data ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "inputs", "decimals"),
    [
        ("testdata_funnel_prop_outputs.csv", INPUTS, 6),
        # the package's "axis variation" test: denominators within a factor of 2 of each other,
        # so the axis starts at the rounded-down minimum instead of 1
        (
            "testdata_funnel_prop_outputs_with_axis_variation.csv",
            INPUTS[INPUTS["denominator"] < 31000],
            8,
        ),
    ],
)
def test_every_row_of_the_package_funnels(output: str, inputs: pd.DataFrame, decimals: int) -> None:
    expected = pd.read_csv(FUNNELS / output)
    average, limits = funnel_limits(inputs["numerator"], inputs["denominator"], multiplier=100)
    got = as_frame(limits)
    tolerance = 10.0**-decimals
    assert len(got) == len(expected) == 100
    assert got["population"].tolist() == expected["Population"].tolist()
    assert_allclose(average, expected["Baseline"].iloc[0], rtol=0, atol=tolerance)
    assert_allclose(
        got[LIMITS].to_numpy(),
        expected[["Lower2s0025limit", "Upper2s0025limit", "Lower3s0001limit", "Upper3s0001limit"]],
        rtol=0,
        atol=tolerance,
    )


def test_every_significance_label_of_the_package() -> None:
    average, _ = funnel_limits(INPUTS["numerator"], INPUTS["denominator"])
    labels = [
        funnel_significance(x, n, average)
        for x, n in zip(INPUTS["numerator"], INPUTS["denominator"], strict=True)
    ]
    assert labels == INPUTS["significance"].tolist()


# --- hand-made cases ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("numerator", "label"),
    [
        (30, "Low (0.001)"),  # limits at n = 100 around 50%: 34.5, 40.2, 59.8, 65.5
        (40, "Low (0.025)"),
        (41, "Not significant"),
        (50, "Not significant"),
        (59, "Not significant"),
        (62, "High (0.025)"),
        (70, "High (0.001)"),
    ],
)
def test_significance_of_hand_made_organisations(numerator: int, label: str) -> None:
    assert funnel_significance(numerator, 100, average=50) == label


def test_significance_on_another_scale() -> None:
    assert funnel_significance(30, 100, average=0.5, multiplier=1) == "Low (0.001)"
    assert funnel_significance(50, 100, average=0.5, multiplier=1) == "Not significant"


def test_limits_at_given_points_are_the_score_limits_around_the_baseline() -> None:
    average, limits = funnel_limits([25, 75], [100, 100], points=[100, 400])
    assert average == 50
    assert [row.population for row in limits] == [100, 400]
    assert_allclose(
        as_frame(limits)[LIMITS].iloc[0], [40.2002, 59.7998, 34.5488, 65.4512], atol=1e-4
    )
    assert_allclose(
        as_frame(limits)[LIMITS].iloc[1], [45.1001, 54.8999, 42.2744, 57.7256], atol=1e-4
    )


def test_limits_are_clipped_to_the_range_of_a_proportion() -> None:
    _, limits = funnel_limits([9, 1], [10, 10], multiplier=1, points=[1, 2])
    first = limits[0]
    assert first.lower_998 == 0 and first.upper_95 == 1 and first.upper_998 == 1


# --- invalid input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("numerators", "denominators", "problem"),
    [
        ([11], [10], "numerators must be less than or equal to denominators"),
        ([-1], [10], "numerators must be greater than or equal to zero"),
        ([1], [0], "denominators must be greater than zero"),
        ([1], [-5], "denominators must be greater than zero"),
        ([float("nan")], [10], "must be given for every organisation"),
        ([1, 2], [10], "differ in length"),
        ([], [], "no numerators and denominators"),
    ],
)
def test_invalid_input_is_named(
    numerators: list[float], denominators: list[float], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        funnel_limits(numerators, denominators)
    if len(numerators) == len(denominators) == 1:
        with pytest.raises(ValueError, match=problem):
            funnel_significance(numerators[0], denominators[0], average=50)


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"points": [0, 10]}, "points must be greater than zero"),
        ({"points": []}, "points must not be empty"),
        ({"multiplier": 0}, "multiplier must be greater than zero"),
    ],
)
def test_invalid_axis_is_named(arguments: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        funnel_limits([1], [10], **arguments)


def test_an_average_off_the_scale_is_named() -> None:
    with pytest.raises(ValueError, match="average must lie between 0 and the multiplier"):
        funnel_significance(1, 10, average=120)
