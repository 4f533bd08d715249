"""Statistical disclosure control for every table that leaves the warehouse.

The partnership's rules (``docs/methods.md`` §7, "Disclosure control", which gives their
sources):

1. **Primary suppression.** A count from 1 to :data:`SUPPRESSION_THRESHOLD` (7) is withheld;
   0 is shown. This is NHS Digital's sub-national rule for HES and ECDS from September 2018
   ("1–7 → ``*``") and OpenSAFELY's current output rule ("redact any count ≤ 7").
2. **Rounding.** Every other count is rounded to the nearest :data:`ROUNDING_BASE` (5), after
   suppression (both sources; OpenSAFELY stresses the order, so no shown ``5`` can stand for
   6 or 7). Ties go up (``(x + base // 2) // base * base``); with the odd base 5 an integer
   count never lies half-way, so 8 → 10, 12 → 10, 13 → 15. Totals are rounded from their own
   unrounded value, like any other count.
3. **Derived values withheld.** Rates, proportions, their confidence limits, ratios to a
   reference group (any column named in ``derived``) are withheld wherever the row's
   numerator or denominator is withheld, whether primarily or secondarily. This module does
   not compute them: what partners see is recomputed from the published (rounded) counts by
   ``transforms.indicators.assembly`` (``docs/methods.md`` §7, rule 3), since statistics of
   the exact counts would give the rounding away.
4. **Secondary suppression.** Rows sharing the values of ``group_cols`` form a *set*: cells
   that add up to one total (for example the ethnic groups, including "Not stated" and "Not
   known", of one indicator × period × breakdown). The total is the row labelled
   ``total_label`` in that set (e.g. ``All persons``); a set without such a row is assumed to
   have its total published elsewhere, so it is protected all the same. If exactly one value
   of a set (cells and total together) is withheld, it could be recovered by differencing, so
   one more is withheld: **the smallest non-zero shown cell** (ties: the first row in table
   order); if there is none, the smallest shown cell (a zero); if there is none, the total.
   Zero cells come last because hiding a known-empty group protects little. With two or more
   withheld values a set needs nothing more. Numerators and denominators are each treated
   as their own additive column.

   Nested breakdowns add up in more than one way: each 16-group row is a cell of its
   5-group parent's set, and the 5-group rows are cells of All persons. ``group_cols`` give
   one partition of the table into sets; each :class:`Partition` in ``nested`` gives another
   (rows sharing its ``key_cols``, rows with a missing key outside it, totals marked in its
   ``total_col``). The rule above applies to every set of every partition. A cell withheld
   for one set can leave a set of another partition with exactly one withheld value, so the
   partitions are gone through again, in order (``group_cols`` first), until no set of any
   has exactly one; this stops, because cells are only ever added. The order can change
   which cells are chosen, not whether the result is safe.
5. **Reason codes.** Each row gets ``suppressed`` (any of its values withheld) and
   ``suppression_reason``: the codes that apply, distinct, in the order of :data:`REASONS`,
   joined with ``;`` (None when nothing is withheld):

   * ``small_count`` – a count of the row was 1–7 (primary);
   * ``audit`` – a count the caller asked to withhold (``also_withhold``): one the attacking
     audit (``transforms.core.disclosure_audit``) could narrow down despite the rules above;
   * ``secondary`` – a count was withheld to protect another cell of its set;
   * ``numerator_suppressed`` / ``denominator_suppressed`` – the derived values are withheld
     because that count is;
   * ``unreliable_rate`` – a directly standardised rate with total count below 10 (its value
     is already NA from :func:`transforms.core.statistics.dsr`, statistic
     :data:`transforms.core.statistics.NO_DSR_SMALL_COUNT`); its derived values are withheld too.
     Given only where the row's counts are shown: on a withheld row it would say "below 10".

:func:`check_publishable` re-checks a finished table against the same rules and lists every
violation (for tables of counts this module protects). The indicators are checked by a
stronger gate, independent of this module: the attacking audit
(``transforms.core.disclosure_audit``).

Limits of this module (the caller's job): the partitions must name every way the rows add
up; a sum not given as a partition, such as repeated or overlapping periods, is not protected
against differencing. "No set with exactly one withheld value" is enough for hierarchies
(16 groups within 5 within All persons), whose sets nest like a tree, but not for crossed
breakdowns (ethnicity × sex), whose sets form a grid in which adding and subtracting several
sets' sums can reveal a cell although each set has two withheld. A partition implied
by others (all 16 groups against All persons, given both levels) adds no protection and may
withhold more than needed. A ratio to a reference group whose own counts are withheld is not
withheld by this module unless the ratio row's counts are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from transforms.core.statistics import NO_DSR_SMALL_COUNT

SUPPRESSION_THRESHOLD = 7
"""Largest count withheld (1..7; 0 is shown): NHS Digital HES/ECDS rule from September 2018,
and OpenSAFELY's "redact ≤ 7" output rule."""

