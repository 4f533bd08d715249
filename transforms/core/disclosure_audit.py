"""The attacking audit: what a determined partner could work out from a published table.

Disclosure control (``transforms.core.disclosure``) applies rules; this module checks their result
the way an attacker would, and knows nothing of how the rules were applied: it imports
nothing from ``transforms.core.disclosure`` and restates the published rules below, so one bug
cannot pass both. It sees only what partners see (the ``mart.indicator_values`` columns) and
the public rules:

* a shown count is 0 (exact) or a multiple of :data:`ROUNDED_TO` standing for any whole
  number within ``ROUNDED_TO // 2`` of it, and never below :data:`SMALLEST_SHOWN` (1 to 7 are
  withheld); person-years (the denominators of rates) are rounded to whole people first, so
  they stand for any amount within 2.5; a withheld count is any number from 0 up (from 1 for
  an organisation's records, since only organisations with records have rows);
* the rows of a table add up: All persons = Σ 5 ethnic groups, each 5-group = Σ its 16
  groups (``Not stated`` and ``Not known`` included), a source's ``all organisations`` = Σ its
  organisations; a proportion's numerator is part of its denominator, so the complement
  (denominator − numerator) is a count too; a DSR counts the events of its crude rate that
  have an age, over the same person-years;
* every published statistic should be a function of the published counts. One that is not
  (a value or limit computed from exact counts) is reported, and the counts it is consistent
  with narrow the bounds the attack starts from.

From those bounds and sets the attack solves, as linear programmes (SciPy's HiGHS), the
tightest interval each count can lie in. It fails a table where a withheld count can be at
most 7 (0 is shown, so a partner reads a withheld count as at least 1), a complement is
confined to 1–7, or any count other than zero (a published 0 is exact by design) is pinned
to a single whole number. Most intervals are settled by four programmes over the whole table
(every count pushed down, every count pushed up, and the same for complements): any feasible
solution is a witness that a count can reach a value. Only counts those witnesses do not
settle get programmes of their own, within their set family.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import highspy
import numpy as np
import pandas as pd
from scipy import sparse

from transforms.core import statistics as st
from transforms.core.ethnicity import NOT_KNOWN_LABEL, NOT_STATED_LABEL, dimension_rows

WITHHELD_UP_TO = 7
"""Published rule: counts from 1 to this are withheld (restated here, not imported)."""
ROUNDED_TO = 5
"""Published rule: other counts are rounded to the nearest multiple of this."""
SMALLEST_SHOWN = WITHHELD_UP_TO + 1
PARTNER_REASONS = frozenset({"withheld", "unreliable"})
DERIVED = (
    "value",
    "lower_95",
    "upper_95",
    "lower_998",
    "upper_998",
    "ratio_to_reference",
    "ratio_lower_95",
    "ratio_upper_95",
    "ratio_lower_998",
    "ratio_upper_998",
    "significance_vs_reference",
    "significance_vs_reference_998",
    "significance_vs_all",
    "significance_vs_all_998",
)
"""A row's own statistics (linkage completeness belongs to the period, and is checked apart)."""
FAMILY = ["indicator_id", "measure", "period_type", "period_start"]
RATES = ("crude_rate", "dsr")
"""Measures whose denominators are person-years."""
COUNTS = ("numerator", "denominator")
RELATIVE_TOLERANCE = 1e-9
_EPS = 1e-6


COMPLEMENT = "denominator − numerator"


@dataclass(frozen=True)
class Finding:
    """One way the table gives something away. ``kind``: ``rows`` (a row breaks a rule on
    its own), ``statistics`` (a statistic tells more than the published counts) or ``sets``
    (the attack through the additive sets narrows a count down); ``row`` is the position in
    the attacked table, ``column`` the count (or :data:`COMPLEMENT`) or statistic."""

    kind: str
    row: int
    column: str
    cell: str
    problem: str

    def __str__(self) -> str:
        return f"{self.cell}: {self.problem}"


def _found(table: pd.DataFrame, kind: str, i: int, column: str, problem: str) -> Finding:
    return Finding(kind, int(i), column, cell_name(table.loc[i], column), problem)


def attack(table: pd.DataFrame, multipliers: Mapping[str, float]) -> list[Finding]:
    """Every disclosure a partner could make from ``table`` (mart columns); [] if none.

    ``multipliers``: indicator id -> the catalogue multiplier (100 for a percentage), which
    partners read in the catalogue.
    """
    missing = [c for c in (*DERIVED, "ethnicity_known_pct") if c not in table.columns]
    table = table.reset_index(drop=True).assign(**dict.fromkeys(missing, np.nan))
    layout = _Layout.of(table)
    findings = row_findings(table)
    low, high, statistic_findings = _count_bounds(table, multipliers)
    findings += statistic_findings
    findings += _consistency_findings(table, layout)
    findings += _lone_withheld(table, layout)
    findings += _solve(table, layout, low, high)
    return findings


def cell_name(row: pd.Series, column: str) -> str:
    return (
        f"{row['indicator_id']} {row['measure']} {row['period_type']} "
        f"{pd.Timestamp(row['period_start']).date()} {row['breakdown']}={row['group_code']} "
        f"{column}"
    )


