"""NHS numbers where they do not belong: in other fields, in a person_id written with
separators or a prefix, in a header name, in a file name. Each row or file is refused, and
no planted number reaches any table, any log record or anything a task returns (what
Airflow keeps in XCom). Runs on DuckDB and PostgreSQL."""

from __future__ import annotations

import json
import logging
from collections import Counter

import sqlalchemy as sa

from tests.support.deliveries import PERIOD, clean_rows, csv_bytes, deliver, rows_of
from transforms import tasks as pipeline
from transforms.config.settings import Settings
from transforms.config.sources import SOURCES
from transforms.warehouse.engine import make_engine

# Valid NHS numbers of the 999 test range, each planted once, in the form it is planted in.
IN_FIELDS = {  # ae_attendances column -> value holding an NHS number
    "ethnic_category": "9990001014",
    "lsoa_code": "E01 999 000 1022",
    "attendance_id": "APT-9990001286",
    "provider_code": "999.000.1049",  # a patterned code
    "arrival_date": "9990001057",  # a typed field: stored typed, but the reason is the number
    "age": "999/000/1065",
}
NBSP_IN_TEXT = "H \u2013 Indian 999\u00a0000\u00a01030"
IN_PERSON_ID = ["999-000-1359", "NHS9990001421", "999\u202f000\u202f1073", "9990001081"]
HEX_PSEUDONYM = "c0ffee5e9990001103ab4d2e6f8a1b3c"  # a hash, not a person: its digits are chance
IN_HEADER = "nhs_9990001111"
IN_FILE_NAME = "deaths_9990001707.csv"
PLANTED = [*IN_FIELDS.values(), NBSP_IN_TEXT, *IN_PERSON_ID, IN_HEADER, IN_FILE_NAME]
NUMBERS = ["9990001014", "9990001022", "9990001286", "9990001049", "9990001057", "9990001065"]
NUMBERS += ["9990001030", "9990001359", "9990001421", "9990001073", "9990001081", "9990001111"]
NUMBERS += ["9990001707"]


def ae_rows() -> list[dict[str, str]]:
    rows = rows_of("ae_attendances", len(IN_FIELDS) + 3)
    for row, (column, value) in zip(rows[1:], IN_FIELDS.items(), strict=False):
        row[column] = value
    rows[len(IN_FIELDS) + 1]["ethnic_category"] = NBSP_IN_TEXT
    return rows


def person_id_rows() -> list[dict[str, str]]:
    rows = rows_of("deaths", len(IN_PERSON_ID) + 2)
    ids = ["a1b2c3", *IN_PERSON_ID, HEX_PSEUDONYM]
    return [
        {"person_id": pid, **{k: v for k, v in row.items() if k not in ("nhs_number", "person_id")}}
        for pid, row in zip(ids, rows, strict=True)
    ]


def plant(settings: Settings) -> None:
    deliver(settings, "ae_attendances", f"ae_attendances_{PERIOD}.csv", csv_bytes(ae_rows()))
    deliver(settings, "deaths", f"deaths_{PERIOD}.csv", csv_bytes(person_id_rows()))
    appointments = [{**row, IN_HEADER: "x"} for row in clean_rows(SOURCES["gp_appointments"])]
    deliver(settings, "gp_appointments", f"gp_appointments_{PERIOD}.csv", csv_bytes(appointments))
    deliver(settings, "deaths", IN_FILE_NAME, csv_bytes(clean_rows(SOURCES["deaths"])), -10)


def run_all(settings: Settings) -> tuple[list[dict], list[dict]]:
    """Every step as the DAG runs it; returns what the tasks return (their XCom)."""
    pipeline.prepare_warehouse(settings)
    groups, records = [], []
    for source in ("ae_attendances", "deaths", "gp_appointments"):
        found = pipeline.find_deliveries(settings, source, None)
        groups += found
        records += [r for g in found for r in pipeline.load_month(settings, g, "leak-test")]
    return groups, records


def every_table_as_text(settings: Settings) -> str:
    engine = make_engine(settings.warehouse_url)
    with engine.connect() as conn:
        tables = conn.execute(
            sa.text(
                "select table_schema, table_name from information_schema.tables where "
                "table_schema in ('staging', 'core', 'quality', 'indicators', 'audit') "
                "and table_type = 'BASE TABLE'"
            )
        ).all()
        assert len(tables) > 15
        return "\n".join(
            repr(tuple(row))
            for schema, table in tables
            for row in conn.execute(sa.text(f'select * from {schema}."{table}"'))
        )


def leaked(text: str) -> list[str]:
    return [p for p in PLANTED + NUMBERS if p in text]


def quarantine_reasons(settings: Settings, file_name: str) -> Counter:
    with make_engine(settings.warehouse_url).connect() as conn:
        rows = conn.execute(
            sa.text("select reason from quality.quarantine where file_name = :f"),
            {"f": file_name},
        ).scalars()
        return Counter(rows)


def test_nhs_numbers_in_other_fields_quarantine_their_rows(settings):
    plant(settings)
    _, records = run_all(settings)
    ae = next(r for r in records if r["source"] == "ae_attendances")
    assert (ae["status"], ae["rows_read"], ae["rows_loaded"]) == ("loaded", 9, 2)
    assert quarantine_reasons(settings, ae["file_name"]) == Counter({"identifier_in_field": 7})


def test_a_person_id_holding_an_nhs_number_in_any_written_form_is_quarantined(settings):
    plant(settings)
    _, records = run_all(settings)
    deaths = next(r for r in records if r["file_name"] == f"deaths_{PERIOD}.csv")
    assert (deaths["status"], deaths["rows_read"], deaths["rows_loaded"]) == ("loaded", 6, 2)
    assert quarantine_reasons(settings, deaths["file_name"]) == Counter(
        {"identifier_not_pseudonymised": 4}
    )
    with make_engine(settings.warehouse_url).connect() as conn:
        kept = conn.execute(sa.text("select person_id from staging.stg_deaths")).scalars()
        assert sorted(kept) == sorted(["a1b2c3", HEX_PSEUDONYM])


def test_a_header_or_file_name_holding_an_nhs_number_rejects_the_file_masked(settings):
    plant(settings)
    groups, records = run_all(settings)
    by_reason = {r["error"].split("]")[0][1:]: r for r in records if r["status"] == "rejected"}
    header = by_reason["identifier_in_header"]
    assert header["error"].startswith(f"[identifier_in_header] gp_appointments_{PERIOD}.csv: ")
    named = by_reason["identifier_in_file_name"]
    assert named["file_name"] == "deaths_999******7.csv"
    assert named["error"].startswith("[identifier_in_file_name] deaths_999******7.csv: ")
    [misnamed] = [d for g in groups for d in g["deliveries"] if d["refused"]]
    assert misnamed["path"] == "" and misnamed["sha256"] == ""  # never read, path kept home


def test_no_planted_number_reaches_a_table_a_log_or_a_task_result(settings, caplog):
    caplog.set_level(logging.DEBUG)
    plant(settings)
    groups, records = run_all(settings)
    assert leaked(json.dumps([groups, records])) == []
    assert leaked(every_table_as_text(settings)) == []
    assert leaked("\n".join(r.getMessage() for r in caplog.records)) == []
