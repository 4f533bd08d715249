"""The documents of a release, made from its tables and manifest: the Fingertips-style CSV,
``datapackage.json``, ``dataset.jsonld`` and ``README.md``.

Every function is pure (no I/O) and deterministic: equal inputs give equal bytes, keys are
sorted where JSON is written, rows and files come in a fixed order, lines end in ``\\n``,
text is UTF-8. A rerun with nothing changed then writes nothing new (``PUBLICATION.md``).

The manifest the functions read (written by the release writer)::

    {
        "release": "2026-10.1",                        # release id
        "covers": {"first_month": "2024-04", "last_month": "2026-10"},
        "created_at": "2026-11-05T09:00:00Z",          # ISO 8601, UTC
        "code_version": "...", "run_id": "...",
        "supersedes": None or "2026-10", "supersedes_reason": None or "...",
        "files": [                                     # the data files, by path in the release
            {"path": "indicator_values.parquet", "table": "indicator_values",
             "bytes": 1, "sha256": "<hex>", "rows": 1, ...},
            {"path": "indicator_values.csv", ...},
        ],
    }

Entries of ``files`` without a ``table`` (the documents themselves) are not described.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import BinaryIO

import pyarrow as pa

from transforms.config.catalogue import catalogue
from transforms.core.disclosure import ROUNDING_BASE, SUPPRESSION_THRESHOLD
from transforms.core.periods import month_bounds
from transforms.core.statistics import DSR_MIN_COUNT
from transforms.publish.tables import RELEASE_TABLES, Column

NAME = "healthier-wigan-race-equality-indicators"
TITLE = "Healthier Wigan Partnership race equality indicators"
DESCRIPTION = (
    "Indicators of access to and outcomes of health services, and of ethnicity recording, "
    "for the people of Wigan by ethnic group, as the Healthier Wigan Partnership's members "
    "may see them: small counts withheld, other counts rounded, statistics recomputed from "
    "the published counts."
)
PUBLISHER = "NHS Wigan Borough, for the Healthier Wigan Partnership"
CONTACT_NAME = "hei-data-engineering"
CONTACT_EMAIL = "hei-data-engineering@example.org"
"""A placeholder (RFC 2606 domain): pass the team's real address to :func:`dcat`."""
ACCESS = "Partnership members only"
ACCESS_RESTRICTED = "http://publications.europa.eu/resource/authority/access-right/RESTRICTED"
LICENSE = {"title": "Healthier Wigan Partnership members only: see README.md", "path": "README.md"}
"""No Open Definition licence fits (Data Package v2 wants an OD id in ``name``), so the
licence is given by its title and the document stating the terms."""

WIGAN = "E08000010"
SPATIAL = f"http://statistics.data.gov.uk/id/statistical-geography/{WIGAN}"

CSV_FILE = "indicator_values.csv"
MEDIA_TYPES = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv"}
DATAPACKAGE_PROFILE = "https://datapackage.org/profiles/2.0/datapackage.json"

# --- The Fingertips "all data" CSV -----------------------------------------------------------
#
# Columns, order and spelling: PHOLIO's CSV header writer (ukhsa-collaboration/fingertips-open,
# PholioVisualisation/Export/FileBuilder/Writers/CsvBuilderIndicatorDataHeaderWriter.cs) and
# its test (DataControllerTest.HeaderText), plus the "Time period range" column the live
# download adds at the end (27 columns, as ropensci/fingertipsR's fingertips_data() reads
# them). The sub-national comparison column is named "Compared to <parent area type> value or
# percentiles" and varies by download, so readers find it by that pattern or by position.
# Area type "Districts & UAs (from Apr 2023)" (Fingertips area type 501) is the one listing
# metropolitan districts such as Wigan; its parent is the region (North West, E12000002).

