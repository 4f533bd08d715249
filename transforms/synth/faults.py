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


def _replace(
    columns: dict[str, pa.Array], name: str, rows: np.ndarray, values: pa.Array | list
) -> None:
    """Put `values` at the (ascending) `rows` of a column."""
    mask = np.zeros(len(columns[name]), bool)
    mask[rows] = True
    columns[name] = pc.replace_with_mask(
        columns[name], pa.array(mask), pa.array(values, pa.string())
    )


def _per_column(
    rng: np.random.Generator,
    columns: dict[str, pa.Array],
    rows: np.ndarray,
    names: tuple[str, ...],
    values_for: Callable[[str, int], list],
) -> None:
    """Spread rows over candidate columns, one vectorised replacement per column."""
    which = rng.integers(0, len(names), len(rows))
    for k, name in enumerate(names):
        chosen = rows[which == k]
        if len(chosen):
            _replace(columns, name, chosen, values_for(name, len(chosen)))


def _pick(rng: np.random.Generator, options: tuple[str, ...], n: int) -> list[str]:
    return [options[i] for i in rng.integers(0, len(options), n)]


def _invalid_date(
    rng: np.random.Generator,
    columns: dict[str, pa.Array],
    rows: np.ndarray,
    spec: SourceSpec,
    month: Month,
) -> None:
    year = month.label[:4]
    iso = (f"{year}-02-30", f"{year}-02-31", f"{year}-04-31", f"{year}-13-01", f"{year}-00-10")
    options = tuple("/".join(reversed(d.split("-"))) for d in iso) if spec.day_first else iso
    _replace(columns, spec.event_date, rows, _pick(rng, (*options, "not a date"), len(rows)))


def _date_out_of_range(
    rng: np.random.Generator,
    columns: dict[str, pa.Array],
    rows: np.ndarray,
    spec: SourceSpec,
    month: Month,
) -> None:
    shift = rng.integers(200, 900, len(rows))
    later = rng.random(len(rows)) < 0.5
    dates = np.where(later, month.last + shift, month.first - shift)
    _replace(columns, spec.event_date, rows, format_dates(dates, spec))


def _invalid_age(
    rng: np.random.Generator,
    columns: dict[str, pa.Array],
    rows: np.ndarray,
    spec: SourceSpec,
    month: Month,
) -> None:
    _replace(columns, "age", rows, _pick(rng, _INVALID_AGES, len(rows)))


def _invalid_nhs_number(
    rng: np.random.Generator,
    columns: dict[str, pa.Array],
    rows: np.ndarray,
    spec: SourceSpec,
    month: Month,
) -> None:
    """Wrong check digit (10 digits), a digit short, or a digit too many."""
    number = pc.cast(columns["nhs_number"].take(pa.array(rows)), pa.int64()).to_numpy()
    variant = rng.integers(0, 3, len(rows))
    wrong_check = number // 10 * 10 + (number % 10 + rng.integers(1, 10, len(rows))) % 10
    bad = np.select(
        [variant == 0, variant == 1],
        [wrong_check, number // 10],
        number * 10 + rng.integers(0, 10, len(rows)),
    )
    _replace(columns, "nhs_number", rows, pc.cast(pa.array(bad), pa.string()))


def _duplicate_id(
    rng: np.random.Generator,
    columns: dict[str, pa.Array],
    rows: np.ndarray,
    spec: SourceSpec,
    month: Month,
    clean: np.ndarray,
) -> None:
    """Repeat the identifier of a random clean row that comes earlier in the file."""
    earlier = np.searchsorted(clean, rows)
    source = clean[(rng.random(len(rows)) * earlier).astype(np.int64)]
    _replace(columns, spec.id_column, rows, columns[spec.id_column].take(pa.array(source)))


def _invalid_code(
    rng: np.random.Generator,
    columns: dict[str, pa.Array],
    rows: np.ndarray,
    spec: SourceSpec,
    month: Month,
) -> None:
    _per_column(rng, columns, rows, spec.coded, lambda name, n: _pick(rng, invalid_codes(name), n))


def _missing_value(
    rng: np.random.Generator,
    columns: dict[str, pa.Array],
    rows: np.ndarray,
    spec: SourceSpec,
    month: Month,
) -> None:
    _per_column(rng, columns, rows, spec.blankable(), lambda name, n: [None] * n)


_INJECTORS = {
    "invalid_date": _invalid_date,
    "date_out_of_range": _date_out_of_range,
    "invalid_age": _invalid_age,
    "invalid_nhs_number": _invalid_nhs_number,
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
        if not len(rows):
            continue
        if kind == "malformed_line":
            extra_field = dict(
                zip(rows.tolist(), (rng.random(len(rows)) < 0.5).tolist(), strict=True)
            )
        elif kind == "duplicate_id":
            _duplicate_id(rng, columns, rows, spec, month, clean)
        else:
            _INJECTORS[kind](rng, columns, rows, spec, month)
    return Faults(kinds, reason, extra_field)
