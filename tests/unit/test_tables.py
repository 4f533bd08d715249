"""Every table declared once (``transforms/warehouse/tables.py``), the DDL created from the
declarations, and one statement of the withholding rules behind both the compute and the mart
view partners are granted."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from duckdb_engine import Dialect as DuckDBDialect
from sqlalchemy.dialects import postgresql

from transforms.config.catalogue import QUALITY_SOURCE
from transforms.config.sources import SOURCES
from transforms.core.disclosure import (
    COUNTS_WITHHELD,
    DERIVED,
    REFERENCE_SUPPRESSED,
    SUPPRESSED,
    WITHHOLDING_RULES,
    withhold_derived,
)
from transforms.indicators import assembly, store
from transforms.warehouse import ddl, tables, views
from transforms.warehouse.bulk import arrow_types
from transforms.warehouse.engine import make_engine

ROOT = Path(__file__).resolve().parents[2]
DIALECTS = {"duckdb": DuckDBDialect(), "postgresql": postgresql.dialect()}
FIXED = [
    "audit.file_loads",
    "audit.ddl_applied",
    "audit.delivery_alerts",
    "quality.quarantine",
    "quality.ethnicity_completeness",
    "quality.warnings",
    "quality.validation_runs",
    "core.dim_ethnicity",
    "core.person_ethnicity",
    "indicators.catalogue",
    "indicators.values",
    "indicators.inputs",
    "indicators.not_computed",
    "indicators.published",
    "indicators.wres",
    "indicators.wres_published",
    "indicators.compute_inputs",
]


def test_every_table_is_declared_once_in_one_metadata() -> None:
    declared = set(tables.metadata.tables)
    staging = {s.qualified_table for s in SOURCES.values()}
    assert declared == set(FIXED) | staging
    assert {t.fullname for t in tables.STAGING.values()} == staging


def test_the_catalogues_quality_source_is_the_completeness_table() -> None:
    """The indicator catalogue names its one non-staging source by the table's name (config
    sits below the warehouse, so it cannot import the declaration)."""
    assert QUALITY_SOURCE == tables.quality_ethnicity_completeness.fullname


def test_no_sql_file_creates_a_table_or_view() -> None:
    """The .sql files keep schemas, roles and grants; tables and views come from Python."""
    for path in ddl.SQL_DIR.glob("*.sql"):
        text = path.read_text().lower()
        assert not re.search(r"create\s+(or\s+replace\s+)?(table|view)", text), path.name


def test_no_module_spells_a_fixed_table_in_sql() -> None:
    """A fixed table's name appears in SQL only in its declaration (docstrings aside)."""
    owners = {"warehouse/tables.py", "warehouse/views.py"}
    pattern = re.compile(
        r"\b(from|into|join|update|table)\s+(" + "|".join(re.escape(t) for t in FIXED) + r")\b"
    )
    for path in sorted((ROOT / "transforms").rglob("*.py")):
        if str(path.relative_to(ROOT / "transforms")) in owners:
            continue
        assert not pattern.search(path.read_text()), path


@pytest.mark.parametrize("dialect", DIALECTS.values(), ids=DIALECTS)
def test_the_ddl_creates_every_declared_table_and_the_view(dialect) -> None:
    statements = ddl.ddl_statements(dialect)
    created = [s for s in statements if s.upper().startswith("CREATE TABLE IF NOT EXISTS")]
    assert len(created) == len(tables.metadata.tables)
    assert any(s.startswith("create or replace view mart.indicator_values") for s in statements)
    assert statements.index(created[-1]) < statements.index(
        next(s for s in statements if s.startswith("create or replace view"))
    )


def test_the_fingerprint_covers_the_declarations(monkeypatch: pytest.MonkeyPatch) -> None:
    dialect = DIALECTS["duckdb"]
    before = ddl.ddl_fingerprint(dialect)
    release = sa.MetaData()  # the next release: one more column
    for table in tables.metadata.sorted_tables:
        table.to_metadata(release)
    release.tables["quality.warnings"].append_column(sa.Column("extra", sa.String()))
    monkeypatch.setattr(ddl, "metadata", release)
    assert ddl.ddl_fingerprint(dialect) != before
    monkeypatch.undo()
    assert ddl.ddl_fingerprint(dialect) == before


def test_arrow_types_follow_the_declarations() -> None:
    assert store.VALUE_COLUMNS["group_order"].equals(
        arrow_types(tables.indicators_values)["group_order"]
    )
    assert str(store.VALUE_COLUMNS["numerator"]) == "double"
    assert str(store.PUBLISHED_COLUMNS["numerator"]) == "int64"
    assert str(store.VALUE_COLUMNS["period_start"]) == "date32[day]"
    assert str(store.VALUE_COLUMNS["computed_at"]) == "timestamp[us]"
    assert list(store.PUBLISHED_COLUMNS) == [*assembly.PARTNER_COLUMNS, "run_id", "computed_at"]


