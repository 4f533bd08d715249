"""The attacking audit of the WRES table: what a partner could work out from ``mart.wres``.

Like :mod:`transforms.core.disclosure_audit`, it sees only what partners see and the public
rules, and shares no code with the protection it checks (``transforms.indicators.wres``):
what each figure counts is restated below from the WRES definitions (``docs/methods.md``
§11), so a mistake in one is caught by the other.

The counts partners see are those of the group rows (``measure`` ``percentage``). One
quantity can appear in several places: WRES1's count of White staff in the whole workforce
of an organisation is WRES4's White denominator and WRES9's staff count. The quantities add
up in four ways: the groups of a headcount to its total (White + BME + Unknown = all staff
of that band and staff group, or all members of a board), the organisations to the
partnership (``ALL``), WRES1's pay bands to ``All`` bands and its staff groups to ``All``.
And a figure's numerator is part of its denominator.

From those bounds and sets the attack solves linear programmes (SciPy's HiGHS) for the
tightest interval of each count, and fails a table where a withheld count can be at most
:data:`WITHHELD_UP_TO`, a shown count other than 0 is pinned to one number, or the complement
(denominator − numerator: the staff not appointed, not disciplined, not trained) is confined
to 1–7. Every year is in one programme: WRES3's headcount of a group is this March's plus
last March's. Most intervals are settled by a few programmes over the whole table (any
feasible solution is a witness that a count can reach a value); only the rest get programmes
of their own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import highspy
import numpy as np
import pandas as pd
from scipy import sparse

from transforms.core.disclosure_audit import (
    COMPLEMENT,
    ROUNDED_TO,
    WITHHELD_UP_TO,
    Finding,
    highs_model,
)

SMALLEST_SHOWN = WITHHELD_UP_TO + 1
TWO_YEARS = "staff, two years"
ALL_ORGANISATIONS = "ALL"
ALL = "All"
COUNTED = {
    ("WRES1", "staff"): ("staff", "staff"),
    ("WRES2", "shortlisted applicants"): ("appointed", "shortlisted"),
    ("WRES3", "staff in the two March snapshots"): ("disciplined", TWO_YEARS),
    ("WRES4", "staff"): ("trained", "staff"),
    ("WRES9", "staff"): ("staff", "staff"),
    ("WRES9", "voting board members"): ("voting board", "voting board"),
    ("WRES9", "executive board members"): ("executive board", "executive board"),
}
"""(indicator, population) -> what the numerator and the denominator of a group row count.
A headcount's denominator (WRES1, WRES9) is every group's; a relative likelihood's (WRES2–4)
is its own group's."""
HEADCOUNTS = ("WRES1", "WRES9")
HEADCOUNT_QUANTITIES = ("staff", "voting board", "executive board")
"""Quantities whose groups add up to a published total (White + BME + Unknown = all)."""
UNBOUNDED = 1e9
_EPS = 1e-6


def attack_wres(table: pd.DataFrame) -> list[Finding]:
    """Every count a partner could narrow down in ``table`` (``mart.wres`` columns); [] if
    none. ``Finding.row`` is the index label of the group row the count was read from."""
    rows = table[table["measure"] == "percentage"]
    if rows.empty:
        return []
    numerator, denominator = quantities(rows)
    findings = _consistency(rows, numerator, denominator)
    counts = _programme(rows, numerator, denominator)
    findings += _withheld_confined(rows, counts)
    findings += _shown_pinned(rows, counts)
    return findings + _complements_confined(rows, counts)


