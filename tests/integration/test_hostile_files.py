"""Hostile or careless landing files: overwritten while loading, still arriving, gzip bombs,
control characters, values the warehouse refuses, a warehouse that fails, links and special
files, unreadable files, names that would forge a log line, nested Parquet columns. Every
file ends loaded, rejected with a reason, or in progress for the next run; the warehouse
never holds half a file. Runs on DuckDB and PostgreSQL. Faults in a file's content (encodings,
a header line with no end, names not matching in full...) are in ``test_fault_corpus``."""

from __future__ import annotations

import gzip
import io
import logging
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from tests.support.deliveries import (
    PERIOD,
    clean_rows,
    csv_bytes,
    deliver,
    load,
    outcome,
    parquet_bytes,
    query,
    reason,
    rows_of,
)
from transforms import tasks as pipeline
from transforms.config.sources import SOURCES
from transforms.core.periods import utcnow
from transforms.ingest import audit, landing, reading, rules
from transforms.ingest import load as ingest
from transforms.ops import status
from transforms.quality import validation
from transforms.warehouse.engine import make_engine


def age(path: Path, seconds: int) -> None:
    stamp = path.stat().st_mtime - seconds
    os.utime(path, (stamp, stamp))


@pytest.mark.parametrize(("suffix", "encode"), [("csv", csv_bytes), ("parquet", parquet_bytes)])
def test_a_file_overwritten_during_the_load_is_in_progress_and_loads_next_run(
    settings, monkeypatch, suffix, encode
):
    monkeypatch.setattr(reading, "BLOCK_BYTES", 4096)  # many blocks, as a big file has
    monkeypatch.setattr(reading, "PARQUET_BATCH_ROWS", 1000)
    path = settings.landing_dir / "ae_attendances" / f"ae_attendances_{PERIOD}.{suffix}"
    deliver(settings, "ae_attendances", path.name, encode(rows_of("ae_attendances", 20_000)))
    replacement = encode(rows_of("ae_attendances", 500))
    check_rows = ingest.check_rows

    def overwrite_on_first_chunk(chunk, source, period):  # an SFTP upload of a new version
        if not overwrite_on_first_chunk.done:
            overwrite_on_first_chunk.done = True
            with path.open("r+b") as handle:
                handle.truncate(0)
                handle.write(replacement)
        return check_rows(chunk, source, period)

    overwrite_on_first_chunk.done = False
    monkeypatch.setattr(ingest, "check_rows", overwrite_on_first_chunk)
    [record] = load(settings, "ae_attendances")
    assert outcome(record) == ("in_progress", 0, 0, 0)
    assert reason(record) == "in_progress"
    assert query(settings, "select count(*) from staging.stg_ae_attendances") == [(0,)]
    assert query(settings, "select count(*) from quality.quarantine") == [(0,)]
    [record] = load(settings, "ae_attendances")
    assert outcome(record) == ("loaded", 500, 500, 0)


def test_a_file_still_being_written_is_left_in_progress_and_loaded_by_the_next_run(settings):
    settings = settings.model_copy(update={"settle_seconds": 60})
    path = settings.landing_dir / "deaths" / f"deaths_{PERIOD}.csv"
    deliver(settings, "deaths", path.name, csv_bytes(clean_rows(SOURCES["deaths"])))
    [record] = load(settings, "deaths")
    assert outcome(record) == ("in_progress", 0, 0, 0)
    [shown] = status.latest_loads(make_engine(settings.warehouse_url))
    assert (shown["status"], shown["file_name"]) == ("in_progress", path.name)
    age(path, 120)  # the upload ended two minutes ago
    [record] = load(settings, "deaths")
    assert outcome(record) == ("loaded", 3, 3, 0)


def test_a_file_left_in_progress_is_planned_again_even_with_the_same_bytes(settings):
    deliver(settings, "deaths", f"deaths_{PERIOD}.csv", csv_bytes(clean_rows(SOURCES["deaths"])))
    pipeline.prepare_warehouse(settings)
    [found] = landing.scan(settings.landing_dir, "deaths")
    engine = make_engine(settings.warehouse_url)
    with engine.begin() as conn:  # a load that caught these very bytes being rewritten
        audit.record(
            conn,
            audit.LoadRecord(
                load_id="earlier",
                source="deaths",
                file_name=found.file_name,
                period=PERIOD,
                sha256=found.sha256,
                status="in_progress",
                file_modified_at=found.modified_at,
                started_at=utcnow(),
            ),
        )
    [record] = load(settings, "deaths")
    assert outcome(record) == ("loaded", 3, 3, 0)


def peak_rss_growth_mb(work) -> float:  # any callable
    """How far this process's resident memory rose above where it was while ``work`` ran."""

    def kb(field: str) -> int:
        line = next(
            x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field)
        )
        return int(line.split()[1])

    before = kb("VmRSS:")
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to now
    work()
    return (kb("VmHWM:") - before) / 1024


def gzip_bomb(path: Path, megabytes: int) -> None:
    """``megabytes`` MB of one never-ending line, compressed about a thousand times."""
    block = b"a" * (1 << 20)
    with gzip.open(path, "wb", compresslevel=6) as handle:
        for _ in range(megabytes):
            handle.write(block)