ROUNDING_BASE = 5
"""Shown counts are rounded to the nearest multiple of this: the same two sources (NHS Digital
HES/ECDS from September 2018; OpenSAFELY "then round all counts to the nearest 5")."""

SMALL_COUNT = "small_count"
AUDIT = "audit"
SECONDARY = "secondary"
NUMERATOR_SUPPRESSED = "numerator_suppressed"
DENOMINATOR_SUPPRESSED = "denominator_suppressed"
UNRELIABLE_RATE = "unreliable_rate"
REASONS = (
    SMALL_COUNT,
    AUDIT,
    SECONDARY,
    NUMERATOR_SUPPRESSED,
    DENOMINATOR_SUPPRESSED,
    UNRELIABLE_RATE,
)
"""Every reason code, in the order they are listed in ``suppression_reason``."""

# --- derived columns and when partners' rows withhold them ----------------------------------

COUNTS_WITHHELD = "counts_withheld"
SUPPRESSED = "suppressed"
REFERENCE_SUPPRESSED = "reference_suppressed"
WITHHOLDING_RULES = {
    COUNTS_WITHHELD: "the row's numerator or denominator is withheld",
    SUPPRESSED: "the row is suppressed: its counts are withheld, or it is a DSR too unreliable "
    "to show",
    REFERENCE_SUPPRESSED: "the row or its reference group is suppressed (the ratio with the "
    "row's own value would give the reference's value away)",
}
"""When a derived column is withheld (null) on partners' rows: each rule by its name."""


@dataclass(frozen=True)
class Derived:
    """A column derived from a row's counts, and the rule that withholds it on partners' rows.

    ``column`` is its name in ``indicators.values`` and ``indicators.published`` (and the mart
    view over them); ``statistic`` its name as ``transforms.core.statistics`` returns it.
    """

    column: str
    statistic: str
    withheld_when: str


DERIVED: tuple[Derived, ...] = (
    Derived("value", "value", SUPPRESSED),
    Derived("lower_95", "lower95_0cl", SUPPRESSED),
    Derived("upper_95", "upper95_0cl", SUPPRESSED),
    Derived("lower_998", "lower99_8cl", SUPPRESSED),
    Derived("upper_998", "upper99_8cl", SUPPRESSED),
    Derived("ratio_to_reference", "ratio", REFERENCE_SUPPRESSED),
    Derived("ratio_lower_95", "ratio_lower95_0cl", REFERENCE_SUPPRESSED),
    Derived("ratio_upper_95", "ratio_upper95_0cl", REFERENCE_SUPPRESSED),
    Derived("ratio_lower_998", "ratio_lower99_8cl", REFERENCE_SUPPRESSED),
    Derived("ratio_upper_998", "ratio_upper99_8cl", REFERENCE_SUPPRESSED),
    Derived("significance_vs_reference", "significance_vs_reference_95_0", REFERENCE_SUPPRESSED),
    Derived(
        "significance_vs_reference_998", "significance_vs_reference_99_8", REFERENCE_SUPPRESSED
    ),
    Derived("significance_vs_all", "significance_vs_all_95_0", SUPPRESSED),
    Derived("significance_vs_all_998", "significance_vs_all_99_8", SUPPRESSED),
    Derived("method", "method", COUNTS_WITHHELD),
    Derived("note", "note", COUNTS_WITHHELD),
)
"""Every derived column of the indicator tables, stated once: ``transforms.indicators`` renames
the statistics by it and withholds partners' columns by it (:func:`withhold_derived`), and the
mart view partners are granted is generated from it (``transforms.warehouse.views``). The
attacking audit (``transforms.core.disclosure_audit``) restates the rules independently."""

STATISTIC_NAMES = {d.statistic: d.column for d in DERIVED if d.statistic != d.column}
"""Statistics-module column names -> the indicator tables' column names."""

