"""The fault corpus: one delivery for every fault in the data contract, plus a clean delivery
for every source, with the exact outcome each must have. Runs on DuckDB and PostgreSQL."""

from __future__ import annotations

import gzip
import os
from collections import Counter

import pytest
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
    columns = [c for c in source.columns if c.name != "person_id"]
    return [{c.name: value(c, i, source) for c in columns} for i in range(n)]


def csv_bytes(rows: list[dict[str, str]], encoding: str = "utf-8") -> bytes:
    header = list(rows[0])
    lines = [",".join(header)] + [",".join(r[h] for h in header) for r in rows]
    return ("\n".join(lines) + "\n").encode(encoding)


def deliver(
    settings: Settings, source: str, name: str, content: bytes, age_seconds: int = 0
) -> None:
    path = settings.landing_dir / source / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    stamp = path.stat().st_mtime + age_seconds
    os.utime(path, (stamp, stamp))


def load(settings: Settings, source: str) -> list[dict]:
    pipeline.prepare_warehouse(settings)
    return [
        r
        for g in pipeline.find_deliveries(settings, source, None)
        for r in pipeline.load_month(settings, g, "corpus")
    ]


def reasons(settings: Settings, load_id: str) -> Counter:
    engine = make_engine(settings.warehouse_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select reason, count(*) from quality.quarantine "
                "where load_id = :id group by reason"
            ),
            {"id": load_id},
        ).all()

    return Counter(dict(rows))


def outcome(record: dict) -> tuple:
    return record["status"], record["rows_read"], record["rows_loaded"], record["rows_quarantined"]


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_clean_delivery_of_every_source_loads_every_row(settings, source):
    deliver(settings, source, f"{source}_{PERIOD}.csv", csv_bytes(clean_rows(SOURCES[source])))
    [record] = load(settings, source)
    assert outcome(record) == ("loaded", 3, 3, 0), record["error"]


def with_fault(source: str, row: int, **changes: str) -> bytes:
    rows = clean_rows(SOURCES[source])
    rows[row].update(changes)
    return csv_bytes(rows)


ROW_FAULTS = [  # (case, source, content, quarantine reason)
    (
        "unparseable date",
        "gp_appointments",
        with_fault("gp_appointments", 1, appointment_date="15th Jan"),
        "invalid_date",
    ),
    (
        "impossible date",
        "ae_attendances",
        with_fault("ae_attendances", 1, arrival_date="31/02/2025"),
        "invalid_date",
    ),
    (
        "date outside the month",
        "inpatient_spells",
        with_fault("inpatient_spells", 1, admission_date="2024-06-01", discharge_date=""),
        "date_out_of_range",
    ),
    (
        "discharge before admission",
        "inpatient_spells",
        with_fault("inpatient_spells", 1, discharge_date="2025-01-02"),
        "inconsistent_dates",
    ),
    (
        "negative age",
        "outpatient_appointments",
        with_fault("outpatient_appointments", 1, age="-3"),
        "invalid_age",
    ),
    ("age over 120", "deaths", with_fault("deaths", 1, age="131"), "invalid_age"),
    (
        "invalid NHS number",
        "vaccinations",
        with_fault("vaccinations", 1, nhs_number="9434765918"),
        "invalid_nhs_number",
    ),
    (
        "duplicate identifier",
        "talking_therapies",
        with_fault("talking_therapies", 2, referral_id="REF1"),
        "duplicate_id",
    ),
    ("unknown code", "workforce", with_fault("workforce", 1, pay_band="Band 10"), "invalid_code"),
    (
        "required value blank",
        "recruitment",
        with_fault("recruitment", 1, appointed=""),
        "missing_value",
    ),
    (
        "malformed line",
        "gp_register",
        csv_bytes(clean_rows(SOURCES["gp_register"])).replace(
            b"\n" + b",".join(v.encode() for v in clean_rows(SOURCES["gp_register"])[1].values()),
            b"\n9434765919,P92001,too,few",
        ),
        "malformed_line",
    ),
]


@pytest.mark.parametrize(
    ("case", "source", "content", "reason"), ROW_FAULTS, ids=[c[0] for c in ROW_FAULTS]
)
def test_row_fault_is_quarantined_with_its_reason(settings, case, source, content, reason):
    deliver(settings, source, f"{source}_{PERIOD}.csv", content)
    [record] = load(settings, source)
    assert outcome(record) == ("loaded", 3, 2, 1), case
    assert reasons(settings, record["load_id"]) == Counter({reason: 1})