def test_gzip_bomb_is_rejected_with_bounded_memory(settings):
    path = settings.landing_dir / "deaths" / f"deaths_{PERIOD}.csv.gz"
    path.parent.mkdir(parents=True)
    gzip_bomb(path, 400)
    assert path.stat().st_size < 1 << 20
    pipeline.prepare_warehouse(settings)
    validation.gx_context(settings.var_dir)  # importing Great Expectations is not the load
    records = []
    growth = peak_rss_growth_mb(lambda: records.extend(load(settings, "deaths")))
    assert growth < 150, f"memory rose by {growth:.0f} MB"
    [record] = records
    assert outcome(record) == ("rejected", 0, 0, 0)
    assert reason(record) == "decompressed_too_large"
    assert "HEI_MAX_COMPRESSION_RATIO" in record["error"]


def test_a_compressed_file_beyond_the_size_limit_is_rejected(settings):
    settings = settings.model_copy(update={"max_decompressed_bytes": 2 << 20})
    content = csv_bytes(rows_of("deaths", 60_000))
    compressed = gzip.compress(content)
    assert len(content) > 2 << 20 and len(compressed) * 100 > len(content)  # ratio is fine
    deliver(settings, "deaths", f"deaths_{PERIOD}.csv.gz", compressed)
    [record] = load(settings, "deaths")
    assert (record["status"], reason(record)) == ("rejected", "decompressed_too_large")


def test_a_file_with_carriage_return_line_ends_loads(settings):
    content = csv_bytes(clean_rows(SOURCES["deaths"])).replace(b"\n", b"\r")
    deliver(settings, "deaths", f"deaths_{PERIOD}.csv", content)
    [record] = load(settings, "deaths")
    assert outcome(record) == ("loaded", 3, 3, 0)


def test_a_parquet_file_that_expands_too_far_is_rejected(settings):
    rows = 20_000
    table = pa.table(
        {c: [v] * rows for c, v in clean_rows(SOURCES["deaths"])[0].items()}
        | {"lsoa_code": ["E" * 1000] * rows}
    )
    path = settings.landing_dir / "deaths" / f"deaths_{PERIOD}.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table, path, use_dictionary=False, compression="zstd")
    [record] = load(settings, "deaths")
    assert (record["status"], reason(record)) == ("rejected", "decompressed_too_large")


def test_control_characters_are_quarantined_and_never_reach_the_warehouse(settings):
    rows = rows_of("ae_attendances", 4)
    rows[1]["lsoa_code"] = "E0100\x006200"
    rows[2]["ethnic_category"] = "A\x1b[31m"
    rows[3]["attendance_id"] = "R4\x7f"
    deliver(settings, "ae_attendances", f"ae_attendances_{PERIOD}.csv", csv_bytes(rows))
    [record] = load(settings, "ae_attendances")
    assert outcome(record) == ("loaded", 4, 1, 3)
    assert query(settings, "select reason, count(*) from quality.quarantine group by 1") == [
        ("control_character", 3)
    ]


