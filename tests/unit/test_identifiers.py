import pyarrow as pa

from transforms.identifiers import pseudonymise, valid_nhs_numbers

# Check digits worked by hand: 943 476 591 -> weights 10..2 give 299, 299 % 11 = 2, 11 - 2 = 9.
VALID = ["9434765919", "943 476 5919", "4010232137"]


def test_valid_nhs_numbers_pass_modulus_11():
    assert valid_nhs_numbers(pa.array(VALID)).to_pylist() == [True, True, True]


def test_wrong_check_digit_length_letters_and_blank_fail():
    values = pa.array(["9434765918", "943476591", "94347659190", "94347A5919", None, ""])
    assert valid_nhs_numbers(values).to_pylist() == [False] * 6


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
