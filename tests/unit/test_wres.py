"""WRES indicators 1–4 and 9 (``transforms.indicators.wres``): values worked out by hand for a
small workforce, and the disclosure control partners see."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest

from transforms.core.wres_audit import attack_wres
from transforms.indicators.wres import financial_years, protect_wres, wres

YEAR_END = date(2025, 3, 31)
Z95 = 1.959963984540054

# RAA (70 staff): Clinical Band 5 has 37 White (A), 19 BME (H) and 10 Unknown (Z); Non-clinical
# VSM has 3 White and 1 BME, the voting board (1 White and the BME member executive).
# Training: 20 White, 5 BME, all 10 Unknown (excluded from WRES4). Disciplinary in March 2025:
# 4 White, 3 BME, 1 Unknown; in March 2024 (same staff): 2 White, 1 BME.
# RBB (10 staff): Non-clinical Band 3, 8 White (A) and 2 BME (M); nobody in a disciplinary
# process in either year; training 4 White, 1 BME.


def _person(org: str, code: str, band: str, group: str, **flags: bool) -> dict[str, object]:
    row: dict[str, object] = dict(
        organisation_code=org,
        pay_band=band,
        staff_group=group,
        ethnic_code=code,
        ethnic_status="known" if code not in ("Z", "99") else "not_stated",
        is_board_member=False,
        is_voting_board_member=False,
        is_executive=False,
        in_disciplinary_process=False,
        accessed_non_mandatory_training=False,
    )
    return row | flags


def _many(n: int, org: str, code: str, band: str, group: str, **counts: int) -> list[dict]:
    """``n`` staff, the first ``counts[flag]`` of them with ``flag`` set."""
    return [
        _person(org, code, band, group, **{f: i < k for f, k in counts.items()}) for i in range(n)
    ]


def _snapshot(period: str, disciplinary: dict[str, int]) -> pd.DataFrame:
    board = dict(is_board_member=True, is_voting_board_member=True)
    rows = [
        *_many(
            37,
            "RAA",
            "A",
            "Band 5",
            "Clinical",
            accessed_non_mandatory_training=20,
            in_disciplinary_process=disciplinary["White"],
        ),
        *_many(
            19,
            "RAA",
            "H",
            "Band 5",
            "Clinical",
            accessed_non_mandatory_training=5,
            in_disciplinary_process=disciplinary["BME"],
        ),
        *_many(
            10,
            "RAA",
            "Z",
            "Band 5",
            "Clinical",
            accessed_non_mandatory_training=10,
            in_disciplinary_process=disciplinary["Unknown"],
        ),
        *_many(2, "RAA", "A", "VSM", "Non-clinical", is_board_member=2, is_voting_board_member=2),
        _person("RAA", "A", "VSM", "Non-clinical", **board, is_executive=True),
        _person("RAA", "H", "VSM", "Non-clinical", **board, is_executive=True),
        *_many(8, "RBB", "A", "Band 3", "Non-clinical", accessed_non_mandatory_training=4),
        *_many(2, "RBB", "M", "Band 3", "Non-clinical", accessed_non_mandatory_training=1),
    ]
    frame = pd.DataFrame(rows).assign(period=period)
    return frame.assign(staff_id=[f"S{i}" for i in range(len(frame))])


STAFF = pd.concat(
    [
        _snapshot("2025-03", {"White": 4, "BME": 3, "Unknown": 1}),
        _snapshot("2024-03", {"White": 2, "BME": 1, "Unknown": 0}),
    ],
    ignore_index=True,
)


def _applicants(org: str, code: str, shortlisted: int, appointed: int) -> list[dict]:
    return [
        dict(organisation_code=org, ethnic_code=code, appointed=i < appointed)
        for i in range(shortlisted)
    ]


# RAA: White 10 of 50 appointed, BME 2 of 25, Unknown 5 of 5 (excluded); RBB: White 1 of 6 and
# no BME applicant shortlisted.
APPLICANTS = pd.DataFrame(
    [
        *_applicants("RAA", "A", 50, 10),
        *_applicants("RAA", "D", 25, 2),
        *_applicants("RAA", "99", 5, 5),
        *_applicants("RBB", "B", 6, 1),
    ]
).assign(
    applicant_id=lambda f: [f"P{i}" for i in range(len(f))],
    vacancy_id="V1",
    shortlisted_date=date(2024, 6, 1),
    ethnic_status="known",
)


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return wres(STAFF, APPLICANTS, YEAR_END)


def _one(rows: pd.DataFrame, **where: object) -> pd.Series:
    chosen = rows
    for column, value in where.items():
        chosen = chosen[chosen[column].isna()] if value is None else chosen[chosen[column] == value]
    assert len(chosen) == 1, where
    return chosen.iloc[0]


def test_wres2_relative_likelihood_and_katz_interval_by_hand(rows: pd.DataFrame) -> None:
    rr = _one(rows, indicator_id="WRES2", organisation_code="RAA", measure="relative_likelihood")
    # (10/50) / (2/25) = 0.2 / 0.08 = 2.5
    assert rr["value"] == pytest.approx(2.5)
    # SE(ln RR) = sqrt(1/10 - 1/50 + 1/2 - 1/25) = sqrt(0.54) = 0.7348469
    se = math.sqrt(0.54)
    assert rr["lower_95"] == pytest.approx(2.5 * math.exp(-Z95 * se))  # 0.5922
    assert rr["upper_95"] == pytest.approx(2.5 * math.exp(Z95 * se))  # 10.554
    assert rr["group_label"] is None or pd.isna(rr["group_label"])
    white = _one(rows, indicator_id="WRES2", organisation_code="RAA", group_label="White")
    assert (white["numerator"], white["denominator"], white["value"]) == (10, 50, 20.0)
    # Unknown applicants (5 of 5 appointed) are in neither group
    bme = _one(rows, indicator_id="WRES2", organisation_code="RAA", group_label="BME")
    assert (bme["numerator"], bme["denominator"]) == (2, 25)
    assert not (rows.query("indicator_id == 'WRES2'")["group_label"] == "Unknown").any()


def test_wres2_without_bme_applicants_is_undefined_with_a_note(rows: pd.DataFrame) -> None:
    rr = _one(rows, indicator_id="WRES2", organisation_code="RBB", measure="relative_likelihood")
    assert pd.isna(rr["value"]) and pd.isna(rr["lower_95"]) and pd.isna(rr["upper_95"])
    assert rr["note"] == "no BME applicants were shortlisted: relative likelihood undefined"
    # ALL: (11/56) / (2/25) = 0.1964286 / 0.08 = 2.4553571
    rr = _one(rows, indicator_id="WRES2", organisation_code="ALL", measure="relative_likelihood")
    assert rr["value"] == pytest.approx(11 / 56 / 0.08)


def test_wres3_two_year_rolling_and_zero_count(rows: pd.DataFrame) -> None:
    rr = _one(rows, indicator_id="WRES3", organisation_code="RAA", measure="relative_likelihood")
    # BME (3 + 1) / (20 + 20) = 0.1; White (4 + 2) / (40 + 40) = 0.075; 0.1 / 0.075 = 1.3333
    assert rr["value"] == pytest.approx(4 / 3)
    bme = _one(rows, indicator_id="WRES3", organisation_code="RAA", group_label="BME")
    assert (bme["numerator"], bme["denominator"]) == (4, 40)
    # ALL: BME 4 / 44, White 6 / 96 -> 0.0909091 / 0.0625 = 1.4545455
    rr_all = _one(
        rows, indicator_id="WRES3", organisation_code="ALL", measure="relative_likelihood"
    )
    assert rr_all["value"] == pytest.approx((4 / 44) / (6 / 96))
    # RBB: nobody entered the process in either year
    rbb = _one(rows, indicator_id="WRES3", organisation_code="RBB", measure="relative_likelihood")
    assert pd.isna(rbb["value"])
    assert rbb["note"] == (
        "no White staff entered the formal disciplinary process: relative likelihood undefined"
    )
    white = _one(rows, indicator_id="WRES3", organisation_code="RBB", group_label="White")
    assert (white["numerator"], white["denominator"], white["value"]) == (0, 16, 0.0)


def test_wres3_without_the_previous_snapshot_is_not_computed() -> None:
    rows = wres(STAFF[STAFF["period"] == "2025-03"], APPLICANTS, YEAR_END)
    wres3 = rows[rows["indicator_id"] == "WRES3"]
    assert list(wres3["measure"].unique()) == ["relative_likelihood"]
    assert wres3["value"].isna().all()
    assert (
        wres3["note"]
        .str.contains("previous March snapshot (2024-03) is not loaded", regex=False)
        .all()
    )
    assert protect_wres(rows).loc[wres3.index, "suppressed"].eq(False).all()


def test_wres4_excludes_unknown(rows: pd.DataFrame) -> None:
    rr = _one(rows, indicator_id="WRES4", organisation_code="RAA", measure="relative_likelihood")
    # White 20/40 = 0.5, BME 5/20 = 0.25 (the 10 trained Unknown staff count for neither)
    assert rr["value"] == pytest.approx(2.0)
    # SE = sqrt(1/20 - 1/40 + 1/5 - 1/20) = sqrt(0.175)
    assert rr["upper_95"] == pytest.approx(2.0 * math.exp(Z95 * math.sqrt(0.175)))


def test_wres1_and_wres9_show_unknown(rows: pd.DataFrame) -> None:
    cell = dict(
        indicator_id="WRES1", organisation_code="RAA", band="Band 5", staff_group="Clinical"
    )
    unknown = _one(rows, **cell, measure="percentage", group_label="Unknown")
    # 10 of 37 + 19 + 10 = 66
    assert (unknown["numerator"], unknown["denominator"]) == (10, 66)
    assert unknown["value"] == pytest.approx(1000 / 66)
    count = _one(rows, **cell, measure="count", group_label="BME")
    assert count["value"] == 19
    whole = dict(indicator_id="WRES1", organisation_code="RAA", band="All", staff_group="All")
    assert _one(rows, **whole, measure="count", group_label="Unknown")["value"] == 10
    # WRES9: voting board 1 BME of 4 = 25%; staff 20 BME of 70 = 28.571% -> -3.571 points
    gap = _one(
        rows,
        indicator_id="WRES9",
        organisation_code="RAA",
        measure="percentage_point_difference",
        population="voting board members",
    )
    assert gap["value"] == pytest.approx(25 - 2000 / 70)
    assert pd.isna(gap["lower_95"]) and pd.isna(gap["upper_95"])
    # executive: 1 BME of 2 = 50% -> 21.429 points
    gap = _one(
        rows,
        indicator_id="WRES9",
        organisation_code="RAA",
        measure="percentage_point_difference",
        population="executive board members",
    )
    assert gap["value"] == pytest.approx(50 - 2000 / 70)
    unknown = _one(
        rows,
        indicator_id="WRES9",
        organisation_code="RAA",
        population="staff",
        group_label="Unknown",
    )
    assert (unknown["numerator"], unknown["denominator"]) == (10, 70)


def test_all_is_the_sum_of_organisations(rows: pd.DataFrame) -> None:
    groups = rows[rows["measure"].isin(["percentage", "count"])]
    keys = ["indicator_id", "measure", "population", "group_label", "band", "staff_group"]
    keyed = groups.fillna({"band": "-", "staff_group": "-"}).astype({"denominator": "float"})
    partnership = keyed[keyed["organisation_code"] == "ALL"].set_index(keys)
    summed = (
        keyed[keyed["organisation_code"] != "ALL"]
        .groupby(keys)[["numerator", "denominator"]]
        .sum(min_count=1)
    )
    pd.testing.assert_frame_equal(
        partnership[["numerator", "denominator"]].sort_index().astype(float),
        summed.reindex(partnership.index).sort_index().astype(float),
    )


def test_financial_years_need_the_march_snapshot_and_twelve_months() -> None:
    year = [f"2024-{m:02d}" for m in range(4, 13)] + ["2025-01", "2025-02", "2025-03"]
    [found] = financial_years(["2024-03", "2025-03"], year)
    assert (found.kind, found.start, found.end) == ("financial_year", date(2024, 4, 1), YEAR_END)
    assert financial_years(["2025-02"], year) == []
    assert financial_years(["2025-03"], [m for m in year if m != "2024-09"]) == []


# --- disclosure --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def published(rows: pd.DataFrame) -> pd.DataFrame:
    return protect_wres(rows)


def _sets(published: pd.DataFrame) -> list[list[str]]:
    """The additive sets, restated: groups of one figure, organisations within ALL, bands
    within All, staff groups within All."""
    figure = ["indicator_id", "period_end", "population"]
    return [
        [*figure, "organisation_code", "band", "staff_group"],
        [*figure, "group_label", "band", "staff_group"],
        [*figure, "organisation_code", "group_label", "staff_group"],
        [*figure, "organisation_code", "group_label", "band"],
    ]


def test_published_counts_are_zero_or_rounded_and_never_small(published: pd.DataFrame) -> None:
    for column in ("numerator", "denominator"):
        shown = published[column].dropna().astype(int)
        assert not shown.between(1, 7).any()
        assert (shown % 5 == 0).all()
    # the disciplinary counts of 4 (BME) and 6 (White) at RAA are withheld, and so at ALL
    wres3 = published[(published["indicator_id"] == "WRES3") & published["group_label"].notna()]
    assert wres3.loc[wres3["organisation_code"].isin(["RAA", "ALL"]), "numerator"].isna().all()


def test_no_set_has_exactly_one_withheld_count(published: pd.DataFrame) -> None:
    groups = published[published["measure"] == "percentage"].fillna(
        {"band": "-", "staff_group": "-"}
    )
    for column in ("numerator", "denominator"):
        for keys in _sets(groups):
            withheld = groups[column].isna().groupby([groups[k] for k in keys]).agg(["sum", "size"])
            lone = withheld[(withheld["sum"] == 1) & (withheld["size"] > 1)]
            assert lone.empty, (column, keys, lone)


def test_partners_cannot_narrow_a_withheld_count_down(published: pd.DataFrame) -> None:
    assert attack_wres(published) == []
    assert published["numerator"].isna().sum() > 0


def test_derived_values_follow_the_published_counts(published: pd.DataFrame) -> None:
    groups = published[published["measure"] == "percentage"]
    hidden = groups["numerator"].isna() | groups["denominator"].isna()
    assert groups.loc[hidden, ["value", "lower_95", "upper_95"]].isna().all().all()
    assert groups.loc[hidden, "suppressed"].all()
    shown = groups[~hidden & (groups["denominator"].astype(float) > 0)]
    expected = 100 * shown["numerator"].astype(float) / shown["denominator"].astype(float)
    assert shown["value"].to_numpy() == pytest.approx(expected.to_numpy())
    comparisons = published[published["group_label"].isna() & published["suppressed"]]
    assert comparisons["value"].isna().all()
    counts = published[published["measure"] == "count"]
    assert counts["numerator"].dropna().astype(int).isin(range(0, 10**6, 5)).all()


def test_a_quantity_is_withheld_everywhere_or_nowhere(published: pd.DataFrame) -> None:
    # RBB's BME headcount (2) is WRES1's whole-workforce BME count and WRES4's BME denominator
    whole = _one(
        published,
        indicator_id="WRES1",
        organisation_code="RBB",
        band="All",
        staff_group="All",
        measure="percentage",
        group_label="BME",
    )
    training = _one(published, indicator_id="WRES4", organisation_code="RBB", group_label="BME")
    assert pd.isna(whole["numerator"]) and pd.isna(training["denominator"])
    # and every headcount alike in both, withheld or shown
    for org in ("RAA", "RBB", "ALL"):
        for group in ("White", "BME"):
            where = dict(organisation_code=org, group_label=group, measure="percentage")
            whole = _one(published, indicator_id="WRES1", band="All", staff_group="All", **where)
            training = _one(published, indicator_id="WRES4", **where)
            assert pd.isna(whole["numerator"]) == pd.isna(training["denominator"])
            if not pd.isna(whole["numerator"]):
                assert whole["numerator"] == training["denominator"]
