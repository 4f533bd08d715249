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
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from transforms.publish.tables import ReleaseTable

ROW_GROUP_ROWS = 128 * 1024
"""Rows per row group: the largest table (a few hundred thousand rows at full scale) opens in
a fraction of a second, and readers can skip groups by their statistics."""
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


def write_parquet(table: pa.Table, spec: ReleaseTable, release_id: str, sink: BinaryIO) -> None:
    """``table`` as a Parquet file of ``spec``'s schema, with ``release_id`` in its metadata."""
    pq.write_table(
        table.cast(spec.arrow_schema(release_id)),
        sink,
        row_group_size=ROW_GROUP_ROWS,
        compression=COMPRESSION,
        compression_level=COMPRESSION_LEVEL,
        write_statistics=True,
        store_schema=True,
    )


def content_sha256(table: pa.Table) -> str:
    """A fingerprint of a table's rows and column types, without any metadata."""
    plain = table.replace_schema_metadata(None).combine_chunks()
    plain = plain.cast(pa.schema([pa.field(f.name, f.type, f.nullable) for f in plain.schema]))
    sink = HashingSink()
    with pa.ipc.new_stream(sink, plain.schema) as stream:
        stream.write_table(plain)
    return sink.hexdigest()


def schema_fingerprint(spec: ReleaseTable) -> str:
    """A fingerprint of a table's declared columns and types: changes only when they do."""
    described = ";".join(f"{c.name}:{c.arrow_type}:{c.required}" for c in spec.columns)
    return hashlib.sha256(described.encode()).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