DERIVED_COLUMNS = (
    *(d.statistic for d in DERIVED if d.withheld_when != COUNTS_WITHHELD),
    "variance",
)
"""Default derived columns of :func:`apply_sdc` (names as ``transforms.core.statistics``
returns them, with the DSR's ``variance``): withheld wherever the row's counts are. Columns
absent from a table are skipped; pass ``derived`` for others."""


def withhold_derived(rows: pd.DataFrame, counts_withheld: pd.Series) -> pd.DataFrame:
    """Partners' rows with each :data:`DERIVED` column null where its rule says.

    ``rows`` has the tables' column names, ``suppressed`` and ``reference_suppressed``;
    ``counts_withheld`` is True where the row's numerator or denominator is withheld.
    """
    suppressed = rows["suppressed"].astype(bool)
    hidden = {
        COUNTS_WITHHELD: counts_withheld.astype(bool),
        SUPPRESSED: suppressed,
        REFERENCE_SUPPRESSED: suppressed | rows["reference_suppressed"].astype(bool),
    }
    rows = rows.copy()
    for derived in DERIVED:
        if derived.column in rows.columns:
            column = rows[derived.column]
            rows[derived.column] = column.where(~hidden[derived.withheld_when], None)
    return rows


# --- counts ----------------------------------------------------------------------------------


def _as_counts(values: pd.Series, name: str, *, allow_na: bool) -> pd.Series:
    """Non-negative whole numbers as nullable Int64; raises on anything else."""
    numbers = pd.to_numeric(values, errors="coerce")
    unreadable = numbers.isna() & values.notna()
    if unreadable.any():
        raise ValueError(f"{name}: {int(unreadable.sum())} value(s) are not numbers")
    if not allow_na and numbers.isna().any():
        raise ValueError(
            f"{name}: {int(numbers.isna().sum())} missing count(s); fill in zeros or drop "
            "rows without data before disclosure control"
        )
    array = numbers.to_numpy(dtype=float, na_value=np.nan)
    present = ~np.isnan(array)
    if np.any(array[present] < 0) or np.any(array[present] != np.floor(array[present])):
        raise ValueError(f"{name}: counts must be non-negative whole numbers")
    return numbers.astype("Int64")


def suppress_counts(counts: pd.Series, threshold: int = SUPPRESSION_THRESHOLD) -> pd.Series:
    """Primary suppression: True where 1 <= count <= ``threshold`` (0 and NA are False)."""
    counts = _as_counts(counts, str(counts.name or "counts"), allow_na=True)
    return (counts.ge(1) & counts.le(threshold)).fillna(False).astype(bool)


def round_counts(counts: pd.Series, base: int = ROUNDING_BASE) -> pd.Series:
    """Counts rounded to the nearest multiple of ``base``, ties upwards; NA stays NA (Int64).

    Ties cannot occur for an odd base: with base 5, 8 → 10, 12 → 10, 13 → 15.
    """
    if base < 1:
        raise ValueError("base must be a positive whole number")
    counts = _as_counts(counts, str(counts.name or "counts"), allow_na=True)
    return (counts + base // 2) // base * base


# --- sets (for secondary suppression) --------------------------------------------------------


@dataclass(frozen=True)
class Partition:
    """Another way the rows add up, besides the sets of ``group_cols`` (rule 4).

    Rows sharing the values of ``key_cols`` form a set; a row with a missing value (NA/None)
    in any of them is outside this partition. Unlike ``group_cols``, which put every row in
    some set, this names one level of a nested breakdown without the rows of the other levels.
    ``total_col`` names a boolean column, True on each set's total row; with None, or
    in a set without a True row, the total is taken as published elsewhere and the set is
    protected all the same.

    For All persons, 5 and 16 ethnic groups, with ``parent_5`` the 5-group of a 5- or
    16-group row (NA on All persons), ``set_5`` one value on All persons and the 5-group rows
    (NA on the 16-group rows) and ``is_all_persons`` True on the All persons row::

        apply_sdc(table, ["indicator_id", "period_start", "parent_5"],
                  label_col="breakdown", total_label="ethnicity_5",
                  nested=[Partition(("indicator_id", "period_start", "set_5"),
                                    total_col="is_all_persons")])

    Do not also put all 16-group rows in one set (say by ``breakdown`` in ``group_cols``):
    that sum is implied by the two levels, and checked alongside them withholds more.
    """

    key_cols: tuple[str, ...]
    total_col: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.key_cols, str) or not self.key_cols:
            raise ValueError("key_cols must be a non-empty sequence of column names")
        object.__setattr__(self, "key_cols", tuple(self.key_cols))


