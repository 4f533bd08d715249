"""XmR statistical process control charts, as NHS England's Making Data Count draws them.

Every rule reproduces the NHS-R Community's R package NHSRplotthedots 0.2.2 (commit
``050b07d``), whose ``ptd_spc()`` is the reference implementation of Making Data Count. The
rules, with the package file each comes from, are in ``tests/fixtures/spc/rules.md`` (cited
below as "rules §n"); ``docs/methods.md`` §9 summarises them. The unit tests check every value
of the package's output on the reference cases in that folder. The code is written from the
rules, not ported from the R code.

The defaults are the package's, not NHS England's Excel and SQL tools (rules §8): moving
ranges are screened for outliers, runs and trends need 7 points, the 2-of-3 rule counts only
points between the 2σ and 3σ lines, and a target on a limit is "inconsistent".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd

Direction = Literal["increase", "decrease", "neutral"]

LIMIT = 2.66  # rules §1: process limits at mean ± 2.66 MR̄ (3σ, σ = MR̄ / 1.128)
CLOSE = 2 * (LIMIT / 3)  # rules §1: the 2σ lines of the 2-of-3 rule, computed as the package does
SCREEN = 3.267  # rules §1: moving ranges at or above 3.267 MR̄ are outliers
RUN = 7  # rules §2: points in a shift or a trend
MINIMUM_POINTS = 13  # rules §7: fewer points in a group warn of trial limits; NHS England's
# tools show no limits or icons below 13 points

COMMON_CAUSE = "Common Cause"
# rules §2, by precedence: (label of a high signal, label of a low one) per rule
_RULE_LABELS = (
    ("Above UCL", "Below LCL"),
    ("7 Point Trend (Increasing)", "7 Point Trend (Decreasing)"),
    ("2 in 3 Above CL", "2 in 3 Below CL"),
    ("7 Points Above CL", "7 Points Below CL"),
)
_SIGN = {"increase": 1, "decrease": -1, "neutral": 0}

# rules §4: the icon stem of the last point's type, given the improvement direction
VARIATION_LABELS = {
    "common_cause": "Common cause variation",
    "improvement_high": "Special cause: improvement (high)",
    "improvement_low": "Special cause: improvement (low)",
    "concern_high": "Special cause: concern (high)",
    "concern_low": "Special cause: concern (low)",
    "neutral_high": "Special cause: neither improvement nor concern (high)",
    "neutral_low": "Special cause: neither improvement nor concern (low)",
}
# rules §5: assurance type -> icon stem, and the icon's label
_ASSURANCE_ICONS = {
    "consistent_pass": "pass",
    "inconsistent": "inconsistent",
    "consistent_fail": "fail",
}
ASSURANCE_LABELS = {
    "pass": "Consistently hits the target",
    "inconsistent": "Hit and miss",
    "fail": "Consistently fails the target",
}

COLUMNS = [
    "date",
    "y",
    "rebase_group",
    "mean",
    "lpl",
    "upl",
    "outside_limits",
    "relative_to_mean",
    "close_to_limits",
    "special_cause_type",
    "special_cause_flag",
    "point_type",
    "short_group_warning",
]


@dataclass(frozen=True)
class SpcOptions:
    """The chart's settings, named and defaulted as ``ptd_spc()``'s except the direction.

    ``fix_after_n_points`` fixes each group's limits on its first points (the package requires
    at least 12); ``rebase_dates`` start a new group at the point of each date (rules §6).
    """

    improvement_direction: Direction = "neutral"
    screen_outliers: bool = True
    fix_after_n_points: int | None = None
    rebase_dates: tuple[date, ...] = ()
    target: float | None = None


@dataclass(frozen=True)
class SpcSummary:
    """The chart's latest state: its last point, and the limits and size of its last group."""

    variation: str
    variation_icon: str
    assurance: str | None
    assurance_icon: str | None
    mean: float
    lpl: float
    upl: float
    n: int


# --- the rules on one group, as vectors (rules §2) --------------------------------------------


def _trailing_sums(values: np.ndarray, width: int) -> np.ndarray:
    """Sum of each point and the ``width - 1`` before it (fewer at the start)."""
    cumulative = np.concatenate([[0], np.cumsum(values)])
    ends = np.arange(1, len(values) + 1)
    return cumulative[ends] - cumulative[np.maximum(ends - width, 0)]


def _covered(ends: np.ndarray, width: int) -> np.ndarray:
    """Whether each point lies in a window of ``width`` points ending at a true ``ends``."""
    cumulative = np.concatenate([[0], np.cumsum(ends != 0)])
    starts = np.arange(len(ends))
    return cumulative[np.minimum(starts + width, len(ends))] - cumulative[starts] > 0


