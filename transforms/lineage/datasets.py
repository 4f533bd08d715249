"""The datasets each task run read and wrote, named as OpenLineage names them.

Names follow the OpenLineage naming spec so that other producers' events join ours: a local
file is namespace ``file`` and its absolute path (what Airflow's own ``file://`` Assets
become); object storage is ``<scheme>://<bucket>`` and the key; a PostgreSQL table is
``postgres://<host>:<port>`` and ``<database>.<schema>.<table>``. The spec has no DuckDB
entry, so a DuckDB table is ``duckdb://<absolute file path>`` and ``<schema>.<table>``.
No name carries a credential: only the host and port of a warehouse URL are used, and
OpenLineage never redacts names.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import sqlalchemy as sa
from fsspec.core import split_protocol
from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.facet_v2 import (
    DatasetFacet,
    dataset_version_dataset,
    input_statistics_input_dataset,
    output_statistics_output_dataset,
)
from sqlalchemy.engine.url import make_url

from transforms.config.sources import SOURCES
from transforms.indicators import store as indicator_store
from transforms.indicators import wres_store
from transforms.ingest.audit import LoadRecord
from transforms.publish.store import LATEST, ReleaseStore
from transforms.warehouse import tables

LOCAL_PROTOCOLS = (None, "file", "local")
POSTGRES_PORT = 5432
D = TypeVar("D", InputDataset, OutputDataset)


@dataclass(frozen=True)
class Lineage:
    """What one task run read (``inputs``) and wrote (``outputs``)."""

    inputs: list[InputDataset] = field(default_factory=list)
    outputs: list[OutputDataset] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.inputs or self.outputs)


def warehouse_namespace(url: str) -> tuple[str, str]:
    """``(namespace, name prefix)`` of the warehouse's tables: host and port, never a password."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "duckdb":
        database = parsed.database or ":memory:"
        path = database if database == ":memory:" else os.path.abspath(database)
        return f"duckdb://{path}", ""
    scheme = "postgres" if backend == "postgresql" else backend
    port = parsed.port or (POSTGRES_PORT if backend == "postgresql" else None)
    authority = f"{parsed.host or 'localhost'}:{port}" if port else parsed.host or "localhost"
    return f"{scheme}://{authority}", f"{parsed.database}."


def table_input(url: str, table: sa.Table) -> InputDataset:
    namespace, prefix = warehouse_namespace(url)
    return InputDataset(namespace=namespace, name=prefix + table.fullname)


def table_output(url: str, table: sa.Table, rows: int | None = None) -> OutputDataset:
    namespace, prefix = warehouse_namespace(url)
    facets = (
        {}
        if rows is None
        else {
            "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=rows
            )
        }
    )
    return OutputDataset(namespace=namespace, name=prefix + table.fullname, outputFacets=facets)


def file_name(path: str, protocol: str | None = None) -> tuple[str, str]:
    """``(namespace, name)`` of a file: a local path, or a path of an fsspec filesystem of
    ``protocol`` (``bucket/key``, as fsspec gives it; any ``user:password@`` is dropped)."""
    if protocol in LOCAL_PROTOCOLS:
        return "file", os.path.abspath(path)
    bucket, _, key = path.partition("/")
    return f"{protocol}://{bucket.rpartition('@')[2]}", key


def target_protocol(url: str) -> str | None:
    """The fsspec protocol of a publish target (None for a local folder)."""
    return split_protocol(url)[0]


def of_load(warehouse_url: str, group: dict, records: list[dict]) -> Lineage:
    """A ``load_month`` run: the landing files it read (by path, with their sha256 as the
    dataset version), and the tables it wrote. A file refused when found has no path (it
    was never opened, and its name may hold an NHS number), so it is not named here."""
    paths = {d["file_name"]: d["path"] for d in group["deliveries"] if d["path"]}
    loads = [r for r in map(LoadRecord.from_xcom, records) if r.file_name in paths]
    if not loads:
        return Lineage()
    inputs = [_landing_file(paths[r.file_name], r) for r in loads]
    loaded = [r for r in loads if r.status == "loaded"]
    return Lineage(inputs, [*_load_outputs(warehouse_url, loaded), _audit(warehouse_url)])


