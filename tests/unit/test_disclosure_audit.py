"""The attacking audit on hand-made partner tables: what it must catch, and what it must pass.

The first-edition tables below are written the way the first edition of disclosure control
published them (statistics of the exact counts, ``small_count``/``secondary`` reasons): the
attacks of issue 8 worked on them, and the audit must find each one.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from tests.support.indicators import acc02, out04
from transforms.core import statistics as st
from transforms.core.disclosure_audit import attack, shown_bounds
from transforms.indicators.assembly import ethnic_groups

FAMILY = {
    "indicator_id": "OUT04",
    "measure": "dsr",
    "period_type": "rolling_12m",
    "period_start": date(2024, 1, 1),
    "period_end": date(2024, 12, 31),
    "unit": "per 100,000, age-standardised (ESP2013)",
}
MULTIPLIERS = {"OUT04": 100_000, "ACC02": 100}
FIVE = {
    "white": "White",
    "mixed": "Mixed",
    "asian": "Asian or Asian British",
    "black": "Black or Black British",
    "other": "Other ethnic group",
    "not_stated": "Not stated",
    "not_known": "Not known",
}


def row(breakdown: str, code: str, label: str, numerator, denominator, **extra) -> dict:
    reference = {"ethnicity_5": "White", "ethnicity_16": "White - British"}.get(breakdown)
    base = {
        **FAMILY,
        "breakdown": breakdown,
        "group_code": code,
        "group_label": label,
        "reference_group": reference,
        "numerator": numerator,
        "denominator": denominator,
        "suppression_reason": None,
        "ethnicity_known_pct": np.nan,
    }
    return base | extra


def first_edition_dsr(count: int, population: float, reason: str | None = None) -> dict:
    """A DSR row as the first edition showed it: the count rounded, the statistics exact."""
    if reason:
        return {"numerator": None, "suppression_reason": reason}
    value = count / population * 100_000
    limits = st.dobson_limits(value, value**2 / count, count).iloc[0]
    return {
        "numerator": (count + 2) // 5 * 5,
        "value": value,
        "lower_95": limits["lower95_0cl"],
        "upper_95": limits["upper95_0cl"],
        "lower_998": limits["lower99_8cl"],
        "upper_998": limits["upper99_8cl"],
    }


def table(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in ("value", "lower_95", "upper_95", "lower_998", "upper_998"):
        if column not in frame:
            frame[column] = np.nan
    frame["ratio_to_reference"] = np.nan
    return frame


def out04_first_edition(deaths: dict[str, tuple[int, str | None]]) -> pd.DataFrame:
    """OUT04 for All persons and the 5 groups, 10,000 person-years each."""
    total = sum(n for n, _ in deaths.values())
    rows = [row("all", "all", "All persons", None, 70_000) | first_edition_dsr(total, 70_000)]
    for code, label in FIVE.items():
        count, reason = deaths.get(code, (0, None))
        shown = first_edition_dsr(count, 10_000, reason) if count else {"numerator": 0}
        rows.append(row("ethnicity_5", code, label, None, 10_000) | shown)
    return table(rows)


def problems(found) -> dict[str, list[str]]:
    by_cell: dict[str, list[str]] = {}
    for finding in found:
        by_cell.setdefault(finding.cell.split(" ", 4)[-1], []).append(finding.problem)
    return by_cell


def test_first_edition_out04_gives_away_the_two_small_counts():
    """The issue's case: All 24 and White 22 shown, four groups 0, Mixed and Not known
    withheld as small counts: each of the two is 1."""
    release = out04_first_edition(
        {"white": (22, None), "mixed": (1, "small_count"), "not_known": (1, "small_count")}
    )
    found = problems(attack(release, MULTIPLIERS))
    assert "give the numerator away (24)" in " ".join(found["all=all value"])
    assert "give the numerator away (22)" in " ".join(found["ethnicity_5=white value"])
    assert "pinned to 1" in found["ethnicity_5=mixed numerator"]
    assert "pinned to 1" in found["ethnicity_5=not_known numerator"]


def test_two_withheld_cells_of_a_set_are_still_confined_to_small_counts():
    """Two withheld cells satisfy the first edition's rule, but exact statistics fix their
    sum (12) and ``small_count`` marks one: it lies in 1–7 whatever the other is."""
    release = out04_first_edition(
        {
            "white": (40, None),
            "asian": (30, None),
            "mixed": (3, "small_count"),
            "other": (9, "secondary"),
        }
    )
    found = problems(attack(release, MULTIPLIERS))
    assert "confined to 1–7" in found["ethnicity_5=mixed numerator"]
    assert any("tells partners more" in p for p in found["ethnicity_5=mixed suppression_reason"])


def test_counts_pinned_by_rounding_and_the_smallest_shown_count_are_found():
    """Four children of 8 under a parent of 32: shown as 10, 10, 10, 10 and 30. Each child
    is at least 8 (1–7 would be withheld), so the parent is at least 32, and 30 allows at
    most 32: every count is pinned, with no statistic needed."""
    children = [("H", 8), ("J", 8), ("K", 8), ("L", 8)]
    rows = [
        row("all", "all", "All persons", 30, 1000),
        row("ethnicity_5", "asian", FIVE["asian"], 30, 1000),
    ]
    rows += [row("ethnicity_5", c, FIVE[c], 0, 0) for c in FIVE if c != "asian"]
    labels = ethnic_groups().set_index(["breakdown", "ethnic_code"])["group_label"]
    rows += [
        row("ethnicity_16", code, labels[("ethnicity_16", code)], 10, 250) for code, _ in children
    ]
    found = problems(attack(table(rows), MULTIPLIERS))
    assert found["ethnicity_16=H numerator"] == ["pinned to 8"]
    assert found["ethnicity_5=asian numerator"] == ["pinned to 32"]
    assert found["all=all numerator"] == ["pinned to 32"]


def test_a_small_complement_is_found():
    """A practice's records with unknown ethnicity (records − known): from 10 known of 20
    records it could be 0–14, but a percentage of the exact counts (12 of 19) fixes it."""
    rows = [
        row("source_organisation", "gp:P1", "gp: P1", 10, 20),
        row("source_organisation", "gp:P2", "gp: P2", 10, 10),
        row("source_organisation", "gp:all", "gp: all organisations", 20, 30),
    ]
    frame = table(rows).assign(indicator_id="DQ01", measure="proportion", period_type="month")
    assert attack(frame, {"DQ01": 100}) == []
    frame.loc[0, ["value", "lower_95", "upper_95", "lower_998", "upper_998"]] = [
        100 * 12 / 19,
        *_wilson(12, 19),
    ]
    found = problems(attack(frame, {"DQ01": 100}))
    assert "pinned to 7" in found["source_organisation=gp:P1 denominator − numerator"]


def _wilson(n: int, d: int) -> list[float]:
    limits = st.proportion(n, d).iloc[0]
    return [limits[c] for c in ("lower95_0cl", "upper95_0cl", "lower99_8cl", "upper99_8cl")]


def test_statistics_of_the_published_counts_give_nothing_away():
    """Wilson limits of the rounded counts fit the rounded counts themselves, so the attack
    learns nothing it did not know; the same with a withheld cell beside them."""
    rows = [
        row("all", "all", "All persons", 40, 400),
        row("ethnicity_5", "white", "White", 30, 300),
        row("ethnicity_5", "mixed", "Mixed", None, 50, suppression_reason="withheld"),
        row("ethnicity_5", "asian", FIVE["asian"], None, 50, suppression_reason="withheld"),
    ]
    rows += [
        row("ethnicity_5", c, FIVE[c], 0, 0) for c in ("black", "other", "not_stated", "not_known")
    ]
    frame = table(rows).assign(indicator_id="ACC02", measure="proportion", period_type="month")
    for i in (0, 1):
        n, d = frame.loc[i, ["numerator", "denominator"]]
        frame.loc[i, ["value", "lower_95", "upper_95", "lower_998", "upper_998"]] = [
            100 * n / d,
            *_wilson(int(n), int(d)),
        ]
    assert attack(frame, MULTIPLIERS) == []


@pytest.mark.parametrize(("published", "low", "high"), [(0, 0, 0), (10, 8, 12), (25, 23, 27)])
def test_a_published_count_stands_for_the_counts_that_round_to_it(published, low, high):
    lows, highs = shown_bounds(pd.Series([published, None], dtype="Int64"))
    assert (lows[0], highs[0]) == (low, high)
    assert lows[1] == 0 and np.isinf(highs[1])


def test_a_lone_withheld_count_in_a_set_is_refused():
    rows = [
        row("all", "all", "All persons", 40, 400),
        row("ethnicity_5", "white", "White", 30, 300),
        row("ethnicity_5", "mixed", "Mixed", None, 100, suppression_reason="withheld"),
    ]
    frame = table(rows).assign(indicator_id="ACC02", measure="proportion", period_type="month")
    found = problems(attack(frame, MULTIPLIERS))
    assert found["ethnicity_5=mixed numerator"] == ["the only withheld count of its set"]


def test_a_ratio_that_is_not_the_ratio_of_the_shown_values_is_found():
    rows = [
        row("all", "all", "All persons", 40, 400, value=10.0),
        row("ethnicity_5", "white", "White", 20, 200, value=10.0, ratio_to_reference=1.0),
        row("ethnicity_5", "asian", FIVE["asian"], 20, 200, value=10.0),
    ]
    frame = table(rows).assign(indicator_id="ACC02", measure="proportion", period_type="month")
    frame.loc[1, "ratio_to_reference"] = 1.0
    frame.loc[2, "ratio_to_reference"] = 1.1  # as if from exact counts
    found = problems(attack(frame, MULTIPLIERS))
    assert found["ethnicity_5=asian ratio_to_reference"] == ["not value ÷ reference value"]


def test_a_withheld_count_kept_under_eight_is_found_even_if_it_could_be_zero():
    """0 is shown, so a partner reads a withheld count as at least 1: [0, 4] says 1–4."""
    rows = [
        row("all", "all", "All persons", 20, 400),
        row("ethnicity_5", "white", "White", 20, 300),
        row("ethnicity_5", "mixed", "Mixed", None, 50, suppression_reason="withheld"),
        row("ethnicity_5", "asian", FIVE["asian"], None, 50, suppression_reason="withheld"),
    ]
    frame = table(rows).assign(indicator_id="ACC02", measure="proportion", period_type="month")
    found = problems(attack(frame, MULTIPLIERS))
    assert found["ethnicity_5=mixed numerator"] == ["confined to 1–4"]


def test_ratio_limits_of_the_exact_counts_are_found():
    """The width of a ratio's interval pins the counts it came from."""
    partners = acc02({"A": 412, "H": 31}, {"A": 4013, "H": 498}, partners=True).reset_index()
    asian = (partners["breakdown"] == "ethnicity_5") & (partners["group_code"] == "asian")
    exact = st.proportion_ratio(31, 498, 412, 4013, confidence=(0.95, 0.998)).iloc[0]
    for column, theirs in (("ratio_lower_95", "lower95_0cl"), ("ratio_upper_95", "upper95_0cl")):
        partners.loc[asian, column] = exact[theirs]
    found = problems(attack(partners, MULTIPLIERS))
    assert "not the interval of the published figures" in found["ethnicity_5=asian ratio_lower_95"]


