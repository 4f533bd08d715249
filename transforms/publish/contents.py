"""What a release holds, read from the warehouse in the declared types into a local spool.

Every released row comes from what partners are already granted (``mart.indicator_values``,
written by the compute after disclosure control and the attacking audit) or from the
reference data; nothing here sees an exact count. Rows are read in key order,
``ROWS_AT_ONCE`` at a time, into the spool (``transforms.publish.spool``), so the release's
memory does not grow with its history. Strings are ordered by their bytes (``COLLATE "C"``,
which DuckDB and PostgreSQL both read so), as Arrow orders them, so either warehouse, whatever
its collation, gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.config.catalogue import QUALITY_SOURCE, Count, catalogue
from transforms.config.sources import SOURCES
from transforms.core.periods import month_bounds
from transforms.indicators.assembly import ethnic_groups, unit
from transforms.publish.spool import Spool
from transforms.publish.tables import (
    ETHNIC_GROUPS,
    ETHNICITY_COMPLETENESS,
    INDICATOR_VALUES,
    INDICATORS,
    ROWS_AT_ONCE,
    WRES,
    ReleaseTable,
)
from transforms.quality.completeness import ALL_ORGANISATIONS
from transforms.warehouse.tables import audit_file_loads, indicators_catalogue
from transforms.warehouse.views import mart_indicator_values, mart_wres

METHODS = {
    "proportion": "Wilson score confidence limits (docs/methods.md §2)",
    "crude_rate": "Exact Poisson limits below 10 events, Byar's from 10 (docs/methods.md §3)",
    "dsr": "Directly standardised to the European Standard Population 2013 in 5-year age "
    "bands, Dobson confidence limits (docs/methods.md §4)",
}
"""The method of each measure, as the catalogue table states it."""
LOADED = ("loaded",)


@dataclass(frozen=True)
class Contents:
    """The tables of one release, before they are written: use it in a ``with`` block, which
    removes its spool."""

    month: str
    first_month: str
    spool: Spool

    def __enter__(self) -> Contents:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.spool.close()


def release_month(conn: Connection) -> tuple[str, str] | None:
    """``(first, last)`` months the data covers completely: ``last`` is the latest month every
    source that has delivered has a loaded delivery for, so a release never reports a month
    for which a source is still to come. None before anything has loaded."""
    loads = audit_file_loads
    query = (
        sa.select(loads.c.source, sa.func.min(loads.c.period), sa.func.max(loads.c.period))
        .where(loads.c.status.in_(LOADED), loads.c.period.is_not(None))
        .group_by(loads.c.source)
    )
    spans = conn.execute(query).all()
    if not spans:
        return None
    return min(first for _, first, _ in spans), min(last for _, _, last in spans)


def read(conn: Connection) -> Contents | None:
    """Every table of the release for the last complete month (None if nothing has loaded)."""
    span = release_month(conn)
    if span is None:
        return None
    first, month = span
    last_day = month_bounds(month)[1]
    tables = (
        (INDICATOR_VALUES, indicator_values(conn, last_day)),
        (INDICATORS, [in_key_order(INDICATORS, indicators(conn))]),
        (ETHNIC_GROUPS, [in_key_order(ETHNIC_GROUPS, ethnic_groups_rows())]),
        (ETHNICITY_COMPLETENESS, completeness(conn, last_day)),
        (WRES, wres(conn, last_day)),
    )
    spool = Spool()
    try:
        for spec, batches in tables:
            spool.put(spec, batches)
    except BaseException:
        spool.close()
        raise
    return Contents(month=month, first_month=first, spool=spool)


def as_batch(spec: ReleaseTable, rows: Iterable[dict]) -> pa.RecordBatch:
    """Rows as a batch of ``spec``'s columns and types."""
    rows = list(rows)
    return _batch(spec, {c: [r[c] for r in rows] for c in spec.column_names})


