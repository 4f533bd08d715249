"""The report's sentences follow the significance flags exactly (one case per flag)."""

from __future__ import annotations

import pytest

from transforms.report import findings


def row(flag: str | None, ratio: float | None = 1.31, **changes: object) -> dict:
    base = {
        "group_label": "Black or Black British",
        "reference_group": "White",
        "measure": "dsr",
        "value": 14.2,
        "suppressed": False,
        "reference_suppressed": False,
        "significance_vs_reference": flag,
        "ratio_to_reference": ratio,
        "ratio_lower_95": None if ratio is None else 1.12,
        "ratio_upper_95": None if ratio is None else 1.53,
    }
    return base | changes


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (row("Higher"), "significantly higher than White (rate ratio 1.31, 95% CI 1.12–1.53)"),
        (
            row("Lower", 0.76, ratio_lower_95=0.61, ratio_upper_95=0.95),
            "significantly lower than White (rate ratio 0.76, 95% CI 0.61–0.95)",
        ),
        (
            row("Worse"),
            "significantly higher than White, which is worse (rate ratio 1.31, 95% CI 1.12–1.53)",
        ),
        (
            row("Better", 0.76, ratio_lower_95=0.61, ratio_upper_95=0.95, measure="proportion"),
            "significantly lower than White, which is better (ratio 0.76, 95% CI 0.61–0.95)",
        ),
        (
            row("Similar", 1.05, ratio_lower_95=0.9, ratio_upper_95=1.2),
            "no significant difference from White (rate ratio 1.05, 95% CI 0.90–1.20)",
        ),
        (row("Not compared", None), "not enough data to compare with White"),
        (
            row("Not compared", None, reference_suppressed=True),
            "not enough data to compare: the figures for White are withheld",
        ),
        (
            row(None, None, value=None, suppressed=True),
            "withheld: too few people to publish",
        ),
    ],
    ids=[
        "higher",
        "lower",
        "worse",
        "better",
        "similar",
        "small",
        "reference-withheld",
        "withheld",
    ],
)
def test_each_flag_has_its_own_words(case, expected):
    assert findings.compared(case) == expected


def test_a_similar_group_is_never_called_significant_whatever_its_ratio():
    text = findings.compared(row("Similar", 1.9, ratio_lower_95=0.99, ratio_upper_95=3.6))
    assert text.startswith("no significant difference") and "significantly" not in text


def test_the_headline_lists_the_differences_then_counts_the_rest():
    rows = [
        row(None, 1.0, group_label="White"),
        row("Worse"),
        row("Similar", 1.02, group_label="Mixed"),
        row(None, None, group_label="Other ethnic group", value=None, suppressed=True),
    ]
    assert findings.headline(rows, "Emergency admissions", "2025/26") == (
        "Emergency admissions, 2025/26: Black or Black British significantly higher than "
        "White, which is worse (rate ratio 1.31, 95% CI 1.12–1.53); no significant difference "
        "for 1 group(s); 1 group(s) too few to compare."
    )


def test_a_headline_without_differences_says_so_and_counts_the_uncompared():
    rows = [row("Similar", 1.02, group_label="Mixed"), row("Not compared", None)]
    assert findings.headline(rows, "DNA", "October 2026") == (
        "DNA, October 2026: no ethnic group differs significantly from White; "
        "1 group(s) too few to compare."
    )