# --- what each row shows ---------------------------------------------------------------------


def row_findings(table: pd.DataFrame) -> list[Finding]:
    """Shown counts of 1–7 or not rounded; derived values beside withheld counts; reasons."""
    found: list[tuple[int, str, str]] = []
    counts = table[list(COUNTS)].to_numpy(dtype=float, na_value=np.nan)
    for j, column in enumerate(COUNTS):
        shown = counts[:, j]
        small = (shown >= 1) & (shown <= WITHHELD_UP_TO)
        unrounded = ~small & ((shown % ROUNDED_TO != 0) | (shown < 0)) & ~np.isnan(shown)
        found += [(i, column, "a count of 1–7 is shown") for i in np.flatnonzero(small)]
        problem = f"not a multiple of {ROUNDED_TO}"
        found += [(i, column, problem) for i in np.flatnonzero(unrounded)]
    derived = [c for c in DERIVED if c in table.columns]
    leaked = table[derived].notna().to_numpy() & np.isnan(counts).any(axis=1)[:, None]
    for i, j in zip(*np.nonzero(leaked), strict=True):
        found.append((i, derived[j], "shown beside a withheld count"))
    reasons = table["suppression_reason"].to_numpy(dtype=object)
    for i in np.flatnonzero(pd.notna(reasons) & ~np.isin(reasons, list(PARTNER_REASONS))):
        found.append(
            (i, "suppression_reason", f"{reasons[i]!r} tells partners more than 'withheld'")
        )
    return [_found(table, "rows", i, column, problem) for i, column, problem in found]


