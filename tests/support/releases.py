"""Hand-made partner releases for the release gate's tests, written as the release writer
writes them (Parquet by pyarrow in the declared schemas, manifest.json, SHA256SUMS), on any
fsspec filesystem; and a publish made to differ from the warehouse (:func:`differ_next_time`).

The clean release holds ACC02 (a proportion: All persons, 5 and 16 groups) and DQ01 (a
source's organisations) for two months, with ethnicity_completeness restating DQ01. Every
count is a multiple of 5 and at least 20, every set adds up exactly, and the withheld counts
come in pairs within their sets (16-groups D and E, organisations P1 and P2, in February),
so the attacking audit finds nothing. Statistics are those of the published counts.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from datetime import date

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from transforms.core import statistics as st
from transforms.publish import contents as release_contents
from transforms.publish.contents import ethnic_groups_rows
from transforms.publish.tables import ETHNIC_GROUPS, RELEASE_TABLES

RELEASE = "2026-10"
MONTHS = (date(2025, 1, 1), date(2025, 2, 1))
MONTH_ENDS = {date(2025, 1, 1): date(2025, 1, 31), date(2025, 2, 1): date(2025, 2, 28)}
SIXTEEN = {  # 16-group code: (numerator, denominator)
    "A": (200, 1000), "B": (40, 200), "C": (60, 300), "D": (25, 100), "E": (20, 100),
    "F": (30, 120), "G": (25, 100), "H": (50, 250), "J": (45, 200), "K": (30, 150),
    "L": (25, 100), "M": (30, 150), "N": (35, 150), "P": (20, 100), "R": (20, 100),
    "S": (25, 120), "Z": (30, 150), "99": (40, 200),
}  # fmt: skip
ORGANISATIONS = {"P1": (180, 200), "P2": (120, 150), "P3": (90, 100)}  # (known, records)
WITHHELD_IN_FEBRUARY = {"ethnicity_16": {"D", "E"}, "source_organisation": {"gp:P1", "gp:P2"}}
STATISTICS = ("value", "lower_95", "upper_95", "lower_998", "upper_998")
CSV_COLUMNS = (
    "Indicator ID", "Indicator Name", "Area Code", "Area Name", "Category Type", "Category",
    "Time period", "Value", "Lower CI 95.0 limit", "Upper CI 95.0 limit",
    "Lower CI 99.8 limit", "Upper CI 99.8 limit", "Count", "Denominator", "Value note",
)  # fmt: skip


def proportion(numerator: int | None, denominator: int | None) -> dict:
    """A proportion's value and Wilson limits from the published counts (null if withheld)."""
    if numerator is None or denominator is None:
        return dict.fromkeys(STATISTICS)
    n, d = np.array([float(numerator)]), np.array([float(denominator)])
    out = {"value": float((n / d * 100)[0])}
    for level, suffix in ((0.95, "95"), (0.998, "998")):
        low, high = st.wilson_limits(n, d, level)
        out[f"lower_{suffix}"], out[f"upper_{suffix}"] = float(low[0] * 100), float(high[0] * 100)
    return out


def value_row(
    indicator: str, month: date, breakdown: str, code: str, label: str, counts: tuple[int, int]
) -> dict:
    """One indicator_values row as partners see it; withheld in February where chosen."""
    numerator, denominator = counts
    withheld = month == MONTHS[1] and code in WITHHELD_IN_FEBRUARY.get(breakdown, ())
    if withheld:
        numerator = None
    row = dict.fromkeys(RELEASE_TABLES["indicator_values"].column_names)
    return row | {
        "indicator_id": indicator,
        "indicator_title": f"{indicator} title",
        "measure": "proportion",
        "period_type": "month",
        "period_start": month,
        "period_end": MONTH_ENDS[month],
        "breakdown": breakdown,
        "group_code": code,
        "group_label": label,
        "numerator": numerator,
        "denominator": denominator,
        **proportion(numerator, denominator),
        "unit": "%",
        "suppressed": withheld,
        "suppression_reason": "withheld" if withheld else None,
        "reference_suppressed": False,
        "method": "Wilson score confidence limits",
    }