def quantities(rows: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The quantity each group row's numerator and denominator count, named so that the same
    people get the same name wherever they are counted."""
    what = [COUNTED[k] for k in zip(rows["indicator_id"], rows["population"], strict=True)]
    place = (
        "|"
        + pd.to_datetime(rows["period_end"]).dt.strftime("%Y-%m-%d")
        + "|"
        + rows["organisation_code"]
        + "|"
        + rows["staff_group"].fillna(ALL)
        + "|"
        + rows["band"].fillna(ALL)
        + "|"
    )
    headcount = rows["indicator_id"].isin(HEADCOUNTS)
    numerator = pd.Series([w[0] for w in what], index=rows.index) + place + rows["group_label"]
    denominator = (
        pd.Series([w[1] for w in what], index=rows.index)
        + place
        + rows["group_label"].where(~headcount, ALL)
    )
    return numerator, denominator


def _consistency(year: pd.DataFrame, numerator: pd.Series, denominator: pd.Series) -> list[Finding]:
    """A quantity shown in one place and withheld, or shown otherwise, in another."""
    seen: dict[str, float] = {}
    findings = []
    for column, keys in (("numerator", numerator), ("denominator", denominator)):
        values = pd.to_numeric(year[column]).astype(float)
        for label, key, value in zip(year.index, keys, values, strict=True):
            first = seen.setdefault(key, value)
            if not (first == value or (np.isnan(first) and np.isnan(value))):
                problem = f"shown as {value} here and {first} in another row counting the same"
                findings.append(_finding(year, label, column, problem))
    return findings


@dataclass
class _Year:
    """One financial year's counts as a programme: one variable per quantity, its bounds
    from what is shown, the sets (total − Σ members = 0) and each numerator ≤ denominator."""

    low: np.ndarray
    high: np.ndarray
    withheld: np.ndarray
    sets: sparse.csr_matrix
    parts: sparse.csr_matrix
    numerator: np.ndarray  # per group row: its numerator's variable
    denominator: np.ndarray
    rows: np.ndarray  # per group row: its index label in the table
    pairs: np.ndarray  # (numerator, denominator) of each row of ``parts``
    _model: highspy.Highs | None = None

    def point(self, cost: np.ndarray) -> np.ndarray:
        """Counts minimising ``cost`` @ counts. The model is built once and re-solved from
        its last basis, which makes a changed objective cheap."""
        if self._model is None:
            self._model = highs_model(self.low, self.high, self.sets, self.parts)
        n = len(self.low)
        self._model.changeColsCost(n, np.arange(n, dtype=np.int32), cost)
        return _solution(self._model)

    def bound(self, target: sparse.csr_matrix, sense: float) -> float:
        """The least (``sense`` 1) or greatest (−1) value of one target (``target @ counts``)."""
        return float((target @ self.point(sense * target.toarray().ravel()))[0])

    def reach(self, targets: sparse.csr_matrix, cap: float) -> np.ndarray:
        """The targets' values at a point maximising Σ min(target, ``cap``): every target
        that can reach ``cap`` together with the others does, which settles it."""
        n, t = len(self.low), targets.shape[0]
        capped = sparse.hstack([-targets, sparse.identity(t)])  # y − target ≤ 0
        model = highs_model(
            np.concatenate([self.low, np.zeros(t)]),
            np.concatenate([self.high, np.full(t, cap)]),
            sparse.hstack([self.sets, sparse.csr_matrix((self.sets.shape[0], t))]),
            sparse.vstack(
                [sparse.hstack([self.parts, sparse.csr_matrix((self.parts.shape[0], t))]), capped]
            ),
        )
        model.changeColsCost(t, np.arange(n, n + t, dtype=np.int32), -np.ones(t))
        return targets @ _solution(model)[:n]


def _solution(model: highspy.Highs) -> np.ndarray:
    model.run()
    if model.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise ValueError("the WRES counts shown cannot all be true at once")
    return np.asarray(model.getSolution().col_value)


def _programme(year: pd.DataFrame, numerator: pd.Series, denominator: pd.Series) -> _Year:
    keys = sorted(set(numerator) | set(denominator))
    position = {k: i for i, k in enumerate(keys)}
    shown = pd.Series(np.nan, index=keys)
    shown[denominator.to_numpy()] = pd.to_numeric(year["denominator"]).to_numpy(dtype=float)
    shown[numerator.to_numpy()] = pd.to_numeric(year["numerator"]).to_numpy(dtype=float)
    value = shown.to_numpy()
    withheld = np.isnan(value)
    nearest = np.maximum(SMALLEST_SHOWN, value - ROUNDED_TO // 2)
    low = np.where(withheld | (value == 0), 0.0, nearest)
    high = np.where(withheld, UNBOUNDED, value + np.where(value == 0, 0, ROUNDED_TO // 2))
    num = numerator.map(position).to_numpy(dtype=int)
    den = denominator.map(position).to_numpy(dtype=int)
    pairs = np.unique(np.column_stack([num, den])[num != den], axis=0)
    return _Year(
        low=low,
        high=high,
        withheld=withheld,
        sets=_sets(keys, position),
        parts=_differences(pairs[:, 0], pairs[:, 1], len(keys)),
        numerator=num,
        denominator=den,
        rows=year.index.to_numpy(),
        pairs=pairs,
    )


def _differences(plus: np.ndarray, minus: np.ndarray, n: int) -> sparse.csr_matrix:
    """One row per pair: +1 on ``plus``, −1 on ``minus``."""
    rows = np.arange(len(plus))
    return sparse.csr_matrix(
        (
            np.repeat([1.0, -1.0], len(plus)),
            (np.concatenate([rows, rows]), np.concatenate([plus, minus])),
        ),
        shape=(len(plus), n),
    )


def _sets(keys: list[str], position: dict[str, int]) -> sparse.csr_matrix:
    """One row per additive set among ``keys``: +1 on the total, −1 on each member. A member
    missing from the table counts nothing (an organisation without such staff has no row).
    Across years: WRES3's headcount of a group is the sum of the two March headcounts, this
    year's and last year's (WRES1), where both are published."""
    members: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(keys):
        what, year, organisation, staff_group, band, group = key.split("|")
        totals = []
        if organisation != ALL_ORGANISATIONS:
            totals.append(
                ("organisations", (what, year, ALL_ORGANISATIONS, staff_group, band, group))
            )
        if group != ALL and what in HEADCOUNT_QUANTITIES:
            totals.append(("groups", (what, year, organisation, staff_group, band, ALL)))
        if band != ALL:
            totals.append(("bands", (what, year, organisation, staff_group, ALL, group)))
        if staff_group != ALL:
            totals.append(("staff groups", (what, year, organisation, ALL, band, group)))
        for over, total in totals:
            members.setdefault(("|".join(total), over), []).append(i)
    members.update(_two_year_sets(keys, position))
    entries = [(position[t], inside) for (t, _), inside in members.items() if t in position]
    rows = np.concatenate([[s] * (1 + len(m)) for s, (_, m) in enumerate(entries)] or [[]])
    columns = np.concatenate([[t, *m] for t, m in entries] or [[]])
    values = np.concatenate([[1.0] + [-1.0] * len(m) for _, m in entries] or [[]])
    return sparse.csr_matrix(
        (values, (rows.astype(int), columns.astype(int))), shape=(len(entries), len(keys))
    )


def _two_year_sets(keys: list[str], position: dict[str, int]) -> dict[tuple[str, str], list[int]]:
    """WRES3's denominator of a group = its headcount this March + last March, where both
    March headcounts are in the table."""
    sets = {}
    for key in keys:
        what, year, organisation, staff_group, band, group = key.split("|")
        if what != TWO_YEARS:
            continue
        last = (date.fromisoformat(year).replace(year=int(year[:4]) - 1)).isoformat()
        pair = [f"staff|{y}|{organisation}|{staff_group}|{band}|{group}" for y in (year, last)]
        if all(p in position for p in pair):
            sets[(key, "two years")] = [position[p] for p in pair]
    return sets


# --- the checks --------------------------------------------------------------------------------


def _unit(variables: np.ndarray, n: int) -> sparse.csr_matrix:
    rows = np.arange(len(variables))
    return sparse.csr_matrix(
        (np.ones(len(variables)), (rows, variables)), shape=(len(variables), n)
    )


def _at_most(year: _Year, targets: sparse.csr_matrix) -> np.ndarray:
    """Each target's largest value (∞ where it can reach 8). Programmes pushing all the
    targets still open up together settle most (targets sharing a total cannot all reach 8
    at once, but can in turns); each target left gets a programme of its own."""
    most = np.full(targets.shape[0], np.inf)
    open_ = np.arange(targets.shape[0])
    while open_.size:
        reached = year.reach(targets[open_], SMALLEST_SHOWN) >= SMALLEST_SHOWN - _EPS
        if not reached.any():
            break
        open_ = open_[~reached]
    for t in open_:
        most[t] = year.bound(targets[t], -1.0)
    return most


def _withheld_confined(year: pd.DataFrame, counts: _Year) -> list[Finding]:
    variables = np.flatnonzero(counts.withheld)
    most = _at_most(counts, _unit(variables, len(counts.low)))
    return [
        _finding(
            year, *_first_place(counts, v), f"withheld, but can be at most {math.floor(m + _EPS)}"
        )
        for v, m in zip(variables, most, strict=True)
        if _EPS < m < SMALLEST_SHOWN - _EPS
    ]


def _shown_pinned(year: pd.DataFrame, counts: _Year) -> list[Finding]:
    variables = np.flatnonzero(~counts.withheld & (counts.high > 0))
    targets = _unit(variables, len(counts.low))
    findings = []
    for t in _unmoved(counts, targets):
        least, most = counts.bound(targets[t], 1.0), counts.bound(targets[t], -1.0)
        if math.floor(most + _EPS) == math.ceil(least - _EPS):
            place = _first_place(counts, variables[t])
            findings.append(_finding(year, *place, f"pinned to {math.floor(most + _EPS)}"))
    return findings


def _unmoved(counts: _Year, targets: sparse.csr_matrix, rounds: int = 4) -> np.ndarray:
    """The targets that keep one value over feasible points pushed every way (all down, all
    up, then at random, seeded): any other can take two values, so is not pinned."""
    rng = np.random.default_rng(0)
    open_ = np.arange(targets.shape[0])
    for round_ in range(rounds):
        if not open_.size:
            break
        signs = np.ones(open_.size) if round_ == 0 else rng.choice([-1.0, 1.0], open_.size)
        weights = np.asarray(targets[open_].T @ signs).ravel()
        first, second = (targets[open_] @ counts.point(s * weights) for s in (1.0, -1.0))
        open_ = open_[np.abs(first - second) < _EPS]
    return open_


def _complements_confined(year: pd.DataFrame, counts: _Year) -> list[Finding]:
    """Denominator − numerator confined to 1–7 (e.g. 1 to 7 BME staff who did not access
    training, when every other count of the row is shown). One programme pushing every
    complement down settles those that can be 0; :func:`_at_most` most of the others."""
    targets = -counts.parts
    if targets.shape[0] == 0:
        return []
    everything = np.asarray(targets.sum(axis=0)).ravel()
    can_be_zero = targets @ counts.point(everything) < 1 - _EPS
    open_ = np.flatnonzero(~can_be_zero)
    most = _at_most(counts, targets[open_])
    findings = []
    for t, m in zip(open_, most, strict=True):
        if m >= SMALLEST_SHOWN - _EPS:
            continue
        least = counts.bound(targets[t], 1.0)
        if least >= 1 - _EPS:
            numerator, denominator = counts.pairs[t]
            row = np.flatnonzero(
                (counts.numerator == numerator) & (counts.denominator == denominator)
            )[0]
            confined = f"confined to {math.ceil(least - _EPS)}–{math.floor(m + _EPS)}"
            findings.append(_finding(year, counts.rows[row], COMPLEMENT, confined))
    return findings


def _first_place(counts: _Year, variable: int) -> tuple[object, str]:
    """Where a partner reads the quantity: the first group row showing it."""
    for column, positions in (("numerator", counts.numerator), ("denominator", counts.denominator)):
        found = np.flatnonzero(positions == variable)
        if len(found):
            return counts.rows[found[0]], column
    raise KeyError(variable)


def _finding(year: pd.DataFrame, label: object, column: str, problem: str) -> Finding:
    row = year.loc[label]
    where = [row["indicator_id"], row["organisation_code"], str(row["period_end"])[:10]]
    where += [
        str(row[c])
        for c in ("population", "group_label", "band", "staff_group")
        if pd.notna(row[c])
    ]
    return Finding("sets", label, column, " ".join(where) + f" {column}", problem)