def shown_bounds(
    published: pd.Series, person_years: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """What a published count stands for: 0 exactly, r ± 2 but at least 8, or 0 and up.
    Person-years were rounded to whole people first: r ± 2.5, at least 7.5."""
    r = pd.to_numeric(published, errors="coerce").to_numpy(dtype=float)
    continuous = np.zeros(len(r), bool) if person_years is None else person_years
    half = np.where(continuous, ROUNDED_TO / 2, ROUNDED_TO // 2)
    smallest = np.where(continuous, SMALLEST_SHOWN - 0.5, SMALLEST_SHOWN)
    low = np.where(r > 0, np.maximum(r - half, smallest), r)
    high = np.where(r > 0, r + half, r)
    return np.where(np.isnan(r), 0.0, low), np.where(np.isnan(r), np.inf, high)


# --- what each row's statistics give away ------------------------------------------------------


def _count_bounds(
    table: pd.DataFrame, multipliers: Mapping[str, float]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[Finding]]:
    """Bounds on each row's counts: the published counts', narrowed where the row's value and
    limits are consistent with only some of the counts in them (the attack of issue 8)."""
    low, high = {}, {}
    person_years = {"numerator": None, "denominator": table["measure"].isin(RATES).to_numpy()}
    for column in COUNTS:
        low[column], high[column] = shown_bounds(table[column], person_years[column])
    organisations = table["breakdown"].eq("source_organisation").to_numpy()
    low["denominator"][organisations] = np.maximum(low["denominator"][organisations], 1.0)
    _small_count_bounds(table, low, high)
    findings: list[Finding] = []
    shown = table["value"].notna() & table["numerator"].notna() & table["denominator"].notna()
    for measure, rows in table[shown].groupby("measure"):
        multiplier = rows["indicator_id"].map(multipliers).to_numpy(dtype=float)
        if np.isnan(multiplier).any():
            raise KeyError(f"no multiplier for {sorted(set(rows['indicator_id']))}")
        fits, published = _fits(str(measure), rows, multiplier)
        for position in np.flatnonzero(~published):
            i = rows.index[position]
            findings.append(_narrow(table, fits[position], low, high, i))
    return low, high, findings


def _small_count_bounds(
    table: pd.DataFrame, low: dict[str, np.ndarray], high: dict[str, np.ndarray]
) -> None:
    """A reason that says ``small_count`` (the first edition's) puts the row's one withheld
    count in 1–7: a partner reads it so, and the attack must too."""
    reason = table["suppression_reason"].astype("string").fillna("")
    small = reason.str.contains("small_count", regex=False).to_numpy()
    withheld = {c: table[c].isna().to_numpy() for c in COUNTS}
    only = {"numerator": ~withheld["denominator"], "denominator": ~withheld["numerator"]}
    for column in COUNTS:
        rows = small & withheld[column] & only[column]
        low[column][rows], high[column][rows] = 1.0, float(WITHHELD_UP_TO)


_OFFSETS = np.arange(-(ROUNDED_TO // 2), ROUNDED_TO // 2 + 1)
_CENTRE = len(_OFFSETS) // 2
_LEVELS = ((0.95, "95"), (0.998, "998"))


def _fits(
    measure: str, rows: pd.DataFrame, multiplier: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``fits[row, i, j]``: numerator r_n + offset i and denominator r_d + offset j reproduce
    the row's statistics (for rates, whose limits depend on the count alone, j is free);
    ``published[row]``: the statistics are exactly those of the published counts."""
    r_n = rows["numerator"].to_numpy(dtype=float)[:, None, None]
    r_d = rows["denominator"].to_numpy(dtype=float)[:, None, None]
    n, d = np.broadcast_arrays(r_n + _OFFSETS[None, :, None], r_d + _OFFSETS[None, None, :])
    possible = _could_be(n, r_n) & _could_be(d, r_d) & (d > 0)
    n, d = np.maximum(n, 0), np.maximum(d, 0)  # impossible candidates, kept computable
    got = {c: rows[c].to_numpy(dtype=float)[:, None, None] for c in ("value", *_LIMITS)}
    m = multiplier[:, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "proportion":
            expected = {"value": n / d * m}
            for level, suffix in _LEVELS:
                lo, hi = st.wilson_limits(np.minimum(n, d), d, level)
                expected[f"lower_{suffix}"], expected[f"upper_{suffix}"] = lo * m, hi * m
            fits = _close(expected, got) & possible & (n <= d)
            return fits, fits[:, _CENTRE, _CENTRE]
        fits = _limits_shape_fits(measure, n, got) & possible
        published = fits[:, _CENTRE, _CENTRE]
        value = got["value"][:, 0, 0]
        if measure == "crude_rate":
            published &= _close({"value": (r_n / r_d * m)[:, 0, 0]}, {"value": value})
        else:
            published &= value <= _dobson_scale(rows) * r_n[:, 0, 0] * (1 + RELATIVE_TOLERANCE)
    return fits, published


def _dobson_scale(rows: pd.DataFrame) -> np.ndarray:
    """s = sqrt(var / O) of Dobson limits for the published count O, read off the 95% lower
    limit. Since DSR² ≤ O · var(DSR) (Cauchy-Schwarz over the age bands), a DSR above s · O
    had limits from a variance that was not rescaled to the published count."""
    count = rows["numerator"].to_numpy(dtype=float)
    lower, _ = st.byars_limits(count, 0.95)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (rows["value"].to_numpy(dtype=float) - rows["lower_95"].to_numpy(dtype=float)) / (
            count - lower
        )


_LIMITS = ("lower_95", "upper_95", "lower_998", "upper_998")


def _could_be(candidates: np.ndarray, published: np.ndarray) -> np.ndarray:
    """Candidates a published count can stand for: itself if 0, else at least 8."""
    return np.where(published == 0, candidates == 0, candidates >= SMALLEST_SHOWN)


def _close(expected: dict[str, np.ndarray], observed: dict[str, np.ndarray]) -> np.ndarray:
    ok = np.ones(np.broadcast(*expected.values()).shape, dtype=bool)
    for name, want in expected.items():
        got = observed[name]
        both_missing = np.isnan(want) & np.isnan(got)
        near = np.abs(want - got) <= RELATIVE_TOLERANCE * np.maximum(np.abs(want), 1.0)
        ok &= both_missing | near
    return ok


def _limits_shape_fits(measure: str, n: np.ndarray, got: dict[str, np.ndarray]) -> np.ndarray:
    """A rate's limits are value x (limit of O) / O (crude) or value + s·(limit of O − O)
    (Dobson), so the ratio of the distances from the value to its limits depends on the
    count O alone, whatever the denominator or the scale s."""
    ok = np.ones(n.shape, dtype=bool)
    limits = st.poisson_limits if measure == "crude_rate" else st.byars_limits
    value = got["value"]
    for level, suffix in _LEVELS:
        lo, hi = limits(n, level)
        expected = (hi - n) / (n - lo)
        shown = (got[f"upper_{suffix}"] - value) / (value - got[f"lower_{suffix}"])
        both_missing = np.isnan(expected) & np.isnan(shown)
        ok &= both_missing | (np.abs(expected - shown) <= 1e-7 * np.maximum(np.abs(expected), 1))
    return ok


def _narrow(
    table: pd.DataFrame,
    fits: np.ndarray,
    low: dict[str, np.ndarray],
    high: dict[str, np.ndarray],
    i: int,
) -> Finding:
    """A statistic that does not follow from the published counts: report it, and keep only
    the counts it is consistent with (the attack goes on from there)."""
    row = table.loc[i]
    problem = "value or limits do not follow from the published counts"
    if not fits.any():
        return _found(table, "statistics", i, "value", problem)
    for axis, column in ((1, "numerator"), (0, "denominator")):
        counts = float(row[column]) + _OFFSETS[fits.any(axis=axis)]
        low[column][i] = max(low[column][i], counts.min())
        high[column][i] = min(high[column][i], counts.max())
    numerators = float(row["numerator"]) + _OFFSETS[fits.any(axis=1)]
    if numerators.min() == numerators.max():
        problem += f": they give the numerator away ({int(numerators.min())})"
    return _found(table, "statistics", i, "value", problem)


# --- ratios and completeness -------------------------------------------------------------------


def _consistency_findings(table: pd.DataFrame, layout: _Layout) -> list[Finding]:
    """Comparisons must follow from what the rows show: a ratio is the row's value over its
    reference group's (1 for the reference itself), its limits those of the published
    counts (for a DSR, of the variances the two rows' own limits imply), a significance flag
    what the shown limits say; linkage completeness follows from the published denominators."""
    key = layout.family * len(BREAKDOWNS) + layout.breakdown
    is_reference = (table["group_label"] == table["reference_group"]).fillna(False).to_numpy()
    reference = _position_of(key, is_reference)
    everyone = _position_of(layout.family, layout.breakdown == BREAKDOWNS.index("all"))
    found: list[tuple[int, str, str]] = []
    ratio = table["ratio_to_reference"].to_numpy(dtype=float)
    value = table["value"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.where(is_reference, 1.0, value / _take(value, reference))
    wrong = ~np.isnan(ratio) & ~(np.abs(ratio - expected) <= 1e-9 * np.abs(expected))
    found += [
        (i, "ratio_to_reference", "not value ÷ reference value") for i in np.flatnonzero(wrong)
    ]
    found += _ratio_limit_problems(table, reference, is_reference)
    found += _significance_problems(table, everyone)
    findings = [_found(table, "statistics", i, column, problem) for i, column, problem in found]
    return findings + _completeness_findings(table, layout)


def _position_of(keys: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For every row, the position of the row among ``rows`` with the same key (-1: none)."""
    position = np.full(keys.max(initial=-1) + 1, -1)
    position[keys[rows]] = np.flatnonzero(rows)
    return position[keys]


def _take(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    return np.where(positions >= 0, values[np.maximum(positions, 0)], np.nan)


_RATIO_LIMITS = {
    "ratio_lower_95": "lower95_0cl",
    "ratio_upper_95": "upper95_0cl",
    "ratio_lower_998": "lower99_8cl",
    "ratio_upper_998": "upper99_8cl",
}


def _ratio_limit_problems(
    table: pd.DataFrame, reference: np.ndarray, is_reference: np.ndarray
) -> list[tuple[int, str, str]]:
    """Ratio limits recomputed from the published figures of the row and its reference."""
    shown = table["ratio_lower_95"].notna().to_numpy() & ~is_reference & (reference >= 0)
    problems = []
    for measure, rows in table[shown].groupby("measure"):
        ref = table.iloc[reference[rows.index]]
        if measure == "dsr":
            expected = st.dsr_ratio(
                rows["value"],
                _implied_variance(rows),
                ref["value"].to_numpy(),
                _implied_variance(ref),
                confidence=(0.95, 0.998),
            )
        else:
            method = st.proportion_ratio if measure == "proportion" else st.rate_ratio
            expected = method(
                rows["numerator"].astype(float),
                rows["denominator"].astype(float),
                ref["numerator"].to_numpy(dtype=float),
                ref["denominator"].to_numpy(dtype=float),
                confidence=(0.95, 0.998),
            )
        for column, theirs in _RATIO_LIMITS.items():
            shown_limit = rows[column].to_numpy(dtype=float)
            want = expected[theirs].to_numpy(dtype=float)
            wrong = ~(np.abs(shown_limit - want) <= 1e-7 * np.abs(want))
            problem = "not the interval of the published figures"
            problems += [(int(i), column, problem) for i in rows.index[wrong]]
    return problems


def _implied_variance(rows: pd.DataFrame) -> np.ndarray:
    """var = s² · O of Dobson limits for the published count O (see :func:`_dobson_scale`)."""
    return _dobson_scale(rows) ** 2 * rows["numerator"].to_numpy(dtype=float)


_SAME_DIRECTION = {
    st.NOT_COMPARED: {st.NOT_COMPARED},
    "Similar": {"Similar"},
    "Higher": {"Higher", "Better", "Worse"},
    "Lower": {"Lower", "Better", "Worse"},
}


def _significance_problems(table: pd.DataFrame, everyone: np.ndarray) -> list[tuple[int, str, str]]:
    """A flag must say what the shown limits say (against 1 for the ratio, against the All
    persons value otherwise); whether higher is better, partners read in the catalogue."""
    value = table["value"].to_numpy(dtype=float)
    comparisons = []
    for suffix, level in (("", "95"), ("_998", "998")):
        ratio_cols = (f"ratio_lower_{level}", f"ratio_upper_{level}")
        comparisons += [
            (
                f"significance_vs_reference{suffix}",
                st.significance(table["ratio_to_reference"], *(table[c] for c in ratio_cols), 1.0),
            ),
            (
                f"significance_vs_all{suffix}",
                st.significance(
                    value, table[f"lower_{level}"], table[f"upper_{level}"], _take(value, everyone)
                ),
            ),
        ]
    problems = []
    for column, direction in comparisons:
        shown = table[column].to_numpy(dtype=object)
        for i in np.flatnonzero(pd.notna(shown) & (shown != st.NOT_COMPARED)):
            if shown[i] not in _SAME_DIRECTION[direction[i]]:
                problems.append((int(i), column, f"says {shown[i]}, the limits say {direction[i]}"))
    return problems


def _completeness_findings(table: pd.DataFrame, layout: _Layout) -> list[Finding]:
    family, count = layout.family, layout.family.max(initial=-1) + 1
    denominators = table["denominator"].to_numpy(dtype=float)
    everyone = np.full(count, np.nan)
    is_all = layout.breakdown == BREAKDOWNS.index("all")
    everyone[family[is_all]] = denominators[is_all]
    unknown_rows = (layout.breakdown == BREAKDOWNS.index("ethnicity_5")) & table[
        "group_label"
    ].isin([NOT_STATED_LABEL, NOT_KNOWN_LABEL]).to_numpy()
    unknown = np.bincount(family[unknown_rows], denominators[unknown_rows], minlength=count)
    with np.errstate(divide="ignore", invalid="ignore"):  # unknown is NaN where one is withheld
        share = 100 * (everyone - unknown) / np.where(everyone > 0, everyone, np.nan)
    pct = table["ethnicity_known_pct"].to_numpy(dtype=float)
    wrong = ~np.isnan(pct) & ~(np.abs(pct - np.round(share, 1)[family]) <= 0.051)
    problem = "does not follow from the published Not stated and Not known denominators"
    return [
        _found(table, "statistics", i, "ethnicity_known_pct", problem)
        for i in np.flatnonzero(wrong)
    ]


def _lone_withheld(table: pd.DataFrame, layout: _Layout) -> list[Finding]:
    """A set with exactly one withheld count: the rules never publish one (total − Σ others
    bounds it by the rounding alone), so the gate refuses it as publication requires."""
    set_ids, rows, _ = layout.sets
    findings = []
    for column in COUNTS:
        withheld = table[column].isna().to_numpy()[rows]
        per_set = np.bincount(set_ids, weights=withheld, minlength=set_ids.max(initial=-1) + 1)
        lone = rows[withheld & (per_set[set_ids] == 1)]
        problem = "the only withheld count of its set"
        findings += [_found(table, "sets", i, column, problem) for i in np.unique(lone)]
    return findings


# --- the sets, as linear programmes ------------------------------------------------------------

UNBOUNDED = 1e9
"""Stands for "no upper bound" on a withheld count, so every programme has an optimum."""


@dataclass
class _Programme:
    """Variables: each row's numerator (first ``rows``), then each row's denominator.
    Equalities: the additive sets. Inequalities: numerator ≤ denominator of a proportion.
    No constraint spans two families (one indicator, measure and period; for organisations
    one source too), so a family can be solved on its own, in a smaller model."""

    low: np.ndarray
    high: np.ndarray
    equalities: sparse.csr_matrix
    inequalities: sparse.csr_matrix
    family: np.ndarray
    _models: dict[int | None, tuple[np.ndarray, highspy.Highs]] = field(default_factory=dict)

    def optimum(self, objective: np.ndarray, family: int | None = None) -> np.ndarray | None:
        """A solution minimising ``objective`` (over one family's variables, the others
        left at 0); None if the published counts admit none. Each model is built once and
        re-solved from its last basis, which makes a changed objective cheap."""
        keep, model = self._model(family)
        model.changeColsCost(len(keep), np.arange(len(keep), dtype=np.int32), objective[keep])
        model.run()
        if model.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        solution = np.zeros(len(self.low))
        solution[keep] = np.asarray(model.getSolution().col_value)
        return solution

    def _model(self, family: int | None) -> tuple[np.ndarray, highspy.Highs]:
        if family not in self._models:
            everything = family is None
            keep = np.arange(len(self.low)) if everything else np.flatnonzero(self.family == family)
            equalities, inequalities = (
                m if everything else _within(m, keep, self.family, family)
                for m in (self.equalities, self.inequalities)
            )
            model = highs_model(self.low[keep], self.high[keep], equalities, inequalities)
            self._models[family] = (keep, model)
        return self._models[family]


def highs_model(
    low: np.ndarray, high: np.ndarray, equal: sparse.spmatrix, at_most: sparse.spmatrix
) -> highspy.Highs:
    """A silent HiGHS model of counts within their bounds: ``equal`` rows = 0 (the sets),
    ``at_most`` rows ≤ 0 (a numerator within its denominator), no objective yet."""
    matrix = sparse.vstack([equal, at_most]).tocsc()
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(low), matrix.shape[0]
    lp.col_cost_ = np.zeros(len(low))
    lp.col_lower_, lp.col_upper_ = low, high
    lp.row_lower_ = np.concatenate(
        [np.zeros(equal.shape[0]), np.full(at_most.shape[0], -highspy.kHighsInf)]
    )
    lp.row_upper_ = np.zeros(matrix.shape[0])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr
    lp.a_matrix_.index_ = matrix.indices
    lp.a_matrix_.value_ = matrix.data
    model = highspy.Highs()
    model.setOptionValue("output_flag", False)
    model.passModel(lp)
    return model


def _within(
    matrix: sparse.csr_matrix, keep: np.ndarray, families: np.ndarray, family: int
) -> sparse.csr_matrix:
    """The constraint rows of one family, on its variables ``keep`` (a constraint never
    spans families, so its first variable tells its family)."""
    if matrix.nnz == 0:
        return matrix[:0][:, keep]
    first = matrix.indices[np.minimum(matrix.indptr[:-1], matrix.nnz - 1)]
    rows = np.flatnonzero((np.diff(matrix.indptr) > 0) & (families[first] == family))
    return matrix[rows][:, keep]


def _solve(
    table: pd.DataFrame, layout: _Layout, low: dict[str, np.ndarray], high: dict[str, np.ndarray]
) -> list[Finding]:
    programme = _programme(table, layout, low, high)
    targets, cells, withheld = _targets(table, high)
    if targets.shape[0] == 0:
        return []
    witnesses = _witnesses(programme, targets, withheld)
    findings = []
    contradictory = set()
    if witnesses is None:
        unsettled = np.arange(targets.shape[0])
    else:  # the others are safe: feasible solutions show it
        unsettled = np.flatnonzero(~_settled(witnesses[:, 0], witnesses[:, 1], withheld))
    for t in unsettled:
        family = int(programme.family[targets[t].indices[0]])
        interval = _interval(programme, targets[t], family)
        if interval is None:
            contradictory.add(family)
            continue
        problem = _problem(*interval, withheld[t])
        if problem:
            findings.append(_found(table, "sets", *cells[t], problem))
    for family in sorted(contradictory):
        first = int(np.flatnonzero(programme.family == family)[0]) % len(table)
        problem = "the published counts of its sets contradict each other"
        findings.append(_found(table, "rows", first, "numerator", problem))
    return findings


def _programme(
    table: pd.DataFrame, layout: _Layout, low: dict[str, np.ndarray], high: dict[str, np.ndarray]
) -> _Programme:
    """The additive sets as equalities, for numerators and denominators alike; numerator ≤
    denominator for proportions; and a DSR's counts beside its crude rate's: the same
    person-years, and no more events (those without an age are not standardised)."""
    rows = len(table)
    set_ids, members, coefficients = layout.sets
    count = set_ids.max(initial=-1) + 1
    sets = sparse.csr_matrix(
        (
            np.concatenate([coefficients, coefficients]),
            (np.concatenate([set_ids, set_ids + count]), np.concatenate([members, members + rows])),
        ),
        shape=(2 * count, 2 * rows),
    )
    proportion = np.flatnonzero(table["measure"].eq("proportion").to_numpy())
    standardised, crude = _measure_pairs(table)
    high_all = np.concatenate([high["numerator"], high["denominator"]])
    return _Programme(
        low=np.concatenate([low["numerator"], low["denominator"]]),
        high=np.minimum(high_all, UNBOUNDED),
        equalities=sparse.vstack([sets, _differences(standardised + rows, crude + rows, rows)]),
        inequalities=sparse.vstack(
            [
                _differences(proportion, proportion + rows, rows),
                _differences(standardised, crude, rows),
            ]
        ),
        family=np.concatenate([layout.programme_family, layout.programme_family]),
    )


def _differences(first: np.ndarray, second: np.ndarray, rows: int) -> sparse.csr_matrix:
    """One constraint row per pair: variable ``first`` − variable ``second``."""
    order = np.arange(len(first))
    return sparse.csr_matrix(
        (
            np.concatenate([np.ones(len(order)), -np.ones(len(order))]),
            (np.concatenate([order, order]), np.concatenate([first, second])),
        ),
        shape=(len(order), 2 * rows),
    )


def _measure_pairs(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Positions of each DSR row and of the crude-rate row of the same group and period."""
    keys = ["indicator_id", "period_type", "period_start", "breakdown", "group_code"]
    positions = table[keys].assign(position=np.arange(len(table)))
    dsr = positions[table["measure"].eq("dsr").to_numpy()]
    crude = positions[table["measure"].eq("crude_rate").to_numpy()]
    pairs = dsr.merge(crude, on=keys, suffixes=("_dsr", "_crude"))
    return pairs["position_dsr"].to_numpy(dtype=int), pairs["position_crude"].to_numpy(dtype=int)


@dataclass
class _Layout:
    """Each row's place, as integers: its family (indicator, measure, period, and for
    organisations the source: no set spans two families), its breakdown, and the label of the
    set it belongs to as a member (its 5-group for a 16-group row, its source for an
    organisation) or as a total."""

    family: np.ndarray
    programme_family: np.ndarray  # the family without its measure: measures are linked too
    breakdown: np.ndarray  # index into BREAKDOWNS, -1 for any other
    member_of: np.ndarray  # label id of the parent set, -1 for none
    total_of: np.ndarray  # label id of the set it totals, -1 for none
    has_five: np.ndarray  # its family has 5-group rows
    wres_of: np.ndarray  # WRES group index of a 5-group or WRES-group row, -1 for any other

    @cached_property
    def sets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _sets(self)

    @staticmethod
    def of(table: pd.DataFrame) -> _Layout:
        code = table["group_code"].astype(str).to_numpy(dtype=object)
        breakdown = pd.Categorical(table["breakdown"].astype(str), categories=BREAKDOWNS).codes
        is_orgs = breakdown == BREAKDOWNS.index("source_organisation")
        parts = [c.split(":", 1) if o else (c, "") for c, o in zip(code, is_orgs, strict=True)]
        source = np.array([s if o else "" for (s, _), o in zip(parts, is_orgs, strict=True)])
        organisation = np.array([org for _, org in parts], dtype=object)
        keyed = pd.DataFrame(table[FAMILY]).assign(source=source)
        family = keyed.groupby([*FAMILY, "source"], sort=False, dropna=False).ngroup().to_numpy()
        linked = [c for c in (*FAMILY, "source") if c != "measure"]
        programme_family = keyed.groupby(linked, sort=False, dropna=False).ngroup().to_numpy()
        parent = pd.Series(code).map(_parent_labels()).to_numpy(dtype=object)
        label = table["group_label"].astype(str).to_numpy(dtype=object)
        member_name = np.where(
            breakdown == 2, parent, np.where(is_orgs & (organisation != "all"), source, None)
        )
        total_name = np.where(
            breakdown == 1, label, np.where(is_orgs & (organisation == "all"), source, None)
        )
        names, ids = np.unique(
            np.concatenate([member_name, total_name]).astype(str), return_inverse=True
        )
        ids = ids.reshape(2, -1)
        none = np.flatnonzero(names == "None")
        member_of = np.where(np.isin(ids[0], none), -1, ids[0])
        total_of = np.where(np.isin(ids[1], none), -1, ids[1])
        five = np.zeros(family.max(initial=-1) + 1, dtype=bool)
        five[family[breakdown == 1]] = True
        wres_label = np.where(
            breakdown == BREAKDOWNS.index("wres_group"),
            label,
            np.where(breakdown == 1, pd.Series(label).map(WRES_OF_5).to_numpy(dtype=object), None),
        )
        wres_of = np.array([WRES_GROUPS.index(w) if w in WRES_GROUPS else -1 for w in wres_label])
        return _Layout(
            family, programme_family, breakdown, member_of, total_of, five[family], wres_of
        )


BREAKDOWNS = ["all", "ethnicity_5", "ethnicity_16", "source_organisation", "wres_group"]
WRES_GROUPS = ("White", "BME", "Unknown")
WRES_OF_5 = {
    "White": "White",
    "Mixed": "BME",
    "Asian or Asian British": "BME",
    "Black or Black British": "BME",
    "Other ethnic group": "BME",
    NOT_STATED_LABEL: "Unknown",
    NOT_KNOWN_LABEL: "Unknown",
}
"""Published rule, restated: the WRES groups add up the 5 groups (White is the 5-group
White; BME the other four; Unknown not stated and not known), and all persons = Σ them."""


def _parent_labels() -> dict[str, str]:
    return {str(d["ethnic_code"]): str(d["group_5"]) for d in dimension_rows()}


def _sets(layout: _Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every additive set, found from the rows themselves, as (set, row, ±1) triplets: the
    total +1 and each member −1, so that each set's row of the programme sums to 0.

    All persons is the total of the 5 groups (or of the 16 where there are no 5); each 5
    group is the total of its 16 (by the ethnicity reference); ``<source>:all`` is the total
    of ``<source>:<organisation>``; where WRES groups are published, all persons is also the
    total of the three, and each the total of its 5 groups. A set without exactly one total,
    or without members, is left out: nothing a partner could use.
    """
    levels = [_ethnic_and_organisation_keys(layout), *_wres_keys(layout)]
    rows = np.arange(len(layout.family))
    keys, role, row = [], [], []
    for level, (key_total, key_member) in enumerate(levels):
        for key, sign in ((key_total, 1.0), (key_member, -1.0)):
            present = key >= 0
            keys.append(key[present] * len(levels) + level)
            role.append(np.full(int(present.sum()), sign))
            row.append(rows[present])
    keys_, role_, row_ = np.concatenate(keys), np.concatenate(role), np.concatenate(row)
    unique, ids = np.unique(keys_, return_inverse=True)
    totals = np.bincount(ids, weights=role_ > 0, minlength=len(unique))
    members = np.bincount(ids, weights=role_ < 0, minlength=len(unique))
    whole = (totals == 1) & (members >= 1)
    keep = whole[ids]
    return np.unique(ids[keep], return_inverse=True)[1], row_[keep], role_[keep]


def _ethnic_and_organisation_keys(layout: _Layout) -> tuple[np.ndarray, np.ndarray]:
    """Each row's set as a total and as a member (−1: none): all persons over the 5 (or 16)
    groups, each 5 group over its 16, each source over its organisations."""
    b = layout.breakdown
    everyone = -2  # the label id of a family's All-persons set
    member = np.where((b == 1) | ((b == 2) & ~layout.has_five), everyone, layout.member_of)
    member = np.where((b == 2) & layout.has_five | (b == 3), layout.member_of, member)
    total = np.where(b == 0, everyone, layout.total_of)
    key_member = np.where(member == -1, -1, layout.family * 4096 + member + 2)
    key_total = np.where(total == -1, -1, layout.family * 4096 + total + 2)
    return key_total, key_member


def _wres_keys(layout: _Layout) -> list[tuple[np.ndarray, np.ndarray]]:
    """The WRES groups' two levels: all persons over the three, each over its 5 groups."""
    b, wres = layout.breakdown, BREAKDOWNS.index("wres_group")
    top_total = np.where(b == 0, layout.family, -1)
    top_member = np.where(b == wres, layout.family, -1)
    key = layout.family * len(WRES_GROUPS) + layout.wres_of
    group_total = np.where((b == wres) & (layout.wres_of >= 0), key, -1)
    group_member = np.where((b == 1) & (layout.wres_of >= 0), key, -1)
    return [(top_total, top_member), (group_total, group_member)]


def _targets(
    table: pd.DataFrame, high: dict[str, np.ndarray]
) -> tuple[sparse.csr_matrix, list[tuple[int, str]], np.ndarray]:
    """The counts to bound: every count but a published 0, and each proportion's complement
    (denominator − numerator, a count of people too) unless both are a published 0. Also
    each target's cell (row, column) and whether it is a withheld count."""
    rows = len(table)
    numerators = np.flatnonzero(high["numerator"] != 0)
    denominators = np.flatnonzero(high["denominator"] != 0)
    proportion = table["measure"].eq("proportion").to_numpy()
    both_zero = (high["numerator"] == 0) & (high["denominator"] == 0)
    complements = np.flatnonzero(proportion & ~both_zero)
    singles = np.concatenate([numerators, denominators + rows])
    n_single, n_pair = len(singles), len(complements)
    matrix = sparse.csr_matrix(
        (
            np.concatenate([np.ones(n_single), np.ones(n_pair), -np.ones(n_pair)]),
            (
                np.concatenate(
                    [
                        np.arange(n_single),
                        n_single + np.arange(n_pair),
                        n_single + np.arange(n_pair),
                    ]
                ),
                np.concatenate([singles, complements + rows, complements]),
            ),
        ),
        shape=(n_single + n_pair, 2 * rows),
    )
    cells = [(int(i), "numerator") for i in numerators]
    cells += [(int(i), "denominator") for i in denominators]
    cells += [(int(i), COMPLEMENT) for i in complements]
    withheld = np.concatenate(
        [
            table["numerator"].isna().to_numpy()[numerators],
            table["denominator"].isna().to_numpy()[denominators],
            np.zeros(n_pair, dtype=bool),
        ]
    )
    return matrix, cells, withheld


RANDOM_WITNESSES = 12
"""At most this many solutions in random directions after the four planned ones."""


def _witnesses(
    programme: _Programme, targets: sparse.csr_matrix, withheld: np.ndarray
) -> np.ndarray | None:
    """Per target, the lowest and highest value it takes in some feasible solutions (any
    feasible solution shows a value a count can take): all counts pushed down, all up, the
    same for complements (which pull a numerator the other way), then the targets not yet
    settled pushed in random directions, with random weights (seeded, so the audit repeats
    exactly), withheld counts always up, while that still settles many. In a set whose total
    is nearly fixed one solution can raise only some of its members; random weights raise
    different ones each time. None if the whole table has no solution (each family is then
    solved on its own)."""
    complement = np.diff(targets.indptr) > 1
    planned = [
        sign * np.asarray(targets[chosen].sum(axis=0)).ravel()
        for chosen in (~complement, complement)
        if chosen.any()
        for sign in (1.0, -1.0)
    ]
    random = np.random.default_rng(0)
    low = np.full(targets.shape[0], np.inf)
    high = np.full(targets.shape[0], -np.inf)
    unsettled = np.ones(targets.shape[0], dtype=bool)
    for k in range(len(planned) + RANDOM_WITNESSES):
        if k < len(planned):
            objective = planned[k]
        else:
            sign = np.where(withheld[unsettled], -1.0, random.choice([-1.0, 1.0], unsettled.sum()))
            weights = sign * random.uniform(0.5, 1.5, unsettled.sum())
            objective = targets[unsettled].T @ weights
        solution = programme.optimum(objective)
        if solution is None:
            return None
        values = targets @ solution
        low, high = np.minimum(low, values), np.maximum(high, values)
        if k >= len(planned) - 1:
            before, unsettled = unsettled.sum(), ~_settled(low, high, withheld)
            if not unsettled.any() or unsettled.sum() > 0.9 * before:
                break
    return np.column_stack([low, high])


def _settled(low: np.ndarray, high: np.ndarray, withheld: np.ndarray) -> np.ndarray:
    """Where values some solutions take already prove a count safe (see :func:`_problem`):
    it can be 0 or two whole numbers (not pinned), 0 or 8 and more (not confined to 1–7),
    and, if withheld, 8 or more. The true range is wider still, never narrower."""
    first, last = np.ceil(low - _EPS), np.floor(high + _EPS)
    not_pinned = (first <= 0) | (last > first)
    not_confined = (first <= 0) | (last > WITHHELD_UP_TO)
    return not_pinned & not_confined & (~withheld | (last > WITHHELD_UP_TO))


def _interval(
    programme: _Programme, target: sparse.csr_matrix, family: int
) -> tuple[float, float] | None:
    """The exact range of a target over its family's solutions; None if there are none."""
    weights = target.toarray().ravel()
    ends = []
    for sign in (1.0, -1.0):
        solution = programme.optimum(sign * weights, family)
        if solution is None:
            return None
        ends.append(float(weights @ solution))
    return ends[0], ends[1]


def _problem(low: float, high: float, withheld: bool) -> str | None:
    """What a range of possible values gives away, if anything. A withheld count that can be
    at most 7 counts as confined to 1–7: 0 is shown, so a partner reads a withheld count as
    at least 1 (only a set with no shown non-zero cell can have a withheld 0)."""
    first, last = math.ceil(low - _EPS), math.floor(high + _EPS)
    if last == first and first != 0:
        return f"pinned to {first}"
    if 1 <= last <= WITHHELD_UP_TO and (withheld or first >= 1):
        return f"confined to {max(first, 1)}–{last}"
    return None
