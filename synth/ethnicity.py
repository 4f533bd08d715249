"""How a person's true ethnicity ends up (or does not) in a source's `ethnic_category` field.

Recorded known codes always equal the true code; what varies is completeness (per source,
improving over time), the spelling of the code (case, padding, 'A - British' descriptions,
en dashes in Windows-1252 files) and a trickle of invalid codes that the pipeline must count
rather than reject.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pyarrow as pa

from .reference import LETTERS, load

KNOWN, NOT_STATED, NOT_KNOWN, INVALID = range(4)
KIND_LABELS = ("known", "not_stated", "not_known", "invalid")

_STYLES = 5  # upper, lower, padded, 'A - British', 'A – British'
_STYLE_P = {"ascii": (0.82, 0.05, 0.05, 0.08, 0.0), "cp1252": (0.80, 0.05, 0.05, 0.06, 0.04)}
_NOT_STATED = ("Z", "z", " Z ")
_NOT_KNOWN = ("99", " 99 ")
_INVALID = ("Q", "X1", "White", "U", "AA")
_NOT_STATED_SHARE = 0.4  # of unknown rows; the rest split between '99' and blank
_BLANK_SHARE = 0.35


@cache
def _vocabulary() -> pa.Array:
    words = []
    for letter, description in zip(LETTERS, load().short_description, strict=True):
        words += [
            letter,
            letter.lower(),
            f" {letter} ",
            f"{letter} - {description}",
            f"{letter} \u2013 {description}",
        ]
    return pa.array(words + list(_NOT_STATED + _NOT_KNOWN + _INVALID))


_FIRST_NOT_STATED = len(LETTERS) * _STYLES
_FIRST_NOT_KNOWN = _FIRST_NOT_STATED + len(_NOT_STATED)
_FIRST_INVALID = _FIRST_NOT_KNOWN + len(_NOT_KNOWN)


def _unknown_kind(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split unknown rows into Z / 99 / blank from a uniform draw."""
    blank = v >= 1 - _BLANK_SHARE
    return np.where(v < _NOT_STATED_SHARE, NOT_STATED, NOT_KNOWN), blank


def _vocab_index(
    kind: np.ndarray,
    letter: np.ndarray,
    style_u: np.ndarray,
    charset: str,
    rng: np.random.Generator,
) -> np.ndarray:
    style = np.searchsorted(np.cumsum(_STYLE_P[charset]), style_u, side="right").clip(
        0, _STYLES - 1
    )
    variant = rng.integers(0, 3, len(kind))
    return np.select(
        [kind == KNOWN, kind == NOT_STATED, kind == NOT_KNOWN],
        [
            letter * _STYLES + style,
            _FIRST_NOT_STATED + variant % len(_NOT_STATED),
            _FIRST_NOT_KNOWN + variant % len(_NOT_KNOWN),
        ],
        _FIRST_INVALID + variant % len(_INVALID),
    )


def _strings(index: np.ndarray, blank: np.ndarray) -> pa.Array:
    return _vocabulary().take(pa.array(index, mask=blank))


def _add_invalid(
    rng: np.random.Generator, kind: np.ndarray, blank: np.ndarray, rate: float
) -> None:
    invalid = rng.random(len(kind)) < rate
    kind[invalid] = INVALID
    blank[invalid] = False


def recorded(
    rng: np.random.Generator,
    letter: np.ndarray,
    known_share: float,
    charset: str,
    invalid_rate: float,
) -> tuple[pa.Array, np.ndarray]:
    """Per-row recording for event sources: returns the field and each row's kind."""
    n = len(letter)
    u = rng.random(n)
    kind, blank = _unknown_kind(rng.random(n))
    kind[u < known_share] = KNOWN
    blank &= kind != KNOWN
    _add_invalid(rng, kind, blank, invalid_rate)
    return _strings(_vocab_index(kind, letter, rng.random(n), charset, rng), blank), kind


def register_recorded(
    rng: np.random.Generator,
    letter: np.ndarray,
    known_u: np.ndarray,
    style_v: np.ndarray,
    snomed: np.ndarray,
    known_share: float,
    snomed_share: float,
    invalid_rate: float,
) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """GP register recording from persistent per-person draws, so a person's record only
    improves over time (known once `known_u` falls under the rising completeness) and keeps
    its spelling; a share of known records carry a SNOMED concept instead of a letter."""
    kind, blank = _unknown_kind(style_v)
    known = known_u < known_share
    kind[known] = KNOWN
    blank &= ~known
    use_snomed = known & (style_v < snomed_share)
    blank |= use_snomed
    _add_invalid(rng, kind, blank, invalid_rate)
    use_snomed &= kind == KNOWN
    letter_style = (style_v - snomed_share) / (1 - snomed_share)
    category = _strings(_vocab_index(kind, letter, letter_style, "ascii", rng), blank)
    return category, pa.array(snomed, mask=~use_snomed), kind


def tally(kind: np.ndarray) -> dict[str, int]:
    """Truth counts over the rows expected to load."""
    counts = np.bincount(kind, minlength=len(KIND_LABELS))
    return {"records": int(len(kind))} | {
        k: int(c) for k, c in zip(KIND_LABELS, counts, strict=True)
    }
