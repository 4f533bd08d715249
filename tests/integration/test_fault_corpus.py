"""The fault corpus: one delivery for every fault in the data contract, plus a clean delivery
for every source, with the exact outcome each must have. Runs on DuckDB and PostgreSQL."""

from __future__ import annotations

import gzip
import io
import zipfile
from collections import Counter

import pytest

from tests.support.deliveries import (
    PERIOD,
    VALID_NHS,
    clean_rows,
    csv_bytes,
    deliver,
    load,
    outcome,
    query,
    reasons,
    rows_of,
    with_fault,
)
from transforms.config.sources import SOURCES


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_clean_delivery_of_every_source_loads_every_row(settings, source):
    deliver(settings, source, f"{source}_{PERIOD}.csv", csv_bytes(clean_rows(SOURCES[source])))
    [record] = load(settings, source)
    assert outcome(record) == ("loaded", 3, 3, 0), record["error"]
    assert query(settings, f"select count(*), min(period) from staging.stg_{source}") == [
        (3, PERIOD)
    ]


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


def _mixed_encoding() -> bytes:
    """200 UTF-8 rows with one Windows-1252 dash in the 120th data row (line 121)."""
    rows = rows_of("gp_appointments", 200)
    for row in rows:
        row["ethnic_category"] = "H \u2013 Indian"
    content = csv_bytes(rows)
    stray = content.index(b"R120,") + 5
    return content[:stray] + content[stray:].replace("\u2013".encode(), b"\x96", 1)


def _unbalanced_quote() -> bytes:
    rows = clean_rows(SOURCES["gp_appointments"])
    rows[0]["practice_code"] = '"P92001'
    return csv_bytes(rows)


CLEAN = csv_bytes(clean_rows(SOURCES["gp_appointments"]))
NO_ENCODING = CLEAN.replace(b"P92001", b"P92\x81", 1)  # 0x81 is in neither UTF-8 nor cp1252
MONTH_FILE = f"gp_appointments_{PERIOD}.csv"
STORED = ("staging.stg_gp_appointments", "quality.quarantine")  # what a rejection leaves alone


def _zipped(content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("extract.csv", content)
    return buffer.getvalue()


FILE_FAULTS = [  # (case, file name, content, reason, what the error must also say)
    ("empty file", MONTH_FILE, b"", "empty_file", ""),
    ("header only", MONTH_FILE, CLEAN.split(b"\n")[0] + b"\n", "no_rows", ""),
    (
        "required column missing",
        MONTH_FILE,
        b"appointment_id,nhs_number\nAPP1,9434765919\n",
        "missing_column",
        "",
    ),
    ("no header line", MONTH_FILE, CLEAN.split(b"\n", 1)[1], "missing_column", ""),
    (
        "truncated gzip",
        f"gp_appointments_{PERIOD}.csv.gz",
        gzip.compress(csv_bytes(clean_rows(SOURCES["gp_appointments"]) * 20))[:70],
        "unreadable_file",
        "",
    ),
    (
        "unbalanced quote",
        MONTH_FILE,
        _unbalanced_quote(),
        "unreadable_file",
        "from data row 1",
    ),
    ("a byte in no encoding", MONTH_FILE, NO_ENCODING, "unreadable_file", ""),
    ("mixed encodings", MONTH_FILE, _mixed_encoding(), "mixed_encoding", "line 121 "),
    (
        "header line with no end",
        MONTH_FILE,
        b"appointment_id," + b"x" * (3 << 20),
        "unreadable_file",
        "first line is longer than",
    ),
    ("bad file name", "gp_appointments_january.csv", CLEAN, "bad_file_name", ""),
    ("name matching only in part", f"{MONTH_FILE}\n", CLEAN, "bad_file_name", ""),
    ("year 0000", "gp_appointments_0000-01.csv", CLEAN, "bad_file_name", "1900-01 to 2099-12"),
    ("gzip named .csv", MONTH_FILE, gzip.compress(CLEAN), "unreadable_file", "gzip-compressed"),
    (
        "corrupt deflate data",
        f"gp_appointments_{PERIOD}.csv.gz",
        gzip.compress(CLEAN)[:12] + b"\xff" * 40,
        "unreadable_file",
        "the compressed data ends early or is not gzip",
    ),
    (
        "gzip twice",
        f"gp_appointments_{PERIOD}.csv.gz",
        gzip.compress(gzip.compress(CLEAN)),
        "unreadable_file",
        "gzip-compressed",
    ),
    ("zip named .csv", MONTH_FILE, _zipped(CLEAN), "unreadable_file", "zip archive"),
    ("Parquet named .csv", MONTH_FILE, b"PAR1" + bytes(100), "unreadable_file", "a Parquet file"),
    ("UTF-16", MONTH_FILE, CLEAN.decode().encode("utf-16"), "unreadable_file", "UTF-16 text"),
    ("only blank lines", MONTH_FILE, b"\xef\xbb\xbf\r\n\n\n", "empty_file", "only blank lines"),
    ("blank first line", MONTH_FILE, b"\n" + CLEAN, "missing_column", "its first line is blank"),
    (
        "semicolon separators",
        MONTH_FILE,
        CLEAN.replace(b",", b";"),
        "missing_column",
        "the file looks separated by semicolons",
    ),
]


@pytest.mark.parametrize(
    ("case", "name", "content", "reason", "says"), FILE_FAULTS, ids=[c[0] for c in FILE_FAULTS]
)
def test_file_fault_rejects_the_file_saying_why_and_changes_nothing_else(
    settings, case, name, content, reason, says
):
    deliver(settings, "gp_appointments", MONTH_FILE, CLEAN)
    [loaded] = load(settings, "gp_appointments")
    before = [query(settings, f"select * from {t} order by 1, 2") for t in STORED]
    deliver(settings, "gp_appointments", name, content, 10)
    [record] = load(settings, "gp_appointments")
    shown = name.replace("\n", "\\n")  # names are printed escaped
    assert outcome(record) == ("rejected", 0, 0, 0), case
    assert record["file_name"] == shown
    assert record["error"].startswith(f"[{reason}] {shown}: "), record["error"]
    assert record["error"].rstrip().endswith("."), record["error"]
    assert says in record["error"]
    assert not any(number in record["error"] for number in VALID_NHS)  # no data echoed
    assert [query(settings, f"select * from {t} order by 1, 2") for t in STORED] == before
    assert query(settings, "select load_id, status from audit.file_loads order by started_at") == [
        (loaded["load_id"], "loaded"),
        (record["load_id"], "rejected"),
    ]


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
    assert (
        "3 row(s) invalid_code: appointment_status is not one of the allowed codes"
        in (record["error"])
    )  # the quarantined rows roll back with the load: the message says why
    assert "first at row 1" in record["error"] and "Seen" not in record["error"]
    assert query(settings, "select count(*) from staging.stg_gp_appointments") == [(3,)]


def test_quoted_newlines_load(settings):
    rows = clean_rows(SOURCES["ae_attendances"])
    rows[0]["lsoa_code"] = '"E0100\n6200"'
    deliver(settings, "ae_attendances", f"ae_attendances_{PERIOD}.csv", csv_bytes(rows))
    [record] = load(settings, "ae_attendances")
    assert outcome(record) == ("loaded", 3, 3, 0)


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