@dataclass(frozen=True)
class _Sets:
    """A partition resolved on one table, by row position (so duplicate index labels are
    harmless): each row's set (-1: outside the partition) and its total rows."""

    ids: np.ndarray
    is_total: np.ndarray
    name: str
    total_name: str


def _first_sets(
    table: pd.DataFrame, group_cols: Sequence[str], label_col: str, total_label: str | None
) -> _Sets:
    """The ``group_cols`` partition: every row is in it (missing keys form a set of their own)."""
    if group_cols:
        ids = table.groupby(list(group_cols), sort=False, dropna=False).ngroup().to_numpy()
    else:
        ids = np.zeros(len(table), dtype=int)
    if total_label is None:
        is_total = np.zeros(len(table), dtype=bool)
    else:
        is_total = table[label_col].eq(total_label).fillna(False).to_numpy(dtype=bool)
    return _Sets(ids, is_total, "set", repr(total_label))


def _nested_sets(table: pd.DataFrame, partition: Partition) -> _Sets:
    """A :class:`Partition`; rows with a missing key get set -1 and are never totals."""
    grouped = table.groupby(list(partition.key_cols), sort=False, dropna=True)
    ids = grouped.ngroup().fillna(-1).to_numpy(dtype=int)
    if partition.total_col is None:
        is_total = np.zeros(len(table), dtype=bool)
    else:
        is_total = table[partition.total_col].eq(True).fillna(False).to_numpy(dtype=bool)
    name = f"set of {list(partition.key_cols)}"
    return _Sets(ids, is_total & (ids >= 0), name, repr(partition.total_col))


def _partitions(
    table: pd.DataFrame,
    group_cols: Sequence[str],
    label_col: str,
    total_label: str | None,
    nested: Sequence[Partition],
) -> list[_Sets]:
    """The ``group_cols`` partition, then ``nested``: the order secondary suppression takes."""
    return [
        _first_sets(table, group_cols, label_col, total_label),
        *(_nested_sets(table, p) for p in nested),
    ]


def _recoverable_sets(sets: _Sets, hidden: np.ndarray) -> np.ndarray:
    """Per row: inside a set of two or more rows with exactly one withheld value."""
    inside = sets.ids >= 0
    ids = np.where(inside, sets.ids, 0)
    withheld = np.bincount(ids[inside], weights=hidden[inside], minlength=ids.max(initial=0) + 1)
    size = np.bincount(ids[inside], minlength=len(withheld))
    return inside & (withheld[ids] == 1) & (size[ids] >= 2)


def _one_more(counts: np.ndarray, hidden: np.ndarray, sets: _Sets) -> np.ndarray:
    """For each set with exactly one withheld value, the value to withhold next (rule 4)."""
    needs = _recoverable_sets(sets, hidden)
    more = np.zeros(len(counts), dtype=bool)
    if not needs.any():
        return more
    candidates = np.flatnonzero(needs & ~hidden & ~sets.is_total)
    # per set: non-zero cells before zeros, then the smallest count, then the first row
    order = candidates[
        np.lexsort((candidates, counts[candidates], counts[candidates] == 0, sets.ids[candidates]))
    ]
    first = np.ones(len(order), dtype=bool)
    first[1:] = sets.ids[order][1:] != sets.ids[order][:-1]
    more[order[first]] = True
    # A set whose only shown value is its total (one cell, withheld): withhold the total.
    covered = np.isin(sets.ids, sets.ids[order[first]])
    return more | (needs & ~covered & sets.is_total & ~hidden)


def _secondary(counts: np.ndarray, primary: np.ndarray, partitions: Sequence[_Sets]) -> np.ndarray:
    """The cells to withhold, besides ``primary``, so that no set of any partition has exactly
    one withheld value: rule 4, partition by partition, repeated until nothing is added."""
    hidden = primary.copy()
    while True:
        before = int(hidden.sum())
        for sets in partitions:
            hidden |= _one_more(counts, hidden, sets)
        if hidden.sum() == before:
            return hidden & ~primary


# --- the whole table -------------------------------------------------------------------------


