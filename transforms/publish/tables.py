"""The tables of a partnership release, declared once: columns, Arrow types, descriptions, keys.

Everything that describes a released table is generated from these declarations: the Arrow
schema of its Parquet file (with each column's description and unit in the field metadata,
and the whole Table Schema under one file-level key, since DuckDB and polars read file-level
metadata only), the Frictionless ``datapackage.json`` (frictionless infers Parquet types
wrongly, so it is given them), the generated ``README.md`` data dictionary, and the checks of
the release gate. Types are the ones every partner tool reads alike (``PUBLICATION.md``):
dates as ``date32``, counts as ``int64`` (null where withheld), values as ``float64``, flags
as ``bool``, codes as strings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pyarrow as pa

from transforms.config.catalogue import Breakdown, Measure, PeriodKind
from transforms.core.disclosure import ROUNDING_BASE, SUPPRESSION_THRESHOLD
from transforms.indicators.assembly import UNRELIABLE, WITHHELD

SCHEMA_KEY = b"hei:table_schema"
"""File-level Parquet metadata key holding the table's Frictionless Table Schema (JSON)."""
RELEASE_KEY = b"hei:release_id"
"""File-level Parquet metadata key holding the id of the release the file belongs to."""

WITHHELD_NOTE = (
    f"null where withheld: counts of 1-{SUPPRESSION_THRESHOLD}, and counts withheld so that "
    "they cannot be worked out from a total"
)
ROUNDED = f"rounded to the nearest {ROUNDING_BASE}; {WITHHELD_NOTE}"
PARTNER_REASONS = (WITHHELD, UNRELIABLE)
SIGNIFICANCE = ("Higher", "Lower", "Similar", "Better", "Worse", "Not compared")
ROWS_AT_ONCE = 5000
"""Rows of a release table held as Python values at a time, when it is read from the
warehouse, written as CSV or its CSV checked by the gate: the tables hold every period of the
history, and as Python rows the whole of it took several times the memory of its Arrow
columns."""


@dataclass(frozen=True)
class Column:
    """One column of a released table.

    ``kind`` is the Frictionless field type (``string``, ``integer``, ``number``, ``boolean``,
    ``date``), from which the Arrow type follows; ``categories`` lists the values a code may
    take where the list is fixed; ``count`` marks the disclosure-controlled counts the gate
    checks.
    """

    name: str
    kind: str
    description: str
    unit: str | None = None
    required: bool = False
    categories: tuple[str, ...] | None = None
    count: bool = False

    @property
    def arrow_type(self) -> pa.DataType:
        return ARROW_TYPES[self.kind]

    def arrow_field(self) -> pa.Field:
        metadata = {"description": self.description}
        if self.unit:
            metadata["unit"] = self.unit
        return pa.field(self.name, self.arrow_type, nullable=not self.required, metadata=metadata)

    def table_schema_field(self) -> dict:
        """The column as a Frictionless Table Schema field."""
        out: dict = {"name": self.name, "type": self.kind, "description": self.description}
        if self.unit:
            out["unit"] = self.unit
        constraints: dict = {}
        if self.required:
            constraints["required"] = True
        if self.categories:
            out["categories"] = list(self.categories)
        if self.count:
            constraints["minimum"] = 0
        if constraints:
            out["constraints"] = constraints
        return out


ARROW_TYPES = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
}


@dataclass(frozen=True)
class ReleaseTable:
    """A table of the release: one Parquet file, sorted by ``primary_key``."""

    name: str
    title: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def file_name(self) -> str:
        return f"{self.name}.parquet"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def table_schema(self) -> dict:
        """The Frictionless Table Schema of the table."""
        return {
            "fields": [c.table_schema_field() for c in self.columns],
            "primaryKey": list(self.primary_key),
        }

    def row_schema(self) -> pa.Schema:
        """The columns' Arrow schema, with their descriptions and units."""
        return pa.schema([c.arrow_field() for c in self.columns])

    def arrow_schema(self, release_id: str) -> pa.Schema:
        """The Parquet file's schema: field metadata, the Table Schema and the release id."""
        metadata = {
            SCHEMA_KEY: json.dumps(self.table_schema(), sort_keys=True).encode(),
            RELEASE_KEY: release_id.encode(),
            b"hei:table": self.name.encode(),
        }
        return self.row_schema().with_metadata(metadata)


