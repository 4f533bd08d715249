"""Month arithmetic and vectorised date helpers (numpy datetime64[D] throughout)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DAY = np.timedelta64(1, "D")
NEVER = np.datetime64("2200-01-01")  # stands in for "no date of death" so min() works


@dataclass(frozen=True)
class Month:
    """One delivery month; `index` counts from the first generated month."""

    label: str  # 'YYYY-MM'
    index: int

    @property
    def first(self) -> np.datetime64:
        return np.datetime64(self.label, "M").astype("datetime64[D]")

    @property
    def last(self) -> np.datetime64:
        return (np.datetime64(self.label, "M") + 1).astype("datetime64[D]") - DAY

    @property
    def number(self) -> int:
        return int(self.label[5:])

    @property
    def days(self) -> int:
        return int((self.last - self.first) / DAY) + 1


def month_range(start: str, end: str) -> list[Month]:
    """Inclusive list of months; rejects reversed ranges early rather than writing nothing."""
    first, last = np.datetime64(start, "M"), np.datetime64(end, "M")
    if last < first:
        raise ValueError(f"end {end} is before start {start}")
    count = int((last - first).astype(int)) + 1
    return [Month(str(first + i), i) for i in range(count)]


def _year_and_monthday(dates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    years = dates.astype("datetime64[Y]")
    months = dates.astype("datetime64[M]")
    month_of_year = (months - years.astype("datetime64[M]")).astype(int) + 1
    day = (dates - months.astype("datetime64[D]")).astype(int) + 1
    return years.astype(int) + 1970, month_of_year * 100 + day


def age_at(dob: np.ndarray, on: np.ndarray | np.datetime64) -> np.ndarray:
    """Completed years, as the NHS reports age at an event."""
    dob_year, dob_md = _year_and_monthday(np.asarray(dob, dtype="datetime64[D]"))
    on_year, on_md = _year_and_monthday(np.asarray(on, dtype="datetime64[D]"))
    return (on_year - dob_year - (on_md < dob_md)).astype(np.int64)


def uniform_dates(rng: np.random.Generator, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """A uniformly random day in [low, high] per element (both inclusive)."""
    span = ((high - low) / DAY).astype(np.int64) + 1
    return low + (rng.random(len(span)) * span).astype(np.int64) * DAY


def add_days(dates: np.ndarray, days: np.ndarray) -> np.ndarray:
    return dates + days.astype(np.int64) * DAY
