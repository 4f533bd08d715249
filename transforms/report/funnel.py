"""Funnel plot control limits for proportions, as Fingertips draws them.

Reproduces PHEindicatormethods 2.1.0 ``calculate_funnel_limits(statistic = "proportion")``
and ``assign_funnel_significance`` (``docs/methods.md`` §10): the baseline is the pooled
proportion, and the 95% and 99.8% limits at a population N are the proportions whose Wilson
interval just reaches the baseline. Written from the formulas, not ported from the package
(GPL-3); the unit tests check the package's own expected values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri  # the normal quantile, as scipy.stats' norm.ppf

# one-sided probabilities of the limits: 95% (0.025 in each tail) and 99.8% (0.001)
P_95 = 0.975
P_998 = 0.999
GRID_SIZE = 100  # x-axis points of the package's default funnel


@dataclass(frozen=True)
class FunnelLimits:
    """The control limits at one population size, on the multiplier's scale."""

    population: float
    lower_95: float
    upper_95: float
    lower_998: float
    upper_998: float


def funnel_limits(
    numerators: Sequence[float],
    denominators: Sequence[float],
    multiplier: float = 100,
    points: Sequence[float] | None = None,
) -> tuple[float, list[FunnelLimits]]:
    """The baseline (pooled proportion × multiplier) and the limits at each population point.

    ``points`` defaults to the package's 100-point x axis, so a chart matches Fingertips'.
    Limits are clipped to [0, multiplier]: a proportion cannot leave that range.
    """
    numerator, denominator = _checked(numerators, denominators)
    _require(multiplier > 0, "multiplier must be greater than zero")
    average = numerator.sum() / denominator.sum()
    population = _axis_points(denominator) if points is None else np.asarray(points, float)
    _require(population.size > 0, "points must not be empty")
    _require(np.all(population > 0), "points must be greater than zero")
    lower_95, upper_95 = _limits(P_95, population, average) * multiplier
    lower_998, upper_998 = _limits(P_998, population, average) * multiplier
    columns = zip(
        population,
        np.clip(lower_95, 0, multiplier),
        np.clip(upper_95, 0, multiplier),
        np.clip(lower_998, 0, multiplier),
        np.clip(upper_998, 0, multiplier),
        strict=True,
    )
    return float(average * multiplier), [FunnelLimits(*map(float, row)) for row in columns]


def funnel_significance(
    numerator: float, denominator: float, average: float, multiplier: float = 100
) -> str:
    """Where one organisation lies against the funnel of ``average`` (the baseline that
    ``funnel_limits`` returns, on the same multiplier's scale).

    The labels and their order are the package's: the 99.8% limits are tested first, and a
    proportion exactly on a limit is inside it.
    """
    _checked([numerator], [denominator])
    _require(multiplier > 0, "multiplier must be greater than zero")
    _require(0 <= average <= multiplier, "average must lie between 0 and the multiplier")
    value = numerator / denominator
    lower_95, upper_95 = _limits(P_95, denominator, average / multiplier)
    lower_998, upper_998 = _limits(P_998, denominator, average / multiplier)
    if value < lower_998:
        return "Low (0.001)"
    if value < lower_95:
        return "Low (0.025)"
    if value > upper_998:
        return "High (0.001)"
    if value > upper_95:
        return "High (0.025)"
    return "Not significant"


def _limits(p: float, population: np.ndarray | float, average: float) -> np.ndarray:
    """Lower and upper proportions whose Wilson interval at ``p`` has ``average`` as a limit.

    The package's ``sigma_adjustment`` finds them as the roots of a quadratic; they reduce to
    the score-test form below, which is also free of its cancellation for large N.
    """
    spread = ndtri(p) * np.sqrt(average * (1 - average) / population)
    return np.array([average - spread, average + spread])


def _axis_points(denominator: np.ndarray) -> np.ndarray:
    """The package's x axis: from a rounded-down minimum (or 1, when the denominators span
    more than a factor of 2) to a rounded-up maximum, spaced nearly geometrically so that
    the curved small-population end is drawn finely, and always at least 1 apart."""
    smallest, largest = float(denominator.min()), float(denominator.max())
    start = 0.0 if largest > 2 * smallest else _round_down(smallest)
    end = _round_up(largest)
    points = [max(1.0, start)]
    for steps_left in range(GRID_SIZE - 1, 0, -1):
        last = points[-1]
        points.append(float(max(round((end / last) ** (1 / steps_left) * last), last + 1)))
    return np.array(points)


def _round_down(x: float) -> float:
    """95% of x, rounded down to its leading digit (the package's ``signif.floor``)."""
    scaled = x * 0.95
    unit = 10.0 ** (len(str(math.floor(scaled))) - 1)
    return math.floor(scaled / unit) * unit


def _round_up(x: float) -> float:
    """105% of x, rounded up to two significant digits (the package's ``signif.ceiling``)."""
    scaled = x * 1.05
    unit = 10.0 ** (len(str(math.ceil(scaled))) - 2)
    return math.ceil(scaled / unit) * unit


def _checked(
    numerators: Sequence[float], denominators: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """The inputs as arrays, after the package's checks for proportions."""
    numerator = np.asarray(numerators, dtype=float)
    denominator = np.asarray(denominators, dtype=float)
    _require(numerator.shape == denominator.shape, "numerators and denominators differ in length")
    _require(numerator.size > 0, "no numerators and denominators given")
    _require(
        bool(np.all(np.isfinite(numerator)) and np.all(np.isfinite(denominator))),
        "numerators and denominators must be given for every organisation, even when zero",
    )
    _require(np.all(numerator >= 0), "numerators must be greater than or equal to zero")
    _require(np.all(denominator > 0), "denominators must be greater than zero")
    _require(
        np.all(numerator <= denominator),
        "numerators must be less than or equal to denominators for a proportion",
    )
    return numerator, denominator


def _require(condition: bool | np.bool_, message: str) -> None:
    if not condition:
        raise ValueError(message)