# --- the withholding rules, stated once ------------------------------------------------------


def test_every_derived_column_is_in_both_indicator_tables_with_a_known_rule() -> None:
    for derived in DERIVED:
        assert derived.withheld_when in WITHHOLDING_RULES
        assert derived.column in tables.indicators_values.c
        assert derived.column in tables.indicators_published.c


def test_the_view_withholds_each_derived_column_by_its_rule() -> None:
    """The view's SQL has, for each derived column, the CASE its rule states, and shows
    every other published column as it is (but the lineage ``run_id``)."""
    sql = ddl.ddl_statements(DIALECTS["postgresql"])
    (view,) = [s for s in sql if s.startswith("create or replace view mart.indicator_values")]
    conditions = {
        COUNTS_WITHHELD: "(p.numerator IS NULL OR p.denominator IS NULL)",
        SUPPRESSED: "p.suppressed",
        REFERENCE_SUPPRESSED: "(p.suppressed OR p.reference_suppressed)",
    }
    for derived in DERIVED:
        case = (
            f"CASE WHEN {conditions[derived.withheld_when]} THEN NULL "
            f"ELSE p.{derived.column} END AS {derived.column}"
        )
        assert case in view, derived
    shown = [c.name for c in views.mart_indicator_values.columns]
    published = [c.name for c in tables.indicators_published.columns if c.name != "run_id"]
    assert shown == [published[0], "indicator_title", *published[1:]]


def test_withhold_derived_applies_each_rule() -> None:
    rows = pd.DataFrame(
        {
            "suppressed": [False, True, False, True],
            "reference_suppressed": [False, False, True, False],
            "value": [1.0, 2.0, 3.0, 4.0],
            "ratio_to_reference": [1.0, 2.0, 3.0, 4.0],
            "method": ["Wilson"] * 4,
        }
    )
    counts_withheld = pd.Series([False, False, False, True])
    out = withhold_derived(rows, counts_withheld)
    assert out["value"].isna().tolist() == [False, True, False, True]
    assert out["ratio_to_reference"].isna().tolist() == [False, True, True, True]
    assert out["method"].isna().tolist() == [False, False, False, True]
    assert rows["value"].notna().all()  # the caller's frame is left alone


def _published_row(**overrides: object) -> dict:
    row: dict = {c.name: None for c in tables.indicators_published.columns}
    row |= {
        "indicator_id": "ACC02",
        "measure": "proportion",
        "period_type": "month",
        "period_start": date(2025, 1, 1),
        "period_end": date(2025, 1, 31),
        "breakdown": "all",
        "group_code": "all",
        "group_label": "All persons",
        "group_order": 0,
        "unit": "%",
        "numerator": 10,
        "denominator": 20,
        "value": 50.0,
        "lower_95": 30.0,
        "upper_95": 70.0,
        "ratio_to_reference": 1.5,
        "significance_vs_reference": "Higher",
        "significance_vs_all": "Similar",
        "method": "Wilson",
        "note": "a note",
        "suppressed": False,
        "reference_suppressed": False,
        "computed_at": datetime(2025, 2, 1),
    }
    return row | overrides


def test_the_view_withholds_what_a_row_should_not_show(tmp_path: Path) -> None:
    """Rows written wrongly (by an older release, or by hand) show partners no more than the
    rules allow: the view applies them again."""
    engine = make_engine(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    ddl.apply_ddl(engine)
    rows = [
        _published_row(group_code="shown"),
        _published_row(group_code="unreliable", suppressed=True),
        _published_row(group_code="reference", reference_suppressed=True),
        _published_row(group_code="withheld", numerator=None, suppressed=True),
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(tables.indicators_published), rows)
        seen = {r.group_code: r for r in conn.execute(sa.select(views.mart_indicator_values)).all()}
    assert seen["shown"].value == 50.0 and seen["shown"].ratio_to_reference == 1.5
    assert seen["shown"].method == "Wilson" and seen["shown"].significance_vs_all == "Similar"
    assert seen["unreliable"].value is None and seen["unreliable"].ratio_to_reference is None
    assert seen["unreliable"].significance_vs_all is None
    assert seen["unreliable"].method == "Wilson"  # counts shown: method and note stay
    assert seen["reference"].value == 50.0 and seen["reference"].ratio_to_reference is None
    assert seen["reference"].significance_vs_reference is None
    assert seen["reference"].significance_vs_all == "Similar"
    assert seen["withheld"].method is None and seen["withheld"].note is None


def test_an_existing_warehouse_gains_new_columns(tmp_path: Path) -> None:
    """Additive upgrade: a column declared since the warehouse was made is added to it."""
    engine = make_engine(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    ddl.apply_ddl(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("alter table quality.warnings drop column run_id"))
        conn.execute(sa.delete(tables.audit_ddl_applied))  # as an older release left it
    ddl.apply_ddl(engine)
    with engine.connect() as conn:
        conn.execute(sa.select(tables.quality_warnings.c.run_id)).all()
