import os

from transforms.ingest.landing import parse_period, printable_name, scan


def test_a_name_must_match_the_pattern_in_full():
    assert parse_period("deaths_2025-01.csv", "deaths") == "2025-01"
    assert parse_period("deaths_2025-01.csv.gz", "deaths") == "2025-01"
    assert parse_period("deaths_2025-01.csv\n", "deaths") is None
    assert parse_period("deaths_2025-01.csv.bak", "deaths") is None
    assert parse_period("old_deaths_2025-01.csv", "deaths") is None


def test_a_month_outside_1900_to_2099_or_in_other_digits_is_not_a_month():
    assert parse_period("deaths_1900-01.csv", "deaths") == "1900-01"
    assert parse_period("deaths_2099-12.parquet", "deaths") == "2099-12"
    for name in ("deaths_0000-01.csv", "deaths_9999-12.csv", "deaths_2025-13.csv"):
        assert parse_period(name, "deaths") is None, name
    assert parse_period("deaths_\u0662\u0660\u0662\u0665-01.csv", "deaths") is None  # Arabic-Indic
    assert parse_period("deaths_\uff12\uff10\uff12\uff15-01.csv", "deaths") is None  # full-width


def test_printable_names_escape_control_characters_and_mask_nhs_numbers():
    assert printable_name("deaths_2025-01.csv") == "deaths_2025-01.csv"
    assert printable_name("a\nb\x1b[2K\\c") == "a\\nb\\x1b[2K\\\\c"
    assert printable_name("deaths_999 000 1707.csv") == "deaths_999 *** ***7.csv"


def test_a_name_that_is_not_utf8_is_refused_printably(tmp_path):
    folder = tmp_path / "deaths"
    folder.mkdir()
    with open(os.path.join(os.fsencode(folder), b"deaths_2025-01\xe9.csv"), "wb") as handle:
        handle.write(b"person_id\n")
    [found] = scan(tmp_path, "deaths")
    assert (found.refused, found.path, found.file_name) == (
        "bad_file_name",
        "",
        "deaths_2025-01\\udce9.csv",
    )
