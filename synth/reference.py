"""Reference tables the generator draws from, loaded once from `transforms/core/reference/`.

The generator must agree with the pipeline on codes, so it reads the same packaged
reference files instead of restating them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

import numpy as np

# the pipeline's own reference data, shipped in its package
REFERENCE_DIR = Path(str(files("transforms.core") / "reference"))

#: The 16 known NHS ethnic category letters, in Grouping_16 order (index 0 = group 1).
LETTERS = tuple("ABCDEFGHJKLMNPRS")
GROUPS = (
    "White",
    "Mixed",
    "Asian or Asian British",
    "Black or Black British",
    "Other ethnic group",
)


@dataclass(frozen=True)
class Reference:
    """Everything the generator needs from the reference files, as arrays indexed by letter."""

    census_share: np.ndarray  # (16,) Wigan Census 2021 share per letter
    group_of: np.ndarray  # (16,) index into GROUPS
    short_description: tuple[str, ...]  # (16,) e.g. "British" for A
    snomed_by_letter: tuple[np.ndarray, ...]  # concept ids whose Grouping_16 is the letter
    acsc_codes: tuple[str, ...]  # 4-character ICD-10 codes ('J441', 'I10X')


def _rows(name: str) -> list[dict[str, str]]:
    with open(REFERENCE_DIR / name, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _census_share() -> np.ndarray:
    counts = np.zeros(len(LETTERS))
    for row in _rows("wigan_census2021_ethnicity.csv"):
        if row["level"] == "detailed":
            counts[LETTERS.index(row["nhs_ethnic_category_2001_mapped"])] += int(row["count"])
    return counts / counts.sum()


def _expand_icd10(token: str) -> list[str]:
    """Turn a codelist token into concrete 4-character codes.

    Ranges ('E100-E108') are expanded and 3-character prefixes get every 4th digit,
    so that any code we emit is matched by the pipeline's prefix rules.
    """
    if "-" in token:
        low, high = token.split("-")
        return [f"{low[:3]}{digit}" for digit in range(int(low[3]), int(high[3]) + 1)]
    if len(token) == 3:
        return [f"{token}{digit}" for digit in range(10)]
    return [token]


def _acsc_codes() -> tuple[str, ...]:
    codes = [
        code
        for row in _rows("acsc_icd10_codes.csv")
        for token in row["icd10_codes"].split(";")
        for code in _expand_icd10(token.strip())
    ]
    return tuple(sorted(set(codes)))


@cache
def load() -> Reference:
    """Load and cache the reference tables (they never change within a process)."""
    codes = {row["code"]: row for row in _rows("ethnic_category_codes.csv")}
    group_names = {"Other Ethnic Groups": "Other ethnic group"}
    snomed = [[] for _ in LETTERS]
    for row in _rows("ethnicity_snomed_codelist.csv"):
        snomed[int(row["Grouping_16"]) - 1].append(int(row["snomedcode"]))
    return Reference(
        census_share=_census_share(),
        group_of=np.array(
            [
                GROUPS.index(group_names.get(codes[c]["group_5"], codes[c]["group_5"]))
                for c in LETTERS
            ]
        ),
        short_description=tuple(codes[c]["description"].split(" - ", 1)[1] for c in LETTERS),
        snomed_by_letter=tuple(np.array(sorted(ids), dtype=np.int64) for ids in snomed),
        acsc_codes=_acsc_codes(),
    )