def _landing_file(path: str, record: LoadRecord) -> InputDataset:
    namespace, name = file_name(path)
    version = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=record.sha256)
    statistics = input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
        rowCount=record.rows_read
    )
    facets: dict[str, DatasetFacet] = {"version": version}
    return InputDataset(
        namespace=namespace,
        name=name,
        facets=facets,
        inputFacets={"inputStatistics": statistics},
    )


def _load_outputs(url: str, loaded: list[LoadRecord]) -> list[OutputDataset]:
    """The staging table and the quality tables a delivery's load fills."""
    if not loaded:
        return []
    source = SOURCES[loaded[0].source]
    written = [
        table_output(url, tables.STAGING[source.name], sum(r.rows_loaded for r in loaded)),
        table_output(url, tables.quality_quarantine),
        table_output(url, tables.quality_validation_runs),
    ]
    if source.has_ethnicity:
        written.append(table_output(url, tables.quality_ethnicity_completeness))
    if any(r.warnings for r in loaded):
        written.append(table_output(url, tables.quality_warnings))
    return written


def _audit(url: str) -> OutputDataset:
    return table_output(url, tables.audit_file_loads)


def of_linkage(warehouse_url: str) -> Lineage:
    """``link_ethnicity``: best-known ethnicity and linked completeness, rebuilt from the
    staging tables of every source that records ethnicity."""
    staged = [tables.STAGING[name] for name, s in SOURCES.items() if s.has_ethnicity]
    return Lineage(
        _inputs(warehouse_url, staged),
        [
            table_output(warehouse_url, tables.core_person_ethnicity),
            table_output(warehouse_url, tables.quality_ethnicity_completeness),
        ],
    )


def of_compute(warehouse_url: str) -> Lineage:
    """``compute_indicators``: the indicator catalogue and WRES, from the staging tables they
    count, best-known ethnicity, recorded completeness (DQ01) and the loads (which months
    are complete)."""
    sources = sorted({*indicator_store.sources_counted(), *wres_store.SOURCES_READ})
    read = [
        *(tables.STAGING[name] for name in sources),
        tables.core_person_ethnicity,
        tables.quality_ethnicity_completeness,
        tables.audit_file_loads,
    ]
    written = [
        tables.indicators_values,
        tables.indicators_published,
        tables.indicators_catalogue,
        tables.indicators_inputs,
        tables.indicators_not_computed,
        tables.indicators_wres,
        tables.indicators_wres_published,
        tables.indicators_compute_inputs,
    ]
    return Lineage(_inputs(warehouse_url, read), [table_output(warehouse_url, t) for t in written])


def of_publish(warehouse_url: str, publish_url: str, outcome: dict) -> Lineage:
    """``publish``: the release's files, written from the tables behind the partners' views
    (``mart.indicator_values`` and ``mart.wres``) and the loads (the release month).
    Nothing when nothing was published."""
    if not outcome.get("files"):
        return Lineage()
    read = [
        tables.indicators_published,
        tables.indicators_catalogue,
        tables.indicators_wres_published,
        tables.audit_file_loads,
    ]
    folder = outcome["path"]
    written = [
        *(f"{folder}/{name}" for name in outcome["files"]),
        ReleaseStore(publish_url).path(LATEST),
    ]
    protocol = target_protocol(publish_url)
    return Lineage(_inputs(warehouse_url, read), _files(written, protocol, OutputDataset))


def of_report(warehouse_url: str, publish_url: str, built: dict) -> Lineage:
    """``build_report``: the report's HTML and PDF, from the release's files and the loads
    and quarantine of its month (pipeline health)."""
    protocol = target_protocol(publish_url)
    health = [tables.audit_file_loads, tables.quality_quarantine]
    return Lineage(
        [
            *_files(built["release_files"], protocol, InputDataset),
            *_inputs(warehouse_url, health),
        ],
        _files([built["html"], built["pdf"]], None, OutputDataset),
    )


def _inputs(url: str, read: Iterable[sa.Table]) -> list[InputDataset]:
    return [table_input(url, t) for t in read]


def _files(paths: Iterable[str], protocol: str | None, kind: type[D]) -> list[D]:
    return [kind(*file_name(path, protocol)) for path in paths]
