"""Row faults: exactly one reason per faulty row, chosen among those the source allows.

Faults are applied to the rendered text, so each is exactly what the pipeline will see.
Row 0 is never faulty, which guarantees every duplicate_id row has a clean earlier row
whose identifier it repeats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .dates import Month
from .sources import SourceSpec, invalid_codes
from .writer import format_dates

CLEAN = -1
_INVALID_AGES = ("-1", "-4", "121", "130", "150", "999")


@dataclass
class Faults:
    """Where faults went: `reason[i]` indexes `kinds`, CLEAN for clean rows."""

    kinds: tuple[str, ...]
    reason: np.ndarray
    extra_field: dict[int, bool]  # malformed rows: True = extra field, False = missing field

    def rows(self) -> list[list]:
        """[[1-based row number, reason], ...] sorted by row."""
        return [
            [int(r) + 1, self.kinds[self.reason[r]]] for r in np.flatnonzero(self.reason != CLEAN)
        ]

    def counts(self) -> dict[str, int]:
        counts = np.bincount(self.reason[self.reason != CLEAN], minlength=len(self.kinds))
        return {kind: int(c) for kind, c in zip(self.kinds, counts, strict=True) if c}


@dataclass
class _Target:
    """The rows given one fault kind, and what an injector needs to corrupt them."""

    rng: np.random.Generator
    columns: dict[str, pa.Array]
    rows: np.ndarray  # ascending
    spec: SourceSpec
    month: Month
    clean: np.ndarray  # all clean rows, ascending

    def pick(self, options: tuple[str, ...], n: int | None = None) -> list[str]:
        return [options[i] for i in self.rng.integers(0, len(options), n or len(self.rows))]

    def replace(self, name: str, values: pa.Array | list, rows: np.ndarray | None = None) -> None:
        """Put `values` at `rows` (default: all target rows) of a column."""
        mask = np.zeros(len(self.columns[name]), bool)
        mask[self.rows if rows is None else rows] = True
        replacement = pa.array(values, pa.string())
        self.columns[name] = pc.replace_with_mask(self.columns[name], pa.array(mask), replacement)

    def spread(self, names: tuple[str, ...], values_for: Callable[[str, int], list]) -> None:
        """Spread the rows over candidate columns, one vectorised replacement per column."""
        which = self.rng.integers(0, len(names), len(self.rows))
        for k, name in enumerate(names):
            chosen = self.rows[which == k]
            if len(chosen):
                self.replace(name, values_for(name, len(chosen)), chosen)


def _invalid_date(t: _Target) -> None:
    year = t.month.label[:4]
    iso = (f"{year}-02-30", f"{year}-02-31", f"{year}-04-31", f"{year}-13-01", f"{year}-00-10")
    options = tuple("/".join(reversed(d.split("-"))) for d in iso) if t.spec.day_first else iso
    t.replace(t.spec.event_date, t.pick((*options, "not a date")))


def _date_out_of_range(t: _Target) -> None:
    shift = t.rng.integers(200, 900, len(t.rows))
    later = t.rng.random(len(t.rows)) < 0.5
    dates = np.where(later, t.month.last + shift, t.month.first - shift)
    t.replace(t.spec.event_date, format_dates(dates, t.spec))


def _invalid_age(t: _Target) -> None:
    t.replace("age", t.pick(_INVALID_AGES))


def _invalid_nhs_number(t: _Target) -> None:
    """Wrong check digit (10 digits), a digit short, or a digit too many."""
    number = pc.cast(t.columns["nhs_number"].take(pa.array(t.rows)), pa.int64()).to_numpy()
    digit = t.rng.integers(0, 10, len(number))
    wrong_check = number // 10 * 10 + (number % 10 + 1 + digit % 9) % 10
    variant = t.rng.integers(0, 3, len(number))
    bad = np.select([variant == 0, variant == 1], [wrong_check, number // 10], number * 10 + digit)
    t.replace("nhs_number", pc.cast(pa.array(bad), pa.string()))


def _duplicate_id(t: _Target) -> None:
    """Repeat the identifier of a random clean row that comes earlier in the file."""
    earlier = np.searchsorted(t.clean, t.rows)  # >= 1: row 0 is always clean
    source = t.clean[(t.rng.random(len(t.rows)) * earlier).astype(np.int64)]
    t.replace(t.spec.id_column, t.columns[t.spec.id_column].take(pa.array(source)))


def _invalid_code(t: _Target) -> None:
    t.spread(t.spec.coded, lambda name, n: t.pick(invalid_codes(name), n))


def _missing_value(t: _Target) -> None:
    t.spread(t.spec.blankable(), lambda name, n: [None] * n)


_INJECTORS: dict[str, Callable[[_Target], None]] = {
    "invalid_date": _invalid_date,
    "date_out_of_range": _date_out_of_range,
    "invalid_age": _invalid_age,
    "invalid_nhs_number": _invalid_nhs_number,
    "duplicate_id": _duplicate_id,
    "invalid_code": _invalid_code,
    "missing_value": _missing_value,
}


def inject(
    rng: np.random.Generator,
    columns: dict[str, pa.Array],
    spec: SourceSpec,
    month: Month,
    rate: float,
) -> Faults:
    """Choose faulty rows and corrupt `columns` in place; malformed lines are left to the writer."""
    kinds = spec.fault_kinds()
    n = len(next(iter(columns.values())))
    faulty = rng.random(n) < rate
    faulty[:1] = False
    reason = np.full(n, CLEAN, np.int64)
    reason[faulty] = rng.integers(0, len(kinds), int(faulty.sum()))
    clean = np.flatnonzero(reason == CLEAN)
    extra_field: dict[int, bool] = {}
    for k, kind in enumerate(kinds):
        rows = np.flatnonzero(reason == k)
        if kind == "malformed_line":
            extra_field = dict(
                zip(rows.tolist(), (rng.random(len(rows)) < 0.5).tolist(), strict=True)
            )
        elif len(rows):
            _INJECTORS[kind](_Target(rng, columns, rows, spec, month, clean))
    return Faults(kinds, reason, extra_field)
