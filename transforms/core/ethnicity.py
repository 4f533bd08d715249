"""Ethnicity codes as sources send them, normalised to the NHS Data Dictionary.

NHS ETHNIC CATEGORY is a letter A–S (16 categories), ``Z`` (asked and declined: valid but not
a known ethnicity) or the default ``99`` (not known). Extracts also send lower case, padding,
``"A - British"`` style descriptions (with a hyphen or, in Windows-1252 files, an en dash), and
GP records carry a SNOMED CT concept instead. Each value becomes a code and a status:
``known`` (A–S), ``not_stated`` (Z), ``not_known`` (99 or blank) or ``invalid`` (anything
else, which counts as not known in rates but is reported as its own measure of data quality).
"""

from __future__ import annotations

import csv
from functools import cache

import pyarrow as pa
import pyarrow.compute as pc

from transforms.core.reference_data import reference_file

KNOWN_CODES = tuple("ABCDEFGHJKLMNPRS")
NOT_STATED_CODE, NOT_KNOWN_CODE = "Z", "99"
"""The codes of "asked and declined" and "not known" (NHS ETHNIC CATEGORY)."""
NOT_STATED_LABEL, NOT_KNOWN_LABEL = "Not stated", "Not known"
"""Their group labels, in both breakdowns (5 and 16 groups) and in ``core.dim_ethnicity``."""
STATUSES = ("known", "not_stated", "not_known", "invalid")
WRES_GROUPS = ("White", "BME", "Unknown")
WHITE_CODES = ("A", "B", "C")
"""The WRES groups (NHS England's Workforce Race Equality Standard): White is White British,
White Irish and any other White background (the 5-group White); BME every other known code;
Unknown not stated, not known, blank and invalid codes."""
GROUP_5_LABELS = {
    "White": "White",
    "Mixed": "Mixed",
    "Asian or Asian British": "Asian or Asian British",
    "Black or Black British": "Black or Black British",
    "Other Ethnic Groups": "Other ethnic group",
    "Not stated": NOT_STATED_LABEL,
    "Not known": NOT_KNOWN_LABEL,
}


def reference_rows(name: str) -> list[dict[str, str]]:
    with reference_file(name).open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@cache
def snomed_to_code() -> dict[str, str]:
    """SNOMED CT concept id -> NHS letter, from the OpenSAFELY codelist (see reference/README)."""
    return {
        row["snomedcode"]: KNOWN_CODES[int(row["Grouping_16"]) - 1]
        for row in reference_rows("ethnicity_snomed_codelist.csv")
    }


def wres_group_of(code: str | None) -> str:
    """White, BME or Unknown for one NHS ethnic code."""
    white, bme, unknown = WRES_GROUPS
    return white if code in WHITE_CODES else bme if code in KNOWN_CODES else unknown


def dimension_rows() -> list[dict[str, object]]:
    """Rows of ``core.dim_ethnicity``: each code with its 16- and 5-group labels."""
    rows = []
    for row in reference_rows("ethnic_category_codes.csv"):
        if row["code"] not in (*KNOWN_CODES, NOT_STATED_CODE, NOT_KNOWN_CODE):
            continue
        known = row["code"] in KNOWN_CODES
        rows.append(
            {
                "ethnic_code": row["code"],
                "description": row["description"],
                "group_16": row["group_16_label"],
                "group_5": GROUP_5_LABELS[row["group_5"]],
                "group_16_order": int(row["group_16_index"])
                if known
                else (17 if row["code"] == NOT_STATED_CODE else 18),
                "is_known": known,
                "wres_group": wres_group_of(row["code"]),
            }
        )
    return rows


def normalise(values: pa.Array) -> pa.Array:
    """The code part of each value, upper case: ``" a - British"`` -> ``"A"``; blank -> null."""
    text = pc.utf8_upper(pc.utf8_trim_whitespace(values.cast(pa.string())))
    code = pc.utf8_trim_whitespace(pc.replace_substring_regex(text, "\\s*[-\u2013\u2014:].*$", ""))
    return pc.if_else(pc.equal(code, ""), pa.scalar(None, pa.string()), code)


def classify(values: pa.Array, snomed: pa.Array | None = None) -> tuple[pa.Array, pa.Array]:
    """``(ethnic_code, ethnic_status)`` for raw ethnic_category values.

    Where a GP record sends no category but a SNOMED concept, the concept is mapped through
    the codelist; a concept outside the list is not known (the list has no "declined" codes).
    """
    code = normalise(values)
    if snomed is not None:
        mapping = snomed_to_code()
        concepts = pa.array(list(mapping), pa.string())
        mapped = pa.array(list(mapping.values()), pa.string()).take(
            pc.index_in(pc.utf8_trim_whitespace(snomed.cast(pa.string())), value_set=concepts)
        )
        code = pc.coalesce(code, mapped)
    status = pc.case_when(
        pc.make_struct(
            pc.is_in(code, value_set=pa.array(KNOWN_CODES)),
            pc.equal(code, NOT_STATED_CODE),
            pc.or_kleene(pc.is_null(code), pc.equal(code, NOT_KNOWN_CODE)),
        ),
        "known",
        "not_stated",
        "not_known",
        "invalid",
    )
    final = pc.if_else(
        pc.is_in(status, value_set=pa.array(["known", "not_stated"])), code, NOT_KNOWN_CODE
    )
    return final, status
