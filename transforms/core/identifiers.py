"""NHS number validation, detection and pseudonymisation.

NHS numbers stop here: a delivery's ``nhs_number`` column is checked (modulus 11) and
replaced by a keyed HMAC-SHA256 pseudonym before anything is written, logged or quarantined.
A keyed hash (rather than a plain hash) matters because the NHS number space is small enough
to enumerate: without the key nobody can rebuild the mapping.

NHS numbers also turn up where they should not: in other fields, in file names, in header
names. :func:`contains_nhs_number` (a column) and :func:`holds_nhs_number` (one text) find
them in any common written form, so those rows and files can be refused before the number is
stored or printed, and :func:`mask_nhs_numbers` makes a name safe to show.
"""

from __future__ import annotations

import hashlib
import re

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PSEUDONYM_HEX_CHARS = 32  # 128 bits: collision-free at any population size we will see
_WEIGHTS = np.arange(10, 1, -1, dtype=np.int64)  # weights 10..2 for the first nine digits

# The written forms of an NHS number: ten digits, ungrouped or grouped 3-3-4 with up to three
# separating characters: spaces of any width (tab, non-breaking, figure, thin), dashes of any
# kind (hyphen, en and em dash, minus sign), dots, slashes, underscores, brackets and the
# invisible ones (zero-width space, soft hyphen). The digits may be any script's (full-width,
# Arabic-Indic): a person reads them the same. Letters or other text may surround it
# (``NHS9434765919``, ``APT-943 476 5919``), but not another digit: a run of 11 or more
# digits is a different number (a SNOMED concept, a UPRN), not an NHS number.
_SEPARATORS = (
    " \t\n\r\v\f\u00a0\u1680\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u2069"  # spaces,
    "\u3000\ufeff\u034f"  # zero-width characters, direction marks and joiners
    "\u00ad\\-\u2010-\u2015\u2212\ufe58\ufe63\uff0d"  # hyphens and dashes
    "./_()"
)


def _written(digit: str, least: tuple[int, int] = (0, 0)) -> str:
    """Ten digits grouped 3-3-4, with ``least`` (each) to three separating characters
    after the first group and after the second."""
    first, second = (f"[{_SEPARATORS}]{{{n},3}}" for n in least)
    return f"{digit}{{3}}{first}{digit}{{3}}{second}{digit}{{4}}"


_DIGIT, _DIGIT_RE2 = r"\d", r"\p{Nd}"  # a digit of any script, in Python's and in RE2's syntax
_WRITTEN = re.compile(f"(?<!{_DIGIT}){_written(_DIGIT)}(?!{_DIGIT})")
_WRITTEN_RE2 = f"(?:^|[^{_DIGIT_RE2}]){_written(_DIGIT_RE2)}(?:[^{_DIGIT_RE2}]|$)"
_GROUPED_RE2 = (  # the forms with at least one separating character
    f"(?:^|[^{_DIGIT_RE2}])(?:{_written(_DIGIT_RE2, (1, 0))}|{_written(_DIGIT_RE2, (0, 1))})"
    f"(?:[^{_DIGIT_RE2}]|$)"
)
# A hash or pseudonym (hex of 32+ characters, or a UUID) has digit runs by chance: about 1 in
# 300 random 128-bit hex pseudonyms holds ten digits that pass the check (measured). Digits
# inside such a token are not taken for an NHS number; a shorter run of hex (``A9990001359B``)
# is an identifier with letters around it, and is searched.
_HEX_TOKEN = re.compile(
    "[0-9A-Fa-f]{32,}|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
)
CHANCE_SAMPLE = 1000  # values looked at before a column is judged (see _passing_by_chance)
CHANCE_MIN_FAILING = 10


def valid_nhs_numbers(values: pa.Array) -> pa.Array:
    """Boolean array: True where the value is a 10-digit NHS number with a correct check digit.

    Spaces are allowed between digit groups (``943 476 5919``); nulls give False. Every value
    is checked on every row of every delivery, so the digits are read straight from the
    text's bytes (ten ASCII digits per value once the others are set aside), not by
    arithmetic on the number.
    """
    digits_only = without_spaces(values)
    ten_long = pc.equal(pc.binary_length(digits_only), 10)
    well_formed = pc.fill_null(pc.and_(ten_long, pc.ascii_is_decimal(digits_only)), False)
    ten_digits = pc.if_else(well_formed, digits_only, "0000000000")
    if not isinstance(ten_digits, pa.Array):
        ten_digits = ten_digits.combine_chunks()
    _, offsets, data = ten_digits.buffers()
    width = np.int64 if pa.types.is_large_string(ten_digits.type) else np.int32
    first = int(np.frombuffer(offsets, dtype=width)[ten_digits.offset])  # a slice starts late
    text = np.frombuffer(data, dtype=np.uint8)[first : first + 10 * len(values)]
    digits = text.reshape(-1, 10).astype(np.int64) - ord("0")
    remainder = (digits[:, :9] @ _WEIGHTS) % 11
    check = (11 - remainder) % 11  # 11 -> 0; 10 stays 10, which no digit can match
    ok = (check == digits[:, 9]) & well_formed.to_numpy(zero_copy_only=False)
    return pa.array(ok, type=pa.bool_())


def without_spaces(values: pa.Array) -> pa.Array:
    """The values with their spaces removed (most columns have none: nothing is copied)."""
    if pc.any(pc.match_substring(values, " ")).as_py():
        return pc.replace_substring(values, " ", "")
    return values


