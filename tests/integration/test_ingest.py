"""Loading deliveries into a real warehouse: DuckDB and PostgreSQL, same assertions."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import date
from itertools import count

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.deliveries import (
    csv_bytes,
    deliver,
    load,
    outcome,
    query,
    reasons,
    rows_of,
)
from transforms.ingest import load as ingest
from transforms.ingest import reading
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


def appointments(lines: list[str]) -> bytes:
    return ("\n".join([HEADER, *lines]) + "\n").encode()


def run(settings) -> list[dict]:
    return load(settings, "gp_appointments")


def snapshot(settings) -> dict[str, list[tuple]]:
    return {
        table: query(settings, f"select * from {table} order by 1, 2")
        for table in ("staging.stg_gp_appointments", "quality.quarantine", "audit.file_loads")
    }


def test_row_faults_are_quarantined_and_the_audit_balances(settings):
    lines = rows(3) + [
        "A1,9434765919,P92001,2025-01-16,DNA,,GP,B",  # duplicate id
        "A9,9434765918,P92001,2025-01-16,DNA,,GP,B",  # bad check digit
        "A10,9434765919,P92001",  # too few fields
        "A11,9434765919,P92001,2025-01-16,DNA,,GP,B,extra",  # too many fields
        "A12,9434765919,P92001,30/02/2025,DNA,,GP,B",  # impossible date
    ]
    deliver(settings, "gp_appointments", "gp_appointments_2025-01.csv", appointments(lines))
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


def test_rows_quarantined_in_any_chunk_are_kept_with_their_row_numbers(settings, monkeypatch):
    monkeypatch.setattr(reading, "BLOCK_BYTES", 256)  # chunks of a few rows
    lines = rows(40)
    bad = {7, 8, 19, 33, 40}
    for number in bad:  # a check digit that fails, in several chunks
        lines[number - 1] = lines[number - 1].replace(",9", ",8", 1).replace(",4", ",5", 1)
    deliver(settings, "gp_appointments", "gp_appointments_2025-01.csv", appointments(lines))
    [record] = run(settings)
    assert (record["rows_read"], record["rows_loaded"], record["rows_quarantined"]) == (40, 35, 5)
    assert query(settings, "select row_number, reason from quality.quarantine") == [
        (n, "invalid_nhs_number") for n in sorted(bad)
    ]
    staged = query(settings, "select row_number from staging.stg_gp_appointments order by 1")
    assert [n for (n,) in staged] == [n for n in range(1, 41) if n not in bad]


def test_an_error_while_the_rows_stream_in_is_raised_as_itself_and_keeps_nothing(
    settings, monkeypatch
):
    monkeypatch.setattr(reading, "BLOCK_BYTES", 256)
    deliver(settings, "gp_appointments", "gp_appointments_2025-01.csv", appointments(rows(40)))
    run(settings)
    before = snapshot(settings)
    lines = rows(40, start=100)
    lines[5] = lines[5].replace(",9", ",8", 1).replace(",4", ",5", 1)  # one row quarantined
    deliver(settings, "gp_appointments", "gp_appointments_2025-01.csv", appointments(lines), 10)

    class Interrupted(Exception):
        pass

    chunks = count()
    pseudonymise = ingest.pseudonymise_rows

    def fail_on_the_third_chunk(checked, key):
        if next(chunks) == 2:
            raise Interrupted("the pseudonym service stopped")
        return pseudonymise(checked, key)

    monkeypatch.setattr(ingest, "pseudonymise_rows", fail_on_the_third_chunk)
    with pytest.raises(Interrupted):
        run(settings)
    assert snapshot(settings) == before


def test_unknown_columns_load_however_often_they_repeat_but_a_known_one_twice_is_refused(
    settings,
):
    spreadsheet = [f"{line},," for line in [HEADER, *rows(3)]]  # Excel's empty trailing columns
    spreadsheet[0] += ",Notes,notes "
    spreadsheet[1:] = [f"{line},a,b" for line in spreadsheet[1:]]
    deliver(
        settings, "gp_appointments", "gp_appointments_2025-01.csv", "\n".join(spreadsheet).encode()
    )
    [record] = run(settings)
    assert outcome(record) == ("loaded", 3, 3, 0)
    assert json.loads(record["extra_columns"]) == ["(unnamed column)", "notes"]

    twice = f"{HEADER},Practice_Code\n" + "\n".join(f"{line},P92002" for line in rows(3)) + "\n"
    deliver(settings, "gp_appointments", "gp_appointments_2025-02.csv", twice.encode())
    [record] = run(settings)
    assert record["status"] == "rejected"
    assert "[duplicate_column] " in record["error"] and "practice_code" in record["error"]


def test_resubmission_replaces_the_month_and_the_same_bytes_again_change_nothing(settings):
    name = "gp_appointments_2025-01.csv"
    deliver(settings, "gp_appointments", name, appointments(rows(5)))
    [original] = run(settings)
    deliver(settings, "gp_appointments", name, appointments(rows(3, start=100)), 10)
    [resubmitted] = run(settings)
    after_resubmission = snapshot(settings)["staging.stg_gp_appointments"]
    deliver(settings, "gp_appointments", name, appointments(rows(3, start=100)), 20)
    [again] = run(settings)
    assert [outcome(original), outcome(resubmitted), outcome(again)] == [
        ("loaded", 5, 5, 0),
        ("loaded", 3, 3, 0),
        ("unchanged", 0, 0, 0),
    ]
    assert query(
        settings, "select count(*), min(appointment_id) from staging.stg_gp_appointments"
    ) == [(3, "A100")]
    assert snapshot(settings)["staging.stg_gp_appointments"] == after_resubmission
    assert query(
        settings, "select status, rows_loaded from audit.file_loads order by started_at"
    ) == [("superseded", 5), ("loaded", 3), ("unchanged", 0)]


def test_rerun_with_nothing_new_does_nothing(settings):
    deliver(settings, "gp_appointments", "gp_appointments_2025-01.csv", appointments(rows(5)))
    run(settings)
    before = snapshot(settings)
    assert run(settings) == []
    assert snapshot(settings) == before


def test_failed_load_leaves_the_warehouse_as_it_was(settings, monkeypatch):
    deliver(settings, "gp_appointments", "gp_appointments_2025-01.csv", appointments(rows(5)))
    run(settings)
    before = snapshot(settings)
    deliver(
        settings,
        "gp_appointments",
        "gp_appointments_2025-01.csv",
        appointments(rows(4, start=50)),
        10,
    )

    def fail(*_args, **_kwargs):
        raise ConnectionError("warehouse went away")

    monkeypatch.setattr(ingest, "_count_outcomes", fail)
    with pytest.raises(ConnectionError):
        run(settings)
    assert snapshot(settings) == before


def test_uk_dates_gzip_and_parquet_all_load(settings):
    deliver(
        settings,
        "gp_appointments",
        "gp_appointments_2025-01.csv",
        appointments(rows(2, date="15/01/2025")),
    )
    deliver(
        settings,
        "gp_appointments",
        "gp_appointments_2025-02.csv.gz",
        gzip.compress(appointments(rows(3, start=10, date="2025-02-03")), mtime=0),
    )
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


def test_a_windows_1252_file_loads_with_every_character_as_sent(settings):
    rows_ = rows_of("ae_attendances", 60)
    texts = [
        "H \u2013 Indian",
        "A \u2014 British",
        "S \u2013 \u2018other\u2019",
        "C \u2013 \u00e9\u00e8\u00ea",
    ]
    for i, row in enumerate(rows_):
        row["ethnic_category"] = texts[i % len(texts)]
        row["lsoa_code"] = "E0100\u00a36200" if i % 7 == 0 else row["lsoa_code"]
    content = csv_bytes(rows_, "cp1252")
    deliver(settings, "ae_attendances", "ae_attendances_2025-01.csv", content)
    [record] = load(settings, "ae_attendances")
    assert outcome(record) == ("loaded", 60, 60, 0)
    stored = query(
        settings,
        "select ethnic_category, ethnic_code, count(*) from staging.stg_ae_attendances "
        "group by 1, 2 order by 2",
    )
    assert stored == [(t, t[0], 15) for t in sorted(texts, key=lambda t: t[0])]
    assert query(
        settings, "select count(*) from staging.stg_ae_attendances where lsoa_code like '%\u00a3%'"
    ) == [(9,)]


def test_no_raw_nhs_number_reaches_any_table(settings):
    deliver(
        settings,
        "gp_appointments",
        "gp_appointments_2025-01.csv",
        appointments(rows(4) + ["A9,9434765918,P92001,2025-01-16,DNA,,GP,B"]),
    )
    run(settings)
    dump = " ".join(str(v) for rows_ in snapshot(settings).values() for row in rows_ for v in row)
    for number in [*NHS, "9434765918"]:
        assert number not in dump


VACCINATION_DATES = ("covid_vaccination_date", "flu_vaccination_date")


def test_workforce_loads_with_or_without_the_vaccination_dates_and_the_audit_says_which(settings):
    """Deliveries before the contract's second release lack the columns: they load as null
    and the audit names them absent, so a null there is not "not vaccinated"."""
    older = [
        {k: v for k, v in r.items() if k not in VACCINATION_DATES} for r in rows_of("workforce", 3)
    ]
    deliver(settings, "workforce", "workforce_2024-12.csv", csv_bytes(older))
    newer = rows_of("workforce", 4)
    doses = [("2024-10-02", ""), ("15/11/2024", "31/01/2025"), ("", ""), ("2024-02-30", "")]
    for row, (covid, flu) in zip(newer, doses, strict=True):
        row.update(covid_vaccination_date=covid, flu_vaccination_date=flu)
    deliver(settings, "workforce", "workforce_2025-01.csv", csv_bytes(newer))
    december, january = load(settings, "workforce")
    assert [outcome(december), outcome(january)] == [("loaded", 3, 3, 0), ("loaded", 4, 3, 1)]
    assert reasons(settings, january["load_id"]) == Counter(invalid_date=1)
    assert query(
        settings, "select period, absent_columns from audit.file_loads order by period"
    ) == [("2024-12", '["covid_vaccination_date", "flu_vaccination_date"]'), ("2025-01", None)]
    assert query(
        settings,
        "select period, staff_id, covid_vaccination_date, flu_vaccination_date "
        "from staging.stg_workforce order by 1, 2",
    ) == [
        ("2024-12", "R1", None, None),
        ("2024-12", "R2", None, None),
        ("2024-12", "R3", None, None),
        ("2025-01", "R1", date(2024, 10, 2), None),
        ("2025-01", "R2", date(2024, 11, 15), date(2025, 1, 31)),
        ("2025-01", "R3", None, None),
    ]


MONTH_COUNT = (
    "select count(*), min(substr(appointment_id, 2)::int), max(substr(appointment_id, 2)::int) "
    "from staging.stg_gp_appointments where period = '2025-01'"
)


@pytest.mark.postgres
@pytest.mark.parametrize("warehouse_url", ["postgres"], indirect=True)
def test_a_load_leaves_none_of_its_block_ranges_unsummarised(settings):
    """An unsummarised BRIN range matches every month, so a query for one month read the whole
    table; autovacuum's queue of ranges to summarise overflows on a bulk load."""
    deliver(settings, "gp_appointments", "gp_appointments_2025-01.csv", appointments(rows(40_000)))
    assert outcome(run(settings)[0]) == ("loaded", 40_000, 40_000, 0)
    index = "staging.stg_gp_appointments_period_brin"
    pages = query(settings, "select pg_relation_size('staging.stg_gp_appointments') / 8192")
    assert pages[0][0] > 2 * 128  # the month spans several block ranges
    left = query(settings, f"select brin_summarize_new_values('{index}')")
    assert left == [(0,)]

    # A resubmission replaces the month inside one transaction, summarised before it commits:
    # read through the index alone, the month holds the new rows, none missed.
    resent = appointments(rows(30_000, start=50_001))
    deliver(settings, "gp_appointments", "gp_appointments_2025-01.csv", resent, age_seconds=10)
    assert outcome(run(settings)[0]) == ("loaded", 30_000, 30_000, 0)
    with make_engine(settings.warehouse_url).begin() as conn:
        conn.exec_driver_sql("set local enable_seqscan = off")
        plan = conn.exec_driver_sql(f"explain {MONTH_COUNT}").scalars().all()
        assert any("stg_gp_appointments_period_brin" in line for line in plan)
        assert conn.exec_driver_sql(MONTH_COUNT).all() == [(30_000, 50_001, 80_000)]