AREA = {"Area Code": WIGAN, "Area Name": "Wigan", "Area Type": "Districts & UAs (from Apr 2023)"}
PARENT = {"Parent Code": "E12000002", "Parent Name": "North West region"}
COMPARED_TO_PARENT = "Compared to Wigan value or percentiles"
NOT_COMPARED = "Not compared"
CATEGORY_TYPES = {
    "all": "",
    "ethnicity_5": "Ethnic groups (5)",
    "ethnicity_16": "Ethnic groups (16)",
    "wres_group": "WRES ethnic groups",
    "source_organisation": "Organisation",
}
"""Fingertips leaves Category Type and Category empty on an area's total (All persons)."""
MEASURE_LABELS = {"proportion": "%", "crude_rate": "crude rate", "dsr": "DSR"}
VALUE_NOTES = {
    "withheld": "Value suppressed for disclosure control due to small count",
    "unreliable": f"Value not shown: a standardised rate from fewer than {DSR_MIN_COUNT} events",
}
"""Fingertips' own wording for withheld values (it also covers counts withheld to protect a
small one); ours for a DSR too unreliable to show."""
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SEASONS = ("campaign_covid_autumn", "season_flu", "season_staff_flu")
ALL_AGES = "All ages"
"""Age of an indicator the catalogue has no age filter for, or does not know."""

FINGERTIPS_COLUMNS = (
    Column("Indicator ID", "string", "Indicator id, as indicator_id in indicator_values"),
    Column(
        "Indicator Name",
        "string",
        "Indicator title; with the measure in brackets, e.g. (DSR), where an indicator is "
        "published in more than one measure",
    ),
    Column("Parent Code", "string", "ONS code of the area's region (Fingertips' parent)"),
    Column("Parent Name", "string", "Name of the area's region"),
    Column("Area Code", "string", "ONS code of the area"),
    Column("Area Name", "string", "Name of the area"),
    Column("Area Type", "string", "Fingertips area type"),
    Column("Sex", "string", "Persons: the indicators are not published by sex"),
    Column("Age", "string", "Ages counted, from the indicator's denominator"),
    Column(
        "Category Type",
        "string",
        "Breakdown: Ethnic groups (5), Ethnic groups (16) or Organisation; empty for the "
        "area's total (All persons)",
    ),
    Column("Category", "string", "Group within the breakdown; empty for the area's total"),
    Column(
        "Time period",
        "string",
        "Period: 'Oct 2026' (month), 'Nov 2025 - Oct 2026' (12 months), '2025/26' (a "
        "vaccination campaign or season starting in 2025)",
    ),
    Column("Value", "number", "The indicator's value; empty where withheld (see Value note)"),
    Column("Lower CI 95.0 limit", "number", "Lower 95% confidence limit of Value"),
    Column("Upper CI 95.0 limit", "number", "Upper 95% confidence limit of Value"),
    Column("Lower CI 99.8 limit", "number", "Lower 99.8% confidence limit of Value"),
    Column("Upper CI 99.8 limit", "number", "Upper 99.8% confidence limit of Value"),
    Column(
        "Count",
        "integer",
        f"Numerator (rounded to {ROUNDING_BASE}; empty where withheld)",
        count=True,
    ),
    Column(
        "Denominator",
        "integer",
        f"Denominator (rounded to {ROUNDING_BASE}; empty where withheld)",
        count=True,
    ),
    Column("Value note", "string", "Why Value is missing, where it is"),
    Column("Recent Trend", "string", "Not calculated: always empty"),
    Column("Compared to England value or percentiles", "string", "Always Not compared"),
    Column(
        COMPARED_TO_PARENT,
        "string",
        "The group compared with Wigan's All persons value at 95% confidence "
        "(significance_vs_all): Better/Worse, Higher/Lower, Similar or Not compared",
    ),
    Column(
        "Time period Sortable",
        "integer",
        "Sort key of the period: start year x 10000 + start month (0 for a season)",
    ),
    Column("New data", "string", "Not used: always empty"),
    Column("Compared to goal", "string", "Not used: always empty"),
    Column("Time period range", "string", "Length of the period in months, e.g. 1m, 12m"),
)
FINGERTIPS_HEADER = tuple(c.name for c in FINGERTIPS_COLUMNS)


