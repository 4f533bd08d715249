"""Every table of the warehouse, declared once.

The fixed tables are declared here, with their columns and types, in one ``MetaData``; the
staging tables are generated from the source catalogue (:func:`staging_table`). The DDL is
created from these declarations (``transforms.warehouse.ddl``), the bulk writes take their
Arrow types from them (``transforms.warehouse.bulk``), and every module queries them through
these objects rather than spelling their names. The views are in
``transforms.warehouse.views``; schemas and roles are in ``sql/``.

Every timestamp is UTC without a time zone (``transforms.core.periods.utcnow``).
"""

from __future__ import annotations

from functools import cache

import sqlalchemy as sa

from transforms.config.sources import SOURCES, Column, Source

metadata = sa.MetaData()

_String = sa.String()
_Double = sa.Double()
_Timestamp = sa.DateTime()


def _col(
    name: str, kind: sa.types.TypeEngine, *, null: bool = True, key: bool = False
) -> sa.Column:
    return sa.Column(name, kind, nullable=null and not key, primary_key=key)


# --- audit -----------------------------------------------------------------------------------

audit_file_loads = sa.Table(
    "file_loads",
    metadata,
    _col("load_id", _String, key=True),
    _col("source", _String, null=False),
    _col("file_name", _String, null=False),
    _col("period", _String),
    _col("sha256", _String, null=False),
    _col("status", _String, null=False),
    _col("rows_read", sa.BigInteger(), null=False),
    _col("rows_loaded", sa.BigInteger(), null=False),
    _col("rows_quarantined", sa.BigInteger(), null=False),
    _col("error", _String),
    _col("extra_columns", _String),
    _col("absent_columns", _String),
    _col("file_modified_at", _Timestamp),
    _col("started_at", _Timestamp, null=False),
    _col("finished_at", _Timestamp, null=False),
    _col("run_id", _String),
    schema="audit",
    comment="One row per landing-zone file per load attempt that reached a decision. Grain: "
    "load_id. Invariant: rows_read = rows_loaded + rows_quarantined. status: loaded | rejected "
    "| unchanged | superseded (a loaded file later replaced by a resubmission of the same "
    "source-month) | in_progress (still arriving, or changed while it was read: nothing "
    "loaded, planned again by the next run). extra_columns: the file's columns that are not the "
    "source's, ignored; absent_columns: the source's optional columns the file did not carry, "
    "null in staging for its rows (a JSON list, or null when it carried them all).",
)

audit_ddl_applied = sa.Table(
    "ddl_applied",
    metadata,
    _col("fingerprint", _String, null=False),
    _col("applied_at", _Timestamp, null=False),
    _col("tables_fingerprint", _String),
    schema="audit",
    comment="The fingerprint of the DDL last applied in full (transforms.warehouse.ddl), and "
    "of its tables part (what the loader role applies by itself on PostgreSQL). While the "
    "first matches the code's, tasks skip the DDL and its locks. Delete the row to have the "
    "next run apply it all again. Grain: one row.",
)

audit_delivery_alerts = sa.Table(
    "delivery_alerts",
    metadata,
    _col("source", _String, null=False),
    _col("period", _String, null=False),
    _col("alerted_on", sa.Date(), null=False),
    _col("days_late", sa.Integer(), null=False),
    _col("run_id", _String),
    schema="audit",
    comment="Each alert sent that a month's delivery was late or missing "
    "(transforms.ops.deliveries): the day it went, and how late the month was then. It keeps "
    "the daily check from repeating an alert more often than weekly. Grain: source x period "
    "x alerted_on.",
)

# --- quality ---------------------------------------------------------------------------------

quality_quarantine = sa.Table(
    "quarantine",
    metadata,
    _col("load_id", _String, null=False),
    _col("source", _String, null=False),
    _col("file_name", _String, null=False),
    _col("period", _String),
    _col("row_number", sa.BigInteger(), null=False),
    _col("reason", _String, null=False),
    _col("detail", _String, null=False),
    sa.Index("quarantine_load", "load_id"),
    schema="quality",
    comment="Rows that broke a row rule, with the reason. Never holds raw values of "
    "identifiers: only the file, the row number, a reason code and a sentence about the "
    "field. Grain: load_id x row_number.",
)

