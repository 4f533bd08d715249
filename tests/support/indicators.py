"""Indicator rows computed from hand-made counts (no warehouse): ACC02 for one month and
OUT04 for one rolling year, as the data team's and the partners' tables."""

from __future__ import annotations

from datetime import date

import pandas as pd

from transforms.config.catalogue import catalogue
from transforms.core import statistics as st
from transforms.core.periods import Period, periods
from transforms.indicators import assembly as indicators

JANUARY = Period("month", date(2025, 1, 1), date(2025, 1, 31), ("2025-01",))
MONTH = {"period_type": "month", "period_start": JANUARY.start, "period_end": JANUARY.end}
YEAR_2024 = periods("rolling_12m", [f"2024-{m:02d}" for m in range(1, 13)])[0]


def counts(by_code: dict[str, int]) -> pd.DataFrame:
    """January counts by ethnic code, without age bands."""
    rows = [{**MONTH, "ethnic_code": c, "age_band": "all", "n": n} for c, n in by_code.items()]
    return pd.DataFrame(rows)


def acc02(
    numerator: dict[str, int], denominator: dict[str, int], partners: bool = False
) -> pd.DataFrame:
    """The data team's rows of ACC02 for January (the partners' with ``partners``)."""
    frames = indicators.indicator_values(
        catalogue()["ACC02"], counts(numerator), counts(denominator), [JANUARY]
    )
    return frames[partners].set_index(["breakdown", "group_label"])


def rolling_year_counts(by_code: dict[str, int], band: str = "60-64") -> pd.DataFrame:
    """Per-period counts by code and age band, all of a code's events in one band."""
    year = {"period_type": "rolling_12m", "period_start": date(2024, 1, 1),
            "period_end": date(2024, 12, 31)}  # fmt: skip
    rows = [{**year, "ethnic_code": c, "age_band": b, "n": n if b == band else 0}
            for c, n in by_code.items() for b in st.ESP2013]  # fmt: skip
    return pd.DataFrame(rows)


def out04(deaths: dict[str, int], people: dict[str, int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """OUT04 (the data team's rows, the partners' rows) for the rolling year 2024."""
    year = YEAR_2024
    population = rolling_year_counts(people)
    population["n"] = population["ethnic_code"].map(people)  # the same in every band
    return indicators.indicator_values(
        catalogue()["OUT04"], rolling_year_counts(deaths), population, [year]
    )