def write_fingertips_csv(
    values: Iterable[pa.RecordBatch], indicators: pa.Table, out: BinaryIO
) -> None:
    """``indicator_values`` as the long CSV Fingertips users already read (``fingertipsR``,
    ``read_csv`` on the "all data" download), one row per row of ``values``, which come in
    key order.

    The data are Wigan's only, so "Compared to England" is always "Not compared", and the
    sub-national comparison column holds what Fingertips users look for there, how a group
    compares with a wider value: here Wigan's All persons value (``significance_vs_all``, 95%),
    and its header says so ("Compared to Wigan ...") rather than naming the region, which no
    value is compared with. An indicator published in several measures (crude rate and DSR)
    repeats its id, so its measure is added to Indicator Name.
    """
    names = _indicator_names(indicators)
    ages = {i.id: _age(i.denominator.where) for i in catalogue().values()}
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(FINGERTIPS_HEADER)
    for batch in values:
        rows = batch.to_pylist()
        writer.writerows(
            _fingertips_row(
                row,
                names.get((row["indicator_id"], row["measure"]), row["indicator_title"]),
                ages.get(row["indicator_id"], ALL_AGES),
            )
            for row in rows
        )
    text.flush()
    text.detach()  # ``out`` stays open: it is the caller's


def _indicator_names(indicators: pa.Table) -> dict[tuple[str, str], str]:
    """Indicator Name per (indicator, measure): the title, with the measure where there are
    several."""
    names = {}
    for entry in indicators.select(["indicator_id", "title", "measures"]).to_pylist():
        measures = entry["measures"].split(",")
        for measure in measures:
            suffix = f" ({MEASURE_LABELS[measure]})" if len(measures) > 1 else ""
            names[(entry["indicator_id"], measure)] = entry["title"] + suffix
    return names


def _age(where: dict) -> str:
    """Fingertips' age label for the catalogue's age filters (inclusive bounds)."""
    low, high = where.get("age_min"), where.get("age_max")
    if low is None and high is None:
        return ALL_AGES
    if high is None:
        return f"{low}+ yrs"
    if low is None:
        return f"<{high + 1} yrs"
    return f"{low}-{high} yrs"


def _fingertips_row(row: dict, name: str, age: str) -> list[str]:
    kind, start, end = row["period_type"], row["period_start"], row["period_end"]
    category_type = CATEGORY_TYPES[row["breakdown"]]
    fields = {
        "Indicator ID": row["indicator_id"],
        "Indicator Name": name,
        **PARENT,
        **AREA,
        "Sex": "Persons",
        "Age": age,
        "Category Type": category_type,
        "Category": row["group_label"] if category_type else "",
        "Time period": time_period(kind, start, end),
        "Value": _number(row["value"]),
        "Lower CI 95.0 limit": _number(row["lower_95"]),
        "Upper CI 95.0 limit": _number(row["upper_95"]),
        "Lower CI 99.8 limit": _number(row["lower_998"]),
        "Upper CI 99.8 limit": _number(row["upper_998"]),
        "Count": _number(row["numerator"]),
        "Denominator": _number(row["denominator"]),
        "Value note": _value_note(row["suppression_reason"], row["note"]),
        "Compared to England value or percentiles": NOT_COMPARED,
        COMPARED_TO_PARENT: row["significance_vs_all"] or NOT_COMPARED,
        "Time period Sortable": str(time_period_sortable(kind, start)),
        "Time period range": f"{_months(start, end)}m",
    }
    return [fields.get(column, "") for column in FINGERTIPS_HEADER]


def _value_note(reason: str | None, note: str | None) -> str:
    """Why the value is missing: the reason it is withheld, then the row's own note."""
    parts = [VALUE_NOTES[reason] if reason else None, note]
    return "; ".join(p for p in parts if p)


def _number(value: float | int | None) -> str:
    """Full precision (``repr``), empty for null."""
    return "" if value is None else repr(value)


