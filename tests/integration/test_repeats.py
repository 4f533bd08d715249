"""The duplicate-identifier checks and what they cost: repeats are found wherever they are
in the file, a file without any is not scanned again to take them out, and PostgreSQL plans
the checks knowing the month just written. Runs on DuckDB and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.support.deliveries import load, query
from transforms.config.settings import Settings
from transforms.ingest import reading
from transforms.warehouse.engine import make_engine

HEADER = (
    "appointment_id,nhs_number,practice_code,appointment_date,appointment_status,"
    "appointment_mode,hcp_type,ethnic_category"
)


def deliver(settings: Settings, ids: list[int]) -> None:
    path = settings.landing_dir / "gp_appointments" / "gp_appointments_2025-01.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"A{i},9434765919,P92001,2025-01-15,Attended,Video,GP,A" for i in ids]
    path.write_text("\n".join([HEADER, *lines]) + "\n")


def run(settings: Settings) -> dict:
    [record] = load(settings, "gp_appointments")
    return record


def test_a_repeat_in_a_later_chunk_is_quarantined_and_taken_out(settings, monkeypatch):
    monkeypatch.setattr(reading, "BLOCK_BYTES", 1024)  # many small chunks
    deliver(settings, [*range(1, 101), 7])
    record = run(settings)
    assert (record["rows_read"], record["rows_loaded"], record["rows_quarantined"]) == (101, 100, 1)
    assert query(settings, "select row_number, reason from quality.quarantine") == [
        (101, "duplicate_id")
    ]
    assert query(
        settings, "select count(*) from staging.stg_gp_appointments where appointment_id = 'A7'"
    ) == [(1,)]


def test_a_file_without_repeats_is_not_scanned_again_to_remove_them(settings):
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    engine = make_engine(settings.warehouse_url)
    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        deliver(settings, list(range(1, 6)))
        record = run(settings)
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert (record["rows_loaded"], record["rows_quarantined"]) == (5, 0)
    statements = [s.lower() for s in statements]
    assert [s for s in statements if "having count(*) >" in s]  # the check itself ran
    assert not [s for s in statements if s.startswith("delete from staging") and "row_number" in s]


@pytest.mark.parametrize(
    "warehouse_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_postgres_plans_the_checks_with_the_new_month_sampled(settings):
    deliver(settings, list(range(1, 6)))
    run(settings)
    assert query(
        settings,
        "select reltuples from pg_class where oid = 'staging.stg_gp_appointments'::regclass",
    ) == [(5.0,)]
