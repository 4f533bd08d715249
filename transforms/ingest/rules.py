"""Row rules: type the text of a chunk, and quarantine every row that breaks the contract.

Each rule yields a boolean mask, a reason code and a sentence a person can act on; a row gets
the first reason that applies. The sentences name the field and describe the problem but
never repeat the value, because values can be identifiers. Everything is vectorised Arrow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.config.sources import Column, Source
from transforms.core.ethnicity import classify
from transforms.core.identifiers import contains_nhs_number, pseudonymise, valid_nhs_numbers
from transforms.core.periods import month_bounds
from transforms.ingest.reading import Chunk

DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y")
# C0 controls but tab, line feed and carriage return (quoted fields may span lines), DEL and
# the C1 controls: PostgreSQL cannot store NUL at all, and none of them belongs in an extract.
CONTROL_CHARACTERS = "[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f\\x{80}-\\x{9f}]"
R = TypeVar("R")
_TRUE = ("y", "yes", "1", "true", "t")
_FALSE = ("n", "no", "0", "false", "f")


@dataclass
class Checked:
    """The outcome of the row rules for one chunk."""

    rows: int  # rows in the chunk
    first_row: int  # data-row numbers of the chunk's first and last rows
    last_row: int
    good: pa.Table  # typed output columns plus ``row_number``
    quarantined: pa.Table  # row_number, reason, detail
    nhs_numbers: pa.Array | None = None  # of the good rows, until pseudonymise() replaces them


@dataclass
class Rule:
    mask: pa.Array
    reason: str
    detail: str


def pseudonymise_rows(checked: Checked, key: bytes) -> Checked:
    """Put the pseudonym in ``person_id`` and drop the NHS numbers.

    Separate from :func:`check_rows` so that loading can run it as its own pipeline stage.
    """
    if checked.nhs_numbers is None:
        return checked
    position = checked.good.column_names.index("person_id")
    good = checked.good.set_column(position, "person_id", pseudonymise(checked.nhs_numbers, key))
    return replace(checked, good=good, nhs_numbers=None)


def check_rows(chunk: Chunk, source: Source, period: str) -> Checked:
    """Apply the source's row rules to a chunk and split it into typed rows and quarantine.

    The good rows' ``person_id`` is empty until :func:`pseudonymise_rows`; their NHS numbers
    travel beside the table, never in it.
    """
    text = {name: _clean(chunk.table[name]) for name in chunk.table.column_names}
    typed: dict[str, pa.Array] = {}
    rules: list[Rule] = []
    if source.person_level:
        rules += _identifier_rules(text, typed)
    for column in source.columns:
        if column.name in ("nhs_number", "person_id"):
            continue
        values = text.get(column.name)
        if values is None:
            typed[column.name] = pa.nulls(chunk.table.num_rows, _arrow_type(column))
            continue
        rules += _column_rules(column, values, typed, source, period)
    rules = _stray_identifier_rules(source, text, typed) + _control_rules(source, text) + rules
    for earlier, later in source.date_order:
        backwards = pc.less(typed[later], typed[earlier])
        rules.append(Rule(backwards, "inconsistent_dates", f"{later} is before {earlier}"))
    if source.has_ethnicity:
        typed["ethnic_code"], typed["ethnic_status"] = _ethnicity(text, chunk.table.num_rows)
    reason, detail = _first_failure(rules, chunk.table.num_rows)
    ok = pc.is_null(reason)
    row_numbers = pa.array(chunk.row_numbers)
    good = pa.table(
        {c.name: typed[c.name] for c in source.output_columns} | {"row_number": row_numbers}
    ).filter(ok)
    quarantined = pa.table({"row_number": row_numbers, "reason": reason, "detail": detail}).filter(
        pc.invert(ok)
    )
    nhs = text["nhs_number"].filter(ok) if source.person_level and "nhs_number" in text else None
    numbers = chunk.row_numbers
    first, last = (int(numbers[0]), int(numbers[-1])) if len(numbers) else (0, 0)
    return Checked(chunk.table.num_rows, first, last, good, quarantined, nhs)


def per_value(values: pa.Array, function: Callable[[pa.Array], R]) -> R:
    """``function(values)``, computed once for each distinct value (null too) and spread back
    to the rows. A month's dates, codes, flags and ages take a few dozen values in a million
    rows: parsing each once took the row rules of a million appointments from 1.6–1.9 s of
    CPU to 0.9–1.0 s. For a per-value function only (the same value, the same result)."""
    encoded = pc.dictionary_encode(values, null_encoding="encode")
    result = function(encoded.dictionary)
    if isinstance(result, tuple):
        return tuple(part.take(encoded.indices) for part in result)  # type: ignore[return-value]
    return result.take(encoded.indices)


def _ethnicity(text: dict[str, pa.Array], n: int) -> tuple[pa.Array, pa.Array]:
    """Code and status of each row (``classify``); per distinct category unless a SNOMED
    concept column (one per person on the register) is sent beside it."""
    category = text.get("ethnic_category", pa.nulls(n, pa.string()))
    snomed = text.get("ethnicity_snomed")
    return classify(category, snomed) if snomed is not None else per_value(category, classify)


def _clean(values: pa.ChunkedArray) -> pa.Array:
    """Trimmed text with empty strings as null (the contract's 'empty = null')."""
    trimmed = pc.utf8_trim_whitespace(values.combine_chunks().cast(pa.string()))
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _identifier_rules(text: dict[str, pa.Array], typed: dict[str, pa.Array]) -> list[Rule]:
    """A person is identified by a valid NHS number (pseudonymised later) or a person_id."""
    if "nhs_number" in text:
        nhs = text["nhs_number"]
        typed["person_id"] = pa.nulls(len(nhs), pa.string())  # see pseudonymise_rows
        return [
            Rule(
                pc.is_null(nhs),
                "missing_value",
                "nhs_number is blank; every row must identify the person",
            ),
            Rule(
                pc.invert(valid_nhs_numbers(nhs)),
                "invalid_nhs_number",
                "nhs_number is not a valid NHS number (10 digits with a modulus-11 check digit)",
            ),
        ]
    person = text["person_id"]
    typed["person_id"] = person
    return [
        Rule(
            pc.is_null(person),
            "missing_value",
            "person_id is blank; every row must identify the person",
        ),
        Rule(
            pc.or_(
                pc.match_substring_regex(person, r"^[0-9 ]{10,12}$"),
                contains_nhs_number(person),
            ),
            "identifier_not_pseudonymised",
            "person_id looks like an NHS number; send NHS numbers in an nhs_number column so "
            "they are pseudonymised",
        ),
    ]


def _stray_identifier_rules(
    source: Source, text: dict[str, pa.Array], typed: dict[str, pa.Array]
) -> list[Rule]:
    """Quarantine a row whose other fields hold an NHS number (``identifier_in_field``).

    Free text is stored as sent, so all of it is searched. A typed field (date, number, code,
    flag) stores the typed value, never the text, and no NHS number types: so only its text
    that failed to type is searched, to give the row this reason rather than a bad date's.
    These rules come first: a leaked identifier is what the sender most needs to hear about.
    Like the control-character rules, a rule is only made for a column where a row breaks it.
    """
    rules = []
    for column in source.columns:
        values = text.get(column.name)
        if values is None or column.name in ("nhs_number", "person_id"):
            continue
        if column.kind != "str":
            untyped = pc.and_(pc.is_valid(values), pc.is_null(typed[column.name]))
            if not pc.any(untyped).as_py():
                continue
            values = pc.if_else(untyped, values, pa.scalar(None, pa.string()))
        rules += _rule_if_broken(
            contains_nhs_number(values),
            "identifier_in_field",
            f"{column.name} holds an NHS number; send NHS numbers only in the nhs_number "
            "column, where they are pseudonymised",
        )
    return rules


def _control_rules(source: Source, text: dict[str, pa.Array]) -> list[Rule]:
    """Quarantine a row whose stored text holds a control character (``control_character``).

    Only free text is stored as sent, so only it is searched: a cheap vectorised test passes
    the values that are all printable ASCII, and the regex looks at the rest.
    """
    rules = []
    for column in source.columns:
        values = text.get(column.name)
        if values is None or column.kind != "str" or column.name == "nhs_number":
            continue
        suspect = pc.invert(pc.fill_null(pc.ascii_is_printable(values), True))
        if not pc.any(suspect).as_py():
            continue
        searched = pc.if_else(suspect, values, pa.scalar(None, pa.string()))
        rules += _rule_if_broken(
            pc.fill_null(pc.match_substring_regex(searched, CONTROL_CHARACTERS), False),
            "control_character",
            f"{column.name} holds a control character (such as NUL); remove control "
            "characters from the extract",
        )
    return rules


def _rule_if_broken(mask: pa.Array, reason: str, detail: str) -> list[Rule]:
    """The rule, if any row breaks it. Most chunks break none of these rules, and every rule
    costs a pass over the chunk when the first failure of each row is found."""
    return [Rule(mask, reason, detail)] if pc.any(mask).as_py() else []


def _column_rules(
    column: Column, values: pa.Array, typed: dict[str, pa.Array], source: Source, period: str
) -> list[Rule]:
    rules = []
    present = pc.is_valid(values)
    if column.required and not column.allow_blank:
        rules.append(
            Rule(pc.invert(present), "missing_value", f"{column.name} is blank but required")
        )
    if column.kind == "date":
        parsed = per_value(values, parse_dates)
        typed[column.name] = parsed
        rules.append(
            Rule(
                pc.and_(present, pc.is_null(parsed)),
                "invalid_date",
                f"{column.name} is not a real date in YYYY-MM-DD or DD/MM/YYYY form",
            )
        )
        if column.name == source.event_date:
            rules.append(_date_window_rule(column, parsed, source, period))
    elif column.kind == "int":
        number = per_value(values, parse_ints)
        in_range = pc.and_(
            pc.greater_equal(
                number, column.min_value if column.min_value is not None else -(2**31)
            ),
            pc.less_equal(number, column.max_value if column.max_value is not None else 2**31 - 1),
        )
        typed[column.name] = number
        reason = "invalid_age" if column.name == "age" else "invalid_value"
        bounds = f"a whole number from {column.min_value} to {column.max_value}"
        rules.append(
            Rule(
                pc.and_(present, pc.invert(pc.fill_null(in_range, False))),
                reason,
                f"{column.name} must be {bounds}",
            )
        )
    elif column.kind == "code":
        canonical = per_value(values, partial(canonical_codes, codes=column.codes))
        typed[column.name] = canonical
        allowed = ", ".join(column.codes)
        rules.append(
            Rule(
                pc.and_(present, pc.is_null(canonical)),
                "invalid_code",
                f"{column.name} is not one of the allowed codes ({allowed})",
            )
        )
    elif column.kind == "bool":
        flag = per_value(values, parse_bools)
        typed[column.name] = flag
        rules.append(
            Rule(
                pc.and_(present, pc.is_null(flag)),
                "invalid_code",
                f"{column.name} must be Y/N, 1/0 or true/false",
            )
        )
    else:
        typed[column.name] = values
        if column.pattern:
            fits = pc.fill_null(pc.match_substring_regex(values, column.pattern), False)
            rules.append(
                Rule(
                    pc.and_(present, pc.invert(fits)),
                    "invalid_code",
                    f"{column.name} does not have the expected form ({column.pattern})",
                )
            )
    return rules


def _date_window_rule(column: Column, parsed: pa.Array, source: Source, period: str) -> Rule:
    start, end = month_bounds(period)
    earliest = start - timedelta(days=source.lag_days)
    outside = pc.or_(
        pc.less(parsed, pa.scalar(earliest, pa.date32())),
        pc.greater(parsed, pa.scalar(end, pa.date32())),
    )
    return Rule(
        pc.fill_null(outside, False),
        "date_out_of_range",
        f"{column.name} is outside the delivery month {period} "
        f"(allowed from {earliest.isoformat()} to {end.isoformat()})",
    )


DATE_SHAPES = (  # format, the exact text shape it accepts, where the day is in the text
    ("%Y-%m-%d", r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", (8, 10)),
    ("%d/%m/%Y", r"^[0-9]{2}/[0-9]{2}/[0-9]{4}$", (0, 2)),
)


def parse_dates(values: pa.Array) -> pa.Array:
    """Dates in either contract format; impossible dates (31/02/2025) give null.

    Arrow's strptime rolls 2025-02-31 over to 3 March, so a parse is accepted only if the
    parsed day of the month is the day written in the text; and it takes year 0000, which
    no calendar has (a warehouse would store it as 1 BC).
    """
    result = pa.nulls(len(values), pa.date32())
    for fmt, shape, (start, stop) in DATE_SHAPES:
        shaped = pc.fill_null(pc.match_substring_regex(values, shape), False)
        if not pc.any(shaped).as_py():  # a delivery usually writes every date one way
            continue
        text = pc.if_else(shaped, values, pa.scalar(None, pa.string()))
        stamp = pc.strptime(text, format=fmt, unit="s", error_is_null=True)
        written_day = pc.utf8_slice_codeunits(text, start, stop).cast(pa.int64())
        real = pc.fill_null(
            pc.and_(pc.equal(pc.day(stamp), written_day), pc.greater(pc.year(stamp), 0)), False
        )
        parsed = pc.if_else(real, stamp.cast(pa.date32()), pa.scalar(None, pa.date32()))
        result = pc.coalesce(result, parsed)
    return result


def canonical_codes(values: pa.Array, codes: tuple[str, ...]) -> pa.Array:
    """The allowed code in its canonical spelling (case-insensitive match), else null."""
    position = pc.index_in(pc.utf8_lower(values), value_set=pa.array([c.lower() for c in codes]))
    return pa.array(codes, type=pa.string()).take(position)


def parse_ints(values: pa.Array) -> pa.Array:
    """Whole numbers of up to nine digits, else null."""
    digits = pc.fill_null(pc.match_substring_regex(values, r"^-?[0-9]{1,9}$"), False)
    return pc.if_else(digits, values, pa.scalar(None, pa.string())).cast(pa.int32())


def parse_bools(values: pa.Array) -> pa.Array:
    lowered = pc.utf8_lower(values)
    truthy = pc.is_in(lowered, value_set=pa.array(_TRUE))
    falsy = pc.is_in(lowered, value_set=pa.array(_FALSE))
    return pc.if_else(
        truthy, True, pc.if_else(falsy, pa.scalar(False), pa.scalar(None, pa.bool_()))
    )


def _first_failure(rules: list[Rule], n: int) -> tuple[pa.Array, pa.Array]:
    """Reason and detail of the first rule each row breaks (null where it breaks none)."""
    first = np.full(n, len(rules), dtype=np.int32)  # len(rules) stands for "no failure"
    for index in range(len(rules) - 1, -1, -1):
        hit = pc.fill_null(rules[index].mask, False).to_numpy(zero_copy_only=False)
        first[hit] = index
    which = pa.array(first)
    reasons = pa.array([r.reason for r in rules] + [None], pa.string())
    details = pa.array([r.detail for r in rules] + [None], pa.string())
    return reasons.take(which), details.take(which)


def _arrow_type(column: Column) -> pa.DataType:
    return {"int": pa.int32(), "date": pa.date32(), "bool": pa.bool_()}.get(
        column.kind, pa.string()
    )