@pytest.mark.postgres
@pytest.mark.parametrize("warehouse_url", ["postgres"], indirect=True)
def test_only_the_cross_month_duplicate_check_is_planned_for_index_lookups(settings, monkeypatch):
    """With random_page_cost at PostgreSQL's 4 the check that records are not loaded for
    another month hashed all history instead of looking them up in the index, and slowed
    month by month; set for the whole load, it slowed the register check fifteenfold."""
    seen = []

    def spying(function):
        def spy(conn, *args):
            seen.append(conn.exec_driver_sql("show random_page_cost").scalar_one())
            return function(conn, *args)

        return spy

    for name in ("_quarantine_duplicates", "_count_outcomes"):  # repeats, other months; after
        monkeypatch.setattr(ingest, name, spying(getattr(ingest, name)))
    deliver(settings, "gp_appointments", "gp_appointments_2025-01.csv", appointments(rows(3)))
    engine = make_engine(settings.warehouse_url)
    database = f'alter database "{engine.url.database}"'
    with engine.begin() as conn:
        conn.exec_driver_sql(f"{database} set random_page_cost = 2.5")  # not the default
    engine.dispose()  # new connections take the database's setting
    try:
        assert outcome(run(settings)[0]) == ("loaded", 3, 3, 0)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"{database} reset random_page_cost")
        engine.dispose()
    assert seen == ["2.5", "1.1", "2.5"]
