"""Indicator assembly on hand-made counts: groups, periods, comparisons, disclosure."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tests.support.indicators import (
    JANUARY,
    MONTH,
    YEAR_2024,
    acc02,
    counts,
    out04,
    rolling_year_counts,
)
from transforms.config.catalogue import catalogue
from transforms.core import statistics as st
from transforms.core.disclosure_audit import attack
from transforms.core.periods import periods
from transforms.indicators import assembly as indicators
from transforms.indicators import counts as aggregation
from transforms.indicators.assembly import DisclosureRefused
from transforms.warehouse.engine import make_engine


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


@pytest.mark.parametrize(
    ("diagnosis", "chronic"),
    [
        ("E10.1", True),  # E100-E108: a four-character code
        ("I10X", True),  # the filler X dropped: I10, a three-character code
        (" i10 ", True),
        ("J45.9", True),
        ("E10.9", False),  # past the range's end
        ("L03.1", False),  # an acute condition
        ("E1", False),
        (None, False),
    ],
)
def test_a_diagnosis_is_a_chronic_acsc_when_it_starts_with_one_of_its_codes(diagnosis, chronic):
    rows = sa.values(sa.column("primary_diagnosis", sa.String), name="t").data([(diagnosis,)])
    condition = aggregation._condition(rows, "primary_diagnosis", {"acsc": "chronic"}, sa.null())
    query = sa.select(sa.func.coalesce(condition, sa.false())).select_from(rows)
    with make_engine("duckdb:///:memory:").connect() as conn:
        assert conn.execute(query).scalar() is chronic


@pytest.mark.parametrize(
    ("rows", "batches"),
    [
        ({"2025-01": 4, "2025-02": 4, "2025-03": 4}, [["2025-01", "2025-02"], ["2025-03"]]),
        ({"2025-02": 9, "2025-01": 1, "2025-03": 0}, [["2025-01"], ["2025-02"], ["2025-03"]]),
        ({"2025-01": 0, "2025-02": 0}, [["2025-01", "2025-02"]]),
        ({}, []),
    ],
)
def test_months_are_counted_in_batches_within_the_row_budget(rows, batches):
    assert aggregation.month_batches(rows, budget=8) == batches


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
    counts = pd.DataFrame(rows, columns=["source", "organisation", "numerator", "denominator"])
    table, _ = indicators.organisation_values(catalogue()["DQ01"], counts.assign(**MONTH))
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


def test_the_issues_out04_counts_give_partners_nothing_to_work_with():
    """All 24 deaths, White British 22, Mixed 1, Not known 1: the first edition let a partner
    recover both ones. Now every withheld count reads 'withheld', the shown DSRs' limits
    follow from the published counts, and the attack finds nothing."""
    team, partners = out04({"A": 22, "D": 1, "99": 1}, {"A": 10_000, "D": 500, "99": 300})
    shown = partners.set_index(["breakdown", "group_code"])
    assert shown.loc[("all", "all"), "numerator"] == 25
    assert shown.loc[("ethnicity_5", "white"), "numerator"] == 20
    for code in ("mixed", "not_known"):
        assert pd.isna(shown.loc[("ethnicity_5", code), "numerator"])
        assert shown.loc[("ethnicity_5", code), "suppression_reason"] == "withheld"
    everyone = shown.loc[("all", "all")]
    low, high = st.byars_limits(25.0, 0.95)
    shape = (everyone["upper_95"] - everyone["value"]) / (everyone["value"] - everyone["lower_95"])
    assert shape == pytest.approx((high - 25) / (25 - low), rel=1e-12)
    assert attack(partners, {"OUT04": 100_000}) == []
    reasons = team.set_index(["breakdown", "group_code"])["suppression_reason"]
    assert "small_count" in reasons[("ethnicity_5", "mixed")]  # the data team sees why


def test_a_dsr_is_shown_only_when_its_published_count_assures_ten_events():
    """12 deaths are published as 10, which could stand for 8: the DSR is 'unreliable'
    (judged on what partners see); 13 are published as 15 and the DSR is shown."""
    _, twelve = out04({"A": 12}, {"A": 10_000})
    _, thirteen = out04({"A": 13}, {"A": 10_000})
    for partners, shown in ((twelve, False), (thirteen, True)):
        everyone = partners[partners["breakdown"] == "all"].iloc[0]
        assert pd.notna(everyone["value"]) == shown
        assert everyone["suppression_reason"] == (None if shown else "unreliable")
        assert pd.notna(everyone["numerator"])


def test_counts_the_sets_would_pin_are_withheld_until_the_attack_finds_nothing():
    """Four Asian groups of 8 DNAs each: shown as 10 with the Asian total of 32 shown as 30,
    each would be pinned to 8 (a shown count is at least 8, and 30 allows at most 32)."""
    numerators = {"A": 400, "H": 8, "J": 8, "K": 8, "L": 8}
    denominators = {"A": 4000, "H": 100, "J": 100, "K": 100, "L": 100}
    team = acc02(numerators, denominators)
    partners = acc02(numerators, denominators, partners=True)
    assert attack(partners.reset_index(), {"ACC02": 100}) == []
    audited = team["suppression_reason"].fillna("").str.contains("audit")
    assert audited.any()
    assert (partners.loc[audited[audited].index, "suppression_reason"] == "withheld").all()


def test_counts_the_audit_still_narrows_down_after_the_last_round_are_refused_by_indicator(
    monkeypatch,
):
    """The case above needs a second round; with one allowed, nothing is published and the
    error names the indicator and what the attack still finds."""
    monkeypatch.setattr(indicators, "MAX_AUDIT_ROUNDS", 1)
    numerators = {"A": 400, "H": 8, "J": 8, "K": 8, "L": 8}
    denominators = {"A": 4000, "H": 100, "J": 100, "K": 100, "L": 100}
    refused = r"^ACC02: the disclosure audit still finds ACC02 .*ethnicity_16=H numerator: pinned"
    with pytest.raises(DisclosureRefused, match=refused):
        acc02(numerators, denominators)


def test_partner_proportions_are_wilson_intervals_of_the_published_counts():
    partners = acc02({"A": 43, "H": 31}, {"A": 1002, "H": 498}, partners=True)
    white = partners.loc[("ethnicity_5", "White")]
    assert (white["numerator"], white["denominator"]) == (45, 1000)
    expected = st.proportion(45, 1000).iloc[0]
    assert white["value"] == pytest.approx(4.5, rel=1e-12)
    assert white["lower_95"] == pytest.approx(expected["lower95_0cl"], rel=1e-12)
    assert white["upper_998"] == pytest.approx(expected["upper99_8cl"], rel=1e-12)
    asian = partners.loc[("ethnicity_5", "Asian or Asian British")]
    assert asian["ratio_to_reference"] == pytest.approx((30 / 500) / (45 / 1000), rel=1e-12)


def test_a_withheld_count_the_sets_keep_at_seven_or_below_gets_company():
    """H (1 of 3) withheld, J 13 of 14 shown as 15 of 15, Asian's 15 of 17 shown as 15: the
    sets keep H's numerator and denominator at 4 or below, and since 0 is shown a partner
    reads a withheld count as at least 1. More is withheld until that is no longer so."""
    team = acc02({"A": 400, "H": 1, "J": 13}, {"A": 401, "H": 3, "J": 14})
    partners = acc02({"A": 400, "H": 1, "J": 13}, {"A": 401, "H": 3, "J": 14}, partners=True)
    assert attack(partners.reset_index(), {"ACC02": 100}) == []
    assert team["suppression_reason"].fillna("").str.contains("audit").any()


def test_small_organisations_beside_a_large_one_cannot_be_pinned():
    """An organisation row exists only with records: four of 1 beside one of 8 under a total
    of 12 (shown 10 and 10) would pin every count."""
    rows = [("ae_attendances", "RRF", 8, 8)]
    rows += [("ae_attendances", org, 1, 1) for org in ("R0A", "RBN", "RM3", "RW6")]
    rows += [("ae_attendances", "ALL", 12, 12)]
    frame = pd.DataFrame(rows, columns=["source", "organisation", "numerator", "denominator"])
    _, partners = indicators.organisation_values(catalogue()["DQ01"], frame.assign(**MONTH))
    assert attack(partners, {"DQ01": 100}) == []


def test_a_crude_rate_and_its_dsr_are_protected_together():
    """ACC01's DSR counts the crude rate's events that have an age: with E shown (10) in the
    DSR and Mixed shown (10) in the crude rate, a partner would bound the crude D by 4."""
    year = {
        "period_type": "rolling_12m",
        "period_start": date(2024, 1, 1),
        "period_end": date(2024, 12, 31),
    }
    no_age = pd.DataFrame([{**year, "ethnic_code": "D", "age_band": None, "n": 2}])
    attended = pd.concat([rolling_year_counts({"A": 4000, "E": 8}, band="30-34"), no_age])
    people = rolling_year_counts({"A": 1000, "D": 20, "E": 20})
    people["n"] = people["ethnic_code"].map({"A": 1000, "D": 20, "E": 20})
    period = YEAR_2024
    _, partners = indicators.indicator_values(catalogue()["ACC01"], attended, people, [period])
    assert set(partners["measure"]) == {"crude_rate", "dsr"}
    assert attack(partners, {"ACC01": 1000}) == []


def test_a_reference_group_with_no_events_does_not_stop_the_compute():
    partners = acc02({"A": 0, "H": 20}, {"A": 100, "H": 100}, partners=True)
    white = partners.loc[("ethnicity_5", "White")]
    assert white["value"] == 0 and white["ratio_to_reference"] == 1.0


def test_person_years_rounded_group_by_group_do_not_contradict_their_total():
    """Seven groups of 7.5 person-years are published as 10 each (8 each) but the total of
    52.5 as 55: whole people per group do not add up to whole people in all, and the audit
    must allow for it rather than refuse the compute."""
    year = {
        "period_type": "rolling_12m",
        "period_start": date(2024, 1, 1),
        "period_end": date(2024, 12, 31),
    }
    codes = ["A", "D", "H", "M", "R", "Z", "99"]

    def frame(n: float) -> pd.DataFrame:
        return pd.DataFrame([{**year, "ethnic_code": c, "age_band": "all", "n": n} for c in codes])

    period = YEAR_2024
    acc01 = catalogue()["ACC01"].model_copy(update={"measures": ["crude_rate"]})
    _, partners = indicators.indicator_values(acc01, frame(20), frame(7.5), [period])
    assert attack(partners, {"ACC01": 1000}) == []


def test_totals_by_group_and_by_organisation_are_withheld_alike_or_refused():
    """All persons and ``workforce:all`` count the same staff: one shown beside the other
    withheld would give the withheld one away."""
    keys = dict(indicator_id="VAC03", measure="proportion", **MONTH)

    def partners(breakdown: str, code: str, numerator: float | None) -> pd.DataFrame:
        row = dict(keys, breakdown=breakdown, group_code=code, numerator=numerator)
        return pd.DataFrame([row | {"denominator": 5135}])

    by_group = (pd.DataFrame(), partners("all", "all", 3530))
    shown = indicators.with_organisations(
        by_group, (pd.DataFrame(), partners("source_organisation", "workforce:all", 3530))
    )
    assert len(shown[1]) == 2
    with pytest.raises(DisclosureRefused, match="count the same staff"):
        indicators.with_organisations(
            by_group, (pd.DataFrame(), partners("source_organisation", "workforce:all", None))
        )


def test_an_indicator_is_protected_the_same_alone_or_beside_the_catalogue():
    """The compute discloses the whole catalogue in one pass: ACC02's rows must be what they
    are alone. Beside VAC03, whose WRES groups add up its 5-group Not stated and Not known,
    those two were once protected as a pair in ACC02 too (Not stated withheld with the
    small Not known)."""
    entries = catalogue()
    numerator = {"A": 400, "D": 20, "H": 60, "M": 60, "R": 60, "Z": 60, "99": 3}
    denominator = {code: 1000 for code in numerator}
    acc02, vac03 = (
        indicators.exact_indicator_values(
            [(entries[i], counts(numerator), counts(denominator), [JANUARY])]
        )
        for i in ("ACC02", "VAC03")
    )
    none = pd.DataFrame()
    alone = indicators.disclose_catalogue(acc02, none, entries)["ACC02"]
    both = pd.concat([vac03, acc02], ignore_index=True)
    beside = indicators.disclose_catalogue(both, none, entries)

    assert set(beside) == {"VAC03", "ACC02"}
    for mine, theirs in zip(alone, beside["ACC02"], strict=True):
        pd.testing.assert_frame_equal(mine, theirs)
    shown = alone[1].set_index(["breakdown", "group_label"])["numerator"]
    assert (
        pd.isna(shown[("ethnicity_5", "Not known")]) and shown[("ethnicity_5", "Not stated")] == 60
    )


def test_person_years_add_up_to_their_exact_total_whatever_the_order():
    """18 groups' person-years (twelfths) total exactly 274,517.5; added one after the other
    they give 274,517.50000000006. Whole people are published from the total (a .5 then
    rounds one way or the other), so it must be the exact sum, not the naive one."""
    twelfths = [236525, 228274, 353661, 37538, 109229, 156552, 366989, 29497, 181053]
    twelfths += [190467, 5806, 171416, 259495, 169495, 122262, 234520, 392354, 49077]
    codes = list(dict.fromkeys(indicators.ethnic_groups()["ethnic_code"]))
    year = {"period_type": "rolling_12m", "period_start": date(2024, 1, 1)}
    year |= {"period_end": date(2024, 12, 31)}
    people = pd.DataFrame(
        [
            {**year, "ethnic_code": c, "age_band": "all", "n": t / 12}
            for c, t in zip(codes, twelfths, strict=True)
        ]
    )
    period = YEAR_2024
    table = indicators.by_group(people, people, [period], ["all"], with_age=False)

    naive = 0.0
    for t in twelfths:
        naive += t / 12
    assert naive != 274517.5 == math.fsum(t / 12 for t in twelfths)
    assert table["denominator"].tolist() == [274517.5]


def test_a_periods_person_years_are_exact_whatever_is_computed_beside_it():
    """A rolling year's person-years are its months' whole counts over 12, summed exactly and
    divided once: the same bits whether the year is computed alone or with 23 other periods
    (the compute takes periods a chunk at a time, ``store.CHUNK_MONTHS``)."""
    rng = np.random.default_rng(7)
    months = [f"{year}-{m:02d}" for year in (2024, 2025) for m in range(1, 13)]
    monthly = pd.DataFrame(
        [
            {"month": month, "ethnic_code": code, "age_band": band, "n": int(rng.integers(1, 999))}
            for month in months
            for code in ("A", "B", "C", "D", "H", "J", "N", "Z", "99")
            for band in st.ESP2013
        ]
    )
    year = periods("rolling_12m", months[:12])[0]
    others = [*periods("month", months), *periods("rolling_12m", months)[1:]]

    def persons(chosen):
        people = indicators.in_periods(monthly, chosen, mean=True)
        table = indicators.by_group(people, people, chosen, ["all"], with_age=True)
        chosen = (table["period_type"] == year.kind) & (table["period_start"] == year.start)
        return table[chosen].reset_index(drop=True)

    alone, beside = persons([year]), persons([*others, year])
    assert alone["denominator"].tolist() == beside["denominator"].tolist()
    first_year = monthly[monthly["month"].isin(year.months)].groupby("age_band")["n"].sum()
    assert alone.set_index("age_band")["denominator"].to_dict() == (first_year / 12).to_dict()


def test_a_count_that_is_not_whole_nor_person_years_of_its_months_is_refused():
    """Sums are exact only for whole counts and their means over a period's months; anything
    else (a fractional count a future source might bring) stops the compute, not rounds."""
    people = rolling_year_counts({"A": 1000}).assign(n=1000.3)
    with pytest.raises(ValueError, match="whole numbers, or person-years"):
        indicators.by_group(people, people, [YEAR_2024], ["all"], with_age=False)
