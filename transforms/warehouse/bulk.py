"""Bulk writes through each engine's fast path, never row-by-row inserts.

DuckDB scans an Arrow table in place; PostgreSQL takes ``COPY`` from CSV written by Arrow.
The Arrow types of a table's columns follow from its declaration (``tables.py``).
"""

from __future__ import annotations

import io

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


def append_arrow(conn: Connection, table: sa.Table, data: pa.Table) -> None:
    """Append an Arrow table to ``table`` inside the connection's open transaction."""
    if data.num_rows == 0:
        return
    preparer = conn.dialect.identifier_preparer
    columns = ", ".join(preparer.quote(name) for name in data.column_names)
    raw = conn.connection.driver_connection
    if is_duckdb(conn):
        # from_arrow copies the batch; a registered Arrow view would stay referenced (and its
        # memory held) until the transaction commits, so memory would grow with file size.
        name = table.fullname  # DuckDB's relational API takes the name unquoted
        raw.from_arrow(data.select(raw.table(name).columns)).insert_into(name)
        return
    name = _name(conn, table)
    with (
        raw.cursor() as cursor,
        cursor.copy(f"copy {name} ({columns}) from stdin with (format csv)") as copy,
    ):
        for batch in data.to_batches(max_chunksize=COPY_BATCH_ROWS):
            buffer = io.BytesIO()
            pacsv.write_csv(batch, buffer, pacsv.WriteOptions(include_header=False))
            copy.write(buffer.getbuffer())