def _literal(values: object) -> tuple[str, ...]:
    return tuple(values.__args__)  # type: ignore[attr-defined]


MEASURES = _literal(Measure)
PERIOD_TYPES = _literal(PeriodKind)
BREAKDOWNS = _literal(Breakdown)

_GROUP_COLUMNS = (
    Column(
        "breakdown",
        "string",
        "How the population is divided: all (everyone), ethnicity_5 (5 ethnic groups), "
        "ethnicity_16 (16 groups), wres_group (White, BME, Unknown: staff indicators), "
        "source_organisation (by providing organisation)",
        required=True,
        categories=BREAKDOWNS,
    ),
    Column(
        "group_code",
        "string",
        "Code of the group within the breakdown (see ethnic_groups.parquet); "
        "'<source>:<organisation code>' for organisations, '<source>:all' for a source's total",
        required=True,
    ),
    Column("group_label", "string", "Name of the group", required=True),
    Column("group_order", "integer", "Display order of the group within its breakdown"),
)

_LIMITS = tuple(
    Column(
        f"{side}_{level}",
        "number",
        f"{'Lower' if side == 'lower' else 'Upper'} {label} confidence limit of value; "
        "null where value is",
    )
    for level, label in (("95", "95%"), ("998", "99.8%"))
    for side in ("lower", "upper")
)
_RATIO_LIMITS = tuple(
    Column(
        f"ratio_{side}_{level}",
        "number",
        f"{'Lower' if side == 'lower' else 'Upper'} {label} confidence limit of "
        "ratio_to_reference (log scale)",
    )
    for level, label in (("95", "95%"), ("998", "99.8%"))
    for side in ("lower", "upper")
)


def _significance(against: str, level: str, suffix: str) -> Column:
    comparator = "its reference group" if against == "reference" else "All persons"
    return Column(
        f"significance_vs_{against}{suffix}",
        "string",
        f"The group compared with {comparator} at {level} confidence: Better/Worse where "
        "the indicator has a polarity, Higher/Lower where it has none, Similar, or Not compared",
        categories=SIGNIFICANCE,
    )


INDICATOR_VALUES = ReleaseTable(
    name="indicator_values",
    title="Indicator values by ethnic group",
    description="Every indicator of the catalogue for every period the release covers, by "
    "breakdown and group, as partners may see it: counts rounded and small counts withheld, "
    "statistics recomputed from the published counts.",
    columns=(
        Column("indicator_id", "string", "Indicator id (see indicators.parquet)", required=True),
        Column("indicator_title", "string", "Indicator title"),
        Column(
            "measure",
            "string",
            "proportion (a percentage), crude_rate or dsr (directly age-standardised rate, "
            "European Standard Population 2013)",
            required=True,
            categories=MEASURES,
        ),
        Column(
            "period_type",
            "string",
            "month, rolling_12m (12 months ending period_end), campaign_covid_autumn "
            "(September to December), season_flu (October to March), season_staff_flu "
            "(September to February)",
            required=True,
            categories=PERIOD_TYPES,
        ),
        Column("period_start", "date", "First day of the period", required=True),
        Column("period_end", "date", "Last day of the period", required=True),
        *_GROUP_COLUMNS,
        Column("numerator", "integer", f"Events or people counted; {ROUNDED}", count=True),
        Column(
            "denominator",
            "integer",
            f"People, events or person-years the numerator is counted among; {ROUNDED}",
            count=True,
        ),
        Column(
            "value",
            "number",
            "The indicator's value in the unit of the unit column; null where withheld or "
            "unreliable (note says why)",
        ),
        *_LIMITS,
        Column(
            "unit",
            "string",
            "Unit of value: '%', or 'per <multiplier>' for a rate (with ', age-standardised "
            "(ESP2013)' for a DSR)",
        ),
        Column("reference_group", "string", "The group ratios and significance compare with"),
        Column(
            "ratio_to_reference",
            "number",
            "value divided by the reference group's value; null for the reference group itself, "
            "and where either is withheld",
        ),
        *_RATIO_LIMITS,
        _significance("reference", "95%", ""),
        _significance("reference", "99.8%", "_998"),
        _significance("all", "95%", ""),
        _significance("all", "99.8%", "_998"),
        Column(
            "ethnicity_known_pct",
            "number",
            "Percentage of the period's denominator whose ethnicity is known (after linking "
            "records), to one decimal place: read every comparison with it",
            unit="percent",
        ),
        Column(
            "suppressed",
            "boolean",
            "True when any value of the row is withheld",
            required=True,
        ),
        Column(
            "suppression_reason",
            "string",
            "Why values are withheld: withheld (small or protecting counts) or unreliable "
            "(a standardised rate from fewer than 10 events)",
            categories=PARTNER_REASONS,
        ),
        Column(
            "reference_suppressed",
            "boolean",
            "True when the reference group's values are withheld (so no ratio is shown)",
            required=True,
        ),
        Column("method", "string", "Method of the confidence limits"),
        Column("note", "string", "Why a value is missing, where it is"),
    ),
    primary_key=(
        "indicator_id",
        "measure",
        "period_type",
        "period_start",
        "breakdown",
        "group_code",
    ),
)

