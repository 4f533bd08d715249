"""Confidence intervals, standardised rates and comparisons, as Fingertips computes them.

Every estimate reproduces OHID/UKHSA's R package PHEindicatormethods 2.1.0 (the methods behind
Fingertips), as set out with their sources in ``docs/methods.md`` §1–§6; the unit tests check
the package's own expected values. The code is written from those formulas, not ported from the
package (GPL-3) or its Python port.

Conventions shared by every function:

* Inputs are numpy arrays, pandas Series or scalars (treated as one-element arrays), used by
  position; NA/NaN inputs give NaN outputs. Results are numpy arrays or DataFrames (indexed
  like the first input if it is a Series), so a whole indicator table is computed in one call.
* ``confidence`` is one level or a sequence of levels, as fractions (0.95, 0.998). Limit
  columns are always named by level, ``lower95_0cl``/``upper95_0cl``/``lower99_8cl``/
  ``upper99_8cl``, as the package names them when it returns two levels (it uses bare
  ``lowercl``/``uppercl`` for one level; a fixed scheme is easier to join downstream).
* Invalid inputs that the package rejects (negative counts, numerator above denominator for
  proportions, non-positive denominators) raise ``ValueError`` rather than giving NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import gammaincinv, ndtri  # scipy.stats' own quantiles; 1 s less to import

Confidence = float | Sequence[float]
Polarity = Literal["high_is_good", "low_is_good"] | None

DEFAULT_CONFIDENCE = (0.95, 0.998)
EXACT_BELOW = 10  # phe_rate (docs/methods.md §3): exact Poisson limits for counts below this
DSR_MIN_COUNT = 10  # calculate_dsr (docs/methods.md §4): no DSR for a total count below this

# European Standard Population 2013 with 0/1-4 and 90-94/95+ merged, as the package's `esp2013`
# vector (docs/methods.md §4); the labels are those of transforms/core/reference/esp2013.csv.
ESP2013: dict[str, int] = {
    "0-4": 5000,
    "5-9": 5500,
    "10-14": 5500,
    "15-19": 5500,
    "20-24": 6000,
    "25-29": 6000,
    "30-34": 6500,
    "35-39": 7000,
    "40-44": 7000,
    "45-49": 7000,
    "50-54": 7000,
    "55-59": 6500,
    "60-64": 6000,
    "65-69": 5500,
    "70-74": 5000,
    "75-79": 4000,
    "80-84": 2500,
    "85-89": 1500,
    "90+": 1000,
}

DOBSON = "Dobson"
DOBSON_NON_INDEPENDENT = "Dobson, with confidence adjusted for non-independent events"
NO_DSR_SMALL_COUNT = "dsr NA for total count < 10"
NO_DSR_EMPTY_BAND = "dsr NA for events in an age band with zero population"

NOT_COMPARED, SIMILAR = "Not compared", "Similar"
_DIRECTION_LABELS = {
    None: ("Higher", "Lower"),
    "high_is_good": ("Better", "Worse"),
    "low_is_good": ("Worse", "Better"),
}


# --- helpers ---------------------------------------------------------------------------------


def _as_float(values: npt.ArrayLike | pd.Series) -> np.ndarray:
    """At least 1-d floats with NaN for NA, also from pandas nullable (Int64, Float64) columns.

    Scalars become one-element arrays, so every function can build a one-row table from them.
    """
    if isinstance(values, pd.Series | pd.Index):
        return values.to_numpy(dtype=float, na_value=np.nan)
    return np.atleast_1d(np.asarray(values, dtype=float))


def _index_of(values: object) -> pd.Index | None:
    return values.index if isinstance(values, pd.Series) else None


def _reject(bad: np.ndarray, message: str) -> None:
    """Raise where the package stops with an error; NaN never counts as bad (it gives NA)."""
    if np.any(bad):
        raise ValueError(f"{message} ({int(np.sum(bad))} value(s))")


def _levels(confidence: Confidence) -> tuple[float, ...]:
    levels = (float(confidence),) if np.isscalar(confidence) else tuple(map(float, confidence))
    if not levels or not all(0 < level < 1 for level in levels):
        raise ValueError(f"confidence levels must be fractions between 0 and 1: {confidence}")
    return levels


def _suffix(level: float) -> str:
    """``95_0cl`` for 0.95 and ``99_8cl`` for 0.998, the package's column-name suffixes."""
    percent = f"{level * 100:.10g}"
    return (percent if "." in percent else f"{percent}.0").replace(".", "_") + "cl"


