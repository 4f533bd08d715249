"""Which datasets each task run names for OpenLineage, from what the task returned."""

from __future__ import annotations

import os
from pathlib import Path

from transforms.ingest.audit import LoadRecord
from transforms.lineage import datasets

PG = "postgresql+psycopg://loader:s3cret%21pw@db.example:6543/warehouse?sslpassword=k3y"
DUCK = "duckdb:///var/warehouse.duckdb"


def names(found: list) -> set[tuple[str, str]]:
    return {(d.namespace, d.name) for d in found}


def record(file_name: str, status: str, **more: object) -> dict:
    return LoadRecord(
        load_id=f"L-{file_name}",
        source="deaths",
        file_name=file_name,
        period="2025-01",
        sha256="ab" * 32,
        status=status,
        rows_read=10,
        rows_loaded=9 if status == "loaded" else 0,
        rows_quarantined=1 if status == "loaded" else 0,
        **more,
    ).to_xcom()


def delivery(path: str, file_name: str) -> dict:
    return {"source": "deaths", "path": path, "file_name": file_name, "period": "2025-01"}


def test_a_postgres_table_is_named_by_host_port_and_database_without_credentials() -> None:
    namespace, prefix = datasets.warehouse_namespace(PG)
    assert (namespace, prefix) == ("postgres://db.example:6543", "warehouse.")
    assert datasets.warehouse_namespace("postgresql://db/w") == ("postgres://db:5432", "w.")


def test_a_duckdb_table_is_named_by_the_absolute_path_of_its_file() -> None:
    namespace, prefix = datasets.warehouse_namespace(DUCK)
    assert namespace == f"duckdb://{os.path.abspath('var/warehouse.duckdb')}"
    assert prefix == ""


def test_a_load_reads_its_landing_files_and_writes_staging_quality_and_audit() -> None:
    group = {"deliveries": [delivery("/landing/deaths/deaths_2025-01.csv", "deaths_2025-01.csv")]}
    lineage = datasets.of_load(PG, group, [record("deaths_2025-01.csv", "loaded")])
    [landing] = lineage.inputs
    assert (landing.namespace, landing.name) == ("file", "/landing/deaths/deaths_2025-01.csv")
    assert landing.facets["version"].datasetVersion == "ab" * 32
    assert landing.inputFacets["inputStatistics"].rowCount == 10
    written = {name for _, name in names(lineage.outputs)}
    assert written == {
        "warehouse.staging.stg_deaths",
        "warehouse.quality.quarantine",
        "warehouse.quality.validation_runs",
        "warehouse.quality.ethnicity_completeness",
        "warehouse.audit.file_loads",
    }
    staging = next(d for d in lineage.outputs if d.name.endswith("stg_deaths"))
    assert staging.outputFacets["outputStatistics"].rowCount == 9


def test_a_rejected_file_was_read_but_only_its_audit_row_was_written() -> None:
    group = {"deliveries": [delivery("/landing/deaths/deaths_2025-01.csv", "deaths_2025-01.csv")]}
    lineage = datasets.of_load(PG, group, [record("deaths_2025-01.csv", "rejected")])
    assert names(lineage.inputs) == {("file", "/landing/deaths/deaths_2025-01.csv")}
    assert names(lineage.outputs) == {("postgres://db.example:6543", "warehouse.audit.file_loads")}


def test_a_file_refused_when_found_is_not_named() -> None:
    """Its path is empty and its name masked: it was never opened, and its real name may
    hold an NHS number."""
    group = {"deliveries": [delivery("", "deaths_999******7.csv")]}
    lineage = datasets.of_load(PG, group, [record("deaths_999******7.csv", "rejected")])
    assert not lineage


def test_a_publish_writes_every_file_of_its_release_and_the_pointer(tmp_path: Path) -> None:
    folder = f"{tmp_path}/releases/release=2025-03"
    outcome = {"path": folder, "files": ["indicator_values.parquet", "manifest.json"]}
    lineage = datasets.of_publish(DUCK, str(tmp_path), outcome)
    assert names(lineage.outputs) == {
        ("file", f"{folder}/indicator_values.parquet"),
        ("file", f"{folder}/manifest.json"),
        ("file", f"{tmp_path}/latest.json"),
    }
    read = {name for _, name in names(lineage.inputs)}
    assert "indicators.published" in read and "indicators.wres_published" in read


def test_release_files_in_object_storage_are_named_by_bucket_and_key() -> None:
    outcome = {"path": "hei-releases/wigan/releases/release=2025-03", "files": ["manifest.json"]}
    lineage = datasets.of_publish(DUCK, "s3://hei-releases/wigan", outcome)
    assert ("s3://hei-releases", "wigan/releases/release=2025-03/manifest.json") in names(
        lineage.outputs
    )


def test_a_publish_that_published_nothing_names_nothing() -> None:
    assert not datasets.of_publish(DUCK, "/publish", {"status": "unchanged", "files": []})


def test_the_compute_reads_staging_and_best_known_ethnicity_and_writes_the_indicators() -> None:
    lineage = datasets.of_compute(DUCK)
    read = {name for _, name in names(lineage.inputs)}
    assert {"staging.stg_gp_register", "staging.stg_recruitment", "core.person_ethnicity"} <= read
    written = {name for _, name in names(lineage.outputs)}
    assert {"indicators.values", "indicators.published"} <= written


def test_the_report_reads_the_release_files_it_was_built_from() -> None:
    built = {
        "html": "/reports/2025-03/assurance_report.html",
        "pdf": "/reports/2025-03/assurance_report.pdf",
        "release_files": ["/publish/releases/release=2025-03/indicator_values.parquet"],
    }
    lineage = datasets.of_report(DUCK, "/publish", built)
    assert ("file", "/publish/releases/release=2025-03/indicator_values.parquet") in names(
        lineage.inputs
    )
    assert names(lineage.outputs) == {
        ("file", "/reports/2025-03/assurance_report.html"),
        ("file", "/reports/2025-03/assurance_report.pdf"),
    }
