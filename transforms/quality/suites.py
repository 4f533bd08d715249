"""Suite builders: the catalogue's rules, expressed for Great Expectations 1.x.

Suites are rebuilt for each delivery because the event-date window depends on its month.
Identifiers (``person_id``) are never validated here, so no validation result can show one.
"""

from __future__ import annotations

from datetime import timedelta

import great_expectations as gx
import great_expectations.expectations as gxe

from transforms.config.sources import Column, Source
from transforms.core.ethnicity import KNOWN_CODES, NOT_KNOWN, NOT_STATED, STATUSES
from transforms.core.periods import month_bounds

EXCLUDED = ("person_id",)


def validated_columns(source: Source) -> list[str]:
    """The typed staging columns handed to Great Expectations."""
    return [c.name for c in source.output_columns if c.name not in EXCLUDED]


def structure_suite(source: Source, period: str) -> gx.ExpectationSuite:
    expectations: list[gxe.Expectation] = [
        gxe.ExpectTableColumnsToMatchSet(column_set=validated_columns(source), exact_match=True)
    ]
    for column in source.output_columns:
        if column.name not in EXCLUDED:
            expectations += _column_expectations(column, source, period)
    for earlier, later in source.date_order:
        expectations.append(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=later,
                column_B=earlier,
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            )
        )
    # Passing the list at construction: add_expectation() would look the suite up in the
    # context's store once per call.
    return gx.ExpectationSuite(name=f"{source.name}.structure", expectations=expectations)


def _column_expectations(column: Column, source: Source, period: str) -> list[gxe.Expectation]:
    name = column.name
    found: list[gxe.Expectation] = []
    if (column.required and not column.allow_blank) or name in ("ethnic_code", "ethnic_status"):
        found.append(gxe.ExpectColumnValuesToNotBeNull(column=name))
    if column.codes:
        found.append(gxe.ExpectColumnValuesToBeInSet(column=name, value_set=list(column.codes)))
    if column.min_value is not None or column.max_value is not None:
        found.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=name, min_value=column.min_value, max_value=column.max_value
            )
        )
    if column.pattern:
        found.append(gxe.ExpectColumnValuesToMatchRegex(column=name, regex=column.pattern))
    if name == source.event_date:
        start, end = month_bounds(period)
        found.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=name, min_value=start - timedelta(days=source.lag_days), max_value=end
            )
        )
    if name == "ethnic_code":
        found.append(
            gxe.ExpectColumnValuesToBeInSet(
                column=name, value_set=[*KNOWN_CODES, NOT_STATED, NOT_KNOWN]
            )
        )
    if name == "ethnic_status":
        found.append(gxe.ExpectColumnValuesToBeInSet(column=name, value_set=list(STATUSES)))
    return found


def completeness_suite(source: Source) -> gx.ExpectationSuite:
    known = gxe.ExpectColumnValuesToBeInSet(
        column="ethnic_status", value_set=["known"], mostly=source.completeness_threshold / 100
    )
    return gx.ExpectationSuite(name=f"{source.name}.completeness", expectations=[known])
