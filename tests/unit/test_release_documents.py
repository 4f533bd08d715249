"""The release's documents (``transforms/publish/documents.py``): the Fingertips-style CSV
in the columns Fingertips users parse, a Data Package that frictionless accepts, a DCAT
record and a README, all byte-for-byte the same for the same inputs."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pyarrow as pa
import pytest
from frictionless import Package, Resource, Schema

from transforms.publish import documents
from transforms.publish.contents import as_batch
from transforms.publish.tables import (
    ETHNIC_GROUPS,
    INDICATOR_VALUES,
    INDICATORS,
    RELEASE_TABLES,
    ReleaseTable,
)


def as_table(spec: ReleaseTable, rows: list[dict]) -> pa.Table:
    """Rows as a release table, sorted by its key as the spool gives them."""
    table = pa.Table.from_batches([as_batch(spec, rows)])
    return table.sort_by([(key, "ascending") for key in spec.primary_key])


FINGERTIPS = [
    "Indicator ID",
    "Indicator Name",
    "Parent Code",
    "Parent Name",
    "Area Code",
    "Area Name",
    "Area Type",
    "Sex",
    "Age",
    "Category Type",
    "Category",
    "Time period",
    "Value",
    "Lower CI 95.0 limit",
    "Upper CI 95.0 limit",
    "Lower CI 99.8 limit",
    "Upper CI 99.8 limit",
    "Count",
    "Denominator",
    "Value note",
    "Recent Trend",
    "Compared to England value or percentiles",
    "Compared to Wigan value or percentiles",  # Fingertips: "Compared to <parent> value ..."
    "Time period Sortable",
    "New data",
    "Compared to goal",
    "Time period range",
]


def value_row(**changes: object) -> dict:
    row = dict.fromkeys(INDICATOR_VALUES.column_names)
    row |= {
        "indicator_id": "ACC01",
        "indicator_title": "GP appointments attended per 1,000 registered",
        "measure": "dsr",
        "period_type": "rolling_12m",
        "period_start": date(2025, 11, 1),
        "period_end": date(2026, 10, 31),
        "breakdown": "ethnicity_5",
        "group_code": "A",
        "group_label": "White",
        "group_order": 1,
        "numerator": 1045,
        "denominator": 20000,
        "value": 52.25 + 1e-12,
        "lower_95": 49.1,
        "upper_95": 55.6,
        "lower_998": 47.3,
        "upper_998": 57.8,
        "significance_vs_all": "Similar",
        "suppressed": False,
        "reference_suppressed": False,
    }
    return row | changes


WITHHELD = {
    "group_code": "B",
    "group_label": "Mixed",
    "numerator": None,
    "value": None,
    "lower_95": None,
    "upper_95": None,
    "lower_998": None,
    "upper_998": None,
    "significance_vs_all": None,
    "suppressed": True,
    "suppression_reason": "withheld",
}


def indicator_row(indicator_id: str, title: str, measures: str, periods: str) -> dict:
    row = dict.fromkeys(INDICATORS.column_names)
    return row | {
        "indicator_id": indicator_id,
        "title": title,
        "theme": 3,
        "definition": f"{title}, in words",
        "measures": measures,
        "period_types": periods,
        "method": "Wilson score",
        "caveats": f"Read {indicator_id} with care",
    }


INDICATOR_TABLE = as_table(
    INDICATORS,
    [
        indicator_row(
            "ACC01",
            "GP appointments attended per 1,000 registered",
            "crude_rate,dsr",
            "rolling_12m",
        ),
        indicator_row("VAC02", "Influenza vaccination uptake", "proportion", "season_flu"),
        indicator_row("OUT04", "Premature mortality", "dsr", "rolling_12m"),
    ],
)


def parse(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def values(*rows: dict) -> pa.Table:
    return as_table(INDICATOR_VALUES, rows)


def fingertips_csv(table: pa.Table) -> bytes:
    out = io.BytesIO()
    documents.write_fingertips_csv(table.to_batches(), INDICATOR_TABLE, out)
    return out.getvalue()


def test_the_csv_has_the_fingertips_columns_in_their_order() -> None:
    data = fingertips_csv(values(value_row()))
    assert data.decode().split("\n")[0].split(",") == FINGERTIPS
    assert list(documents.FINGERTIPS_HEADER) == FINGERTIPS


def test_a_row_maps_to_wigan_persons_with_full_precision_numbers() -> None:
    [row] = parse(fingertips_csv(values(value_row())))
    assert row["Indicator ID"] == "ACC01"
    assert row["Indicator Name"] == "GP appointments attended per 1,000 registered (DSR)"
    assert (row["Area Code"], row["Area Name"], row["Parent Code"]) == (
        "E08000010",
        "Wigan",
        "E12000002",
    )
    assert (row["Sex"], row["Age"]) == ("Persons", "All ages")
    assert (row["Category Type"], row["Category"]) == ("Ethnic groups (5)", "White")
    assert float(row["Value"]) == 52.25 + 1e-12
    assert (row["Count"], row["Denominator"]) == ("1045", "20000")
    assert row["Compared to England value or percentiles"] == "Not compared"
    assert row["Compared to Wigan value or percentiles"] == "Similar"
    assert row["Recent Trend"] == row["New data"] == row["Compared to goal"] == ""


def test_the_area_total_has_no_category() -> None:
    total = value_row(
        breakdown="all", group_code="all", group_label="All persons", significance_vs_all=None
    )
    [row] = parse(fingertips_csv(values(total)))
    assert (row["Category Type"], row["Category"]) == ("", "")
    assert row["Compared to Wigan value or percentiles"] == "Not compared"


def test_a_withheld_row_has_empty_count_and_value_and_says_why() -> None:
    [row] = parse(fingertips_csv(values(value_row(**WITHHELD))))
    assert row["Count"] == row["Value"] == row["Lower CI 95.0 limit"] == ""
    assert row["Denominator"] == "20000"
    assert row["Value note"] == "Value suppressed for disclosure control due to small count"


def test_an_unreliable_rate_keeps_its_own_note_after_the_reason() -> None:
    unreliable = value_row(value=None, suppression_reason="unreliable", note="few events")
    [row] = parse(fingertips_csv(values(unreliable)))
    assert row["Value note"] == f"{documents.VALUE_NOTES['unreliable']}; few events"


@pytest.mark.parametrize(
    ("kind", "start", "end", "label", "sortable", "length"),
    [
        ("month", date(2026, 10, 1), date(2026, 10, 31), "Oct 2026", 20260010, "1m"),
        (
            "rolling_12m",
            date(2025, 11, 1),
            date(2026, 10, 31),
            "Nov 2025 - Oct 2026",
            20250011,
            "12m",
        ),
        ("campaign_covid_autumn", date(2025, 9, 1), date(2025, 12, 31), "2025/26", 20250000, "4m"),
        ("season_flu", date(2025, 10, 1), date(2026, 3, 31), "2025/26", 20250000, "6m"),
        ("season_flu", date(1999, 10, 1), date(2000, 3, 31), "1999/00", 19990000, "6m"),
    ],
)
def test_time_periods_are_labelled_as_fingertips_does(
    kind: str, start: date, end: date, label: str, sortable: int, length: str
) -> None:
    row = value_row(period_type=kind, period_start=start, period_end=end)
    [out] = parse(fingertips_csv(values(row)))
    assert (out["Time period"], out["Time period Sortable"], out["Time period range"]) == (
        label,
        str(sortable),
        length,
    )


def test_an_unknown_period_type_is_refused() -> None:
    with pytest.raises(ValueError, match="fortnight"):
        documents.time_period("fortnight", date(2026, 1, 1), date(2026, 1, 14))


@pytest.mark.parametrize(
    ("indicator_id", "measure", "name", "age"),
    [
        ("VAC02", "proportion", "Influenza vaccination uptake", "65+ yrs"),
        ("OUT04", "dsr", "Premature mortality", "<75 yrs"),
    ],
)
def test_ages_come_from_the_catalogue_and_single_measures_keep_the_title(
    indicator_id: str, measure: str, name: str, age: str
) -> None:
    row = value_row(indicator_id=indicator_id, measure=measure)
    [out] = parse(fingertips_csv(values(row)))
    assert (out["Indicator Name"], out["Age"]) == (name, age)


def test_the_csv_keeps_the_key_order_with_unix_line_ends() -> None:
    rows = [
        value_row(),
        value_row(**WITHHELD),
        value_row(measure="crude_rate"),
        value_row(breakdown="all", group_code="all", group_label="All persons"),
    ]
    one = fingertips_csv(values(*rows))
    assert b"\r" not in one and one.endswith(b"\n")
    title = "GP appointments attended per 1,000 registered"
    keys = [(r["Indicator Name"].removeprefix(title), r["Category"]) for r in parse(one)]
    assert keys == [
        (" (crude rate)", "White"),
        (" (DSR)", ""),
        (" (DSR)", "White"),
        (" (DSR)", "Mixed"),
    ]


def manifest(**changes: object) -> dict:
    tables = {t.file_name: t.name for t in RELEASE_TABLES.values()}
    tables[documents.CSV_FILE] = "indicator_values"
    files = [
        {"path": name, "table": table, "bytes": 100 + i, "sha256": f"{i:064x}", "rows": 10 * i}
        for i, (name, table) in enumerate(tables.items())
    ]
    base = {
        "release": "2026-10.1",
        "covers": {"first_month": "2024-04", "last_month": "2026-10"},
        "created_at": "2026-11-05T09:00:00Z",
        "code_version": "abc123",
        "run_id": "run-1",
        "supersedes": "2026-10",
        "supersedes_reason": "a late GP delivery",
        "files": list(reversed(files)),
    }
    return base | changes


def by_path(found: dict) -> dict[str, dict]:
    return {entry["path"]: entry for entry in found["files"]}


def test_the_datapackage_is_valid_and_lists_every_file() -> None:
    descriptor = documents.datapackage(manifest())
    assert [e.message for e in Package.metadata_validate(descriptor)] == []
    assert descriptor["$schema"] == "https://datapackage.org/profiles/2.0/datapackage.json"
    assert descriptor["version"] == "2026-10.1"
    resources = {r["path"]: r for r in descriptor["resources"]}
    assert set(resources) == set(by_path(manifest()))
    for path, entry in by_path(manifest()).items():
        assert resources[path]["bytes"] == entry["bytes"]
        assert resources[path]["hash"] == f"sha256:{entry['sha256']}"
    for spec in RELEASE_TABLES.values():
        assert resources[spec.file_name]["schema"] == spec.table_schema()
        assert resources[spec.file_name]["mediatype"] == "application/vnd.apache.parquet"
    assert [r["path"] for r in descriptor["resources"]][-1] == documents.CSV_FILE


def test_published_rows_validate_against_their_table_schema() -> None:
    descriptor = documents.datapackage(manifest())
    schemas = {r["path"]: Schema.from_descriptor(r["schema"]) for r in descriptor["resources"]}
    tables = {
        INDICATOR_VALUES.file_name: values(value_row(), value_row(**WITHHELD)),
        ETHNIC_GROUPS.file_name: as_table(
            ETHNIC_GROUPS,
            [
                {
                    "breakdown": "ethnicity_5",
                    "group_code": "A",
                    "group_label": "White",
                    "group_order": 1,
                    "parent_group_code": None,
                    "is_reference": True,
                }
            ],
        ),
    }
    for path, table in tables.items():
        rows = [table.column_names] + [list(r.values()) for r in table.to_pylist()]
        report = Resource(data=rows, schema=schemas[path]).validate()
        assert report.valid, report.flatten(["rowNumber", "fieldName", "note"])
    csv_rows = list(
        csv.reader(io.StringIO(fingertips_csv(tables[INDICATOR_VALUES.file_name]).decode()))
    )
    report = Resource(data=csv_rows, schema=schemas[documents.CSV_FILE]).validate()
    assert report.valid, report.flatten(["rowNumber", "fieldName", "note"])


def test_every_published_column_is_described() -> None:
    columns = [c for t in RELEASE_TABLES.values() for c in t.columns]
    for column in [*columns, *documents.FINGERTIPS_COLUMNS]:
        assert column.description.strip(), column.name


def test_a_file_nobody_declared_is_refused() -> None:
    extra = {"path": "extra.parquet", "table": "extra", "bytes": 1, "sha256": "0", "rows": 0}
    files = [*manifest()["files"], extra]
    with pytest.raises(ValueError, match="extra.parquet"):
        documents.datapackage(manifest(files=files))


def test_the_dcat_record_describes_the_release_and_every_file() -> None:
    record = documents.dcat(manifest(), contact_email="team@wigan.example")
    assert json.loads(json.dumps(record, sort_keys=True)) == record
    assert {"dcat", "dct", "foaf", "vcard", "schema"} <= set(record["@context"])
    assert "dcat:Dataset" in record["@type"]
    for key in ("dct:title", "dct:description", "dct:publisher", "dct:accessRights"):
        assert record[key]
    assert record["dcat:contactPoint"]["vcard:hasEmail"] == {"@id": "mailto:team@wigan.example"}
    assert record["dcat:version"] == record["owl:versionInfo"] == "2026-10.1"
    assert record["dct:issued"]["@value"] == "2026-11-05T09:00:00Z"
    temporal = record["dct:temporal"]
    assert (temporal["dcat:startDate"]["@value"], temporal["dcat:endDate"]["@value"]) == (
        "2024-04-01",
        "2026-10-31",
    )
    assert record["dct:spatial"]["@id"].endswith("/E08000010")
    assert record["dct:replaces"] == {"dct:identifier": f"{documents.NAME}/2026-10"}
    distributions = {d["dcat:downloadURL"]["@id"]: d for d in record["dcat:distribution"]}
    assert set(distributions) == set(by_path(manifest()))
    for path, entry in by_path(manifest()).items():
        checksum = distributions[path]["spdx:checksum"]["spdx:checksumValue"]["@value"]
        assert checksum == entry["sha256"]
        assert distributions[path]["dcat:byteSize"]["@value"] == str(entry["bytes"])


def test_a_first_release_replaces_nothing() -> None:
    record = documents.dcat(manifest(supersedes=None, supersedes_reason=None))
    assert "dct:replaces" not in record
    assert record["dcat:contactPoint"]["vcard:hasEmail"]["@id"].endswith("@example.org")


def test_the_readme_documents_files_columns_indicators_and_rules() -> None:
    text = documents.readme(manifest(), INDICATOR_TABLE)
    assert text == documents.readme(manifest(), INDICATOR_TABLE)
    assert text.startswith("# ") and text.endswith("\n") and "\n\n\n" not in text
    assert "release 2026-10.1" in text
    assert "Supersedes release `2026-10`, because: a late GP delivery" in text
    for path, entry in by_path(manifest()).items():
        assert f"File `{path}`, {entry['rows']} rows." in text
    for column in [c for t in RELEASE_TABLES.values() for c in t.columns]:
        assert f"| `{column.name}` |" in text
    for indicator_id in ("ACC01", "VAC02", "OUT04"):
        assert f"Read {indicator_id} with care" in text
    assert "Counts from 1 to 7 are withheld" in text and "nearest 5" in text
    assert "Healthier Wigan Partnership, race equality indicators, release 2026-10.1" in text
    assert "sha256sum -c SHA256SUMS" in text
    assert "Supersedes" not in documents.readme(
        manifest(supersedes=None, supersedes_reason=None), INDICATOR_TABLE
    )
