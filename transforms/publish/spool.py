"""The release's tables on local disk until they are written, so that the release task's memory
does not grow with the history the release holds.

A release carries every month of history, so its tables grow without end. Each is read from
the warehouse in key order, a part at a time, into an Arrow file in a temporary folder, and
each later step (the content fingerprint, the Parquet files, the CSV) reads it back a part at
a time.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa

from transforms.publish import scratch
from transforms.publish.tables import ReleaseTable


class Spool:
    """The tables of one release, by name. Close it (or use it in a ``with`` block) to
    remove its folder."""

    def __init__(self) -> None:
        self.folder = scratch.new_folder("release")
        self._rows: dict[str, int] = {}

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def put(self, spec: ReleaseTable, batches: Iterable[pa.RecordBatch]) -> None:
        """Hold ``batches`` (``spec``'s schema, in key order) as ``spec``'s table, replacing
        what it held."""
        rows = 0
        with (
            pa.OSFile(str(self._path(spec)), "wb") as sink,
            pa.ipc.new_file(sink, spec.row_schema()) as writer,
        ):
            for batch in batches:
                writer.write_batch(batch)
                rows += batch.num_rows
        self._rows[spec.name] = rows

    def rows(self, spec: ReleaseTable) -> int:
        return self._rows[spec.name]

    def batches(self, spec: ReleaseTable) -> Iterator[pa.RecordBatch]:
        """The table's rows in key order, in the parts they were put in."""
        with pa.OSFile(str(self._path(spec)), "rb") as source:  # read, not mapped: one part held
            reader = pa.ipc.open_file(source)
            for part in range(reader.num_record_batches):
                yield reader.get_batch(part)

    def table(self, spec: ReleaseTable) -> pa.Table:
        """The whole table: for the catalogue's small tables only."""
        return pa.Table.from_batches(list(self.batches(spec)), schema=spec.row_schema())

    def _path(self, spec: ReleaseTable) -> Path:
        return self.folder / f"{spec.name}.arrow"
