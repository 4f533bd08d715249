from transforms.landing import parse_period, printable_name


def test_a_name_must_match_the_pattern_in_full():
    assert parse_period("deaths_2025-01.csv", "deaths") == "2025-01"
    assert parse_period("deaths_2025-01.csv.gz", "deaths") == "2025-01"
    assert parse_period("deaths_2025-01.csv\n", "deaths") is None
    assert parse_period("deaths_2025-01.csv.bak", "deaths") is None
    assert parse_period("old_deaths_2025-01.csv", "deaths") is None


def test_printable_names_escape_control_characters_and_mask_nhs_numbers():
    assert printable_name("deaths_2025-01.csv") == "deaths_2025-01.csv"
    assert printable_name("a\nb\x1b[2K\\c") == "a\\nb\\x1b[2K\\\\c"
    assert printable_name("deaths_999 000 1707.csv") == "deaths_999 *** ***7.csv"