def _per(multiplier: float) -> str:
    """The multiplier as R's ``format(m, scientific = FALSE)`` prints it in labels."""
    return f"{multiplier:.0f}" if float(multiplier).is_integer() else f"{multiplier}"


def z_value(confidence: float) -> float:
    """Two-sided normal quantile, written ``qnorm(conf + (1 - conf)/2)`` as in the package."""
    (level,) = _levels(confidence)
    return float(ndtri(level + (1 - level) / 2))


# --- limits for one count or proportion (docs/methods.md §1) ---------------------------------


def wilson_limits(
    numerator: npt.ArrayLike, denominator: npt.ArrayLike, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score limits of numerator/denominator, without continuity correction.

    As the package's ``wilson_lower``/``wilson_upper``: x may be fractional; x = 0 gives a
    lower limit of exactly 0 and x = n an upper limit of exactly 1 (the formula can miss by
    rounding); x < 0, n < 0 or x > n raise.
    """
    x, n = np.broadcast_arrays(_as_float(numerator), _as_float(denominator))
    _reject((x < 0) | (n < 0), "Wilson limits need non-negative numerators and denominators")
    _reject(x > n, "Wilson limits need numerators no greater than denominators")
    z = z_value(confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        centre = 2 * x + z**2
        spread = z * np.sqrt(z**2 + 4 * x * (1 - x / n))
        lower = (centre - spread) / (2 * (n + z**2))
        upper = (centre + spread) / (2 * (n + z**2))
    return np.where((x == 0) & (n > 0), 0.0, lower), np.where((x == n) & (n > 0), 1.0, upper)


def byars_limits(count: npt.ArrayLike, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Byar's approximation to the Poisson limits of a count (``byars_lower/upper``).

    A negative lower limit (e.g. O = 1 at 99.8%) is NA, and so is the lower limit of 0.
    """
    o = _as_float(count)
    _reject(o < 0, "Byar's limits need non-negative counts")
    z = z_value(confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = o * (1 - 1 / (9 * o) - z / (3 * np.sqrt(o))) ** 3
        upper = (o + 1) * (1 - 1 / (9 * (o + 1)) + z / (3 * np.sqrt(o + 1))) ** 3
    return np.where(lower < 0, np.nan, lower), upper


def exact_poisson_limits(
    count: npt.ArrayLike, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Exact (chi-squared) Poisson limits of a count, as inline in ``phe_rate``.

    ``qchisq(p, 2k) / 2`` is ``gammaincinv(k, p)``, as SciPy's ``chi2.ppf`` computes it. R's
    ``qchisq(p, df = 0)`` is 0 where SciPy gives NaN, so a count of 0 has lower limit 0.
    """
    o = _as_float(count)
    _reject(o < 0, "exact Poisson limits need non-negative counts")
    (level,) = _levels(confidence)
    with np.errstate(invalid="ignore"):
        lower = gammaincinv(o, (1 - level) / 2)
    upper = gammaincinv(o + 1, level + (1 - level) / 2)
    return np.where(o == 0, 0.0, lower), upper


def poisson_limits(count: npt.ArrayLike, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Count limits as ``phe_rate`` and the ISR functions choose them: exact below 10, else Byar."""
    o = _as_float(count)
    exact, byar = exact_poisson_limits(o, confidence), byars_limits(o, confidence)
    small = o < EXACT_BELOW
    return np.where(small, exact[0], byar[0]), np.where(small, exact[1], byar[1])


def _poisson_method(count: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(count), None, np.where(count < EXACT_BELOW, "Exact", "Byars"))


# --- proportions and crude rates (docs/methods.md §2, §3) ------------------------------------


def proportion(
    numerator: npt.ArrayLike,
    denominator: npt.ArrayLike,
    confidence: Confidence = DEFAULT_CONFIDENCE,
    multiplier: float = 100,
) -> pd.DataFrame:
    """Proportions with Wilson limits, as ``phe_proportion``.

    For a grouped figure, sum numerators and denominators per group first (the package does
    the same with grouped input). A denominator of 0 raises, as in the package: a group with
    nobody in it has no proportion, so leave it out or label it before calling.
    """
    x, n = np.broadcast_arrays(_as_float(numerator), _as_float(denominator))
    _reject(x < 0, "numerators must be greater than or equal to zero")
    _reject(n <= 0, "denominators must be greater than zero")
    _reject(x > n, "numerators must be less than or equal to denominators")
    columns: dict[str, object] = {"value": x / n * multiplier}
    for level in _levels(confidence):
        lower, upper = wilson_limits(x, n, level)
        columns[f"lower{_suffix(level)}"] = lower * multiplier
        columns[f"upper{_suffix(level)}"] = upper * multiplier
    columns["statistic"] = (
        "percentage" if multiplier == 100 else f"proportion of {_per(multiplier)}"
    )
    columns["method"] = "Wilson"
    return pd.DataFrame(columns, index=_index_of(numerator))


def crude_rate(
    numerator: npt.ArrayLike,
    denominator: npt.ArrayLike,
    multiplier: float = 100_000,
    confidence: Confidence = DEFAULT_CONFIDENCE,
) -> pd.DataFrame:
    """Crude rates with exact (count < 10) or Byar limits, as ``phe_rate``.

    The numerator may exceed the denominator (events, not people). The ``method`` column
    says which limits were used, row by row.
    """
    x, n = np.broadcast_arrays(_as_float(numerator), _as_float(denominator))
    _reject(x < 0, "numerators must be greater than or equal to zero")
    _reject(n <= 0, "denominators must be greater than zero")
    columns: dict[str, object] = {"value": x / n * multiplier}
    for level in _levels(confidence):
        lower, upper = poisson_limits(x, level)
        columns[f"lower{_suffix(level)}"] = lower / n * multiplier
        columns[f"upper{_suffix(level)}"] = upper / n * multiplier
    columns["statistic"] = f"rate per {_per(multiplier)}"
    columns["method"] = _poisson_method(x)
    return pd.DataFrame(columns, index=_index_of(numerator))


# --- directly standardised rates (docs/methods.md §4) ----------------------------------------


def dsr(
    data: pd.DataFrame,
    by: str | Sequence[str],
    *,
    age_band: str = "age_band",
    count: str = "count",
    population: str = "population",
    standard_population: str | None = None,
    frequency: str | None = None,
    multiplier: float = 100_000,
    confidence: Confidence = DEFAULT_CONFIDENCE,
) -> pd.DataFrame:
    """Directly standardised rates with Dobson limits, one row per group, as ``calculate_dsr``.

    ``data`` is long: one row per group × age band (× event frequency). The standard
    population is the ``standard_population`` column, or else ESP 2013 looked up by the
    ``age_band`` label. NA counts are 0. With ``total_count < 10`` the value, variance and
    limits are NA (statistic ``dsr NA for total count < 10``); the limits always use Byar's
    method on the total count, scaled by sqrt(var/O) (Dobson et al. 1991).

    Non-independent events (``calculate_dsr(independent_events = FALSE)``): name the
    ``frequency`` column; ``count`` is then the number of people with that many events, and
    the variance is Σ_f f²·var_f. Population and standard population must not vary with f.

    Age-band policy, stricter than the package so that no standard is silently re-weighted:

    * every group must have a row for every age band present in ``data`` (the package would
      instead divide by the standard population of the bands present);
    * a band with zero population and no events has a rate of 0: it adds nothing to the
      numerator or variance but keeps its standard weight (the package raises an error);
    * a band with zero population but some events has no rate, so the group's DSR is NA with
      statistic ``dsr NA for events in an age band with zero population`` (this reason
      takes precedence over the small-count one).

    ``variance`` is var(DSR) on the multiplier scale, for ``dsr_ratio``.
    """
    keys = [by] if isinstance(by, str) else list(by)
    bands = _dsr_bands(data, keys, age_band, count, population, standard_population, frequency)
    totals = _dsr_totals(bands, keys)
    method = DOBSON if frequency is None else DOBSON_NON_INDEPENDENT
    return _dsr_estimates(totals, keys, multiplier, _levels(confidence), method)


def _dsr_bands(
    data: pd.DataFrame,
    keys: list[str],
    age_band: str,
    count: str,
    population: str,
    standard_population: str | None,
    frequency: str | None,
) -> pd.DataFrame:
    """Validated inputs summed to one row per group × age band.

    ``events`` is Σ f·x and ``squared_events`` Σ f²·x over frequencies (both x when events
    are independent).
    """
    x = _as_float(data[count])
    x = np.where(np.isnan(x), 0.0, x)
    n = _as_float(data[population])
    if standard_population is None:
        unknown = set(data[age_band]) - ESP2013.keys()
        if unknown:
            raise ValueError(f"age bands not in ESP2013: {sorted(map(str, unknown))}")
        w = data[age_band].map(ESP2013).to_numpy(dtype=float)
    else:
        w = _as_float(data[standard_population])
    f = np.ones(len(data)) if frequency is None else _as_float(data[frequency])
    _reject(x < 0, "numerators must be greater than or equal to zero")
    _reject(np.isnan(n) | (n < 0), "populations must be present and not negative")
    _reject(np.isnan(w) | (w < 0), "standard populations must be present and not negative")
    _reject(np.isnan(f) | (f <= 0), "event frequencies must be present and positive")
    row_keys = keys + [age_band] + ([] if frequency is None else [frequency])
    _reject(data.duplicated(row_keys).to_numpy(), f"duplicate rows for {row_keys}")
    rows = data[keys + [age_band]].assign(events=f * x, squared_events=f**2 * x, n=n, w=w)
    bands = rows.groupby(keys + [age_band], sort=False, dropna=False, observed=True).agg(
        events=("events", "sum"),
        squared_events=("squared_events", "sum"),
        n=("n", "first"),
        w=("w", "first"),
        n_values=("n", "nunique"),
        w_values=("w", "nunique"),
    )
    _reject(
        ((bands["n_values"] > 1) | (bands["w_values"] > 1)).to_numpy(),
        "population and standard population must be the same for every event frequency",
    )
    _require_every_band(bands.reset_index(), keys, age_band)
    return bands.drop(columns=["n_values", "w_values"]).reset_index()


def _require_every_band(bands: pd.DataFrame, keys: list[str], age_band: str) -> None:
    """Refuse groups missing an age band: dropping it would re-weight the standard."""
    per_group = bands.groupby(keys, sort=False, dropna=False, observed=True)[age_band].nunique()
    short = per_group[per_group < bands[age_band].nunique()]
    if len(short):
        raise ValueError(
            f"{len(short)} group(s) lack some of the {bands[age_band].nunique()} age bands "
            f"(first: {short.index[0]}); supply every band, with count 0 where there were none"
        )


def _dsr_totals(bands: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per-group sums for the DSR and its variance, applying the zero-population policy."""
    empty = bands["n"].to_numpy() == 0
    with np.errstate(divide="ignore"):
        weight = np.where(empty, 0.0, bands["w"] / bands["n"])
    terms = pd.DataFrame(
        {
            "total_count": bands["events"],
            "total_pop": bands["n"],
            "standard_total": bands["w"],
            "weighted_events": bands["events"] * weight,
            "variance_sum": bands["squared_events"] * weight**2,
            "events_in_empty_band": empty & (bands["events"].to_numpy() > 0),
        }
    )
    terms[keys] = bands[keys]
    return terms.groupby(keys, sort=False, dropna=False, observed=True).sum().reset_index()


def _dsr_estimates(
    totals: pd.DataFrame,
    keys: list[str],
    multiplier: float,
    levels: tuple[float, ...],
    method: str,
) -> pd.DataFrame:
    o = totals["total_count"].to_numpy(dtype=float)
    big_w = totals["standard_total"].to_numpy(dtype=float)
    rate = totals["weighted_events"].to_numpy(dtype=float) / big_w
    variance = totals["variance_sum"].to_numpy(dtype=float) / big_w**2
    empty_band = totals["events_in_empty_band"].to_numpy(dtype=bool)
    shown = (o >= DSR_MIN_COUNT) & ~empty_band
    out = totals[keys + ["total_count", "total_pop"]].copy()
    out["value"] = np.where(shown, rate * multiplier, np.nan)
    out["variance"] = np.where(shown, variance * multiplier**2, np.nan)
    limits = dobson_limits(out["value"], out["variance"], o, levels)
    out[limits.columns] = limits.to_numpy()
    reasons = [NO_DSR_EMPTY_BAND, NO_DSR_SMALL_COUNT]
    statistic = np.select([empty_band, o < DSR_MIN_COUNT], reasons, f"dsr per {_per(multiplier)}")
    out["statistic"] = statistic
    out["method"] = method
    return out


def dobson_limits(
    value: npt.ArrayLike,
    variance: npt.ArrayLike,
    count: npt.ArrayLike,
    confidence: Confidence = DEFAULT_CONFIDENCE,
) -> pd.DataFrame:
    """Dobson limits of a DSR: value + sqrt(variance / O) · (Byar's limit of O − O).

    Separate from :func:`dsr` so that limits can be given for a count other than the one the
    variance came from (a published, rounded count: see ``transforms.indicators.assembly``).
    """
    v, var, o = np.broadcast_arrays(*(_as_float(x) for x in (value, variance, count)))
    columns: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.sqrt(var / o)
        for level in _levels(confidence):
            lower, upper = byars_limits(o, level)
            columns[f"lower{_suffix(level)}"] = v + scale * (lower - o)
            columns[f"upper{_suffix(level)}"] = v + scale * (upper - o)
    return pd.DataFrame(columns, index=_index_of(value))


# --- ratios to a reference group (docs/methods.md §5) ----------------------------------------


def _log_scale_interval(
    ratio: np.ndarray, se_log: np.ndarray, confidence: Confidence, index: pd.Index | None
) -> pd.DataFrame:
    """ratio × exp(±z·SE(ln ratio)), the Wald interval on the log scale."""
    columns: dict[str, np.ndarray] = {"ratio": ratio}
    for level in _levels(confidence):
        z = z_value(level)
        columns[f"lower{_suffix(level)}"] = ratio * np.exp(-z * se_log)
        columns[f"upper{_suffix(level)}"] = ratio * np.exp(z * se_log)
    return pd.DataFrame(columns, index=index)


def _group_and_reference(
    numerator: npt.ArrayLike,
    denominator: npt.ArrayLike,
    ref_numerator: npt.ArrayLike,
    ref_denominator: npt.ArrayLike,
) -> tuple[np.ndarray, ...]:
    a, n1, b, n0 = np.broadcast_arrays(
        *(_as_float(v) for v in (numerator, denominator, ref_numerator, ref_denominator))
    )
    _reject((a < 0) | (b < 0), "numerators must be greater than or equal to zero")
    _reject((n1 <= 0) | (n0 <= 0), "denominators must be greater than zero")
    return a, n1, b, n0


def proportion_ratio(
    numerator: npt.ArrayLike,
    denominator: npt.ArrayLike,
    ref_numerator: npt.ArrayLike,
    ref_denominator: npt.ArrayLike,
    confidence: Confidence = 0.95,
) -> pd.DataFrame:
    """Ratio of a group's proportion a/n1 to the reference group's b/n0, with a log-scale CI.

    SE(ln ratio) = sqrt(1/a − 1/n1 + 1/b − 1/n0) (Katz et al. 1978, Biometrics 34:469) —
    the usual risk-ratio interval, and the form of WRES relative likelihoods. It is undefined
    when a or b is 0, so those limits are NaN (and the ratio too when b is 0).
    """
    a, n1, b, n0 = _group_and_reference(numerator, denominator, ref_numerator, ref_denominator)
    _reject((a > n1) | (b > n0), "numerators must be less than or equal to denominators")
    return _ratio_from_counts(a, n1, b, n0, -1.0, confidence, _index_of(numerator))


def rate_ratio(
    numerator: npt.ArrayLike,
    denominator: npt.ArrayLike,
    ref_numerator: npt.ArrayLike,
    ref_denominator: npt.ArrayLike,
    confidence: Confidence = 0.95,
) -> pd.DataFrame:
    """Ratio of a group's crude rate a/n1 to the reference group's b/n0, with a log-scale CI.

    SE(ln ratio) = sqrt(1/a + 1/b), the Wald interval for the ratio of two Poisson rates
    (Rothman, Greenland & Lash, Modern Epidemiology, 3rd ed.). NaN limits when a or b is 0.
    The multiplier cancels, so none is needed.
    """
    a, n1, b, n0 = _group_and_reference(numerator, denominator, ref_numerator, ref_denominator)
    return _ratio_from_counts(a, n1, b, n0, 0.0, confidence, _index_of(numerator))


def _ratio_from_counts(
    a: np.ndarray,
    n1: np.ndarray,
    b: np.ndarray,
    n0: np.ndarray,
    binomial: float,
    confidence: Confidence,
    index: pd.Index | None,
) -> pd.DataFrame:
    """Shared by both count ratios: ``binomial`` is −1 for proportions, 0 for Poisson rates."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(b > 0, (a / n1) / (b / n0), np.nan)
        se_log = np.sqrt(1 / a + binomial / n1 + 1 / b + binomial / n0)
    return _log_scale_interval(
        ratio, np.where((a > 0) & (b > 0), se_log, np.nan), confidence, index
    )


def dsr_ratio(
    value: npt.ArrayLike,
    variance: npt.ArrayLike,
    ref_value: npt.ArrayLike,
    ref_variance: npt.ArrayLike,
    confidence: Confidence = 0.95,
) -> pd.DataFrame:
    """Ratio of two DSRs with a log-scale CI, from ``dsr()``'s ``value`` and ``variance``.

    SE(ln ratio) = sqrt(var1/DSR1² + var0/DSR0²): the first-order delta method,
    var(ln DSR) ≈ var(DSR)/DSR², with var(DSR) = Σ O_i (w_i/n_i)² / W² as in the Dobson
    limits (``docs/methods.md`` §4, including the non-independent adjustment when ``dsr()``
    applied it). Suppressed DSRs (NA) give NA ratios.
    """
    d1, v1, d0, v0 = np.broadcast_arrays(
        *(_as_float(v) for v in (value, variance, ref_value, ref_variance))
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = d1 / d0
        se_log = np.sqrt(v1 / d1**2 + v0 / d0**2)
    ratio = np.where(d0 > 0, ratio, np.nan)
    se_log = np.where((d1 > 0) & (d0 > 0), se_log, np.nan)
    return _log_scale_interval(ratio, se_log, confidence, _index_of(value))


# --- significance against a comparator (docs/methods.md §6) ----------------------------------


def significance(
    value: npt.ArrayLike,
    lower: npt.ArrayLike,
    upper: npt.ArrayLike,
    comparator_value: npt.ArrayLike,
    comparator_lower: npt.ArrayLike | None = None,
    comparator_upper: npt.ArrayLike | None = None,
    polarity: Polarity = None,
) -> np.ndarray:
    """Label each value against its comparator: ``Higher``, ``Lower`` or ``Similar``.

    FingertipsNext's ``BenchmarkComparisonEngine`` rule: ``Higher`` when the group's lower
    limit is above the comparator value, ``Lower`` when its upper limit is below it, strictly
    (a limit touching the value is ``Similar``). Pass the limits at the level wanted (95% or
    99.8%). For a ratio to a reference group pass the ratio, its limits and comparator 1.

    If ``comparator_lower`` and ``comparator_upper`` are given, the two intervals are
    compared instead: ``Higher``/``Lower`` only when they do not overlap. Fingertips does not
    do this, and it is conservative (non-overlap implies a difference, not the converse).

    ``polarity`` turns the labels into ``Better``/``Worse``. Rows with a NA value, limit or
    comparator are ``Not compared``.
    """
    if polarity not in _DIRECTION_LABELS:
        raise ValueError(f"polarity must be high_is_good, low_is_good or None: {polarity!r}")
    if (comparator_lower is None) != (comparator_upper is None):
        raise ValueError("give both comparator limits or neither")
    v, lo, hi, c = np.broadcast_arrays(
        *(_as_float(x) for x in (value, lower, upper, comparator_value))
    )
    c_lo, c_hi = c, c
    if comparator_lower is not None:
        c_lo, c_hi = _as_float(comparator_lower), _as_float(comparator_upper)
    missing = np.isnan(v) | np.isnan(lo) | np.isnan(hi) | np.isnan(c)
    missing = missing | np.isnan(c_lo) | np.isnan(c_hi)
    above, below = _DIRECTION_LABELS[polarity]
    labels = np.select([missing, lo > c_hi, hi < c_lo], [NOT_COMPARED, above, below], SIMILAR)
    return labels.astype(object)
