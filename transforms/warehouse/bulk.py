"""Bulk writes through each engine's fast path, never row-by-row inserts.

DuckDB scans an Arrow table in place; PostgreSQL takes ``COPY`` from CSV written by Arrow.
The Arrow types of a table's columns follow from its declaration (``tables.py``).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.warehouse.engine import is_duckdb
from transforms.warehouse.tables import brin_indexes

# COPY ends only once the server has parsed all it was sent, so each chunk is sent in small
# batches: the server parses one while Arrow writes the next (about 10% faster than 250k).
COPY_BATCH_ROWS = 10_000
ARROW_TYPES: dict[type[sa.types.TypeEngine], pa.DataType] = {
    sa.String: pa.string(),
    sa.BigInteger: pa.int64(),
    sa.Integer: pa.int32(),
    sa.Double: pa.float64(),
    sa.Boolean: pa.bool_(),
    sa.Date: pa.date32(),
    sa.DateTime: pa.timestamp("us"),
}
"""SQL type -> the Arrow type its column is written as (most specific first)."""


def arrow_types(table: sa.Table) -> dict[str, pa.DataType]:
    """Column name -> Arrow type, in the table's column order."""
    return {column.name: _arrow_type(column.type) for column in table.columns}


def _arrow_type(kind: sa.types.TypeEngine) -> pa.DataType:
    for sql_type, arrow in ARROW_TYPES.items():
        if isinstance(kind, sql_type):
            return arrow
    raise TypeError(f"no Arrow type for {kind!r}")


def refresh_statistics(conn: Connection, table: sa.Table) -> None:
    """Sample ``table`` again, inside the open transaction, for the queries that follow.

    Right after a month is written its rows are in no statistics (autovacuum cannot see
    uncommitted rows), so PostgreSQL planned the duplicate checks, counts and completeness
    that follow for a few thousand rows: for 5M it sorted the month on disk to find 60
    practices, and probed the record-id index for every row with no other month loaded.
    The sample costs a fraction of a second; DuckDB keeps its statistics as it writes.
    """
    if not is_duckdb(conn):
        conn.execute(sa.text(f"analyze {_name(conn, table)}"))


def summarise_block_ranges(conn: Connection, table: sa.Table) -> None:
    """Summarise every block range of ``table``'s BRIN indexes that has no summary yet
    (PostgreSQL): those a bulk write just filled, the part-filled last one, and any an earlier
    version of this code left (the first load after an upgrade summarises that backlog, 1–2 s
    on a large table).

    An unsummarised range matches every value, so a query for one month read the whole table
    (24 months of the register: 0.61 s for one snapshot's count, 0.07 s summarised).
    ``autosummarize`` did not keep up: it queues a request per filled range (a million rows
    fill about 130) for autovacuum's next visit, in a queue of 256, and the rest are dropped
    ("request for BRIN range summarization ... was not recorded" in the server's log).
    The rows of the open transaction are summarised too (a rollback leaves the summary wider
    than the rows, which costs nothing but a page read).
    """
    if is_duckdb(conn):
        return
    for name in brin_indexes(table):
        conn.execute(sa.text("select brin_summarize_new_values(cast(:i as regclass))"), {"i": name})


def _name(conn: Connection, table: sa.Table) -> str:
    return conn.dialect.identifier_preparer.format_table(table)


def append_arrow(
    conn: Connection, table: sa.Table, data: pa.Table | Iterable[pa.Table | pa.RecordBatch]
) -> None:
    """Append Arrow rows to ``table`` inside the connection's open transaction: a table, or a
    stream of tables or batches holding every column of ``table`` (in any order).

    A stream is written as it comes, as one statement, so only a part is held at a time.
    DuckDB then writes its row groups straight to the file as one insert: a million staged
    rows in 1.5 s, where five inserts of 200k took 2.8 s and 0.7 s more to commit, their rows
    going through the write-ahead log. Whatever error the stream raises is raised as it is.
    """
    parts = [data] if isinstance(data, pa.Table) else data
    names = list(arrow_types(table))
    try:
        if is_duckdb(conn):
            _insert_stream(conn, table, names, parts)
        else:
            _copy_stream(conn, table, names, parts)
    finally:
        close = getattr(parts, "close", None)
        if close is not None:  # a generator stopped early by a failed write: end it now
            close()


def _insert_stream(
    conn: Connection, table: sa.Table, names: list[str], parts: Iterable[pa.Table | pa.RecordBatch]
) -> None:
    schema = pa.schema(arrow_types(table).items())
    feed = _Feed(parts, names, schema)
    raw = conn.connection.driver_connection
    reader = pa.RecordBatchReader.from_batches(schema, iter(feed))
    try:
        raw.from_arrow(reader).insert_into(table.fullname)  # DuckDB takes the name unquoted
    except Exception:
        if feed.error is not None:  # DuckDB reports the stream's error as its own
            raise feed.error from None
        raise


class _Feed:
    """The stream's parts as batches of ``schema``, remembering the error the stream raised."""

    def __init__(
        self, parts: Iterable[pa.Table | pa.RecordBatch], names: list[str], schema: pa.Schema
    ) -> None:
        self.parts, self.names, self.schema = parts, names, schema
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            for part in self.parts:
                yield from part.select(self.names).cast(self.schema).to_batches()
        except BaseException as exc:
            self.error = exc
            raise


def _copy_stream(
    conn: Connection, table: sa.Table, names: list[str], parts: Iterable[pa.Table | pa.RecordBatch]
) -> None:
    preparer = conn.dialect.identifier_preparer
    columns = ", ".join(preparer.quote(name) for name in names)
    raw = conn.connection.driver_connection
    with (
        raw.cursor() as cursor,
        cursor.copy(f"copy {_name(conn, table)} ({columns}) from stdin with (format csv)") as copy,
    ):
        for part in parts:
            rows = pa.Table.from_batches([part]) if isinstance(part, pa.RecordBatch) else part
            for batch in rows.select(names).to_batches(max_chunksize=COPY_BATCH_ROWS):
                buffer = io.BytesIO()
                pacsv.write_csv(batch, buffer, pacsv.WriteOptions(include_header=False))
                copy.write(buffer.getbuffer())
