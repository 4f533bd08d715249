"""Parquet files of a release: the same table gives the same bytes, on any machine, at any time.

Everything in a file follows from its rows and declaration: no timestamp, run id or path is
written (those go in the manifest), row groups and compression are fixed, and the rows are
already sorted. The release id is in the file-level metadata, as ``PUBLICATION.md`` asks; the
content fingerprint (:func:`content_sha256`) leaves it out, so a release can be compared with
the previous one before it has an id.
"""

from __future__ import annotations

import hashlib
import io

import pyarrow as pa
import pyarrow.parquet as pq

from transforms.publish.tables import ReleaseTable

ROW_GROUP_ROWS = 128 * 1024
"""Rows per row group: the largest table (a few hundred thousand rows at full scale) opens in
a fraction of a second, and readers can skip groups by their statistics."""
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 9


def parquet_bytes(table: pa.Table, spec: ReleaseTable, release_id: str) -> bytes:
    """``table`` as a Parquet file of ``spec``'s schema, with ``release_id`` in its metadata."""
    sink = io.BytesIO()
    pq.write_table(
        table.cast(spec.arrow_schema(release_id)),
        sink,
        row_group_size=ROW_GROUP_ROWS,
        compression=COMPRESSION,
        compression_level=COMPRESSION_LEVEL,
        write_statistics=True,
        store_schema=True,
    )
    return sink.getvalue()


def content_sha256(table: pa.Table) -> str:
    """A fingerprint of a table's rows and column types, without any metadata."""
    plain = table.replace_schema_metadata(None).combine_chunks()
    plain = plain.cast(pa.schema([pa.field(f.name, f.type, f.nullable) for f in plain.schema]))
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, plain.schema) as stream:
        stream.write_table(plain)
    return hashlib.sha256(sink.getvalue()).hexdigest()


def schema_fingerprint(spec: ReleaseTable) -> str:
    """A fingerprint of a table's declared columns and types: changes only when they do."""
    described = ";".join(f"{c.name}:{c.arrow_type}:{c.required}" for c in spec.columns)
    return hashlib.sha256(described.encode()).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
