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
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from transforms.publish.tables import ReleaseTable

ROW_GROUP_ROWS = 16 * 1024
"""Rows per row group (about 1 MB of Parquet, four years of Wigan's indicator values): the
largest table opens in a fraction of a second, readers skip groups by their statistics, and a
row group is what the writer holds in memory (128k rows held 100 MB at 32 years)."""
CONTENT_PART_ROWS = 5000
"""Rows per part of a content hash (``content_sha256``): part of how the hashes are made
(the release's ``CONTENT_SCHEME``), not a setting; changing it changes every hash."""
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 9


class HashingSink(io.RawIOBase):
    """A binary sink that hashes (SHA-256) and counts the bytes written to it, passing them on
    to ``target`` when given: a file's manifest entry comes from the bytes as they are written,
    and a fingerprint from bytes never kept, so no file of the release is held whole in
    memory (the CSV and the Arrow streams grow with every month of history)."""

    def __init__(self, target: BinaryIO | None = None) -> None:
        super().__init__()
        self.target = target
        self.size = 0
        self._hash = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data)
        self._hash.update(view)
        self.size += view.nbytes
        if self.target is not None and self.target.write(view) not in (None, view.nbytes):
            raise OSError(f"a short write: fewer than {view.nbytes} bytes reached the store")
        return view.nbytes

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def write_parquet(
    batches: Iterable[pa.RecordBatch], spec: ReleaseTable, release_id: str, sink: BinaryIO
) -> None:
    """The rows of ``batches`` (in key order) as a Parquet file of ``spec``'s schema, with
    ``release_id`` in its metadata, written a row group at a time."""
    schema = spec.arrow_schema(release_id)
    with pq.ParquetWriter(
        sink,
        schema,
        compression=COMPRESSION,
        compression_level=COMPRESSION_LEVEL,
        write_statistics=True,
        store_schema=True,
    ) as writer:
        for group in rebatched(batches, ROW_GROUP_ROWS, schema):
            writer.write_batch(group, row_group_size=ROW_GROUP_ROWS)


def content_sha256(batches: Iterable[pa.RecordBatch], spec: ReleaseTable) -> str:
    """A fingerprint of a table's rows (in key order) and column types, without any metadata:
    the Arrow stream of its rows in parts of ``CONTENT_PART_ROWS``, so the same rows give the same
    fingerprint however they were read (from the warehouse, or from a release's file). Each
    part is built again from its values: an Arrow stream carries the bytes under null values,
    which a reader (DuckDB) may leave as they were in its memory."""
    plain = pa.schema([pa.field(f.name, f.type, f.nullable) for f in spec.row_schema()])
    sink = HashingSink()
    with pa.ipc.new_stream(sink, plain) as stream:
        for batch in rebatched(batches, CONTENT_PART_ROWS, plain):
            values = [pa.array(column.to_pylist(), type=column.type) for column in batch.columns]
            stream.write_batch(pa.record_batch(values, schema=plain))
    return sink.hexdigest()


def rebatched(
    batches: Iterable[pa.RecordBatch], rows: int, schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """The rows of ``batches`` as batches of exactly ``rows`` (the last fewer) of ``schema``'s
    types, each in one piece: what is written does not depend on how the rows were read."""
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        held.append(batch.cast(schema))
        count += batch.num_rows
        while count >= rows:
            table = pa.Table.from_batches(held, schema=schema)
            yield _one_piece(table.slice(0, rows), schema)
            held, count = table.slice(rows).to_batches(), count - rows
    if count:
        yield _one_piece(pa.Table.from_batches(held, schema=schema), schema)


def _one_piece(table: pa.Table, schema: pa.Schema) -> pa.RecordBatch:
    columns = [column.combine_chunks() for column in table.columns]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def schema_fingerprint(spec: ReleaseTable) -> str:
    """A fingerprint of a table's declared columns and types: changes only when they do."""
    described = ";".join(f"{c.name}:{c.arrow_type}:{c.required}" for c in spec.columns)
    return hashlib.sha256(described.encode()).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