def test_dsr_limits_from_the_unrescaled_variance_are_found():
    """value² ≤ O · var(DSR) always (Cauchy-Schwarz), so limits whose implied variance breaks
    it for the published O came from the exact count's variance: value²/var gives O away."""
    team, partners = out04({"A": 300, "H": 27}, {"A": 10_000, "H": 800})  # H shown 25
    shown = partners["value"].notna().to_numpy()
    limits = st.dobson_limits(team["value"], team["variance"], partners["numerator"])
    for ours, theirs in (
        ("lower_95", "lower95_0cl"),
        ("upper_95", "upper95_0cl"),
        ("lower_998", "lower99_8cl"),
        ("upper_998", "upper99_8cl"),
    ):
        partners.loc[shown, ours] = limits.loc[shown, theirs].to_numpy()
    found = problems(attack(partners, MULTIPLIERS))
    assert any("do not follow" in p for p in found["ethnicity_16=H value"])


def _with_wres_groups(wres: bool) -> pd.DataFrame:
    """ACC02-like counts: All 100, White 60, Asian 20 shown; Mixed, Black, Other and Not stated
    withheld; Not known 0. With the WRES groups, BME 20 and Unknown 20 shown as well."""
    proportion = {"indicator_id": "ACC02", "measure": "proportion", "unit": "%"}
    five = {"white": 60, "mixed": None, "asian": 20, "black": None, "other": None,
            "not_stated": None, "not_known": 0}  # fmt: skip
    rows = [row("all", "all", "All persons", 100, 7000, **proportion)]
    rows += [row("ethnicity_5", c, FIVE[c], n, 1000, **proportion) for c, n in five.items()]
    if wres:
        groups = {"white": ("White", 60, 1000), "bme": ("BME", 20, 4000),
                  "unknown": ("Unknown", 20, 2000)}  # fmt: skip
        rows += [
            row("wres_group", code, label, n, d, **proportion, reference_group="White")
            for code, (label, n, d) in groups.items()
        ]
    return table(rows)


def test_the_wres_groups_are_sets_a_partner_can_subtract():
    """Mixed, Black and Other hide among 5 groups, but BME (20) less Asian (20) leaves them
    at most 4 between them (and at least 1 each: a withheld count is not 0)."""
    assert not any(
        "mixed" in cell for cell in problems(attack(_with_wres_groups(False), MULTIPLIERS))
    )
    found = problems(attack(_with_wres_groups(True), MULTIPLIERS))
    for code in ("mixed", "black", "other"):
        assert "confined to 1–4" in found[f"ethnicity_5={code} numerator"]
    # and Not stated is Unknown (20) less Not known (0): the only withheld count of its set
    assert "the only withheld count of its set" in found["ethnicity_5=not_stated numerator"]