def acc02_rows(groups: list[dict]) -> list[dict]:
    parents = {g["group_code"]: g["parent_group_code"] for g in groups}
    labels = {(g["breakdown"], g["group_code"]): g["group_label"] for g in groups}
    five: dict[str, tuple[int, int]] = {}
    for code, (n, d) in SIXTEEN.items():
        n5, d5 = five.get(parents[code], (0, 0))
        five[parents[code]] = (n5 + n, d5 + d)
    everyone = tuple(sum(c[i] for c in five.values()) for i in (0, 1))
    rows = []
    for month in MONTHS:
        rows.append(value_row("ACC02", month, "all", "all", "All persons", everyone))
        for breakdown, counts in (("ethnicity_5", five), ("ethnicity_16", SIXTEEN)):
            rows += [
                value_row("ACC02", month, breakdown, code, labels[(breakdown, code)], pair)
                for code, pair in sorted(counts.items())
            ]
    return rows


def dq01_rows() -> list[dict]:
    total = tuple(sum(c[i] for c in ORGANISATIONS.values()) for i in (0, 1))
    rows = []
    for month in MONTHS:
        rows.append(value_row("DQ01", month, "source_organisation", "gp:all", "gp: all", total))
        rows += [
            value_row("DQ01", month, "source_organisation", f"gp:{org}", f"gp: {org}", counts)
            for org, counts in ORGANISATIONS.items()
        ]
    return rows


def completeness_row(value: dict) -> dict:
    source, organisation = value["group_code"].split(":")
    return {
        "source": source,
        "organisation": "ALL" if organisation == "all" else organisation,
        "month": value["period_start"],
        "basis": "recorded",
        "records": value["denominator"],
        "known": value["numerator"],
        "pct_known": value["value"],
        "lower_95": value["lower_95"],
        "upper_95": value["upper_95"],
        "suppressed": value["suppressed"],
        "suppression_reason": value["suppression_reason"],
    }


def indicator_row(indicator: str, theme: int) -> dict:
    return dict.fromkeys(RELEASE_TABLES["indicators"].column_names) | {
        "indicator_id": indicator,
        "title": f"{indicator} title",
        "theme": theme,
        "definition": f"{indicator}, in words",
        "measures": "proportion",
        "multiplier": 100,
    }


WRES4_COUNTS = {  # organisation: {group: (accessed training, headcount)}
    "O1": {"White": (100, 200), "BME": (20, 50)},
    "O2": {"White": (60, 100), "BME": (30, 60)},
    "ALL": {"White": (160, 300), "BME": (50, 110)},
}


def wres_rows() -> list[dict]:
    """WRES4 for two organisations and the partnership: each group's share, then the ratio."""
    base = dict.fromkeys(RELEASE_TABLES["wres"].column_names) | {
        "indicator_id": "WRES4",
        "period_end": date(2025, 3, 31),
        "population": "staff",
        "suppressed": False,
    }
    rows = []
    for organisation, groups in WRES4_COUNTS.items():
        shares = {}
        for group, (accessed, staff) in groups.items():
            shares[group] = 100 * accessed / staff
            limits = st.wilson_limits(np.array([accessed]), np.array([staff]), 0.95)
            rows.append(
                base
                | {
                    "organisation_code": organisation,
                    "measure": "percentage",
                    "group_label": group,
                    "value": shares[group],
                    "lower_95": float(limits[0][0]) * 100,
                    "upper_95": float(limits[1][0]) * 100,
                    "numerator": accessed,
                    "denominator": staff,
                }
            )
        rows.append(
            base
            | {
                "organisation_code": organisation,
                "measure": "relative_likelihood",
                "comparison": "White ÷ BME",
                "value": shares["White"] / shares["BME"],
            }
        )
    return rows


def clean_rows() -> dict[str, list[dict]]:
    """The rows of the clean release, per table, in file order."""
    groups = sorted(ethnic_groups_rows(), key=lambda g: (g["breakdown"], g["group_code"]))
    dq01 = dq01_rows()
    return {
        "indicator_values": acc02_rows(groups) + dq01,
        "indicators": [indicator_row("ACC02", 3), indicator_row("DQ01", 0)],
        "ethnic_groups": groups,
        "ethnicity_completeness": [completeness_row(r) for r in dq01],
        "wres": wres_rows(),
    }


