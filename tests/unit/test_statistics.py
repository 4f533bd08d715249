"""transforms.core.statistics against PHEindicatormethods' own expected values, and its policies.

The fixtures in tests/fixtures/phe are the R package's test data (see the README there); every
tested expected value in them must be reproduced to a relative 1e-6.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from transforms.core.statistics import (
    ESP2013,
    NO_DSR_EMPTY_BAND,
    NO_DSR_SMALL_COUNT,
    byars_limits,
    crude_rate,
    dsr,
    dsr_ratio,
    exact_poisson_limits,
    proportion,
    proportion_ratio,
    rate_ratio,
    significance,
    wilson_limits,
    z_value,
)

PHE = Path(__file__).resolve().parent.parent / "fixtures" / "phe"
RTOL = 1e-6
CI95 = ["lower95_0cl", "upper95_0cl"]
CI998 = ["lower99_8cl", "upper99_8cl"]
LEVELS = {"95%": 0.95, "99.8%": 0.998}


def read(name: str) -> pd.DataFrame:
    return pd.read_csv(PHE / name)


def labels(values: pd.Series) -> list[str]:
    """Text columns compared with NA as ''."""
    return values.astype(object).where(values.notna(), "").tolist()


# --- the package's test data ------------------------------------------------------------------


@pytest.mark.parametrize("level_name", ["95%", "99.8%"])
def test_byar_limits_match_the_package_including_na_for_a_negative_lower_limit(level_name):
    ref = read("byars_wilson_limits.csv").query("method == 'Byars' and confidence == @level_name")
    lower, upper = byars_limits(ref["x"], LEVELS[level_name])
    assert_allclose(lower, ref["lowercl"], rtol=RTOL)
    assert_allclose(upper, ref["uppercl"], rtol=RTOL)


@pytest.mark.parametrize("level_name", ["95%", "99.8%"])
def test_wilson_limits_match_the_package_including_a_fractional_numerator(level_name):
    ref = read("byars_wilson_limits.csv").query("method == 'Wilson' and confidence == @level_name")
    lower, upper = wilson_limits(ref["x"], ref["n"], LEVELS[level_name])
    assert_allclose(lower, ref["lowercl"], rtol=RTOL)
    assert_allclose(upper, ref["uppercl"], rtol=RTOL)


def grouped_cases(name: str):
    """(rows, limit columns tested) per case set and multiplier: grouped sums have 95% only."""
    ref = read(name)
    for (case_set, _), rows in ref.groupby(["case_set", "multiplier"]):
        yield rows, CI95 + (CI998 if case_set == "ungrouped" else [])


def test_proportions_match_phe_proportion_for_every_row_and_both_multipliers():
    for rows, limits in grouped_cases("proportion.csv"):
        got = proportion(
            rows["numerator"], rows["denominator"], multiplier=rows["multiplier"].iat[0]
        )
        assert_allclose(got[["value", *limits]], rows[["value", *limits]], rtol=RTOL)
        assert labels(got["statistic"]) == labels(rows["statistic"])
        assert labels(got["method"]) == labels(rows["method"])


def test_crude_rates_match_phe_rate_with_exact_limits_below_ten_and_byar_from_ten():
    for rows, limits in grouped_cases("rate.csv"):
        got = crude_rate(rows["numerator"], rows["denominator"], rows["multiplier"].iat[0])
        assert_allclose(got[["value", *limits]], rows[["value", *limits]], rtol=RTOL)
        assert labels(got["statistic"]) == labels(rows["statistic"])
        assert labels(got["method"]) == labels(rows["method"])


DSR_COLUMNS = ["total_count", "total_pop", "value", *CI95]


def expected_dsr(scenario: str, multiplier: int) -> pd.DataFrame:
    ref = read("dsr_expected.csv")
    return ref[(ref["scenario"] == scenario) & (ref["multiplier"] == multiplier)]


def assert_dsr_matches(got: pd.DataFrame, expected: pd.DataFrame, columns: list[str]) -> None:
    got = got.set_index("area").loc[expected["area"]]
    assert_allclose(got[columns], expected[columns], rtol=RTOL)
    assert labels(got["statistic"]) == labels(expected["statistic"])
    assert labels(got["method"]) == labels(expected["method"])


def esp2013_inputs() -> pd.DataFrame:
    return read("dsr_inputs.csv").query("stdpop_name == 'esp2013'")


@pytest.mark.parametrize("multiplier", [10_000, 100_000])
def test_dsrs_match_calculate_dsr_with_a_standard_population_column(multiplier):
    got = dsr(
        esp2013_inputs(),
        "area",
        age_band="ageband_order",
        population="pop",
        standard_population="stdpop",
        multiplier=multiplier,
    )
    assert_dsr_matches(got, expected_dsr("esp2013", multiplier), DSR_COLUMNS + CI998)


def test_dsrs_use_esp2013_by_age_band_label_when_no_standard_is_given():
    data = esp2013_inputs().drop(columns=["stdpop"])
    data["age_band"] = data["ageband_order"].map(dict(enumerate(ESP2013, start=1)))
    got = dsr(data, "area", population="pop")
    assert_dsr_matches(got, expected_dsr("esp2013", 100_000), DSR_COLUMNS + CI998)


def test_esp2013_weights_are_the_package_vector():
    esp = read("esp2013.csv")
    assert ESP2013 == dict(zip(esp["ageband"], esp["esp2013"], strict=True))


@pytest.mark.parametrize("multiplier", [10_000, 100_000])
def test_dsrs_match_calculate_dsr_on_the_1976_standard(multiplier):
    data = read("dsr_inputs.csv").query("stdpop_name == 'esp1976'")
    got = dsr(
        data,
        "area",
        age_band="ageband",
        population="pop",
        standard_population="stdpop",
        multiplier=multiplier,
    )
    assert_dsr_matches(got, expected_dsr("esp1976", multiplier), DSR_COLUMNS)
    # The fixture blanks these (the spreadsheet's are 10x too large); the README recomputes them.
    scale = multiplier / 100_000
    assert_allclose(got[CI998].iloc[0], [7659.282106568956 * scale, 9599.2117985717 * scale])


def test_non_independent_dsrs_match_calculate_dsr_with_event_frequencies():
    wide = read("dsr_nonindependent_inputs.csv")
    long = wide.melt(
        id_vars=["area", "ageband_order", "pop", "stdpop"],
        value_vars=[f"persons_f{k}" for k in range(1, 5)],
        var_name="frequency",
        value_name="persons",
    )
    long["frequency"] = long["frequency"].str.removeprefix("persons_f").astype(int)
    got = dsr(
        long,
        "area",
        age_band="ageband_order",
        count="persons",
        population="pop",
        standard_population="stdpop",
        frequency="frequency",
    )
    assert_dsr_matches(got, expected_dsr("nonindependent", 100_000), DSR_COLUMNS + CI998)


# --- DSR policies ------------------------------------------------------------------------------


def bands(counts: list[float], pops: list[float], group: str = "g") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "group": group,
            "age_band": list(ESP2013)[: len(counts)],
            "count": counts,
            "population": pops,
        }
    )


def test_dsr_is_na_when_the_total_count_is_below_ten():
    data = pd.concat([bands([4, 5], [100, 100], "nine"), bands([5, 5], [100, 100], "ten")])
    got = dsr(data, "group").set_index("group")
    assert np.isnan(got.loc["nine", ["value", "variance", *CI95, *CI998]].astype(float)).all()
    assert got.loc["nine", "statistic"] == NO_DSR_SMALL_COUNT
    assert got.loc["ten", "value"] > 0
    assert got.loc["ten", "statistic"] == "dsr per 100000"


def test_an_empty_age_band_without_events_keeps_its_standard_weight_and_adds_a_zero_rate():
    got = dsr(bands([0, 20, 30], [0, 1000, 1000]), "group")
    w = [ESP2013["0-4"], ESP2013["5-9"], ESP2013["10-14"]]
    expected = (20 / 1000 * w[1] + 30 / 1000 * w[2]) / sum(w) * 100_000  # not / (w[1] + w[2])
    assert_allclose(got["value"], [expected], rtol=1e-12)
    assert got["statistic"].iat[0] == "dsr per 100000"


def test_an_empty_age_band_with_events_makes_the_dsr_na_with_a_reason():
    got = dsr(
        pd.concat([bands([3, 20], [0, 1000], "bad"), bands([3, 20], [50, 1000], "ok")]), "group"
    )
    got = got.set_index("group")
    assert np.isnan(got.loc["bad", "value"]) and got.loc["bad", "statistic"] == NO_DSR_EMPTY_BAND
    assert got.loc["ok", "value"] > 0


def test_a_group_missing_an_age_band_is_refused_rather_than_reweighted():
    data = pd.concat([bands([10, 20], [100, 100], "full"), bands([10], [100], "short")])
    with pytest.raises(ValueError, match="lack some of the 2 age bands"):
        dsr(data, "group")


def test_dsr_rejects_missing_populations_and_unknown_age_bands():
    with pytest.raises(ValueError, match="populations must be present"):
        dsr(bands([10, 20], [100, None]), "group")
    with pytest.raises(ValueError, match="not in ESP2013"):
        dsr(bands([10, 20], [100, 100]).replace({"5-9": "05-09"}), "group")


# --- limits and validation ---------------------------------------------------------------------


def test_exact_poisson_limits_of_zero_are_zero_and_r_qchisq_upper():
    lower, upper = exact_poisson_limits([0], 0.95)
    assert lower[0] == 0.0
    assert_allclose(upper, [3.688879454113936], rtol=1e-12)


def test_crude_rate_switches_from_exact_to_byar_at_ten():
    assert crude_rate([9, 10], [1000, 1000])["method"].tolist() == ["Exact", "Byars"]


def test_wilson_limits_are_exactly_zero_and_one_at_the_extremes():
    lower, upper = wilson_limits([0, 7], [7, 7], 0.998)
    assert lower[0] == 0.0 and upper[1] == 1.0


def test_z_values_are_the_package_quantiles():
    assert_allclose([z_value(0.95), z_value(0.998)], [1.959963984540054, 3.090232306167813])


def test_proportions_refuse_zero_denominators_and_numerators_above_them_but_rates_allow_it():
    with pytest.raises(ValueError, match="denominators must be greater than zero"):
        proportion([0], [0])
    with pytest.raises(ValueError, match="less than or equal to denominators"):
        proportion([5], [4])
    assert crude_rate([250], [220])["value"].iat[0] > 100_000


# --- ratios ------------------------------------------------------------------------------------


def test_ratios_of_equal_groups_are_one_with_an_interval_containing_one():
    for got in (
        proportion_ratio(30, 200, 30, 200),
        rate_ratio(30, 2000, 30, 2000),
        dsr_ratio(500.0, 900.0, 500.0, 900.0),
    ):
        assert_allclose(got["ratio"], [1.0])
        assert got["lower95_0cl"].iat[0] < 1 < got["upper95_0cl"].iat[0]


def test_rate_ratio_uses_the_poisson_log_scale_standard_error():
    got = rate_ratio([20], [1000], [10], [1000], confidence=(0.95, 0.998))
    for level, suffix in ((0.95, "95_0cl"), (0.998, "99_8cl")):
        half_width = z_value(level) * np.sqrt(1 / 20 + 1 / 10)
        assert_allclose(
            got[[f"lower{suffix}", f"upper{suffix}"]].iloc[0],
            2 * np.exp(np.array([-1, 1]) * half_width),
        )


def test_proportion_ratio_uses_the_katz_standard_error():
    got = proportion_ratio([30], [100], [20], [200])
    half_width = z_value(0.95) * np.sqrt(1 / 30 - 1 / 100 + 1 / 20 - 1 / 200)
    assert_allclose(got.iloc[0], 3 * np.exp(np.array([0, -1, 1]) * half_width))


def test_dsr_ratio_uses_the_delta_method_on_each_dsr_variance():
    got = dsr_ratio([600.0], [2500.0], [400.0], [1600.0])
    half_width = z_value(0.95) * np.sqrt(2500 / 600**2 + 1600 / 400**2)
    assert_allclose(got.iloc[0], 1.5 * np.exp(np.array([0, -1, 1]) * half_width))


def test_ratios_with_no_events_have_no_interval():
    got = rate_ratio([0, 5], [100, 100], [5, 0], [100, 100])
    assert got["ratio"].iat[0] == 0 and np.isnan(got["ratio"].iat[1])
    assert got[CI95].isna().all().all()


# --- significance ------------------------------------------------------------------------------


def test_significance_compares_the_interval_with_the_comparator_value_strictly():
    got = significance(
        value=[12, 8, 10, 10, np.nan],
        lower=[11, 7, 9, 10, np.nan],
        upper=[13, 9, 11, 12, np.nan],
        comparator_value=10,
    )
    assert got.tolist() == ["Higher", "Lower", "Similar", "Similar", "Not compared"]


@pytest.mark.parametrize(
    ("polarity", "expected"),
    [
        ("high_is_good", ["Better", "Worse", "Similar"]),
        ("low_is_good", ["Worse", "Better", "Similar"]),
    ],
)
def test_significance_with_a_polarity_says_better_or_worse(polarity, expected):
    got = significance([12, 8, 10], [11, 7, 9], [13, 9, 11], 10, polarity=polarity)
    assert got.tolist() == expected


def test_significance_with_a_comparator_interval_needs_the_intervals_not_to_overlap():
    got = significance(
        [12, 12, 7], [11, 10.5, 6], [13, 14, 8], 10, comparator_lower=9, comparator_upper=11
    )
    assert got.tolist() == ["Similar", "Similar", "Lower"]


def test_significance_is_not_compared_when_a_limit_or_comparator_is_missing():
    got = significance([12, 12], [11, np.nan], [13, 13], [np.nan, 10])
    assert got.tolist() == ["Not compared", "Not compared"]


def test_significance_rejects_an_unknown_polarity():
    with pytest.raises(ValueError, match="polarity"):
        significance([1], [0], [2], 1, polarity="up")


# --- vectorisation -------------------------------------------------------------------------------


def test_functions_take_arrays_and_series_and_return_one_result_per_input():
    x, n = np.array([0, 5, 50, 500]), np.array([10, 100, 1000, 10000])
    lower, upper = wilson_limits(x, n)
    assert lower.shape == upper.shape == (4,)
    series = pd.Series(x, index=list("abcd"))
    assert proportion(series, n).index.tolist() == list("abcd")
    rates = crude_rate(pd.Series([1, None, 30], dtype="Int64"), [100, 100, 100])
    assert rates["value"].isna().tolist() == [False, True, False]
    assert significance(np.ones(4), np.zeros(4), np.full(4, 2.0), 1.5).shape == (4,)


def test_dsr_returns_one_row_per_group_for_several_keys():
    data = pd.concat(
        [bands([10, 20], [100, 200], g).assign(sex=s) for g in ("a", "b") for s in ("F", "M")]
    )
    got = dsr(data, ["group", "sex"])
    assert got[["group", "sex"]].values.tolist() == [["a", "F"], ["a", "M"], ["b", "F"], ["b", "M"]]
    assert_allclose(got["total_count"], 30)
