"""A longer history made from a release's own rows, for measuring what history costs."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pyarrow as pa

from transforms.publish.contents import Contents
from transforms.publish.spool import Spool
from transforms.publish.tables import RELEASE_TABLES, ReleaseTable

DATED = {
    "indicator_values": ("period_start", "period_end"),
    "ethnicity_completeness": ("month",),
}
"""The tables that carry every period of the history, and their date columns."""


def lengthen(found: Contents, copies: int) -> Contents:
    """``found`` with its periodic tables repeated ``copies`` times, each copy moved back by
    whole years beyond the span of the one before, so no copy's periods meet another's, in
    a spool of their own in key order. Only the release as it is (one copy) is held, never
    the copies, so what the publish is measured with does not grow with them; the
    warehouse's ``ORDER BY`` of a long history (DuckDB within its 512 MB, spilling beyond)
    is not part of the figure: ``bench/pipeline_scale.py`` has it."""
    first = pd.Timestamp(f"{found.first_month}-01")
    span = pd.Timestamp(f"{found.month}-01").year - first.year + 1
    years = -(-span // 4) * 4  # whole leap-year cycles: a February keeps its 29th
    longer = Spool()
    for name, spec in RELEASE_TABLES.items():
        dates = DATED.get(name, ())
        longer.put(spec, _in_key_order(found, spec, dates, years, copies if dates else 1))
    found.spool.close()
    first_month = (first - pd.DateOffset(years=years * (copies - 1))).strftime("%Y-%m")
    return Contents(month=found.month, first_month=first_month, spool=longer)


def _in_key_order(
    found: Contents, spec: ReleaseTable, dates: tuple[str, ...], years: int, copies: int
) -> Iterator[pa.RecordBatch]:
    """The copies in ``spec``'s key order: the key's columns before its first date, then the
    copies oldest first (a copy moves every date back alike, so keeps its own order)."""
    schema = spec.row_schema()
    base = found.spool.table(spec).to_pandas()
    key = list(spec.primary_key)
    prefix = key[: key.index(dates[0])] if dates else key
    for _, rows in base.groupby(prefix, sort=False):
        for copy in reversed(range(copies)):
            part = rows.copy()
            for column in dates:
                shifted = pd.to_datetime(part[column]) - pd.DateOffset(years=years * copy)
                part[column] = shifted.dt.date
            yield from pa.Table.from_pandas(part, schema=schema, preserve_index=False).to_batches()