def time_period(kind: str, start: date, end: date) -> str:
    """Fingertips' label of a period: 'Oct 2026', 'Nov 2025 - Oct 2026', '2025/26'."""
    if kind == "month":
        return _month_label(start)
    if kind == "rolling_12m":
        return f"{_month_label(start)} - {_month_label(end)}"
    if kind in SEASONS:
        return f"{start.year}/{(start.year + 1) % 100:02d}"
    raise ValueError(f"no Fingertips label for period type {kind!r}")


def time_period_sortable(kind: str, start: date) -> int:
    """Fingertips' integer sort key: the start year as ``YYYY0000`` (as it gives years), plus
    the start month for periods counted in months (a season sorts by its year alone)."""
    return start.year * 10000 + (0 if kind in SEASONS else start.month)


def _month_label(day: date) -> str:
    return f"{MONTH_NAMES[day.month - 1]} {day.year}"


def _months(start: date, end: date) -> int:
    after = end + timedelta(days=1)
    return (after.year - start.year) * 12 + after.month - start.month


# --- Files of the release --------------------------------------------------------------------


@dataclass(frozen=True)
class DataFile:
    """A data file of the release, as the documents describe it."""

    path: str
    title: str
    description: str
    format: str
    columns: tuple[Column, ...]
    schema: dict

    @property
    def mediatype(self) -> str:
        return MEDIA_TYPES[self.format]

    @property
    def resource_name(self) -> str:
        return self.path.replace(".", "_")


CSV_DATA_FILE = DataFile(
    path=CSV_FILE,
    title="Indicator values by ethnic group (Fingertips-style CSV)",
    description="The rows of indicator_values.parquet in the columns of the Fingertips 'all "
    "data' download, for analysts used to it.",
    format="csv",
    columns=FINGERTIPS_COLUMNS,
    schema={"fields": [c.table_schema_field() for c in FINGERTIPS_COLUMNS]},
)


def data_file(path: str) -> DataFile:
    """What a file of the manifest is; a file the release does not declare is an error, so
    no document describes a file nobody declared."""
    if path == CSV_FILE:
        return CSV_DATA_FILE
    spec = RELEASE_TABLES.get(path.removesuffix(".parquet"))
    if spec is None or spec.file_name != path:
        raise ValueError(f"{path}: not a declared file of a release")
    return DataFile(
        path, spec.title, spec.description, "parquet", spec.columns, spec.table_schema()
    )


def _files(manifest: dict) -> list[tuple[DataFile, dict]]:
    """The manifest's files in their order in the release: the declared tables, then the CSV."""
    order = [t.file_name for t in RELEASE_TABLES.values()] + [CSV_FILE]
    described = [(data_file(e["path"]), e) for e in manifest["files"] if "table" in e]
    return sorted(described, key=lambda pair: order.index(pair[0].path))


# --- datapackage.json ------------------------------------------------------------------------


def datapackage(manifest: dict) -> dict:
    """The release as a Frictionless Data Package (v2): one resource per data file, with its
    size, sha256 and Table Schema, so ``frictionless validate`` and any Data Package reader
    know the types without guessing them from Parquet."""
    return {
        "$schema": DATAPACKAGE_PROFILE,
        "name": NAME,
        "title": f"{TITLE}, release {manifest['release']}",
        "description": DESCRIPTION,
        "version": manifest["release"],
        "created": manifest["created_at"],
        "licenses": [LICENSE],
        "contributors": [{"title": PUBLISHER, "roles": ["publisher"]}],
        "keywords": ["ethnicity", "health inequalities", "race equality", "Wigan"],
        "resources": [_resource(f, entry) for f, entry in _files(manifest)],
    }


def _resource(file: DataFile, entry: dict) -> dict:
    resource = {
        "name": file.resource_name,
        "type": "table",
        "path": file.path,
        "title": file.title,
        "description": file.description,
        "format": file.format,
        "mediatype": file.mediatype,
        "bytes": entry["bytes"],
        "hash": f"sha256:{entry['sha256']}",
        "schema": file.schema,
    }
    if file.format == "csv":
        resource["encoding"] = "utf-8"
    return resource