def contains_nhs_number(values: pa.Array) -> pa.Array:
    """Boolean array: True where the text holds a valid NHS number in any written form.

    One vectorised regex finds the values with a candidate (most have none, and a column of
    values shorter than ten characters is not searched at all); only those are looked at
    one by one, for every candidate in them. Nulls give False. A column whose plain runs of
    ten digits pass the check digit no more than chance would holds numbers of another kind
    (see :func:`_passing_by_chance`): those runs are not taken for NHS numbers, but a
    grouped form (``943 476 5919``), the way NHS numbers are written, still is.
    """
    found = np.zeros(len(values), dtype=bool)
    if len(values) == 0 or (pc.max(pc.binary_length(values)).as_py() or 0) < 10:
        return pa.array(found)
    rows = _matching(values, _WRITTEN_RE2)
    if len(rows) == 0:
        return pa.array(found)
    _, valid, plain = _checked_candidates(values, rows[:CHANCE_SAMPLE])
    by_chance = _passing_by_chance(valid[plain])
    if by_chance:
        rows = _matching(values, _GROUPED_RE2)
    owners, valid, plain = _checked_candidates(values, rows)
    if by_chance:
        valid &= ~plain
    found[owners[valid]] = True
    return pa.array(found)


def _matching(values: pa.Array, pattern: str) -> np.ndarray:
    """Positions of the values in which ``pattern`` (RE2) finds something."""
    hit = pc.fill_null(pc.match_substring_regex(values, pattern), False)
    return np.flatnonzero(hit.to_numpy(zero_copy_only=False))


def _checked_candidates(
    values: pa.Array, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every candidate in the values at ``rows``: the row it is in, whether it passes the
    check digit, and whether it is written as ten plain digits."""
    owners, numbers, plain = [], [], []
    for row, text in zip(rows, values.take(pa.array(rows, pa.int64())).to_pylist(), strict=True):
        found = _candidates(text)
        owners += [row] * len(found)
        numbers += [digits for digits, _ in found]
        plain += [ungrouped for _, ungrouped in found]
    valid = valid_nhs_numbers(pa.array(numbers, pa.string())).to_numpy(zero_copy_only=False)
    return np.array(owners, dtype=np.int64), valid, np.array(plain, dtype=bool)


def _passing_by_chance(valid: np.ndarray) -> bool:
    """NHS numbers always pass the check digit; other ten-digit numbers (a supplier's own
    record ids, say ``APT1234567890``) pass about one time in eleven. Where most of a
    column's ten-digit numbers fail, they are of that other kind, and the ones that pass do
    so by chance: quarantining them would drop one real row in eleven."""
    failing = int(np.count_nonzero(~valid))
    return failing >= CHANCE_MIN_FAILING and failing > len(valid) - failing


def holds_nhs_number(text: str) -> bool:
    """True if ``text`` (a file name, a column name) holds a valid NHS number in any
    written form, outside a hash or UUID."""
    found = [digits for digits, _ in _candidates(text)]
    return bool(found) and any(valid_nhs_numbers(pa.array(found, pa.string())).to_pylist())


def _candidates(text: str) -> list[tuple[str, bool]]:
    """Every written form in ``text`` that is not inside a hash or UUID: its digits (as
    ASCII), and whether it is written as ten plain digits."""
    tokens = [m.span() for m in _HEX_TOKEN.finditer(text)]
    return [
        ("".join(str(int(c)) for c in m.group() if c.isdecimal()), len(m.group()) == 10)
        for m in _WRITTEN.finditer(text)
        if not any(start <= m.start() and m.end() <= end for start, end in tokens)
    ]


def mask_nhs_numbers(text: str) -> str:
    """``text`` with every ten-digit written form masked but its first three and last digit,
    valid or not (``deaths_9990001707.csv`` -> ``deaths_999******7.csv``): safe to log."""
    return _WRITTEN.sub(_mask, text)


def _mask(match: re.Match[str]) -> str:
    number = match.group()
    last = len(number) - 1
    return "".join(
        c if not c.isdigit() or i < 3 or i == last else "*" for i, c in enumerate(number)
    )


def pseudonymise(values: pa.Array, key: bytes) -> pa.Array:
    """Replace each value by the first 128 bits of HMAC-SHA256(key, value), as hex.

    Spaces are removed first so that ``9434765919`` and ``943 476 5919`` give the same
    pseudonym. Each distinct value is hashed once (appointments repeat people many times).
    The HMAC is computed by an in-memory DuckDB engine, vectorised and about three times
    faster than a Python loop; it is a private compute engine, never the warehouse.
    """
    encoded = pc.dictionary_encode(without_spaces(values))
    inner_pad, outer_pad = _hmac_pads(key)
    engine = duckdb.connect()
    try:
        engine.register("distinct_values", pa.table({"v": encoded.dictionary}))
        # A plain projection keeps the input order (DuckDB's preserve_insertion_order).
        hashed = (
            engine.sql(
                "select substr(sha256($outer::blob || unhex(sha256($inner::blob || encode(v)))), "
                f"1, {PSEUDONYM_HEX_CHARS}) from distinct_values",
                params={"inner": inner_pad, "outer": outer_pad},
            )
            .to_arrow_table()
            .column(0)
            .combine_chunks()
        )
    finally:
        engine.close()
    return hashed.take(encoded.indices)


def _hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """The HMAC inner and outer key blocks (RFC 2104) for SHA-256's 64-byte block size."""
    block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)
