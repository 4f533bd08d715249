"""Loading deliveries into a real warehouse: DuckDB and PostgreSQL, same assertions."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from transforms import tasks as pipeline
from transforms.config.settings import Settings
from transforms.ingest import load as ingest
from transforms.warehouse.engine import make_engine

HEADER = (
    "appointment_id,nhs_number,practice_code,appointment_date,appointment_status,"
    "appointment_mode,hcp_type,ethnic_category"
)
NHS = ["9434765919", "4010232137", "9990000018", "9990000026"]


def rows(n: int, start: int = 1, date: str = "2025-01-15") -> list[str]:
    return [
        f"A{i},{NHS[i % len(NHS)]},P92001,{date},Attended,Video,GP,A"
        for i in range(start, start + n)
    ]


def deliver(
    settings: Settings,
    name: str,
    lines: list[str],
    *,
    encoding: str = "utf-8",
    header: str = HEADER,
    mtime_offset: int = 0,
) -> Path:
    path = settings.landing_dir / "gp_appointments" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    data = ("\n".join([header, *lines]) + "\n").encode(encoding)
    path.write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)
    stamp = path.stat().st_mtime + mtime_offset
    os.utime(path, (stamp, stamp))
    return path


def run(settings: Settings) -> list[dict]:
    pipeline.prepare_warehouse(settings)
    groups = pipeline.find_deliveries(settings, "gp_appointments", None)
    return [r for g in groups for r in pipeline.load_month(settings, g, "test-run")]


def query(settings: Settings, sql: str) -> list[tuple]:
    engine = make_engine(settings.warehouse_url)
    with engine.connect() as conn:
        result = [tuple(r) for r in conn.execute(sa.text(sql))]

    return result


def snapshot(settings: Settings) -> dict[str, list[tuple]]:
    return {
        table: query(settings, f"select * from {table} order by 1, 2")
        for table in ("staging.stg_gp_appointments", "quality.quarantine", "audit.file_loads")
    }


def test_clean_delivery_loads_every_row(settings):
    deliver(settings, "gp_appointments_2025-01.csv", rows(5))
    [record] = run(settings)
    assert (
        record["status"],
        record["rows_read"],
        record["rows_loaded"],
        record["rows_quarantined"],
    ) == ("loaded", 5, 5, 0)
    assert query(settings, "select count(*), min(period) from staging.stg_gp_appointments") == [
        (5, "2025-01")
    ]


def test_row_faults_are_quarantined_and_the_audit_balances(settings):
    lines = rows(3) + [
        "A1,9434765919,P92001,2025-01-16,DNA,,GP,B",  # duplicate id
        "A9,9434765918,P92001,2025-01-16,DNA,,GP,B",  # bad check digit
        "A10,9434765919,P92001",  # too few fields
        "A11,9434765919,P92001,2025-01-16,DNA,,GP,B,extra",  # too many fields
        "A12,9434765919,P92001,30/02/2025,DNA,,GP,B",  # impossible date
    ]
    deliver(settings, "gp_appointments_2025-01.csv", lines)
    [record] = run(settings)
    assert (record["rows_read"], record["rows_loaded"], record["rows_quarantined"]) == (8, 3, 5)
    assert query(
        settings, "select row_number, reason from quality.quarantine order by row_number"
    ) == [
        (4, "duplicate_id"),
        (5, "invalid_nhs_number"),
        (6, "malformed_line"),
        (7, "malformed_line"),
        (8, "invalid_date"),
    ]


def test_resubmission_replaces_month_and_supersedes_previous_load(settings):
    deliver(settings, "gp_appointments_2025-01.csv", rows(5))
    run(settings)
    deliver(settings, "gp_appointments_2025-01.csv", rows(3, start=100), mtime_offset=10)
    [record] = run(settings)
    assert record["status"] == "loaded"
    assert query(
        settings, "select count(*), min(appointment_id) from staging.stg_gp_appointments"
    ) == [(3, "A100")]
    assert query(
        settings, "select status, rows_loaded from audit.file_loads order by started_at"
    ) == [("superseded", 5), ("loaded", 3)]


def test_same_bytes_delivered_again_is_unchanged_and_changes_nothing(settings):
    deliver(settings, "gp_appointments_2025-01.csv", rows(5))
    run(settings)
    before = query(settings, "select * from staging.stg_gp_appointments order by appointment_id")
    deliver(settings, "gp_appointments_2025-01.csv", rows(5), mtime_offset=10)
    [record] = run(settings)
    assert record["status"] == "unchanged"
    assert (
        query(settings, "select * from staging.stg_gp_appointments order by appointment_id")
        == before
    )


def test_rerun_with_nothing_new_does_nothing(settings):
    deliver(settings, "gp_appointments_2025-01.csv", rows(5))
    run(settings)
    before = snapshot(settings)
    assert run(settings) == []
    assert snapshot(settings) == before


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("gp_appointments_2025-01.csv", b"", "empty_file"),
        ("gp_appointments_2025-01.csv", (HEADER + "\n").encode(), "no_rows"),
        (
            "gp_appointments_2025-01.csv",
            b"appointment_id,nhs_number\nA1,9434765919\n",
            "missing_column",
        ),
        (
            "gp_appointments_2025-01.csv.gz",
            gzip.compress(("\n".join([HEADER, *rows(50)])).encode())[:60],
            "unreadable_file",
        ),
        ("gp_appointments_jan.csv", ("\n".join([HEADER, *rows(2)])).encode(), "bad_file_name"),
    ],
)
def test_file_faults_reject_the_file_and_change_nothing_else(settings, name, content, reason):
    deliver(settings, "gp_appointments_2025-01.csv", rows(5))
    run(settings)
    before = snapshot(settings)
    path = settings.landing_dir / "gp_appointments" / name
    path.write_bytes(content)
    os.utime(path, (path.stat().st_mtime + 10,) * 2)
    [record] = run(settings)
    assert record["status"] == "rejected"
    assert record["error"].startswith(f"[{reason}] {name}:")
    after = snapshot(settings)
    assert after["staging.stg_gp_appointments"] == before["staging.stg_gp_appointments"]
    assert after["quality.quarantine"] == before["quality.quarantine"]


def test_failed_load_leaves_the_warehouse_as_it_was(settings, monkeypatch):
    deliver(settings, "gp_appointments_2025-01.csv", rows(5))
    run(settings)
    before = snapshot(settings)
    deliver(settings, "gp_appointments_2025-01.csv", rows(4, start=50), mtime_offset=10)

    def fail(*_args, **_kwargs):
        raise ConnectionError("warehouse went away")

    monkeypatch.setattr(ingest, "_count_outcomes", fail)
    with pytest.raises(ConnectionError):
        run(settings)
    assert snapshot(settings) == before


def test_windows_1252_uk_dates_gzip_and_parquet_all_load(settings):
    deliver(
        settings,
        "gp_appointments_2025-01.csv",
        [
            line.replace("Video,GP,A", "Video,GP,A \u2013 White British")
            for line in rows(2, date="15/01/2025")
        ],
        encoding="cp1252",
    )
    deliver(settings, "gp_appointments_2025-02.csv.gz", rows(3, start=10, date="2025-02-03"))
    table = pa.table(
        {
            c: [v]
            for c, v in zip(
                HEADER.split(","), rows(1, start=20, date="2025-03-04")[0].split(","), strict=True
            )
        }
    )
    path = settings.landing_dir / "gp_appointments" / "gp_appointments_2025-03.parquet"
    pq.write_table(table, path)
    records = run(settings)
    assert [(r["period"], r["status"], r["rows_loaded"]) for r in records] == [
        ("2025-01", "loaded", 2),
        ("2025-02", "loaded", 3),
        ("2025-03", "loaded", 1),
    ]
    assert query(
        settings,
        "select distinct ethnic_category from staging.stg_gp_appointments where period = '2025-01'",
    ) == [("A \u2013 White British",)]


def test_no_raw_nhs_number_reaches_any_table(settings):
    deliver(
        settings,
        "gp_appointments_2025-01.csv",
        rows(4) + ["A9,9434765918,P92001,2025-01-16,DNA,,GP,B"],
    )
    run(settings)
    dump = " ".join(str(v) for rows_ in snapshot(settings).values() for row in rows_ for v in row)
    for number in [*NHS, "9434765918"]:
        assert number not in dump