def in_key_order(spec: ReleaseTable, rows: Iterable[dict]) -> pa.RecordBatch:
    """A small table's rows as one batch, sorted by its key (by Arrow, as bytes)."""
    batch = as_batch(spec, rows)
    return batch.take(pc.sort_indices(batch, [(key, "ascending") for key in spec.primary_key]))


def _batch(spec: ReleaseTable, columns: Mapping[str, Sequence[object]]) -> pa.RecordBatch:
    """Columns of Python values as a batch of ``spec``'s Arrow types (NUMERIC's Decimals
    from PostgreSQL as floats)."""
    arrays = [pa.array(_floats(columns[c.name]), type=c.arrow_type) for c in spec.columns]
    return pa.record_batch(arrays, schema=spec.row_schema())


def _floats(values: Sequence[object]) -> Sequence[object]:
    if any(isinstance(v, Decimal) for v in values):
        return [float(v) if isinstance(v, Decimal) else v for v in values]
    return values


def in_byte_order(spec: ReleaseTable, keys: Mapping[str, sa.ColumnElement]) -> list:
    """ORDER BY terms for ``spec``'s key columns, given as expressions by name, in order, as
    Arrow sorts: strings by their bytes, whatever the database's collation, and nulls last,
    whatever its default."""
    text = {c.name for c in spec.columns if pa.types.is_string(c.arrow_type)}
    return [
        (sa.collate(key, "C") if name in text else key).asc().nulls_last()
        for name, key in keys.items()
    ]


def _select(conn: Connection, spec: ReleaseTable, query: sa.Select) -> Iterator[pa.RecordBatch]:
    """``query``'s rows (``spec``'s columns, in order) in ``spec``'s key order,
    ``ROWS_AT_ONCE`` at a time."""
    keys = {key: query.selected_columns[key] for key in spec.primary_key}
    query = query.order_by(*in_byte_order(spec, keys))
    result = conn.execution_options(yield_per=ROWS_AT_ONCE).execute(query)
    names = list(result.keys())
    for part in result.partitions():
        yield _batch(spec, dict(zip(names, zip(*part, strict=True), strict=True)))


def indicator_values(conn: Connection, last_day: date) -> Iterator[pa.RecordBatch]:
    """``mart.indicator_values`` for every period ending by ``last_day``."""
    view = mart_indicator_values
    query = sa.select(*(view.c[name] for name in INDICATOR_VALUES.column_names)).where(
        view.c.period_end <= last_day
    )
    return _select(conn, INDICATOR_VALUES, query)


def wres(conn: Connection, last_day: date) -> Iterator[pa.RecordBatch]:
    """``mart.wres`` for every financial year ending by ``last_day``."""
    query = sa.select(*(mart_wres.c[name] for name in WRES.column_names)).where(
        mart_wres.c.period_end <= last_day
    )
    return _select(conn, WRES, query)


def completeness(conn: Connection, last_day: date) -> Iterator[pa.RecordBatch]:
    """Recorded completeness per source, organisation and month: DQ01's published rows, in
    one row per organisation, so the same numbers are shown as the indicator shows."""
    view = mart_indicator_values
    query = sa.select(
        view.c.group_code,
        view.c.period_start,
        view.c.numerator,
        view.c.denominator,
        view.c.value,
        view.c.lower_95,
        view.c.upper_95,
        view.c.suppressed,
        view.c.suppression_reason,
    ).where(
        view.c.indicator_id.in_(completeness_indicators()),
        view.c.breakdown == "source_organisation",
        view.c.period_end <= last_day,
    )
    # The key (source, month, basis, organisation) as the rows are made below; one basis.
    colon = sa.func.strpos(view.c.group_code, ":")
    organisation = sa.func.substr(view.c.group_code, colon + 1)
    keys = {
        "source": sa.func.substr(view.c.group_code, 1, colon - 1),
        "month": view.c.period_start,
        "organisation": sa.case(
            (sa.collate(organisation, "C") == "all", ALL_ORGANISATIONS), else_=organisation
        ),
    }
    query = query.order_by(*in_byte_order(ETHNICITY_COMPLETENESS, keys))
    for part in conn.execution_options(yield_per=ROWS_AT_ONCE).execute(query).partitions():
        (codes, starts, known, records, value, low, high, suppressed, reasons) = zip(
            *part, strict=True
        )
        sources, organisations = zip(*(code.split(":", 1) for code in codes), strict=True)
        columns = {
            "source": sources,
            "organisation": [ALL_ORGANISATIONS if o == "all" else o for o in organisations],
            "month": starts,
            "basis": ["recorded"] * len(part),
            "records": records,
            "known": known,
            "pct_known": value,
            "lower_95": low,
            "upper_95": high,
            "suppressed": suppressed,
            "suppression_reason": reasons,
        }
        yield _batch(ETHNICITY_COMPLETENESS, columns)


