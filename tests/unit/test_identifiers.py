import pyarrow as pa

from transforms.core.identifiers import (
    contains_nhs_number,
    holds_nhs_number,
    mask_nhs_numbers,
    pseudonymise,
    valid_nhs_numbers,
)

# Check digits worked by hand: 943 476 591 -> weights 10..2 give 299, 299 % 11 = 2, 11 - 2 = 9.
VALID = ["9434765919", "943 476 5919", "4010232137"]


def test_valid_nhs_numbers_pass_modulus_11():
    assert valid_nhs_numbers(pa.array(VALID)).to_pylist() == [True, True, True]


def test_wrong_check_digit_length_letters_and_blank_fail():
    values = pa.array(["9434765918", "943476591", "94347659190", "94347A5919", None, ""])
    assert valid_nhs_numbers(values).to_pylist() == [False] * 6


def test_validity_is_read_from_each_value_of_a_slice_or_of_large_strings():
    values = pa.array(["9434765918", *VALID, "", "94347A5919", "4010232137"])
    expected = [True, True, True, False, False, True]
    assert valid_nhs_numbers(values.slice(1)).to_pylist() == expected
    assert valid_nhs_numbers(values.slice(1).cast(pa.large_string())).to_pylist() == expected
    assert valid_nhs_numbers(values.slice(4, 0)).to_pylist() == []


def test_remainder_of_ten_is_never_valid():
    # 1000000010: weighted sum 10*1 + 2*1 = 12 -> 12 % 11 = 1 -> check 10, which is impossible
    assert valid_nhs_numbers(pa.array(["1000000010"])).to_pylist() == [False]


def test_pseudonym_is_stable_keyed_and_ignores_spaces():
    first = pseudonymise(pa.array(VALID), b"key-1").to_pylist()
    again = pseudonymise(pa.array(VALID), b"key-1").to_pylist()
    other_key = pseudonymise(pa.array(VALID), b"key-2").to_pylist()
    assert first == again
    assert first[0] == first[1]
    assert first[0] != other_key[0]
    assert all(len(p) == 32 and "9434765919" not in p for p in first)


def test_pseudonym_is_standard_hmac_sha256_truncated():
    import hashlib
    import hmac

    key = b"k" * 80  # longer than a SHA-256 block, so the key is hashed first (RFC 2104)
    values = ["9434765919", "4010232137", "9434765919"] * 1000
    expected = [hmac.new(key, v.encode(), hashlib.sha256).hexdigest()[:32] for v in values]
    assert pseudonymise(pa.array(values), key).to_pylist() == expected
    assert (
        pseudonymise(pa.array(values), b"short").to_pylist()[0]
        == hmac.new(b"short", b"9434765919", hashlib.sha256).hexdigest()[:32]
    )


# Valid numbers of the 999 test range, in every written form the detector must recognise.
WRITTEN_FORMS = [
    "9990001359",
    "999 000 1359",
    "999-000-1359",
    "999.000.1359",
    "999/000/1359",
    "999\u00a0000\u00a01359",
    "999\u202f000\u202f1359",
    "NHS9990001421",
    "APT-9990001286",
    "deaths_9990001707.csv",
    "patient 999 000 1359 seen",
    "H \u2013 Indian (9990001359)",
    "999\u2013000\u20131359",  # en dash (byte 0x96 of a Windows-1252 file)
    "999\u2014000\u20141359",  # em dash
    "999\u2212000\u22121359",  # minus sign
    "999\u2011000\u20111359",  # non-breaking hyphen
    "999\u2007000\u20071359",  # figure space
    "999\u2009000\u20091359",  # thin space
    "999\u200b000\u200b1359",  # zero-width space
    "999\u00ad000\u00ad1359",  # soft hyphen
    "999\t000\t1359",
    "999_000_1359",
    "999  000  1359",
    "999 - 000 - 1359",
    "(999) 000 1359",
    "\uff19\uff19\uff19\uff10\uff10\uff10\uff11\uff13\uff15\uff19",  # full-width digits
    "\u0669\u0669\u0669\u0660\u0660\u0660\u0661\u0663\u0665\u0669",  # Arabic-Indic digits
    "A9990001359B2025",  # hex letters around it, too short for a hash
    "999\u200e000\u200e1359",  # left-to-right marks, from text copied out of an RTL app
    "999\n000\n1359",
]


