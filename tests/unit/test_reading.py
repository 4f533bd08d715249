import io

import pytest

from transforms.config.sources import get_source
from transforms.ingest.errors import DeliveryRejected
from transforms.ingest.reading import SMALL_FILE_BYTES, ReadLimits, detect_encoding, map_header

HEADER = b"attendance_id,ethnic_category\n"


def encoding_of(content: bytes) -> str:
    return detect_encoding(lambda: io.BytesIO(content), "ae_attendances_2025-01.csv")


def rejection_of(content: bytes) -> str:
    with pytest.raises(DeliveryRejected) as caught:
        encoding_of(content)
    return f"[{caught.value.reason}] {caught.value}"


def lines(*rows: str, encoding: str = "utf-8") -> bytes:
    return HEADER + "".join(f"R{i},{r}\n" for i, r in enumerate(rows, 1)).encode(encoding)


def test_utf8_with_or_without_bom_and_plain_ascii_are_utf8():
    assert encoding_of(lines("H \u2013 Indian", "A")) == "utf-8"
    assert encoding_of(b"\xef\xbb\xbf" + lines("A")) == "utf-8"
    assert encoding_of(lines("A", "B")) == "utf-8"


def test_a_file_in_windows_1252_throughout_is_windows_1252():
    rows = ["H \u2013 Indian", "C \u2013 caf\u00e9", "S \u2018other\u2019", "A \u00a3"] * 50
    assert encoding_of(lines(*rows, encoding="cp1252")) == "cp1252"


def test_a_stray_byte_in_a_utf8_file_is_rejected_naming_its_line():
    content = lines(*["H \u2013 Indian"] * 10) + b"R11,H \x96 Indian\n"
    error = rejection_of(content)
    assert error.startswith("[mixed_encoding] ae_attendances_2025-01.csv: line 12 ")
    assert "not UTF-8, in a file otherwise UTF-8" in error


def test_one_utf8_line_in_a_windows_1252_file_is_rejected_naming_it():
    content = (
        lines(*["H \u2013 Indian"] * 10, encoding="cp1252")
        + lines("H \u2013 Indian")[len(HEADER) :]
    )
    error = rejection_of(content)
    assert error.startswith("[mixed_encoding] ae_attendances_2025-01.csv: line 12 ")
    assert "is UTF-8, in a file otherwise Windows-1252" in error


def test_a_byte_that_is_in_neither_encoding_is_rejected_naming_its_line():
    error = rejection_of(lines("A", "B") + b"R3,I21\x81\n")
    assert error.startswith("[unreadable_file] ae_attendances_2025-01.csv: line 4 ")


def test_line_numbers_count_carriage_return_line_ends_too():
    content = lines(*["H \u2013 Indian"] * 3).replace(b"\n", b"\r") + b"R4,\x96\r"
    assert rejection_of(content).startswith("[mixed_encoding] ae_attendances_2025-01.csv: line 5 ")


def test_an_empty_file_is_rejected():
    assert rejection_of(b"").startswith("[empty_file]")


def test_the_ratio_limit_applies_beyond_a_small_file_and_the_size_limit_always():
    limits = ReadLimits(max_decompressed_bytes=10 << 20, max_compression_ratio=100)
    assert limits.allowed(100) == SMALL_FILE_BYTES  # a tiny gzip may still hold a small file
    assert limits.allowed(50_000) == 5_000_000
    assert limits.allowed(1 << 30) == 10 << 20


def test_optional_columns_a_file_lacks_are_listed_as_absent_but_the_person_identifier_never():
    workforce = [c.name for c in get_source("workforce").columns if "vaccination" not in c.name]
    header = map_header([*workforce, "notes"], get_source("workforce"), "workforce_2024-03.csv")
    assert header.absent == ["covid_vaccination_date", "flu_vaccination_date"]
    assert header.extra == ["notes"]
    appointments = ["appointment_id", "nhs_number", "practice_code", "appointment_date"]
    header = map_header(
        [*appointments, "appointment_status"], get_source("gp_appointments"), "x.csv"
    )
    assert header.absent == ["appointment_mode", "hcp_type", "ethnic_category"]