INDICATORS = ReleaseTable(
    name="indicators",
    title="Indicator catalogue",
    description="What each indicator measures, how, and how to read it.",
    columns=(
        Column("indicator_id", "string", "Indicator id", required=True),
        Column("title", "string", "Indicator title", required=True),
        Column(
            "theme",
            "integer",
            "Partnership theme: 1 risks to Black, Asian and minority ethnic people, 2 workforce, "
            "3 access and outcomes of services, 0 data quality",
            required=True,
        ),
        Column("definition", "string", "What is counted, in words", required=True),
        Column("numerator", "string", "The numerator: source, what is counted, filters"),
        Column("denominator", "string", "The denominator: source, what is counted, filters"),
        Column("measures", "string", "Measures published, comma-separated", required=True),
        Column("unit", "string", "Unit of value"),
        Column("multiplier", "integer", "Rates are per this many (100 for a percentage)"),
        Column("period_types", "string", "Period types published, comma-separated"),
        Column("breakdowns", "string", "Breakdowns published, comma-separated"),
        Column(
            "polarity",
            "string",
            "high_is_good, low_is_good or none (significance then says Higher/Lower)",
            categories=("high_is_good", "low_is_good", "none"),
        ),
        Column("method", "string", "Statistical method of value and its confidence limits"),
        Column("caveats", "string", "What to bear in mind when reading the indicator"),
        Column("reference_groups", "string", "Reference group per breakdown (JSON)"),
    ),
    primary_key=("indicator_id",),
)

ETHNIC_GROUPS = ReleaseTable(
    name="ethnic_groups",
    title="Ethnic groups",
    description="The groups of the ethnicity breakdowns (NHS ETHNIC CATEGORY, 2001 census "
    "headings), with the 5-group each 16-group belongs to.",
    columns=(
        Column(
            "breakdown",
            "string",
            "all, ethnicity_5, ethnicity_16 or wres_group (White = the 5-group White; BME = "
            "Mixed, Asian, Black and Other; Unknown = Not stated and Not known)",
            required=True,
            categories=("all", "ethnicity_5", "ethnicity_16", "wres_group"),
        ),
        Column("group_code", "string", "Group code, as in indicator_values", required=True),
        Column("group_label", "string", "Group name", required=True),
        Column("group_order", "integer", "Display order within the breakdown", required=True),
        Column(
            "parent_group_code",
            "string",
            "group_code of the 5-group a 16-group belongs to; null otherwise",
        ),
        Column(
            "is_reference",
            "boolean",
            "True for the default reference group of the breakdown",
            required=True,
        ),
    ),
    primary_key=("breakdown", "group_code"),
)

