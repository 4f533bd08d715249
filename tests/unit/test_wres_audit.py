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