def _require(table: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise KeyError(f"table has no column(s) {missing}")


def _require_one_total(sets: _Sets) -> None:
    """A set with two totals has no single sum to protect: refuse rather than guess."""
    if (pd.Series(sets.is_total.astype(int)).groupby(sets.ids).sum() > 1).any():
        raise ValueError(f"a {sets.name} has more than one {sets.total_name} row")


def _join_reasons(codes: dict[str, pd.Series], index: pd.Index) -> pd.Series:
    text = pd.Series("", index=index, dtype=object)
    for code in REASONS:
        text = text.where(~codes[code], text + ";" + code)
    text = text.str.removeprefix(";")
    return text.where(text != "", None).astype(object)


def apply_sdc(
    table: pd.DataFrame,
    group_cols: Sequence[str],
    *,
    numerator: str = "numerator",
    denominator: str | None = "denominator",
    derived: Sequence[str] = DERIVED_COLUMNS,
    total_label: str | None = None,
    label_col: str = "group_label",
    statistic: str = "statistic",
    threshold: int = SUPPRESSION_THRESHOLD,
    base: int = ROUNDING_BASE,
    nested: Sequence[Partition] = (),
    also_withhold: Mapping[str, pd.Series] | None = None,
) -> pd.DataFrame:
    """The table as partners may see it: counts suppressed or rounded, derived values withheld.

    ``group_cols`` name the sets for secondary suppression (e.g. ``["indicator_id",
    "period_start", "breakdown"]``); the row whose ``label_col`` equals ``total_label`` is its
    set's total. ``nested`` adds further partitions into sets, for tables whose rows add up
    in more than one way (rule 4; :class:`Partition` shows the call for 5 and 16 ethnic
    groups). ``also_withhold`` maps a count column to rows whose count is withheld like a
    small one (reason ``audit``), then protected by secondary suppression in turn.
    ``denominator=None`` for a table of counts only. Counts
    must be present, non-negative whole numbers (a ValueError otherwise), and each set of
    each partition has at most one total row. Returns a copy: the count columns rounded
    (nullable Int64, NA where withheld), the derived columns NA where withheld, plus
    ``suppressed`` and ``suppression_reason`` (see the module docstring). No unrounded count
    remains in the named count columns; other columns the caller leaves in the table (e.g.
    ``total_count``) are not touched.
    """
    count_cols = [c for c in (numerator, denominator) if c is not None]
    _require(table, [*group_cols, *count_cols, *([label_col] if total_label is not None else [])])
    for partition in nested:
        total_cols = [partition.total_col] if partition.total_col is not None else []
        _require(table, [*partition.key_cols, *total_cols])
    partitions = _partitions(table, group_cols, label_col, total_label, nested)
    for sets in partitions:
        _require_one_total(sets)

    out = table.copy()
    codes = {code: pd.Series(False, index=table.index) for code in REASONS}
    withheld = pd.Series(False, index=table.index)
    for col, derived_code in (
        (numerator, NUMERATOR_SUPPRESSED),
        (denominator, DENOMINATOR_SUPPRESSED),
    ):
        if col is None:
            continue
        counts = _as_counts(table[col], col, allow_na=False)
        asked = (also_withhold or {}).get(col, pd.Series(False, index=table.index))
        asked = asked.reindex(table.index, fill_value=False).astype(bool)
        small = suppress_counts(counts, threshold)
        primary = small | asked
        secondary = pd.Series(
            _secondary(counts.to_numpy(dtype=int), primary.to_numpy(), partitions),
            index=table.index,
        )
        hidden = primary | secondary
        out[col] = round_counts(counts, base).mask(hidden)
        codes[SMALL_COUNT] |= small
        codes[AUDIT] |= asked & ~small
        codes[SECONDARY] |= secondary
        codes[derived_code] = hidden
        withheld |= hidden

    if statistic in table.columns:
        # Only where the counts are shown: on a withheld row the code would say "under 10",
        # narrowing a secondary cell (never 1-7) to 8 or 9.
        small_dsr = table[statistic].eq(NO_DSR_SMALL_COUNT).fillna(False).astype(bool)
        codes[UNRELIABLE_RATE] = small_dsr & ~withheld
        withheld |= codes[UNRELIABLE_RATE]
    for col in derived:
        if col in out.columns and col not in count_cols:
            out[col] = out[col].mask(withheld)

    out["suppressed"] = pd.concat(codes, axis=1).any(axis=1)
    out["suppression_reason"] = _join_reasons(codes, table.index)
    return out


# --- the final gate --------------------------------------------------------------------------


def _rows(mask: pd.Series, limit: int = 5) -> str:
    labels = [str(i) for i in mask.index[mask.to_numpy()][:limit]]
    more = int(mask.sum()) - len(labels)
    return ", ".join(labels) + (f" and {more} more" if more > 0 else "")


def check_publishable(
    table: pd.DataFrame,
    group_cols: Sequence[str],
    *,
    numerator: str = "numerator",
    denominator: str | None = "denominator",
    derived: Sequence[str] = DERIVED_COLUMNS,
    total_label: str | None = None,
    label_col: str = "group_label",
    threshold: int = SUPPRESSION_THRESHOLD,
    base: int = ROUNDING_BASE,
    nested: Sequence[Partition] = (),
) -> list[str]:
    """Every way ``table`` breaks the disclosure rules, as messages naming rows (by index).

    An empty list means it may be published. Checked: a shown count of 1..``threshold``; a
    shown count that is not a non-negative multiple of ``base``; a derived value shown where
    the numerator or denominator is withheld (NA); a set of any partition (``group_cols`` and
    ``nested``, as in :func:`apply_sdc`) with exactly one withheld count, which
    total − Σ(others) would reveal; and the reason columns: each withheld count has
    ``small_count``, ``audit`` or ``secondary``, ``suppressed`` agrees with
    ``suppression_reason``, and only known codes are used. Any NA count is taken as withheld.
    """
    count_cols = [c for c in (numerator, denominator) if c is not None]
    needed = [*group_cols, *count_cols, "suppressed", "suppression_reason"]
    needed += [label_col] if total_label is not None else []
    needed += [c for partition in nested for c in partition.key_cols]
    missing = [c for c in dict.fromkeys(needed) if c not in table.columns]
    if missing:
        return [f"missing column(s) {missing}"]

    problems: list[str] = []
    partitions = _partitions(table, group_cols, label_col, None, nested)
    reason = (
        table["suppression_reason"].astype(object).where(table["suppression_reason"].notna(), None)
    )
    reason_codes = reason.map(lambda r: set(r.split(";")) if isinstance(r, str) and r else set())
    has_reason = reason_codes.map(bool)
    count_reason = reason_codes.map(lambda c: bool(c & {SMALL_COUNT, AUDIT, SECONDARY}))
    withheld = pd.Series(False, index=table.index)

    for col in count_cols:
        values = pd.to_numeric(table[col], errors="coerce")
        hidden = values.isna()
        withheld |= hidden
        shown = values[~hidden]
        small = shown.between(1, threshold)
        if small.any():
            problems.append(f"{col}: count of 1–{threshold} shown in row(s) {_rows(small)}")
        unrounded = (shown < 0) | (shown % base != 0)
        if unrounded.any():
            problems.append(f"{col}: count not a multiple of {base} in row(s) {_rows(unrounded)}")
        for sets in partitions:
            lone = _recoverable_sets(sets, hidden.to_numpy()) & hidden.to_numpy()
            recoverable = pd.Series(lone, index=table.index)
            if recoverable.any():
                problems.append(
                    f"{col}: the only withheld value of its {sets.name}, recoverable as "
                    f"total − Σ(others), in row(s) {_rows(recoverable)}"
                )
        unexplained = hidden & ~count_reason
        if unexplained.any():
            problems.append(
                f"{col}: withheld without a small_count/audit/secondary reason in row(s) "
                f"{_rows(unexplained)}"
            )

    for col in derived:
        if col in table.columns and col not in count_cols:
            leaked = withheld & table[col].notna()
            if leaked.any():
                problems.append(
                    f"{col}: shown although its numerator or denominator is withheld, "
                    f"in row(s) {_rows(leaked)}"
                )

    flagged = table["suppressed"].fillna(False).astype(bool)
    if (flagged != has_reason).any():
        problems.append(
            f"suppressed and suppression_reason disagree in row(s) {_rows(flagged != has_reason)}"
        )
    if (withheld & ~flagged).any():
        problems.append(
            f"withheld count not marked suppressed in row(s) {_rows(withheld & ~flagged)}"
        )
    unknown = reason_codes.map(lambda c: bool(c - set(REASONS)))
    if unknown.any():
        problems.append(f"unknown reason code in row(s) {_rows(unknown)}")
    return problems