ETHNICITY_COMPLETENESS = ReleaseTable(
    name="ethnicity_completeness",
    title="Ethnicity recording completeness",
    description="How completely each organisation records ethnicity, per source and month: "
    "the records of the month and those with a known ethnic code, as the source sent them. "
    "The same figures as indicator DQ01 in indicator_values, in one row per organisation.",
    columns=(
        Column("source", "string", "The data source (delivery)", required=True),
        Column(
            "organisation",
            "string",
            "ODS code of the organisation that recorded the data; 'ALL' for the source's total",
            required=True,
        ),
        Column("month", "date", "First day of the month", required=True),
        Column(
            "basis",
            "string",
            "recorded: as the source sent it (linked completeness is given per indicator row, "
            "ethnicity_known_pct)",
            required=True,
            categories=("recorded",),
        ),
        Column("records", "integer", f"Records of the month; {ROUNDED}", count=True),
        Column("known", "integer", f"Records with a known ethnic code; {ROUNDED}", count=True),
        Column("pct_known", "number", "known / records x 100", unit="percent"),
        Column("lower_95", "number", "Lower 95% confidence limit of pct_known (Wilson)"),
        Column("upper_95", "number", "Upper 95% confidence limit of pct_known (Wilson)"),
        Column("suppressed", "boolean", "True when any value is withheld", required=True),
        Column(
            "suppression_reason",
            "string",
            "Why values are withheld",
            categories=PARTNER_REASONS,
        ),
    ),
    primary_key=("source", "month", "basis", "organisation"),
)

WRES = ReleaseTable(
    name="wres",
    title="Workforce Race Equality Standard",
    description="WRES indicators 1, 2, 3, 4 and 9 per organisation and for the partnership "
    "(organisation_code ALL), per financial year, as partners may see them (mart.wres): group "
    "rows carry the published counts and percentages, comparison rows the relative "
    "likelihood or percentage-point gap with its 95% confidence interval.",
    columns=(
        Column(
            "indicator_id",
            "string",
            "WRES1 (staff by pay band), WRES2 (appointment from shortlisting), WRES3 "
            "(disciplinary process), WRES4 (non-mandatory training), WRES9 (board)",
            required=True,
            categories=("WRES1", "WRES2", "WRES3", "WRES4", "WRES9"),
        ),
        Column(
            "organisation_code",
            "string",
            "ODS code of the organisation; ALL for the partnership",
            required=True,
        ),
        Column("period_end", "date", "End of the financial year (31 March)", required=True),
        Column(
            "measure",
            "string",
            "percentage or count (group rows); relative_likelihood or "
            "percentage_point_difference (comparison rows)",
            required=True,
            categories=(
                "count",
                "percentage",
                "relative_likelihood",
                "percentage_point_difference",
            ),
        ),
        Column("population", "string", "What the denominator counts"),
        Column(
            "group_label",
            "string",
            "White (codes A-C), BME (other known codes) or Unknown; null on a comparison row",
            categories=("White", "BME", "Unknown"),
        ),
        Column("comparison", "string", "Which way round a comparison row compares"),
        Column("band", "string", "Pay band (WRES1 only; All for the whole workforce)"),
        Column("staff_group", "string", "Clinical or Non-clinical (WRES1 only; All for both)"),
        Column(
            "value",
            "number",
            "The percentage, relative likelihood (1.00: parity) or percentage-point gap; null "
            "where withheld or undefined (note says why)",
        ),
        Column("lower_95", "number", "Lower 95% confidence limit of value"),
        Column("upper_95", "number", "Upper 95% confidence limit of value"),
        Column("numerator", "integer", f"Staff or applicants counted; {ROUNDED}", count=True),
        Column(
            "denominator", "integer", f"Staff or applicants counted among; {ROUNDED}", count=True
        ),
        Column("note", "string", "Why a value is missing, where it is"),
        Column(
            "suppressed", "boolean", "True when any value of the row is withheld", required=True
        ),
        Column(
            "suppression_reason",
            "string",
            "withheld where values are withheld",
            categories=PARTNER_REASONS,
        ),
    ),
    primary_key=(
        "indicator_id",
        "organisation_code",
        "period_end",
        "measure",
        "population",
        "group_label",
        "band",
        "staff_group",
    ),
)

RELEASE_TABLES = {
    t.name: t for t in (INDICATOR_VALUES, INDICATORS, ETHNIC_GROUPS, ETHNICITY_COMPLETENESS, WRES)
}
"""Every table of a release, by name, in the order the release lists them."""