FILE_FAULTS = [  # (case, file name, content, audit reason)
    ("empty file", f"gp_appointments_{PERIOD}.csv", b"", "empty_file"),
    (
        "header only",
        f"gp_appointments_{PERIOD}.csv",
        csv_bytes(clean_rows(SOURCES["gp_appointments"])).split(b"\n")[0] + b"\n",
        "no_rows",
    ),
    (
        "required column missing",
        f"gp_appointments_{PERIOD}.csv",
        b"appointment_id,nhs_number\nAPP1,9434765919\n",
        "missing_column",
    ),
    (
        "truncated gzip",
        f"gp_appointments_{PERIOD}.csv.gz",
        gzip.compress(csv_bytes(clean_rows(SOURCES["gp_appointments"]) * 20))[:70],
        "unreadable_file",
    ),
    (
        "bad file name",
        "gp_appointments_january.csv",
        csv_bytes(clean_rows(SOURCES["gp_appointments"])),
        "bad_file_name",
    ),
]


@pytest.mark.parametrize(
    ("case", "name", "content", "reason"), FILE_FAULTS, ids=[c[0] for c in FILE_FAULTS]
)
def test_file_fault_rejects_the_delivery_with_an_actionable_error(
    settings, case, name, content, reason
):
    deliver(settings, "gp_appointments", name, content)
    [record] = load(settings, "gp_appointments")
    assert outcome(record) == ("rejected", 0, 0, 0), case
    assert record["error"].startswith(f"[{reason}] {name}: ")
    assert record["error"].rstrip().endswith(".")


def test_windows_1252_file_loads_and_keeps_its_characters(settings):
    rows = clean_rows(SOURCES["ae_attendances"])
    rows[0]["ethnic_category"] = "H \u2013 Indian"
    deliver(settings, "ae_attendances", f"ae_attendances_{PERIOD}.csv", csv_bytes(rows, "cp1252"))
    [record] = load(settings, "ae_attendances")
    assert outcome(record) == ("loaded", 3, 3, 0)
    engine = make_engine(settings.warehouse_url)
    with engine.connect() as conn:
        codes = conn.execute(
            sa.text(
                "select ethnic_category, ethnic_code from staging.stg_ae_attendances "
                "order by attendance_id"
            )
        ).all()
    assert [tuple(c) for c in codes][0] == ("H \u2013 Indian", "H")


def test_resubmission_supersedes_and_the_same_bytes_again_are_unchanged(settings):
    first = csv_bytes(clean_rows(SOURCES["deaths"]))
    deliver(settings, "deaths", f"deaths_{PERIOD}.csv", first)
    [original] = load(settings, "deaths")
    deliver(
        settings, "deaths", f"deaths_{PERIOD}.csv", csv_bytes(clean_rows(SOURCES["deaths"], 2)), 10
    )
    [resubmitted] = load(settings, "deaths")
    deliver(
        settings, "deaths", f"deaths_{PERIOD}.csv", csv_bytes(clean_rows(SOURCES["deaths"], 2)), 20
    )
    [again] = load(settings, "deaths")
    assert [outcome(original), outcome(resubmitted), outcome(again)] == [
        ("loaded", 3, 3, 0),
        ("loaded", 2, 2, 0),
        ("unchanged", 0, 0, 0),
    ]
    engine = make_engine(settings.warehouse_url)
    with engine.connect() as conn:
        statuses = (
            conn.execute(sa.text("select status from audit.file_loads order by started_at"))
            .scalars()
            .all()
        )
        deaths = conn.execute(sa.text("select count(*) from staging.stg_deaths")).scalar_one()
    assert (statuses, deaths) == (["superseded", "loaded", "unchanged"], 2)


def test_record_already_loaded_for_another_month_is_quarantined(settings):
    deliver(
        settings,
        "gp_appointments",
        "gp_appointments_2024-12.csv",
        csv_bytes(
            [
                {**r, "appointment_date": "2024-12-10"}
                for r in clean_rows(SOURCES["gp_appointments"])
            ]
        ),
    )
    deliver(
        settings,
        "gp_appointments",
        f"gp_appointments_{PERIOD}.csv",
        with_fault("gp_appointments", 2, appointment_id="APP9"),
        10,
    )
    december, january = load(settings, "gp_appointments")
    assert outcome(december) == ("loaded", 3, 3, 0)
    assert outcome(january) == ("loaded", 3, 1, 2)
    assert reasons(settings, january["load_id"]) == Counter({"duplicate_id": 2})