quality_ethnicity_completeness = sa.Table(
    "ethnicity_completeness",
    metadata,
    _col("source", _String, null=False),
    _col("period", _String, null=False),
    _col("organisation", _String, null=False),
    _col("basis", _String, null=False),
    _col("records", sa.BigInteger(), null=False),
    _col("known", sa.BigInteger(), null=False),
    _col("not_stated", sa.BigInteger(), null=False),
    _col("not_known", sa.BigInteger(), null=False),
    _col("invalid", sa.BigInteger(), null=False),
    _col("pct_known", _Double, null=False),
    _col("threshold", _Double, null=False),
    _col("below_threshold", sa.Boolean(), null=False),
    _col("computed_at", _Timestamp, null=False),
    schema="quality",
    comment="How completely ethnicity is recorded. Grain: source x period x organisation x "
    "basis. basis = 'recorded' (as the source sent it) or 'linked' (after best-known linkage "
    "through core.person_ethnicity). pct_known is known / records x 100. not_stated = Z "
    "(asked, declined); not_known = 99 or blank; invalid = anything else (treated as not "
    "known in rates). Organisation ALL is the source's total.",
)

quality_warnings = sa.Table(
    "warnings",
    metadata,
    _col("load_id", _String, null=False),
    _col("run_id", _String),
    _col("source", _String, null=False),
    _col("period", _String),
    _col("kind", _String, null=False),
    _col("message", _String, null=False),
    _col("raised_at", _Timestamp, null=False),
    schema="quality",
    comment="Data-quality warnings raised by loads (ethnicity completeness below the source's "
    "threshold). Grain: one warning per load and kind.",
)

quality_validation_runs = sa.Table(
    "validation_runs",
    metadata,
    _col("load_id", _String, null=False),
    _col("source", _String, null=False),
    _col("file_name", _String, null=False),
    _col("period", _String),
    _col("suite", _String, null=False),
    _col("success", sa.Boolean(), null=False),
    _col("evaluated", sa.BigInteger(), null=False),
    _col("successful", sa.BigInteger(), null=False),
    _col("rows_validated", sa.BigInteger(), null=False),
    _col("statistics", _String, null=False),
    _col("failed_expectations", _String, null=False),
    _col("validated_at", _Timestamp, null=False),
    schema="quality",
    comment="Every Great Expectations suite run on a delivery. Grain: load_id x suite.",
)

# --- core ------------------------------------------------------------------------------------

core_dim_ethnicity = sa.Table(
    "dim_ethnicity",
    metadata,
    _col("ethnic_code", _String, key=True),
    _col("description", _String, null=False),
    _col("group_16", _String, null=False),
    _col("group_5", _String, null=False),
    _col("group_16_order", sa.Integer(), null=False),
    _col("is_known", sa.Boolean(), null=False),
    _col("wres_group", _String),
    schema="core",
    comment="NHS ETHNIC CATEGORY codes with their 16- and 5-group labels (NHS Data Dictionary "
    "2001 headings: Chinese R is in 'Other ethnic group') and WRES group (White, BME, Unknown). "
    "Grain: ethnic_code. Refreshed from "
    "transforms/core/reference/ethnic_category_codes.csv whenever the DDL is applied.",
)

core_person_ethnicity = sa.Table(
    "person_ethnicity",
    metadata,
    _col("person_id", _String, key=True),
    _col("ethnic_code", _String, null=False),
    _col("source", _String, null=False),
    _col("recorded_on", sa.Date()),
    _col("computed_at", _Timestamp, null=False),
    schema="core",
    comment="Each person's best-known ethnicity over all data loaded so far: a known code in "
    "the GP register first (latest snapshot with one); else the most recent known code from "
    "secondary care (A&E, inpatients, outpatients); else Z if the register says Z; else 99. "
    "Grain: person_id.",
)

# --- indicators ------------------------------------------------------------------------------

indicators_catalogue = sa.Table(
    "catalogue",
    metadata,
    _col("indicator_id", _String, key=True),
    _col("theme", sa.Integer(), null=False),
    _col("title", _String, null=False),
    _col("definition", _String),
    _col("caveats", _String),
    _col("measures", _String, null=False),
    _col("multiplier", sa.Integer(), null=False),
    _col("periods", _String, null=False),
    _col("breakdowns", _String, null=False),
    _col("polarity", _String, null=False),
    _col("reference_groups", _String, null=False),
    _col("numerator", _String, null=False),
    _col("denominator", _String, null=False),
    _col("updated_at", _Timestamp, null=False),
    schema="indicators",
    comment="The indicator catalogue (transforms/config/indicators.yml) as loaded by the last "
    "compute. Grain: indicator_id. Lists are comma-separated; counts are their YAML as JSON.",
)


