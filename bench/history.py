"""A longer history made from a release's own rows, for measuring what history costs."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from transforms.publish.contents import Contents
from transforms.publish.tables import RELEASE_TABLES

DATED = {
    "indicator_values": ("period_start", "period_end"),
    "ethnicity_completeness": ("month",),
}
"""The tables that carry every period of the history, and their date columns."""


def lengthen(found: Contents, copies: int) -> Contents:
    """``found`` with its periodic tables repeated ``copies`` times, each copy moved back by
    whole years beyond the span of the one before, so no copy's periods meet another's."""
    first = pd.Timestamp(f"{found.first_month}-01")
    span = pd.Timestamp(f"{found.month}-01").year - first.year + 1
    years = -(-span // 4) * 4  # whole leap-year cycles: a February keeps its 29th
    tables = dict(found.tables)
    for name, dates in DATED.items():
        frame = found.tables[name].to_pandas()
        moved = []
        for copy in range(copies):
            part = frame.copy()
            for column in dates:
                shifted = pd.to_datetime(part[column]) - pd.DateOffset(years=years * copy)
                part[column] = shifted.dt.date
            moved.append(part)
        spec = RELEASE_TABLES[name]
        whole = pa.Table.from_pandas(
            pd.concat(moved, ignore_index=True),
            schema=found.tables[name].schema,
            preserve_index=False,
        )
        tables[name] = whole.sort_by([(k, "ascending") for k in spec.primary_key]).combine_chunks()
    first_month = (first - pd.DateOffset(years=years * (copies - 1))).strftime("%Y-%m")
    return Contents(month=found.month, first_month=first_month, tables=tables)