def test_nhs_numbers_are_found_in_every_common_written_form():
    assert contains_nhs_number(pa.array(WRITTEN_FORMS)).to_pylist() == [True] * len(WRITTEN_FORMS)
    assert all(holds_nhs_number(form) for form in WRITTEN_FORMS)


def test_longer_digit_runs_wrong_check_digits_and_other_groupings_are_not_nhs_numbers():
    values = [
        "99900013591",  # 11 digits: another number
        "129990001359",  # 12 digits
        "976631000000101",  # a SNOMED concept
        "9990001358",  # wrong check digit
        "99 9000 1359",  # not 3-3-4
        "2025-01-15",
        "15/01/2025",
        "APT000000123",  # the generator's record ids: 9 digits
        "E01006200",
        "2025-01-15 10:30",
        "01942 123456",  # a telephone number
        "999 000 13591",
        "9990 001 359",
        None,
        "",
    ]
    assert contains_nhs_number(pa.array(values, pa.string())).to_pylist() == [False] * len(values)


def test_digits_inside_a_hash_or_uuid_are_not_taken_for_an_nhs_number():
    hex_pseudonym = "c0ffee5e9990001359ab4d2e6f8a1b3c"
    uuid = "0f8fad5b-d9cb-469f-a165-70867728950e".replace("70867728950e", "9990001359ab")
    short_prefix = "ABC9990001359"  # not a hash: a prefix
    values = pa.array([hex_pseudonym, uuid, short_prefix])
    assert contains_nhs_number(values).to_pylist() == [False, False, True]


def test_masking_keeps_the_first_three_and_the_last_digit_of_every_ten_digit_form():
    assert mask_nhs_numbers("deaths_9990001707.csv") == "deaths_999******7.csv"
    assert mask_nhs_numbers("999-000-1707 and 1234567890") == "999-***-***7 and 123******0"
    assert mask_nhs_numbers("deaths_2025-01.csv") == "deaths_2025-01.csv"
    assert mask_nhs_numbers("deaths_2025-01 999_000_1707.csv") == "deaths_2025-01 999_***_***7.csv"
    assert mask_nhs_numbers("\u0669\u0669\u0669\u0660\u0660\u0660\u0661\u0667\u0660\u0667") == (
        "\u0669\u0669\u0669******\u0667"
    )


def test_a_column_of_other_ten_digit_numbers_is_not_taken_for_nhs_numbers():
    # Record ids whose counter reached ten digits: about one in eleven passes the check.
    ids = pa.array([f"APT{n}" for n in range(1_000_000_000, 1_000_000_200)])
    assert sum(valid_nhs_numbers(pa.array([i[3:] for i in ids.to_pylist()])).to_pylist()) > 10
    assert not any(contains_nhs_number(ids).to_pylist())
    # ... but an NHS number written as one, grouped, is still found among them
    grouped = pa.concat_arrays([ids, pa.array(["seen 999 000 1359"])])
    assert contains_nhs_number(grouped).to_pylist() == [False] * len(ids) + [True]


def test_a_grouped_nhs_number_is_found_among_other_grouped_numbers_that_fail_the_check():
    phones = ["call back on (555) 123-4567", "range 100 - 200 - 3000"] * 15
    values = pa.array([*phones, "patient 943 476 5919 seen"])
    assert contains_nhs_number(values).to_pylist() == [False] * len(phones) + [True]


def test_nhs_numbers_are_found_among_values_that_hold_no_other_ten_digit_number():
    values = pa.array(["A", "H \u2013 Indian", "9990001359", "B"] * 50 + ["999 000 1421"])
    assert sum(contains_nhs_number(values).to_pylist()) == 51