def test_a_file_with_no_valid_row_is_rejected_and_keeps_the_month(settings):
    deliver(
        settings,
        "gp_appointments",
        f"gp_appointments_{PERIOD}.csv",
        csv_bytes(clean_rows(SOURCES["gp_appointments"])),
    )
    load(settings, "gp_appointments")
    rows = clean_rows(SOURCES["gp_appointments"])
    for row in rows:
        row["appointment_status"] = "Seen"
    deliver(settings, "gp_appointments", f"gp_appointments_{PERIOD}.csv", csv_bytes(rows), 10)
    [record] = load(settings, "gp_appointments")
    assert outcome(record) == ("rejected", 0, 0, 0)
    assert record["error"].startswith("[no_valid_rows]")
    with make_engine(settings.warehouse_url).connect() as conn:
        kept = conn.execute(
            sa.text("select count(*) from staging.stg_gp_appointments")
        ).scalar_one()
    assert kept == 3


def test_quoted_newlines_load_and_an_unbalanced_quote_rejects_the_file(settings):
    rows = clean_rows(SOURCES["ae_attendances"])
    rows[0]["lsoa_code"] = '"E0100\n6200"'
    deliver(settings, "ae_attendances", f"ae_attendances_{PERIOD}.csv", csv_bytes(rows))
    [record] = load(settings, "ae_attendances")
    assert outcome(record) == ("loaded", 3, 3, 0)
    rows = clean_rows(SOURCES["ae_attendances"])
    rows[0]["lsoa_code"] = '"E01006200'
    deliver(settings, "ae_attendances", f"ae_attendances_{PERIOD}.csv", csv_bytes(rows), 10)
    [record] = load(settings, "ae_attendances")
    assert record["status"] == "rejected" and record["error"].startswith("[unreadable_file]")
    assert not any(number in record["error"] for number in VALID_NHS)


def test_a_file_without_a_header_is_rejected_without_echoing_its_data(settings):
    content = b"\n".join(csv_bytes(clean_rows(SOURCES["deaths"])).split(b"\n")[1:])
    deliver(settings, "deaths", f"deaths_{PERIOD}.csv", content)
    [record] = load(settings, "deaths")
    assert record["error"].startswith("[missing_column]")
    assert not any(number in record["error"] for number in VALID_NHS)


def test_bytes_valid_in_no_encoding_reject_the_file(settings):
    content = csv_bytes(clean_rows(SOURCES["deaths"])).replace(b"I21.9", b"I21\x81")
    deliver(settings, "deaths", f"deaths_{PERIOD}.csv", content)
    [record] = load(settings, "deaths")
    assert record["status"] == "rejected" and record["error"].startswith("[unreadable_file]")


def test_an_original_restored_with_its_old_timestamp_is_loaded_again(settings):
    original = csv_bytes(clean_rows(SOURCES["deaths"]))
    deliver(settings, "deaths", f"deaths_{PERIOD}.csv", original)
    load(settings, "deaths")
    deliver(
        settings, "deaths", f"deaths_{PERIOD}.csv", csv_bytes(clean_rows(SOURCES["deaths"], 2)), 10
    )
    load(settings, "deaths")
    deliver(settings, "deaths", f"deaths_{PERIOD}.csv", original, -10)
    [record] = load(settings, "deaths")
    assert outcome(record) == ("loaded", 3, 3, 0)


def test_a_person_id_holding_nhs_numbers_is_quarantined(settings):
    rows = clean_rows(SOURCES["deaths"])
    for row in rows:
        row["person_id"] = row.pop("nhs_number")
    rows[0]["person_id"] = "a1b2c3"
    deliver(settings, "deaths", f"deaths_{PERIOD}.csv", csv_bytes(rows))
    [record] = load(settings, "deaths")
    assert outcome(record) == ("loaded", 3, 1, 2)
    assert reasons(settings, record["load_id"]) == Counter({"identifier_not_pseudonymised": 2})
