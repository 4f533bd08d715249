import numpy as np
import pyarrow as pa
import pytest

from transforms.config.sources import get_source
from transforms.core.ethnicity import classify
from transforms.ingest.reading import Chunk
from transforms.ingest.rules import (
    canonical_codes,
    check_rows,
    month_bounds,
    parse_dates,
    per_value,
    pseudonymise_rows,
)

KEY = b"unit-test-key"


def check_chunk(chunk, source, period, key):
    return pseudonymise_rows(check_rows(chunk, source, period), key)


def appointments(**overrides: list) -> Chunk:
    base = {
        "appointment_id": ["A1"],
        "nhs_number": ["9434765919"],
        "practice_code": ["P92001"],
        "appointment_date": ["2025-01-15"],
        "appointment_status": ["Attended"],
        "appointment_mode": ["Video"],
        "hcp_type": ["GP"],
        "ethnic_category": ["A"],
    }
    base.update(overrides)
    return Chunk(pa.table(base), np.arange(1, 2))


def reason_for(**overrides: list) -> str | None:
    checked = check_chunk(appointments(**overrides), get_source("gp_appointments"), "2025-01", KEY)
    return checked.quarantined["reason"][0].as_py() if checked.quarantined.num_rows else None


def test_impossible_and_unparseable_dates_are_null_in_both_formats():
    written = ["2025-02-31", "31/02/2025", "not a date", "2024-02-29", "29/02/2024"]
    written += ["0000-01-01", "29/02/0000", "0001-01-01"]  # no calendar has a year 0
    parsed = parse_dates(pa.array(written))
    assert [d if d is None else d.isoformat() for d in parsed.to_pylist()] == [
        None,
        None,
        None,
        "2024-02-29",
        "2024-02-29",
        None,
        None,
        "0001-01-01",
    ]


def test_month_bounds_handle_december():
    assert [d.isoformat() for d in month_bounds("2024-12")] == ["2024-12-01", "2024-12-31"]


def test_codes_match_case_insensitively_and_come_back_canonical():
    codes = ("Attended", "DNA")
    assert canonical_codes(pa.array(["dna", "ATTENDED", "x", None]), codes).to_pylist() == [
        "DNA",
        "Attended",
        None,
        None,
    ]


def test_clean_row_loads_with_pseudonym_not_nhs_number():
    checked = check_chunk(appointments(), get_source("gp_appointments"), "2025-01", KEY)
    row = checked.good.to_pylist()[0]
    assert checked.quarantined.num_rows == 0
    assert row["person_id"] != "9434765919" and len(row["person_id"]) == 32
    assert "nhs_number" not in row
    assert row["row_number"] == 1


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"nhs_number": ["9434765918"]}, "invalid_nhs_number"),
        ({"nhs_number": [""]}, "missing_value"),
        ({"appointment_date": ["2025-02-30"]}, "invalid_date"),
        ({"appointment_date": ["2024-06-01"]}, "date_out_of_range"),
        ({"appointment_date": ["2025-02-01"]}, "date_out_of_range"),
        ({"appointment_status": ["Seen"]}, "invalid_code"),
        ({"appointment_status": [" "]}, "missing_value"),
        ({"practice_code": ["p92001x"]}, "invalid_code"),
        ({"appointment_id": [None]}, "missing_value"),
    ],
)
def test_row_faults_are_quarantined_with_their_reason(overrides, reason):
    assert reason_for(**overrides) == reason


def test_late_recorded_activity_within_the_lag_is_accepted():
    assert reason_for(appointment_date=["2024-12-05"]) is None


def test_blank_optional_code_is_allowed():
    assert reason_for(appointment_mode=[""]) is None


def test_first_failing_rule_wins_and_detail_never_repeats_the_value():
    checked = check_chunk(
        appointments(nhs_number=["9434765918"], appointment_date=["31/02/2025"]),
        get_source("gp_appointments"),
        "2025-01",
        KEY,
    )
    row = checked.quarantined.to_pylist()[0]
    assert row["reason"] == "invalid_nhs_number"
    assert "9434765918" not in row["detail"]


