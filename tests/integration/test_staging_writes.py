"""How a delivery's rows reach staging: one bulk write for the month however many chunks it
is read in (DuckDB writes one statement much faster than one per chunk), and, when many rows
break the rules, writes in stretches that lose no row. Runs on DuckDB and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.support.deliveries import load, query
from transforms.config.settings import Settings
from transforms.ingest import load as ingest
from transforms.ingest import reading

HEADER = (
    "appointment_id,nhs_number,practice_code,appointment_date,appointment_status,"
    "appointment_mode,hcp_type,ethnic_category"
)
ROWS = 200
BAD_EVERY = 5  # rows 5, 10, ... have an impossible date


def deliver(settings: Settings) -> None:
    path = settings.landing_dir / "gp_appointments" / "gp_appointments_2025-01.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"A{i},9434765919,P92001,{'2025-01-32' if i % BAD_EVERY == 0 else '2025-01-15'},"
        "Attended,Video,GP,A"
        for i in range(1, ROWS + 1)
    ]
    path.write_text("\n".join([HEADER, *lines]) + "\n")


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Tables written to staging, per write, with reading in many small chunks."""
    monkeypatch.setattr(reading, "BLOCK_BYTES", 1024)
    counted: list[int] = []
    append = ingest.append_stream

    def counting(conn, table, tables):
        counted.append(0)

        def each():
            for data in tables:
                counted[-1] += 1
                yield data

        append(conn, table, each())

    monkeypatch.setattr(ingest, "append_stream", counting)
    return counted


def test_a_month_read_in_many_chunks_is_written_to_staging_at_once(settings, writes):
    deliver(settings)
    [record] = load(settings, "gp_appointments")
    assert (record["rows_read"], record["rows_loaded"]) == (ROWS, ROWS - ROWS // BAD_EVERY)
    assert len(writes) == 1
    assert writes[0] > 10  # the chunks, all in that one write


def test_rows_held_for_quarantine_end_a_write_and_no_row_is_lost(settings, writes, monkeypatch):
    monkeypatch.setattr(ingest, "QUARANTINE_HELD_ROWS", 3)
    deliver(settings)
    [record] = load(settings, "gp_appointments")
    bad = list(range(BAD_EVERY, ROWS + 1, BAD_EVERY))
    assert (record["rows_read"], record["rows_loaded"], record["rows_quarantined"]) == (
        ROWS,
        ROWS - len(bad),
        len(bad),
    )
    assert len(writes) > 2
    assert query(settings, "select row_number from quality.quarantine order by 1") == [
        (n,) for n in bad
    ]
    assert query(
        settings, "select count(distinct row_number), count(*) from staging.stg_gp_appointments"
    ) == [(ROWS - len(bad), ROWS - len(bad))]