def _indicator_rows(*, published: bool) -> list[sa.Column]:
    """The columns shared by ``indicators.values`` and ``indicators.published``.

    The data team's rows have exact counts (person-years of a rate are a mean, so may be
    fractional) and every statistic; partners' rows have the published counts (null where
    withheld) and statistics recomputed from them, which are null more often.
    """
    count = sa.BigInteger() if published else _Double
    label = {"null": True} if published else {"null": False}
    return [
        _col("indicator_id", _String, null=False),
        _col("measure", _String, null=False),
        _col("period_type", _String, null=False),
        _col("period_start", sa.Date(), null=False),
        _col("period_end", sa.Date(), null=False),
        _col("breakdown", _String, null=False),
        _col("group_code", _String, null=False),
        _col("group_label", _String, null=False),
        _col("group_order", sa.Integer(), null=False),
        _col("numerator", count, null=published),
        _col("denominator", count, null=published),
        _col("value", _Double),
        _col("lower_95", _Double),
        _col("upper_95", _Double),
        _col("lower_998", _Double),
        _col("upper_998", _Double),
        _col("unit", _String, null=False),
        _col("reference_group", _String),
        _col("ratio_to_reference", _Double),
        _col("ratio_lower_95", _Double),
        _col("ratio_upper_95", _Double),
        _col("ratio_lower_998", _Double),
        _col("ratio_upper_998", _Double),
        _col("significance_vs_reference", _String, **label),
        _col("significance_vs_reference_998", _String, **label),
        _col("significance_vs_all", _String, **label),
        _col("significance_vs_all_998", _String, **label),
        _col("ethnicity_known_pct", _Double),
        *(
            []
            if published
            else [
                _col("published_numerator", sa.BigInteger()),
                _col("published_denominator", sa.BigInteger()),
            ]
        ),
        _col("suppressed", sa.Boolean(), null=False),
        _col("suppression_reason", _String),
        _col("reference_suppressed", sa.Boolean(), null=False),
        _col("method", _String, **label),
        _col("note", _String),
        _col("run_id", _String),
        _col("computed_at", _Timestamp, null=False),
    ]


indicators_values = sa.Table(
    "values",
    metadata,
    *_indicator_rows(published=False),
    schema="indicators",
    comment="What the data team queries: exact values (never rounded) with disclosure flags "
    "and the reasons behind them; partners see indicators.published through the mart. Grain: "
    "indicator_id x measure x period_type x period_start x breakdown x group_code. value: a "
    "percentage (4.5 = 4.5%) or a rate per the catalogue multiplier (see unit). published_*: "
    "rounded to 5, null where withheld (transforms/core/disclosure.py). ratio_*: to the "
    "reference group, CIs (95%, 99.8%) on the log scale. significance_vs_*: Higher/Lower/"
    "Similar (Better/Worse with a polarity) or Not compared, at 95% and 99.8% (the _998 "
    "columns). ethnicity_known_pct: % of the period's denominator with a known best-known "
    "ethnicity. note: why a value is missing, if it is.",
)

indicators_inputs = sa.Table(
    "inputs",
    metadata,
    _col("indicator_id", _String, null=False),
    _col("period_type", _String, null=False),
    _col("period_start", sa.Date(), null=False),
    _col("fingerprint", _String, null=False),
    _col("computed_at", _Timestamp, null=False),
    schema="indicators",
    comment="What each computed period was computed from (a fingerprint of the catalogue "
    "entry, the loads of every month it spans and best-known ethnicity). A period is "
    "recomputed only when its fingerprint changes. Grain: indicator_id x period_type x "
    "period_start.",
)

indicators_not_computed = sa.Table(
    "not_computed",
    metadata,
    _col("indicator_id", _String, null=False),
    _col("period_type", _String, null=False),
    _col("period_start", sa.Date(), null=False),
    _col("period_end", sa.Date(), null=False),
    _col("note", _String, null=False),
    _col("noted_at", _Timestamp, null=False),
    schema="indicators",
    comment="Complete periods the compute left out on purpose, and why: a staff vaccination "
    "campaign whose snapshot delivery did not carry the vaccination dates is absent, not 0%. "
    "Rewritten by every compute. Grain: indicator_id x period_type x period_start.",
)

indicators_published = sa.Table(
    "published",
    metadata,
    *_indicator_rows(published=True),
    schema="indicators",
    comment="What partners see of each indicators.values row, as the compute wrote it after "
    "the attacking audit (transforms/core/disclosure_audit.py) found nothing to narrow down. "
    "Counts are the published ones (1-7 withheld, others rounded to 5; null where withheld); "
    "value, limits, ratios and significance are recomputed from those counts alone (a DSR "
    "keeps its exact value, with Dobson limits for the published count); suppression_reason "
    "is only 'withheld' or 'unreliable'. No exact count or statistic of an exact count is "
    "stored here. Grain: as indicators.values.",
)