def test_register_ages_outside_0_to_120_are_quarantined():
    chunk = Chunk(
        pa.table(
            {
                "nhs_number": ["9434765919", "4010232137", "9434765919"],
                "practice_code": ["P92001"] * 3,
                "age": ["-1", "121", "120"],
                "sex": ["1", "2", ""],
            }
        ),
        np.arange(1, 4),
    )
    checked = check_chunk(chunk, get_source("gp_register"), "2025-01", KEY)
    assert checked.quarantined["reason"].to_pylist() == ["invalid_age", "invalid_age"]
    assert checked.good["age"].to_pylist() == [120]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"ethnic_category": ["A 999 000 1359"]}, "identifier_in_field"),
        ({"appointment_id": ["APT-9990001286"]}, "identifier_in_field"),
        ({"practice_code": ["999-000-1359"]}, "identifier_in_field"),  # not invalid_code
        ({"appointment_date": ["9990001359"]}, "identifier_in_field"),  # not invalid_date
        ({"ethnic_category": ["A\x00"]}, "control_character"),
        ({"appointment_id": ["A1\x1b[2K"]}, "control_character"),
        ({"ethnic_category": ["H \u2013 Indian"]}, None),
        ({"appointment_id": ["APT000000123"]}, None),  # a 9-digit run is not an NHS number
    ],
)
def test_stray_identifiers_and_control_characters_are_quarantined_first(overrides, reason):
    assert reason_for(**overrides) == reason


def test_an_identifier_in_a_field_is_never_repeated_in_the_detail():
    checked = check_chunk(
        appointments(ethnic_category=["9990001359"]), get_source("gp_appointments"), "2025-01", KEY
    )
    assert checked.quarantined.to_pylist()[0]["detail"].startswith("ethnic_category holds an NHS")
    assert "9990001359" not in checked.quarantined.to_pylist()[0]["detail"]


@pytest.mark.parametrize(
    ("person_id", "reason"),
    [
        ("9990001359", "identifier_not_pseudonymised"),
        ("999-000-1359", "identifier_not_pseudonymised"),
        ("NHS9990001421", "identifier_not_pseudonymised"),
        ("999\u00a0000\u00a01359", "identifier_not_pseudonymised"),
        ("c0ffee5e9990001359ab4d2e6f8a1b3c", None),  # a hex pseudonym
        ("P-000123", None),
    ],
)
def test_a_person_id_that_is_an_nhs_number_in_any_form_is_quarantined(person_id, reason):
    chunk = Chunk(
        pa.table(
            {
                "person_id": [person_id],
                "practice_code": ["P92001"],
                "age": ["40"],
                "sex": ["1"],
            }
        ),
        np.arange(1, 2),
    )
    checked = check_chunk(chunk, get_source("gp_register"), "2025-01", KEY)
    found = checked.quarantined["reason"].to_pylist()
    assert found == ([reason] if reason else [])


def test_a_per_value_rule_sees_each_distinct_value_once_and_gives_every_row_its_result():
    values = pa.array(["2025-01-15", None, "15/01/2025", "2025-01-15", "2025-02-31", None])
    seen = []

    def parse(distinct):
        seen.append(distinct.to_pylist())
        return parse_dates(distinct)

    assert per_value(values, parse).equals(parse_dates(values))
    assert sorted(seen[0], key=str) == sorted(
        ["2025-01-15", None, "15/01/2025", "2025-02-31"], key=str
    )


def test_a_blank_ethnic_category_is_classified_as_not_known_when_classified_per_value():
    values = pa.array(["A", None, "z", "A - British", None, "Q"])
    assert per_value(values, classify) == classify(values)
    assert per_value(values, classify)[1].to_pylist() == [
        "known",
        "not_known",
        "not_stated",
        "known",
        "not_known",
        "invalid",
    ]
