"""The report's trend charts show the latest two years of a release that holds more, so the
report (and the memory its PDF takes) stops growing with the history the release keeps."""

from __future__ import annotations

from datetime import date

import pandas as pd

from transforms.publish.tables import RELEASE_TABLES
from transforms.report import content
from transforms.report.inputs import Release

MONTHS = list(pd.date_range("2023-07-01", periods=30, freq="MS").date)
WINDOW = MONTHS[-content.TREND_MONTHS :]


def _value_row(month: date, breakdown: str, label: str, value: float, ratio: float | None) -> dict:
    row = dict.fromkeys(RELEASE_TABLES["indicator_values"].column_names)
    return row | {
        "indicator_id": "ACC03",
        "measure": "crude_rate",
        "period_type": "month",
        "period_start": month,
        "period_end": (pd.Timestamp(month) + pd.offsets.MonthEnd(0)).date(),
        "breakdown": breakdown,
        "group_code": label,
        "group_label": label,
        "group_order": 0 if breakdown == "all" else 1 if label == "White" else 3,
        "numerator": 100,
        "denominator": 10_000,
        "value": value,
        "lower_95": value - 1,
        "upper_95": value + 1,
        "unit": "per 1,000",
        "reference_group": None if breakdown == "all" else "White",
        "ratio_to_reference": ratio,
    }


def _release() -> Release:
    """30 months of one monthly indicator and one source's completeness; the Asian group's
    ratio is withheld in the six months before the latest 24."""
    values = []
    for i, month in enumerate(MONTHS):
        ratio = None if i < len(MONTHS) - content.TREND_MONTHS else 1.2
        values += [
            _value_row(month, "all", "All persons", 10.0 + i % 3, None),
            _value_row(month, "ethnicity_5", "White", 10.0, None),
            _value_row(month, "ethnicity_5", "Asian or Asian British", 12.0, ratio),
        ]
    indicators = pd.DataFrame(
        [
            dict(
                indicator_id="ACC03",
                theme=3,
                title="A&E attendances",
                definition="Attendances per 1,000 registered",
                caveats="",
                polarity="none",
            )
        ]
    )
    completeness = pd.DataFrame(
        [
            dict(source="ae_attendances", organisation="ALL", month=m, records=1000, known=900)
            | dict(pct_known=90.0 + i % 2)
            for i, m in enumerate(MONTHS)
        ]
    )
    tables = {
        "indicator_values": pd.DataFrame(values),
        "indicators": indicators,
        "ethnicity_completeness": completeness,
    }
    covers = {"first_month": "2023-07", "last_month": "2025-12"}
    return Release("2025-12", {"covers": covers}, "0" * 64, tables)


def test_an_indicators_trend_shows_only_the_latest_two_years():
    (block,) = content.blocks(_release())[3]
    shown = [label for label, _, _ in block.trend_rows]
    assert shown == [f"{m:%B %Y}" for m in WINDOW]
    assert block.trend_svg is not None and "2023" not in block.trend_svg  # no axis label


def test_a_groups_ratio_is_judged_over_the_window_not_the_months_before_it():
    (block,) = content.blocks(_release())[3]
    (group, variation) = block.ratio_variation[0]
    assert group == "Asian or Asian British"
    assert variation != "not enough published months to judge"


def test_completeness_over_time_shows_only_the_latest_two_years():
    (source,) = content.completeness(_release())
    assert [month for month, _, _ in source.months] == [f"{m:%B %Y}" for m in WINDOW]