def completeness_indicators() -> list[str]:
    """The catalogue's completeness indicators (DQ01): those counted from completeness."""
    return [i.id for i in catalogue().values() if i.numerator.source == QUALITY_SOURCE]


def indicators(conn: Connection) -> list[dict]:
    """The catalogue the values were computed with (``indicators.catalogue``), in words."""
    rows = []
    for entry in conn.execute(sa.select(indicators_catalogue)).mappings():
        measures = entry["measures"].split(",")
        rows.append(
            {
                "indicator_id": entry["indicator_id"],
                "title": entry["title"],
                "theme": entry["theme"],
                "definition": entry["definition"] or entry["title"],
                "numerator": describe_count(entry["numerator"]),
                "denominator": describe_count(entry["denominator"]),
                "measures": entry["measures"],
                "unit": "; ".join(f"{m}: {unit(m, entry['multiplier'])}" for m in measures),
                "multiplier": entry["multiplier"],
                "period_types": entry["periods"],
                "breakdowns": entry["breakdowns"],
                "polarity": entry["polarity"],
                "method": "; ".join(f"{m}: {METHODS[m]}" for m in measures),
                "caveats": entry["caveats"] or None,
                "reference_groups": entry["reference_groups"],
            }
        )
    return rows


def describe_count(stored: str) -> str:
    """A numerator or denominator (stored as its catalogue JSON) in words."""
    count = Count(**json.loads(stored))
    source = SOURCES[count.source].title if count.source in SOURCES else count.source
    what = {"person_years": "person-years"}.get(count.count, count.count)
    filters = [f"{name} = {_listed(value)}" for name, value in count.where.items()]
    if count.of_denominator:
        filters.append("people also in the denominator")
    if count.snapshot:
        filters.append(f"register at the {count.snapshot.replace('_', ' ')}")
    return f"{what} in {source}" + (f" where {'; '.join(filters)}" if filters else "")


def _listed(value: object) -> str:
    if isinstance(value, list):
        return " or ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)


def ethnic_groups_rows() -> list[dict]:
    """The groups of the breakdowns, with each 16-group's 5-group and the reference groups."""
    groups = (
        ethnic_groups().drop(columns="ethnic_code").drop_duplicates(["breakdown", "group_code"])
    )
    codes_5 = dict(
        groups.loc[groups["breakdown"] == "ethnicity_5", ["group_label", "group_code"]].values
    )
    references = _reference_groups()
    rows = [
        {
            "breakdown": g.breakdown,
            "group_code": g.group_code,
            "group_label": g.group_label,
            "group_order": int(g.group_order),
            "parent_group_code": codes_5.get(g.parent_5) if g.parent_5 else None,
            "is_reference": references.get(g.breakdown) == g.group_label,
        }
        for g in groups.itertuples()
    ]
    return rows


def _reference_groups() -> dict[str, str]:
    """The catalogue's default reference group per breakdown."""
    found: dict[str, str] = {}
    for indicator in catalogue().values():
        for breakdown, label in indicator.reference_groups.items():
            found.setdefault(breakdown, label)
    return found
