"""Months and reporting periods: the project's one place for month arithmetic.

A reporting period of the indicator catalogue is reported only when every month it spans has
been loaded: a rolling year with a missing month, or a flu season still under way, would
understate its counts. Standard library only, so DAG code and the CLI can import it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

# kind -> (first calendar month, length in months) for the fixed annual windows
ANNUAL_WINDOWS = {
    "campaign_covid_autumn": (9, 4),  # September to December
    "season_flu": (10, 6),  # October to March
    "season_staff_flu": (9, 6),  # September to February: the frontline staff flu campaign
    "financial_year": (4, 12),  # April to March: the WRES reporting year
}


@dataclass(frozen=True)
class Period:
    kind: str
    start: date
    end: date
    months: tuple[str, ...]

    @property
    def label(self) -> str:
        return self.months[-1] if self.kind == "month" else f"{self.months[0]}..{self.months[-1]}"


def utcnow() -> datetime:
    """Now in UTC without a time zone: how the warehouse stores every timestamp."""
    return datetime.now(UTC).replace(tzinfo=None)


def utc_today() -> date:
    """Today's date in UTC: the clock of ``hei status`` (tests replace it)."""
    return utcnow().date()


def month_index(month: str) -> int:
    """A ``YYYY-MM`` month as a count of months, so that months subtract."""
    year, number = map(int, month.split("-"))
    return year * 12 + number - 1


def month_after(month: str, count: int = 1) -> str:
    """``YYYY-MM`` ``count`` months after ``month`` (before it when negative)."""
    index = month_index(month) + count
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_bounds(period: str) -> tuple[date, date]:
    """First and last day of a ``YYYY-MM`` month."""
    start = date.fromisoformat(f"{period}-01")
    return start, date.fromisoformat(f"{month_after(period)}-01") - timedelta(days=1)


def last_complete_month(today: date | None = None) -> str:
    """The default end of generated data and of loads: the month before ``today``."""
    return month_after((today or date.today()).strftime("%Y-%m"), -1)


def _window(kind: str, first: str, length: int) -> Period:
    months = tuple(month_after(first, i) for i in range(length))
    return Period(kind, month_bounds(months[0])[0], month_bounds(months[-1])[1], months)


def periods(kind: str, available: list[str]) -> list[Period]:
    """Every complete period of ``kind`` within the ``available`` months, oldest first."""
    have = set(available)
    if not have:
        return []
    if kind == "month":
        candidates = [_window(kind, m, 1) for m in sorted(have)]
    elif kind == "rolling_12m":
        candidates = [_window(kind, month_after(m, -11), 12) for m in sorted(have)]
    elif kind in ANNUAL_WINDOWS:
        first_month, length = ANNUAL_WINDOWS[kind]
        years = range(int(min(have)[:4]) - 1, int(max(have)[:4]) + 1)
        candidates = [_window(kind, f"{y:04d}-{first_month:02d}", length) for y in years]
    else:
        raise ValueError(f"unknown period kind {kind!r}")
    return [p for p in candidates if have.issuperset(p.months)]
