"""The attacking audit of ``mart.wres`` (``transforms.core.wres_audit``): tables built by hand
where a partner can, or cannot, work out a count."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from transforms.core.wres_audit import attack_wres

YEAR_END = date(2025, 3, 31)


def _headcounts(counts: dict[tuple[str, str], float | None]) -> pd.DataFrame:
    """WRES1 group rows of the whole workforce (All bands, All staff groups): ``counts`` maps
    (organisation, group) to the published count (None where withheld); each row's
    denominator is its organisation's published total, under (organisation, "All")."""
    rows = [
        dict(
            indicator_id="WRES1",
            organisation_code=org,
            period_end=YEAR_END,
            measure="percentage",
            population="staff",
            group_label=group,
            band="All",
            staff_group="All",
            numerator=np.nan if shown is None else shown,
            denominator=np.nan if counts[(org, "All")] is None else counts[(org, "All")],
        )
        for (org, group), shown in counts.items()
        if group != "All"
    ]
    return pd.DataFrame(rows)


def test_withheld_count_confined_by_the_partnership_total_is_found() -> None:
    # ALL shows 20 BME staff and RAA 20: RBB's withheld BME count is at most 22 - 18 = 4
    table = _headcounts(
        {
            ("ALL", "All"): 100,
            ("ALL", "BME"): 20,
            ("ALL", "White"): 80,
            ("RAA", "All"): 60,
            ("RAA", "BME"): 20,
            ("RAA", "White"): 40,
            ("RBB", "All"): 40,
            ("RBB", "BME"): None,
            ("RBB", "White"): 40,
        }
    )
    findings = attack_wres(table)
    assert [(f.column, f.problem) for f in findings] == [
        ("numerator", "withheld, but can be at most 4")
    ]
    assert "RBB" in findings[0].cell and "BME" in findings[0].cell


def test_withheld_counts_with_room_pass() -> None:
    # two organisations' BME counts withheld together: either can be 0 to 20
    table = _headcounts(
        {
            ("ALL", "All"): 100,
            ("ALL", "BME"): 20,
            ("ALL", "White"): 80,
            ("RAA", "All"): 60,
            ("RAA", "BME"): None,
            ("RAA", "White"): None,
            ("RBB", "All"): 40,
            ("RBB", "BME"): None,
            ("RBB", "White"): None,
        }
    )
    assert attack_wres(table) == []


def test_a_withheld_zero_is_not_a_disclosure() -> None:
    # RBB has no BME staff: its withheld count can only be 0, which partners may see anyway
    table = _headcounts(
        {
            ("ALL", "All"): 100,
            ("ALL", "BME"): 20,
            ("ALL", "White"): 80,
            ("RAA", "All"): 100,
            ("RAA", "BME"): 20,
            ("RAA", "White"): 80,
            ("RBB", "All"): 0,
            ("RBB", "BME"): None,
            ("RBB", "White"): 0,
        }
    )
    assert attack_wres(table) == []


def test_one_quantity_shown_differently_in_two_places_is_found() -> None:
    headcounts = _headcounts({("RAA", "All"): 60, ("RAA", "BME"): 20, ("RAA", "White"): 40})
    # WRES4's BME denominator is the same people as WRES1's BME count, shown as 25 here
    training = headcounts.iloc[[0]].assign(
        indicator_id="WRES4", band=None, staff_group=None, numerator=10, denominator=25
    )
    findings = attack_wres(pd.concat([headcounts, training], ignore_index=True))
    assert any(
        f.column == "denominator" and "shown as 25.0 here and 20.0" in f.problem for f in findings
    )


def test_wres3_headcount_less_last_march_gives_this_march_away() -> None:
    """WRES3 counts a group's staff in both March snapshots: 10 (shown) less last March's 10
    (shown, WRES1 a year before) leaves this March's withheld BME count at most 4."""
    last_year = _headcounts({("RAA", "All"): 50, ("RAA", "BME"): 10, ("RAA", "White"): 40})
    last_year["period_end"] = date(2024, 3, 31)
    this_year = _headcounts({("RAA", "All"): 45, ("RAA", "BME"): None, ("RAA", "White"): None})
    two_years = this_year.iloc[[0]].assign(
        indicator_id="WRES3",
        population="staff in the two March snapshots",
        band=None,
        staff_group=None,
        group_label="BME",
        numerator=0,
        denominator=10,
    )
    table = pd.concat([last_year, this_year, two_years], ignore_index=True)
    findings = attack_wres(table)
    confined = [f for f in findings if "2025-03-31" in f.cell and "BME" in f.cell]
    assert [f.problem for f in confined] == ["withheld, but can be at most 4"]
