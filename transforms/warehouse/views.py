"""The views partners are granted (schema ``mart``), generated from the table declarations.

``mart.indicator_values`` is ``indicators.published`` with the indicator's title. Each derived
column is withheld by the rule ``transforms.core.disclosure.DERIVED`` states for it, the rule
the compute applied when it wrote the rows: stated once, applied twice, so that a row written
by an older release, or by hand, cannot show partners more than the rules allow.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from transforms.core.disclosure import (
    COUNTS_WITHHELD,
    DERIVED,
    REFERENCE_SUPPRESSED,
    SUPPRESSED,
)
from transforms.warehouse.tables import (
    indicators_catalogue,
    indicators_published,
    indicators_wres_published,
)

MART_SCHEMA = "mart"
KNOWN_PCT = sa.Numeric(4, 1)
"""``ethnicity_known_pct`` as partners see it: to one decimal place."""


def indicator_values_query() -> sa.Select:
    """What ``mart.indicator_values`` selects."""
    p = indicators_published.alias("p")
    c = indicators_catalogue.alias("c")
    hidden = {
        COUNTS_WITHHELD: sa.or_(p.c.numerator.is_(None), p.c.denominator.is_(None)),
        SUPPRESSED: p.c.suppressed,
        REFERENCE_SUPPRESSED: sa.or_(p.c.suppressed, p.c.reference_suppressed),
    }
    rules = {d.column: hidden[d.withheld_when] for d in DERIVED}
    columns: list[sa.ColumnElement] = [p.c.indicator_id, c.c.title.label("indicator_title")]
    for column in p.c:
        if column.name in ("indicator_id", "run_id"):
            continue
        if column.name in rules:
            columns.append(
                sa.case((rules[column.name], sa.null()), else_=column).label(column.name)
            )
        elif column.name == "ethnicity_known_pct":
            columns.append(sa.cast(column, KNOWN_PCT).label(column.name))
        else:
            columns.append(column)
    return sa.select(*columns).select_from(p.outerjoin(c, c.c.indicator_id == p.c.indicator_id))


mart_indicator_values = sa.table(
    "indicator_values",
    *(sa.column(c.name) for c in indicator_values_query().selected_columns),
    schema=MART_SCHEMA,
)
"""The view partners are granted, to query."""


def wres_query() -> sa.Select:
    """What ``mart.wres`` selects: the published WRES rows, without the run's timestamp."""
    published = indicators_wres_published
    return sa.select(*(c for c in published.c if c.name != "computed_at"))


mart_wres = sa.table(
    "wres", *(sa.column(c.name) for c in wres_query().selected_columns), schema=MART_SCHEMA
)
"""The WRES view partners are granted."""

VIEWS = {mart_indicator_values: indicator_values_query, mart_wres: wres_query}


def view_statements(dialect: Dialect) -> list[str]:
    """``create or replace view`` for every view, in the dialect's SQL."""
    return [
        f"create or replace view {view.schema}.{view.name} as\n"
        + str(query().compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        for view, query in VIEWS.items()
    ]
