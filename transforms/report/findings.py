"""Findings in words, generated from the published values and their significance flags.

The wording follows the flags exactly and never claims more than the statistics show: a
difference is "significant" only where the row's 95% comparison says Higher, Lower, Better or
Worse; otherwise "no significant difference", "not enough data to compare" or "withheld". The
ratio and its 95% confidence interval are given wherever they are published. Every number in a
sentence comes from a published row, so a finding can show nothing that the release withholds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

SIGNIFICANT = {"Higher", "Lower", "Better", "Worse"}
SIMILAR = "Similar"
NOT_COMPARED = "Not compared"
RATIO_NAMES = {"proportion": "ratio", "crude_rate": "rate ratio", "dsr": "rate ratio"}

WITHHELD = "withheld"
NOT_ENOUGH = "not_enough_data"
NO_DIFFERENCE = "no_difference"
HIGHER, LOWER = "higher", "lower"
"""The kinds of finding, for the report's markers (each also has its own words)."""


def is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def kind_of(row: Mapping[str, object]) -> str:
    """What the row's 95% comparison with its reference group says, as a kind above."""
    flag = row.get("significance_vs_reference")
    if row.get("suppressed") and is_missing(row.get("value")):
        return WITHHELD
    if flag in SIGNIFICANT:
        return HIGHER if float(row["ratio_to_reference"]) > 1 else LOWER
    if flag == SIMILAR:
        return NO_DIFFERENCE
    return NOT_ENOUGH


def ratio_text(row: Mapping[str, object]) -> str:
    """``rate ratio 1.31, 95% CI 1.12–1.53`` (empty where the ratio is not published)."""
    ratio, lower, upper = (
        row.get(k) for k in ("ratio_to_reference", "ratio_lower_95", "ratio_upper_95")
    )
    if any(is_missing(v) for v in (ratio, lower, upper)):
        return ""
    name = RATIO_NAMES.get(str(row.get("measure")), "ratio")
    return f"{name} {float(ratio):.2f}, 95% CI {float(lower):.2f}–{float(upper):.2f}"


def compared(row: Mapping[str, object]) -> str:
    """The group against its reference group, in words: the finding's second half.

    >>> compared({"significance_vs_reference": "Worse", "ratio_to_reference": 1.31,
    ...           "ratio_lower_95": 1.12, "ratio_upper_95": 1.53, "measure": "dsr",
    ...           "reference_group": "White", "value": 1.0, "suppressed": False})
    'significantly higher than White, which is worse (rate ratio 1.31, 95% CI 1.12–1.53)'
    """
    kind = kind_of(row)
    reference = row.get("reference_group") or "the reference group"
    if kind == WITHHELD:
        return "withheld: too few people to publish"
    if kind == NOT_ENOUGH:
        if row.get("reference_suppressed"):
            return f"not enough data to compare: the figures for {reference} are withheld"
        return f"not enough data to compare with {reference}"
    ratio = ratio_text(row)
    detail = f" ({ratio})" if ratio else ""
    if kind == NO_DIFFERENCE:
        return f"no significant difference from {reference}{detail}"
    judgement = {"Better": ", which is better", "Worse": ", which is worse"}.get(
        str(row["significance_vs_reference"]), ""
    )
    return f"significantly {kind} than {reference}{judgement}{detail}"


def sentence(row: Mapping[str, object], indicator: str) -> str:
    """One finding: ``<Group>: <indicator> significantly higher than White ... .``"""
    return f"{row['group_label']}: {indicator} {compared(row)}."


def headline(rows: list[Mapping[str, object]], indicator: str, period: str) -> str:
    """One sentence for an indicator's latest period: each group that differs significantly
    from the reference group (with its ratio), then how many do not and how many could not be
    compared, so that silence is never mistaken for equality."""
    groups = [r for r in rows if r.get("reference_group") != r.get("group_label")]
    reference = next((r.get("reference_group") for r in rows if r.get("reference_group")), None)
    different = [
        f"{r['group_label']} {compared(r)}" for r in groups if kind_of(r) in (HIGHER, LOWER)
    ]
    similar = sum(kind_of(r) == NO_DIFFERENCE for r in groups)
    uncompared = sum(kind_of(r) in (WITHHELD, NOT_ENOUGH) for r in groups)
    parts = different or [f"no ethnic group differs significantly from {reference}"]
    if different and similar:
        parts.append(f"no significant difference for {similar} group(s)")
    if uncompared:
        parts.append(f"{uncompared} group(s) too few to compare")
    return f"{indicator}, {period}: " + "; ".join(parts) + "."