# --- dataset.jsonld --------------------------------------------------------------------------

JSONLD_CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "owl": "http://www.w3.org/2002/07/owl#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "schema": "https://schema.org/",
    "spdx": "http://spdx.org/rdf/terms#",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}
IANA_MEDIA_TYPES = "https://www.iana.org/assignments/media-types/"


def dcat(manifest: dict, contact_email: str = CONTACT_EMAIL) -> dict:
    """The release as a DCAT (v3) and schema.org Dataset in JSON-LD, for data catalogues.

    Download URLs are relative, so they resolve against where ``dataset.jsonld`` is read
    from, whichever storage the release is on. ``contact_email`` defaults to a placeholder.
    """
    first, last = _coverage(manifest)
    dataset = {
        "@context": JSONLD_CONTEXT,
        "@type": ["dcat:Dataset", "schema:Dataset"],
        "dct:identifier": f"{NAME}/{manifest['release']}",
        "dct:title": f"{TITLE}, release {manifest['release']}",
        "dct:description": DESCRIPTION,
        "schema:name": TITLE,
        "schema:temporalCoverage": f"{first.isoformat()}/{last.isoformat()}",
        "dct:publisher": {"@type": "foaf:Organization", "foaf:name": PUBLISHER},
        "dcat:contactPoint": {
            "@type": "vcard:Organization",
            "vcard:fn": CONTACT_NAME,
            "vcard:hasEmail": {"@id": f"mailto:{contact_email}"},
        },
        "dct:accessRights": {
            "@id": ACCESS_RESTRICTED,
            "@type": "dct:RightsStatement",
            "rdfs:label": ACCESS,
        },
        "dcat:version": manifest["release"],
        "owl:versionInfo": manifest["release"],
        "dct:issued": _typed(manifest["created_at"], "xsd:dateTime"),
        "dct:temporal": {
            "@type": "dct:PeriodOfTime",
            "dcat:startDate": _typed(first.isoformat(), "xsd:date"),
            "dcat:endDate": _typed(last.isoformat(), "xsd:date"),
        },
        "dct:spatial": {"@id": SPATIAL, "rdfs:label": "Wigan"},
        "dcat:distribution": [_distribution(f, entry) for f, entry in _files(manifest)],
    }
    if manifest.get("supersedes"):
        dataset["dct:replaces"] = {"dct:identifier": f"{NAME}/{manifest['supersedes']}"}
    return dataset


def _coverage(manifest: dict) -> tuple[date, date]:
    """First day of the first month and last day of the last month the release covers."""
    return (
        month_bounds(manifest["covers"]["first_month"])[0],
        month_bounds(manifest["covers"]["last_month"])[1],
    )


def _typed(value: str, datatype: str) -> dict:
    return {"@value": value, "@type": datatype}


def _distribution(file: DataFile, entry: dict) -> dict:
    return {
        "@type": "dcat:Distribution",
        "dct:title": file.title,
        "dcat:downloadURL": {"@id": file.path},
        "dcat:mediaType": {"@id": IANA_MEDIA_TYPES + file.mediatype},
        "dcat:byteSize": _typed(str(entry["bytes"]), "xsd:nonNegativeInteger"),
        "spdx:checksum": {
            "@type": "spdx:Checksum",
            "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
            "spdx:checksumValue": _typed(entry["sha256"], "xsd:hexBinary"),
        },
    }


# --- README.md -------------------------------------------------------------------------------


def readme(manifest: dict, indicators: pa.Table) -> str:
    """The release's data dictionary, for people: what it is, its files, tables and columns,
    its indicators, how to read and cite it, and the disclosure rules behind every number."""
    sections = [
        _about(manifest),
        _file_list(manifest),
        *(_table_section(f, entry) for f, entry in _files(manifest)),
        _indicator_list(indicators),
        READING,
        DISCLOSURE,
        _citing(manifest),
        CHECKING,
    ]
    return "\n\n".join(s.strip("\n") for s in sections) + "\n"