def seven_point_one_side_mean(relative_to_mean: np.ndarray) -> np.ndarray:
    """1 at each point ending 7 in a row on one side of the mean.

    As ``ptd_seven_point_one_side_mean``: a point exactly on the mean (0) breaks the run.
    """
    return (np.abs(_trailing_sums(relative_to_mean, RUN)) == RUN).astype(int)


def seven_point_trend(y: np.ndarray) -> np.ndarray:
    """+1 / −1 at each point ending 7 strictly rising / falling points (``ptd_seven_point_trend``).

    A tie breaks a trend, as in the package.
    """
    steps = np.sign(np.diff(y, prepend=y[:1])).astype(int)  # the first point has no step
    sums = _trailing_sums(steps, RUN - 1)
    return np.sign(sums) * (np.abs(sums) == RUN - 1)


def part_of_seven_trend(ends: np.ndarray) -> np.ndarray:
    """1 at every point of the 7 ending at each signal of a run or a trend.

    As ``ptd_part_of_seven_trend``: a run or trend longer than 7 flags all its points.
    """
    return _covered(ends, RUN).astype(int)


def two_in_three(close_to_limits: np.ndarray, relative_to_mean: np.ndarray) -> np.ndarray:
    """1 at every point of a 3-point window with 2 close to a limit, all on one side of the mean.

    As ``ptd_two_in_three``: only windows wholly inside the group count, and points on
    opposite sides of the mean never combine (rules §2, issue #143).
    """
    ends = (_trailing_sums(close_to_limits.astype(int), 3) >= 2) & (
        np.abs(_trailing_sums(relative_to_mean, 3)) == 3
    )
    return _covered(ends, 3).astype(int)


def part_of_two_in_three(close_to_limits: np.ndarray, relative_to_mean: np.ndarray) -> np.ndarray:
    """The points the 2-of-3 rule flags: the close ones of its windows, not the third point.

    ``ptd_part_of_two_in_three(ptd_two_in_three(close, rtm), close)`` in the package.
    """
    return two_in_three(close_to_limits, relative_to_mean) * close_to_limits.astype(int)