def _wres_rows(*, published: bool) -> list[sa.Column]:
    """The columns shared by ``indicators.wres`` and ``indicators.wres_published``."""
    return [
        _col("indicator_id", _String, null=False),
        _col("organisation_code", _String, null=False),
        _col("period_end", sa.Date(), null=False),
        _col("measure", _String, null=False),
        _col("population", _String),
        _col("group_label", _String),
        _col("comparison", _String),
        _col("band", _String),
        _col("staff_group", _String),
        _col("value", _Double),
        _col("lower_95", _Double),
        _col("upper_95", _Double),
        _col("numerator", sa.BigInteger()),
        _col("denominator", sa.BigInteger()),
        _col("note", _String),
        *(
            [_col("suppressed", sa.Boolean(), null=False), _col("suppression_reason", _String)]
            if published
            else []
        ),
        _col("computed_at", _Timestamp, null=False),
    ]


indicators_wres = sa.Table(
    "wres",
    metadata,
    *_wres_rows(published=False),
    schema="indicators",
    comment="Workforce Race Equality Standard indicators 1, 2, 3, 4 and 9, exact (never "
    "rounded), per organisation and the partnership (organisation_code ALL), per financial "
    "year (period_end 31 March). Grain: indicator_id x organisation_code x period_end x "
    "measure x group_label x band x staff_group. Group rows (measure percentage or count, "
    "group_label White/BME/Unknown) carry the counts; comparison rows (relative_likelihood, "
    "percentage_point_difference; group_label null) the ratio or gap and its 95% CI "
    "(transforms/indicators/wres.py, docs/methods.md section 11).",
)

indicators_wres_published = sa.Table(
    "wres_published",
    metadata,
    *_wres_rows(published=True),
    schema="indicators",
    comment="What partners see of indicators.wres (mart.wres): counts of 1-7 withheld, others "
    "rounded to 5, none recoverable from its organisation's or the partnership's total; values "
    "and limits recomputed from the published counts. Grain: as indicators.wres.",
)

indicators_compute_inputs = sa.Table(
    "compute_inputs",
    metadata,
    _col("part", _String, key=True),
    _col("fingerprint", _String, null=False),
    _col("computed_at", _Timestamp, null=False),
    schema="indicators",
    comment="What the last compute of each part was computed from, as one fingerprint: part "
    "indicators (the catalogue, every source's loads, best-known ethnicity, the method version "
    "and reference tables) and part wres (the workforce and recruitment loads, the reference "
    "tables, the code of the method and its disclosure rules). A compute whose fingerprint is "
    "unchanged writes nothing. Grain: part.",
)

# --- staging ---------------------------------------------------------------------------------

POSTGRES_ONLY = "postgres_only"
"""``info`` key of an index that only PostgreSQL gets (DuckDB's zone maps prune already)."""
_TYPES = {"int": sa.Integer, "date": sa.Date, "bool": sa.Boolean}


def _staging_type(column: Column) -> sa.types.TypeEngine:
    return _TYPES.get(column.kind, sa.String)()


@cache
def staging_table(source: Source) -> sa.Table:
    """A source's staging table: its output columns plus the lineage columns (``period``,
    ``load_id``, ``row_number``), indexed on PostgreSQL by period and record id.

    The period index is a BRIN index: a month is written in one go, so its rows lie together
    and a block range per month finds them. A B-tree on period cost 2.3 s of every million
    rows a load wrote (its million equal keys); the BRIN index costs 0.3 s. A load summarises
    the ranges it fills (``bulk.summarise_block_ranges``), so ``autosummarize`` is off.
    """
    columns = [sa.Column(c.name, _staging_type(c)) for c in source.output_columns]
    lineage = [
        _col("period", _String, null=False),
        _col("load_id", _String, null=False),
        _col("row_number", sa.BigInteger(), null=False),
    ]
    indexes = [
        sa.Index(
            f"{source.table}_period_brin",
            "period",
            postgresql_using="brin",
            info={POSTGRES_ONLY: True},
        ),
        sa.Index(
            f"{source.table}_{source.record_id}", source.record_id, info={POSTGRES_ONLY: True}
        ),
    ]
    schema, name = source.qualified_table.split(".")
    return sa.Table(name, metadata, *columns, *lineage, *indexes, schema=schema)


STAGING = {name: staging_table(source) for name, source in SOURCES.items()}
"""source name -> its staging table."""
RETIRED_INDEXES = tuple(f"{source.qualified_table}_period" for source in SOURCES.values())
"""Indexes that earlier versions made and this one drops (PostgreSQL): the B-trees on period."""


def brin_indexes(table: sa.Table) -> list[str]:
    """Schema-qualified names of ``table``'s BRIN indexes (PostgreSQL)."""
    return [
        f"{table.schema}.{index.name}" if table.schema else str(index.name)
        for index in table.indexes
        if index.dialect_options["postgresql"]["using"] == "brin"
    ]