def _about(manifest: dict) -> str:
    covers = manifest["covers"]
    lines = [
        f"# {TITLE}: release {manifest['release']}",
        "",
        DESCRIPTION,
        "",
        f"- Release: `{manifest['release']}` (named after the last complete month it covers)",
        f"- Covers: {covers['first_month']} to {covers['last_month']}",
        f"- Created: {manifest['created_at']}",
        f"- Access: {ACCESS}; not for onward publication",
    ]
    supersedes = manifest.get("supersedes")
    if supersedes:
        lines.append(
            f"- Supersedes release `{supersedes}`, because: {manifest['supersedes_reason']}"
        )
    return "\n".join(lines)


def _file_list(manifest: dict) -> str:
    rows = [
        [f"`{f.path}`", f.title, str(entry["rows"]), str(entry["bytes"])]
        for f, entry in _files(manifest)
    ]
    return "## Files\n\n" + _markdown_table(["File", "Contents", "Rows", "Bytes"], rows)


def _table_section(file: DataFile, entry: dict) -> str:
    key = file.schema.get("primaryKey")
    rows = [
        [f"`{c.name}`", c.kind, c.unit or "", c.description.replace("\n", " ")]
        for c in file.columns
    ]
    lines = [
        f"## {file.title}",
        "",
        f"File `{file.path}`, {entry['rows']} rows. {file.description}",
    ]
    if key:
        lines += ["", "One row per " + ", ".join(f"`{k}`" for k in key) + "."]
    return "\n".join(lines) + "\n\n" + _markdown_table(["Column", "Type", "Unit", "Meaning"], rows)


def _indicator_list(indicators: pa.Table) -> str:
    entries = sorted(indicators.to_pylist(), key=lambda e: e["indicator_id"])
    parts = ["## Indicators"]
    for entry in entries:
        lines = [
            f"### {entry['indicator_id']}: {entry['title']}",
            "",
            f"- Definition: {entry['definition']}",
            f"- Measures: {entry['measures']}; periods: {entry['period_types']}",
        ]
        if entry["method"]:
            lines.append(f"- Method: {entry['method']}")
        if entry["caveats"]:
            lines.append(f"- Caveats: {entry['caveats']}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _markdown_table(header: list[str], rows: Iterable[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(_cell(c) for c in line) + " |" for line in lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _citing(manifest: dict) -> str:
    return (
        "## How to cite\n\n"
        f"Healthier Wigan Partnership, race equality indicators, release {manifest['release']}."
    )


READING = """
## How to read the files

DuckDB (every release at once: `release=` in the folder name becomes a `release` column):

```sql
SELECT * FROM read_parquet('releases/*/indicator_values.parquet', hive_partitioning = true)
WHERE indicator_id = 'ACC01' AND breakdown = 'ethnicity_5';
```

pandas:

```python
import pandas as pd
values = pd.read_parquet("indicator_values.parquet")
```

R (arrow):

```r
library(arrow)
values <- read_parquet("indicator_values.parquet")
```

Each Parquet file stores its column descriptions and units in the Arrow field metadata, and
its whole Table Schema (JSON) in the file-level metadata key `hei:table_schema`.
"""

DISCLOSURE = f"""
## Disclosure control

- Counts from 1 to {SUPPRESSION_THRESHOLD} are withheld; 0 is shown.
- Every other count is rounded to the nearest {ROUNDING_BASE}.
- Where one withheld count could be worked out from a total, another count is withheld too.
- Rates, percentages, confidence limits and ratios are recomputed from the published
  (rounded) counts, and are withheld wherever a count they use is.
- A withheld value is empty (null), never `*` or `-1`: `suppressed` is true and
  `suppression_reason` says why (`withheld`, or `unreliable` for a standardised rate from
  fewer than {DSR_MIN_COUNT} events).
"""

CHECKING = """
## Checking the files

In the release folder, `sha256sum -c SHA256SUMS` checks every file against the checksums
recorded when the release was made (they are also in `manifest.json`).
"""