def _special_cause(
    y: np.ndarray, relative_to_mean: np.ndarray, close: np.ndarray, outside: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each point's ``special_cause_type`` and its side (+1 high, −1 low, 0 common cause).

    One label per point, by the precedence of rules §2. A trend point takes the direction of
    the step after it if the next point is in a trend too, else of the step before it, so a
    peak shared by a rise and a fall is labelled by the fall.
    """
    trend = part_of_seven_trend(seven_point_trend(y)).astype(bool)
    steps = np.sign(np.diff(y))
    in_next = np.append(trend[1:], False)
    direction = np.where(trend & in_next, np.append(steps, 0), np.insert(steps, 0, 0))
    rules = [
        outside,
        trend,
        part_of_two_in_three(close, relative_to_mean).astype(bool),
        part_of_seven_trend(seven_point_one_side_mean(relative_to_mean)).astype(bool),
    ]
    above = relative_to_mean > 0
    high = [above, direction == 1, above, above]
    labels = [np.where(h, up, down) for h, (up, down) in zip(high, _RULE_LABELS, strict=True)]
    side = np.select(rules, [np.where(h, 1, -1) for h in high], 0)
    return np.select(rules, labels, COMMON_CAUSE), side


def _point_type(side: np.ndarray, improvement_direction: Direction) -> np.ndarray:
    """``point_type`` from a signal's side and the improvement direction (rules §3)."""
    if improvement_direction == "neutral":
        return np.select(
            [side > 0, side < 0],
            ["special_cause_neutral_high", "special_cause_neutral_low"],
            "common_cause",
        )
    oriented = side * _SIGN[improvement_direction]
    return np.select(
        [oriented > 0, oriented < 0],
        ["special_cause_improvement", "special_cause_concern"],
        "common_cause",
    )


# --- limits and the chart ---------------------------------------------------------------------


def _mean_and_moving_range(y: np.ndarray, options: SpcOptions) -> tuple[float, float]:
    """Centre line and mean moving range of one group, from its baseline points (rules §1).

    Screening drops moving ranges at or above 3.267 times their mean, once, and leaves the
    mean alone. A flat group loses every (zero) range, so MR̄ is NaN and so are its limits.
    """
    baseline = y[: options.fix_after_n_points]
    ranges = np.abs(np.diff(baseline))
    if options.screen_outliers and ranges.size:
        ranges = ranges[ranges < SCREEN * ranges.mean()]
    return float(baseline.mean()), float(ranges.mean()) if ranges.size else np.nan


def _unless_no_limits(flags: np.ndarray, moving_range: float) -> pd.arrays.BooleanArray:
    """Comparisons with NaN limits are NA, as in the package (and false in the rules)."""
    return (
        pd.array(flags, dtype="boolean")
        if np.isfinite(moving_range)
        else pd.array([pd.NA] * len(flags), dtype="boolean")
    )


def _group(y: np.ndarray, options: SpcOptions) -> dict[str, np.ndarray]:
    """The chart columns of one rebase group."""
    mean, moving_range = _mean_and_moving_range(y, options)
    lpl, upl = mean - LIMIT * moving_range, mean + LIMIT * moving_range
    near_lpl, near_upl = mean - CLOSE * moving_range, mean + CLOSE * moving_range
    outside = (y > upl) | (y < lpl)
    close = ~outside & ((y < near_lpl) | (y > near_upl))
    relative_to_mean = np.sign(y - mean).astype(int)
    label, side = _special_cause(y, relative_to_mean, close, outside)
    return {
        "mean": np.full(len(y), mean),
        "lpl": np.full(len(y), lpl),
        "upl": np.full(len(y), upl),
        "outside_limits": _unless_no_limits(outside, moving_range),
        "relative_to_mean": relative_to_mean,
        "close_to_limits": _unless_no_limits(close, moving_range),
        "special_cause_type": label,
        "special_cause_flag": label != COMMON_CAUSE,
        "point_type": _point_type(side, options.improvement_direction),
        "short_group_warning": np.full(len(y), len(y) < MINIMUM_POINTS),
    }


def spc(
    dates: Sequence[date], values: Sequence[float], options: SpcOptions = SpcOptions()
) -> pd.DataFrame:
    """One chart (one facet): a row per point, sorted by date, with ``ptd_spc()``'s columns.

    Each rebase group gets its own limits and rules; runs and trends never cross a rebase.
    Values must be finite: the package has no rule for a missing point.
    """
    frame = pd.DataFrame({"date": pd.to_datetime(list(dates)), "y": np.asarray(values, float)})
    if frame.empty or not np.isfinite(frame["y"]).all():
        raise ValueError("SPC needs at least one point, and a finite value for every date")
    frame = frame.sort_values("date", kind="stable", ignore_index=True)
    rebases = frame["date"].isin(pd.to_datetime(list(options.rebase_dates)))
    frame["rebase_group"] = rebases.cumsum()
    groups = [
        pd.DataFrame(_group(rows["y"].to_numpy(), options), index=rows.index)
        for _, rows in frame.groupby("rebase_group", sort=True)
    ]
    return frame.join(pd.concat(groups))[COLUMNS]


# --- the summary ------------------------------------------------------------------------------


def variation_icon(point_type: str, improvement_direction: Direction) -> str:
    """The variation icon's stem for the last point's type (rules §4, ``ptd_get_icons``)."""
    kind = point_type.removeprefix("special_cause_")
    if kind in ("improvement", "concern"):
        high = (kind == "improvement") == (improvement_direction == "increase")
        return f"{kind}_{'high' if high else 'low'}"
    return kind


def assurance_type(
    lpl: float, upl: float, target: float | None, improvement_direction: str
) -> str | None:
    """Whether the process will meet the target (rules §5), None without one or when neutral.

    Strict: a target exactly on a limit is ``inconsistent``, as in the package (NHS England's
    SQL says pass or fail there). NaN limits compare false, so they give ``inconsistent`` too.
    """
    if target is None or improvement_direction == "neutral":
        return None
    sign = _SIGN[improvement_direction]
    if target > upl:
        return "consistent_fail" if sign > 0 else "consistent_pass"
    if target < lpl:
        return "consistent_pass" if sign > 0 else "consistent_fail"
    return "inconsistent"


def summarise(chart: pd.DataFrame, options: SpcOptions) -> SpcSummary:
    """The chart's icons, limits and size, from its last point and last rebase group.

    As the package's icons and assurance, everything comes from the latest group (rules §4–§6).
    """
    last = chart.iloc[-1]
    assurance = assurance_type(
        last["lpl"], last["upl"], options.target, options.improvement_direction
    )
    return SpcSummary(
        variation=last["point_type"],
        variation_icon=variation_icon(last["point_type"], options.improvement_direction),
        assurance=assurance,
        assurance_icon=None if assurance is None else _ASSURANCE_ICONS[assurance],
        mean=float(last["mean"]),
        lpl=float(last["lpl"]),
        upl=float(last["upl"]),
        n=int((chart["rebase_group"] == last["rebase_group"]).sum()),
    )