@pytest.mark.parametrize(
    "warehouse_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_nul_that_escapes_the_rules_rejects_the_file_with_an_audit_row(settings, monkeypatch):
    monkeypatch.setattr(rules, "CONTROL_CHARACTERS", "[\\x{1}]")  # the rule misses NUL
    rows = rows_of("ae_attendances", 3)
    rows[1]["lsoa_code"] = "E0100\x006200"
    deliver(settings, "ae_attendances", f"ae_attendances_{PERIOD}.csv", csv_bytes(rows))
    [record] = load(settings, "ae_attendances")
    assert outcome(record) == ("rejected", 0, 0, 0)
    assert reason(record) == "unstorable_value"
    assert query(settings, "select status from audit.file_loads") == [("rejected",)]
    assert query(settings, "select count(*) from staging.stg_ae_attendances") == [(0,)]


def test_a_value_the_warehouse_refuses_rejects_the_file_with_an_audit_row(settings, monkeypatch):
    append = ingest.append_arrow

    def refuse_staging(conn, table, data):  # a real data error from the warehouse's driver
        if table.schema == "staging":
            conn.exec_driver_sql("select cast('not a number' as integer)")
        append(conn, table, data)

    monkeypatch.setattr(ingest, "append_arrow", refuse_staging)
    deliver(settings, "deaths", f"deaths_{PERIOD}.csv", csv_bytes(clean_rows(SOURCES["deaths"])))
    [record] = load(settings, "deaths")
    assert outcome(record) == ("rejected", 0, 0, 0)
    assert reason(record) == "unstorable_value"
    assert "not a number" not in record["error"]  # the database's message quotes the value


def test_a_warehouse_failure_fails_the_load_and_never_marks_the_file_rejected(
    settings, monkeypatch
):
    def fail(*_args):
        raise sa.exc.OperationalError("copy", {}, Exception("server closed the connection"))

    deliver(settings, "deaths", f"deaths_{PERIOD}.csv", csv_bytes(clean_rows(SOURCES["deaths"])))
    monkeypatch.setattr(ingest, "append_arrow", fail)
    with pytest.raises(sa.exc.OperationalError):
        load(settings, "deaths")
    assert query(settings, "select count(*) from audit.file_loads") == [(0,)]
    monkeypatch.undo()
    [record] = load(settings, "deaths")  # the retry loads it
    assert outcome(record) == ("loaded", 3, 3, 0)


def test_links_and_special_files_are_refused_unread_and_the_rest_of_the_source_loads(
    settings, tmp_path
):
    folder = settings.landing_dir / "deaths"
    folder.mkdir(parents=True)
    outside = tmp_path / "outside.csv"
    outside.write_bytes(csv_bytes(rows_of("deaths", 3)))
    deliver(settings, "deaths", "deaths_2025-01.csv", csv_bytes(clean_rows(SOURCES["deaths"])))
    (folder / "deaths_2025-02.csv").symlink_to(outside)
    (folder / "deaths_2025-03.csv").symlink_to("/proc/self/environ")
    os.mkfifo(folder / "deaths_2025-04.csv")  # reading a pipe would hang the loader
    (folder / "deaths_2025-05.csv").mkdir()
    records = load(settings, "deaths")
    assert [(r["period"], r["status"], reason(r) if r["error"] else None) for r in records] == [
        ("2025-01", "loaded", None),
        ("2025-02", "rejected", "not_a_regular_file"),
        ("2025-03", "rejected", "not_a_regular_file"),
        ("2025-04", "rejected", "not_a_regular_file"),
        ("2025-05", "rejected", "not_a_regular_file"),
    ]
    assert query(settings, "select distinct period from staging.stg_deaths") == [("2025-01",)]
    assert load(settings, "deaths") == []  # recorded once, not again every run


def test_an_unreadable_file_is_rejected_and_the_rest_of_its_source_loads(settings, monkeypatch):
    unreadable = "deaths_2025-01.csv"
    deliver(settings, "deaths", unreadable, csv_bytes(clean_rows(SOURCES["deaths"])))
    deliver(settings, "deaths", "deaths_2025-02.csv", csv_bytes(clean_rows(SOURCES["deaths"])))
    (settings.landing_dir / "deaths" / unreadable).chmod(0)
    real_os_open, real_io_open = os.open, io.open

    def denied(opener):  # the tests run as root, whom chmod does not stop
        def wrapped(path, *args, **kwargs):
            if str(path).endswith(unreadable):
                raise PermissionError(13, "Permission denied", str(path))
            return opener(path, *args, **kwargs)

        return wrapped

    monkeypatch.setattr(os, "open", denied(real_os_open))
    monkeypatch.setattr(io, "open", denied(real_io_open))
    records = load(settings, "deaths")
    assert [(r["period"], r["status"]) for r in records] == [
        ("2025-01", "rejected"),
        ("2025-02", "loaded"),
    ]
    assert reason(records[0]) == "unreadable_file"


def test_names_are_printed_escaped_so_they_cannot_forge_a_log_line(settings, caplog):
    caplog.set_level(logging.INFO)
    name = f"deaths_{PERIOD}.csv\n2025-01-01 INFO loaded 100 rows\x1b[2K\x1b[1A"
    deliver(settings, "deaths", name, csv_bytes(clean_rows(SOURCES["deaths"])))
    [record] = load(settings, "deaths")
    assert record["status"] == "rejected"
    stored = query(settings, "select file_name, error from audit.file_loads")
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("transforms")]
    for text in [*stored[0], *logged]:
        assert "\n" not in text and "\x1b" not in text
    assert "\\n2025-01-01 INFO loaded 100 rows\\x1b[2K" in stored[0][0]


def test_a_parquet_file_with_an_extra_nested_column_loads_and_ignores_it(settings):
    rows = clean_rows(SOURCES["deaths"])
    table = pa.table(
        {c: [r[c] for r in rows] for c in rows[0]}
        | {"notes": pa.array([{"by": "GP", "tags": ["a"]}] * len(rows))}
    )
    path = settings.landing_dir / "deaths" / f"deaths_{PERIOD}.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)
    [record] = load(settings, "deaths")
    assert outcome(record) == ("loaded", 3, 3, 0)
    assert record["extra_columns"] == '["notes"]'


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("lsoa_code", pa.array([b"E01006200", b"\xff\xfe", b"E01006201"], pa.binary())),
        ("lsoa_code", pa.array([["E01006200"], ["x"], ["y"]])),
    ],
    ids=["bytes that are not UTF-8", "a list"],
)
def test_a_parquet_column_with_no_text_refuses_the_file_naming_the_column(settings, column, values):
    rows = clean_rows(SOURCES["deaths"])
    table = pa.table({c: [r[c] for r in rows] for c in rows[0] if c != column} | {column: values})
    path = settings.landing_dir / "deaths" / f"deaths_{PERIOD}.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)
    [record] = load(settings, "deaths")
    assert outcome(record) == ("rejected", 0, 0, 0)
    assert reason(record) == "unreadable_file"
    assert f"column {column} (Parquet type " in record["error"]
    assert "in data rows 1 to 3" in record["error"]
