"""Landing files for the integration tests, loaded the way the ingest DAG loads them.

A test writes files with :func:`deliver`, loads a source with :func:`load` (each month's
deliveries planned and loaded as the DAG's tasks do) and checks what each file's record says
(:func:`outcome`, :func:`reason`) and what the warehouse holds (:func:`query`, :func:`reasons`).
"""

from __future__ import annotations

import io
import os
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from transforms import tasks as pipeline
from transforms.config.settings import Settings
from transforms.config.sources import SOURCES, Column, Source
from transforms.warehouse.engine import make_engine

PERIOD = "2025-01"
VALID_NHS = ["9434765919", "4010232137", "9990000018", "9990000026", "9990000034"]
SAMPLE = {  # one valid value per kind or pattern; identifiers are made unique per row
    "practice_code": "P92001",
    "provider_code": "RRF",
    "organisation_code": "RRF",
    "staff_organisation_code": "RRF",
    "primary_diagnosis": "J44.1",
    "underlying_cause": "I21.9",
    "lsoa_code": "E01006200",
    "ethnicity_snomed": "",
    "ethnic_category": "A",
    "treatment_function_code": "100",
    "age": "45",
    "dose_number": "1",
}


def value(column: Column, row: int, source: Source) -> str:
    """A valid value of ``column`` for data row ``row`` (0-based) of a January delivery."""
    if column.name == "nhs_number":
        return VALID_NHS[row]
    if column.name == source.record_id or column.name == "vacancy_id":
        return f"{column.name[:3].upper()}{row + 1}"
    if column.name in SAMPLE:
        return SAMPLE[column.name]
    if column.kind == "date":
        return (
            "2025-01-15"
            if "discharge" not in column.name and "end" not in column.name
            else "2025-01-20"
        )
    return {"code": column.codes[0] if column.codes else "", "bool": "Y"}.get(column.kind, "x")


def clean_rows(source: Source, n: int = 3) -> list[dict[str, str]]:
    """``n`` (at most five) clean rows of ``source`` for January 2025, one per NHS number."""
    columns = [c for c in source.columns if c.name != "person_id"]
    return [{c.name: value(c, i, source) for c in columns} for i in range(n)]


def rows_of(source: str, n: int) -> list[dict[str, str]]:
    """``n`` clean rows with distinct record identifiers (R1, R2, ...)."""
    record_id, clean = SOURCES[source].record_id, clean_rows(SOURCES[source])
    return [{**clean[i % len(clean)], record_id: f"R{i + 1}"} for i in range(n)]


def with_fault(source: str, row: int, **changes: str) -> bytes:
    """Three clean rows of ``source`` as CSV, with ``changes`` made to data row ``row``."""
    rows = clean_rows(SOURCES[source])
    rows[row].update(changes)
    return csv_bytes(rows)


def csv_bytes(rows: list[dict[str, str]], encoding: str = "utf-8") -> bytes:
    header = list(rows[0])
    lines = [",".join(header)] + [",".join(r[h] for h in header) for r in rows]
    return ("\n".join(lines) + "\n").encode(encoding)


def parquet_bytes(rows: list[dict[str, str]]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table({c: [r[c] for r in rows] for c in rows[0]}), sink, row_group_size=1000)
    return sink.getvalue()


def deliver(
    settings: Settings, source: str, name: str, content: bytes, age_seconds: int = 0
) -> None:
    """Write ``content`` as landing file ``source/name``; ``age_seconds`` moves its
    modification time (later deliveries of the same month need a later time)."""
    path = settings.landing_dir / source / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    stamp = path.stat().st_mtime + age_seconds
    os.utime(path, (stamp, stamp))


def load(settings: Settings, source: str, run_id: str = "test-run") -> list[dict]:
    """Plan and load every month of ``source`` as the DAG's tasks do: one record per file."""
    pipeline.prepare_warehouse(settings)
    return [
        r
        for g in pipeline.find_deliveries(settings, source, None)
        for r in pipeline.load_month(settings, g, run_id)
    ]


def outcome(record: dict) -> tuple:
    return record["status"], record["rows_read"], record["rows_loaded"], record["rows_quarantined"]


def reason(record: dict) -> str:
    """The reason code of a rejected or in-progress file (``[reason] name: ...``)."""
    return record["error"].split("]")[0].removeprefix("[")


def fetch(url: str, sql: str) -> list[tuple]:
    """Rows of ``sql`` on the warehouse at ``url``, the engine disposed after (a DuckDB file
    is then free for the pipeline's own processes)."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text(sql))]
    engine.dispose()
    return rows


def query(settings: Settings, sql: str) -> list[tuple]:
    with make_engine(settings.warehouse_url).connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def reasons(settings: Settings, load_id: str) -> Counter:
    """Quarantined rows of one load, counted by reason."""
    with make_engine(settings.warehouse_url).connect() as conn:
        rows = conn.execute(
            sa.text(
                "select reason, count(*) from quality.quarantine "
                "where load_id = :id group by reason"
            ),
            {"id": load_id},
        ).all()
    return Counter(dict(rows))