def table_of(name: str, rows: list[dict], release: str = RELEASE) -> pa.Table:
    """Rows as the table's declared Arrow schema, in the order given."""
    return pa.Table.from_pylist(rows, schema=RELEASE_TABLES[name].arrow_schema(release))


def clean_tables() -> dict[str, pa.Table]:
    return {name: table_of(name, rows) for name, rows in clean_rows().items()}


def fingertips_csv(values: list[dict], extra: dict[str, str] | None = None) -> bytes:
    """indicator_values in the Fingertips long layout; ``extra`` adds constant columns."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *(extra or {})])
    for r in values:
        shown = [r["value"], r["lower_95"], r["upper_95"], r["lower_998"], r["upper_998"]]
        writer.writerow(
            [r["indicator_id"], r["indicator_title"], "E08000010", "Wigan", r["breakdown"],
             r["group_label"], r["period_start"].strftime("%b %Y"),
             *("" if v is None else repr(v) for v in shown),
             *("" if r[c] is None else str(r[c]) for c in ("numerator", "denominator")),
             r["note"] or "", *(extra or {}).values()]
        )  # fmt: skip
    return out.getvalue().encode()


def _entry(path: str, content: bytes, **fields: object) -> dict:
    return {"path": path, **fields, "bytes": len(content), "sha256": _sha(content)}


def _sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def write_release(
    fs: fsspec.AbstractFileSystem,
    folder: str,
    tables: dict[str, pa.Table],
    csv_bytes: bytes | None = None,
    edit_manifest: Callable[[dict], None] | None = None,
) -> dict:
    """Write a release as the writer does and return its manifest. ``tables`` are written as
    given (a test may hand in a wrong schema); ``edit_manifest`` changes the manifest before
    manifest.json and SHA256SUMS are written from it."""
    files: dict[str, bytes] = {}
    entries = []
    for name, table in tables.items():
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        path = f"{name}.parquet"
        files[path] = buffer.getvalue()
        fingerprint = _sha(str(table.schema).encode())
        entries.append(_entry(path, files[path], table=name, format="parquet",
                              rows=table.num_rows, schema_fingerprint=fingerprint))  # fmt: skip
    if csv_bytes is not None:
        files["indicator_values.csv"] = csv_bytes
        rows = csv_bytes.count(b"\n") - 1
        entries.append(_entry("indicator_values.csv", csv_bytes, table="indicator_values",
                              format="csv", rows=rows))  # fmt: skip
    for path, kind, text in (
        ("datapackage.json", "json", '{"name": "hei"}'),
        ("dataset.jsonld", "json", '{"@type": "Dataset"}'),
        ("README.md", "markdown", "# Release\n"),
    ):
        files[path] = text.encode()
        entries.append(_entry(path, files[path], format=kind))
    manifest = {
        "release": RELEASE,
        "supersedes": None,
        "supersedes_reason": None,
        "covers": {"first_month": "2025-01", "last_month": "2025-02"},
        "created_at": "2026-11-27T12:00:00Z",
        "code_version": "0.1.0",
        "run_id": "manual__test",
        "content_sha256": _sha(b"".join(_sha(files[e["path"]]).encode() for e in entries)),
        "files": entries,
    }
    if edit_manifest:
        edit_manifest(manifest)
    files["manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode()
    sums = [f"{_sha(content)}  {path}\n" for path, content in files.items()]
    files["SHA256SUMS"] = "".join(sums).encode()
    fs.makedirs(folder, exist_ok=True)
    for path, content in files.items():
        with fs.open(f"{folder}/{path}", "wb") as handle:
            handle.write(content)
    return manifest


def differ_next_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the next publish's contents differ from the warehouse's (one ethnic group fewer),
    as a changed month would, without touching the warehouse."""
    original = release_contents.read

    def changed(conn):
        found = original(conn)
        groups = found.spool.table(ETHNIC_GROUPS)
        found.spool.put(ETHNIC_GROUPS, groups.slice(0, groups.num_rows - 1).to_batches())
        return found

    monkeypatch.setattr(release_contents, "read", changed)
