"""The release's tables on local disk until they are written, so that the release task's memory
does not grow with the history the release holds.

A release carries every month of history, so its tables grow without end. They are read from
the warehouse a part at a time into a DuckDB database file in a temporary folder (capped in
memory, spilling to that folder), and each later step (the content fingerprint, the Parquet
files, the CSV) reads them back in key order, ``ROWS_AT_ONCE`` rows at a time. DuckDB orders
strings by their UTF-8 bytes, as Arrow does, whatever the warehouse's collation, so DuckDB
and PostgreSQL warehouses give the same files.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import duckdb
import pyarrow as pa

from transforms.publish.tables import ROWS_AT_ONCE, ReleaseTable

SPOOL_DUCKDB = {"memory_limit": "64MB", "threads": 1}
"""The spool's DuckDB: a release's tables at full scale are a few MB a year of history."""


class Spool:
    """The tables of one release, by name. Close it (or use it in a ``with`` block) to
    remove its folder."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="hei-release-"))
        config = SPOOL_DUCKDB | {"temp_directory": str(self.folder / "spill")}
        self._db = duckdb.connect(str(self.folder / "spool.duckdb"), config=config)
        self._rows: dict[str, int] = {}

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def put(self, spec: ReleaseTable, batches: Iterable[pa.RecordBatch]) -> None:
        """Hold ``batches`` (``spec``'s schema, any order) as ``spec``'s table, replacing
        what it held."""
        name = _quoted(spec.name)
        self._db.execute(f"drop table if exists {name}")
        self._db.from_arrow(spec.row_schema().empty_table()).create(spec.name)
        rows = 0
        for batch in batches:
            self._db.from_arrow(pa.Table.from_batches([batch])).insert_into(spec.name)
            rows += batch.num_rows
        self._rows[spec.name] = rows

    def rows(self, spec: ReleaseTable) -> int:
        return self._rows[spec.name]

    def batches(self, spec: ReleaseTable) -> Iterator[pa.RecordBatch]:
        """The table's rows in key order, ``ROWS_AT_ONCE`` at a time, in ``spec``'s types."""
        columns = ", ".join(_quoted(name) for name in spec.column_names)
        keys = ", ".join(_quoted(name) for name in spec.primary_key)
        query = f"select {columns} from {_quoted(spec.name)} order by {keys}"
        schema = spec.row_schema()
        cursor = self._db.cursor()  # its own reader: others may be read meanwhile
        try:
            for batch in cursor.sql(query).fetch_record_batch(ROWS_AT_ONCE):
                yield batch.cast(schema)
        finally:
            cursor.close()

    def table(self, spec: ReleaseTable) -> pa.Table:
        """The whole table: for the catalogue's small tables only."""
        return pa.Table.from_batches(list(self.batches(spec)), schema=spec.row_schema())


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
