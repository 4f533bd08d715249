"""Small vectorised builders shared by every source: categorical draws, identifiers and
the `Batch` a builder hands to the writer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# A column before rendering: numpy ints/dates/bools or an arrow string/bool array (nulls allowed).
Column = np.ndarray | pa.Array


def draw(rng: np.random.Generator, weights: Mapping[str, float], n: int) -> pa.Array:
    """n values drawn from a {value: weight} table, as a string array."""
    values = list(weights)
    p = np.array([weights[v] for v in values], dtype=float)
    return take(values, rng.choice(len(values), size=n, p=p / p.sum()))


def take(vocabulary: Sequence[str], index: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Strings by index; masked positions become null (written as an empty field)."""
    return pa.array(vocabulary, pa.string()).take(pa.array(index, type=pa.int64(), mask=mask))


def identifiers(prefix: str, numbers: np.ndarray) -> pa.Array:
    """'APT000000123'-style identifiers: fixed width keeps them sortable as text."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), 9, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


class Counters:
    """Per-prefix running numbers so identifiers are never reused across months."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def take(self, prefix: str, n: int) -> pa.Array:
        first = self._next.get(prefix, 1)
        self._next[prefix] = first + n
        return identifiers(prefix, np.arange(first, first + n))


def icd10(codes: Sequence[str], index: np.ndarray, rng: np.random.Generator) -> pa.Array:
    """ICD-10 codes written half as 'J44.1' and half as 'J441' (filler 'X' dropped when dotted)."""
    dotted = [f"{c[:3]}.{c[3]}" if len(c) == 4 and c[3] != "X" else c[:3] for c in codes]
    both = [v for pair in zip(codes, dotted, strict=True) for v in pair]
    return take(both, index * 2 + rng.integers(0, 2, len(index)))


def choose_by(
    rng: np.random.Generator, tables: Sequence[Mapping[str, float]], which: np.ndarray
) -> tuple[list[str], np.ndarray]:
    """Draw each row from the table its `which` selects; returns (vocabulary, index).

    Loops over tables, not rows: one vectorised draw per table.
    """
    vocabulary: list[str] = []
    index = np.zeros(len(which), np.int64)
    for k, table in enumerate(tables):
        rows = np.flatnonzero(which == k)
        p = np.array(list(table.values()), dtype=float)
        index[rows] = len(vocabulary) + rng.choice(len(p), size=len(rows), p=p / p.sum())
        vocabulary += list(table)
    return vocabulary, index


@dataclass
class Batch:
    """One source-month before writing: typed columns in contract order, plus the
    ethnicity kind of each row for the truth tally."""

    columns: dict[str, Column]
    ethnicity_kind: np.ndarray

    def __len__(self) -> int:
        return len(self.ethnicity_kind)


class ColumnStore:
    """Mixin for dataclasses of equal-length arrays (one row per person or staff member)."""

    def append(self, other: ColumnStore) -> None:
        for f in fields(self):
            setattr(self, f.name, np.concatenate([getattr(self, f.name), getattr(other, f.name)]))

    def keep(self, rows: np.ndarray) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name)[rows])
