"""Turning a batch into landing-file bytes, following the source's contract entry.

Everything becomes text first (dates in the file's format, bools in its style), so faults
can be injected as text; CSV is written unquoted, so a value can never hide a comma.
Output bytes depend only on the data (gzip without mtime, no timestamps anywhere).
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from .columns import Column
from .dates import Month
from .sources import SourceSpec

_BOM = b"\xef\xbb\xbf"


def format_dates(dates: pa.Array | np.ndarray, spec: SourceSpec) -> pa.Array:
    """Dates as text; rearranged from ISO because strftime is ~20x slower."""
    iso = pc.cast(pa.array(dates), pa.string())
    if not spec.day_first:
        return iso
    parts = [pc.utf8_slice_codeunits(iso, a, b) for a, b in ((8, 10), (5, 7), (0, 4))]
    return pc.binary_join_element_wise(*parts, "/")


def _text(column: Column, spec: SourceSpec) -> pa.Array:
    values = column if isinstance(column, pa.Array) else pa.array(column)
    if pa.types.is_date(values.type):
        return format_dates(values, spec)
    if pa.types.is_boolean(values.type):
        return pc.if_else(values, *spec.bools)
    if pa.types.is_integer(values.type):
        return pc.cast(values, pa.string())
    return values


def render(columns: Mapping[str, Column], spec: SourceSpec) -> dict[str, pa.Array]:
    """All columns as strings in the file's conventions (nulls stay null = empty field)."""
    return {name: _text(values, spec) for name, values in columns.items()}


def path_for(spec: SourceSpec, month: Month) -> str:
    """Path relative to the output folder; also the key of the file in truth.json."""
    return f"{spec.name}/{spec.name}_{month.label}.{spec.extension(month.number)}"


def _break_lines(data: bytes, extra_field: Mapping[int, bool]) -> bytes:
    """Malformed lines: one field too many (a trailing value) or too few (first two merged).

    Only the listed lines are touched; the rest of the buffer is copied in a few slices.
    """
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == ord("\n"))
    pieces, cursor = [], 0
    for row in sorted(extra_field):
        start, end = int(ends[row]) + 1, int(ends[row + 1])  # line row + 1; line 0 is the header
        line = data[start:end]
        pieces += [
            data[cursor:start],
            line + b",1" if extra_field[row] else line.replace(b",", b"", 1),
        ]
        cursor = end
    pieces.append(data[cursor:])
    return b"".join(pieces)


def _csv_bytes(
    table: pa.Table, spec: SourceSpec, month: Month, extra_field: Mapping[int, bool]
) -> bytes:
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink, pa_csv.WriteOptions(quoting_style="none", quoting_header="none"))
    text = _break_lines(sink.getvalue(), extra_field)
    if spec.eol != "\n":
        text = text.replace(b"\n", spec.eol.encode())
    if spec.encoding == "cp1252":
        text = text.decode("utf-8").encode("cp1252")
    if spec.encoding == "utf-8-sig":
        text = _BOM + text
    if spec.compression(month.number) == "gzip":
        text = gzip.compress(text, compresslevel=6, mtime=0)
    return text


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def write(
    out: Path,
    spec: SourceSpec,
    month: Month,
    columns: Mapping[str, pa.Array],
    extra_field: Mapping[int, bool],
) -> str:
    """Write one landing file; returns its relative path."""
    table = pa.table(dict(columns))
    data = (
        _parquet_bytes(table)
        if spec.file_format == "parquet"
        else _csv_bytes(table, spec, month, extra_field)
    )
    relative = path_for(spec, month)
    target = out / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return relative
