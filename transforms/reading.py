"""Reading a delivery in bounded chunks with Arrow.

Every column is read as text: typing is a row rule (a bad date must quarantine one row, not
fail the file). CSV may be UTF-8 (with or without BOM) or Windows-1252; the encoding is found
by a streaming pre-scan so a stray byte on the last line cannot half-load a file. Memory is
bounded by the block size, whatever the file size.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from transforms.errors import DeliveryRejected
from transforms.landing import Delivery
from transforms.sources import Source

BLOCK_BYTES = 16 << 20
SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
PARQUET_BATCH_ROWS = 200_000


@dataclass
class Chunk:
    """A batch of rows as text, with their 1-based data-row numbers in the file."""

    table: pa.Table
    row_numbers: np.ndarray


@dataclass
class MalformedLine:
    row_number: int
    expected_fields: int
    actual_fields: int


@dataclass
class Header:
    """How the file's columns map onto the source's canonical column names."""

    names: list[str]  # canonical name, or the normalised original for an unknown column
    extra: list[str] = field(default_factory=list)


def normalise_name(name: str) -> str:
    return name.strip().lower().replace(" ", "_")


def map_header(raw_names: list[str], source: Source, file_name: str) -> Header:
    """Match columns case-insensitively (and by alias); reject if a required one is missing."""
    lookup = {}
    for column in source.columns:
        for alias in (column.name, *column.aliases):
            lookup[alias] = column.name
    names = [lookup.get(normalise_name(n), normalise_name(n)) for n in raw_names]
    known = set(lookup.values())
    # Unrecognised names are never echoed as they are: a file without a header has data
    # (NHS numbers, say) where the names should be.
    extra = [n if SAFE_NAME.match(n) else "(unnamed column)" for n in names if n not in known]
    present = set(names)
    missing = [
        c.name
        for c in source.columns
        if c.required
        and c.name not in present
        and not (c.name == "person_id" and source.person_level)
    ]
    if source.person_level and not present & {"person_id", "nhs_number"}:
        missing.insert(0, "nhs_number or person_id")
    if missing:
        raise DeliveryRejected(
            "missing_column",
            file_name,
            f"required column(s) missing: {', '.join(missing)}",
            f"Check the extract's header against the {source.name} data contract and resend.",
        )
    repeated = sorted({n for n in names if n in known and names.count(n) > 1})
    if len(present) != len(names):
        raise DeliveryRejected(
            "duplicate_column",
            file_name,
            f"the header repeats column(s) {', '.join(repeated) or '(unrecognised names)'}",
            "Send the file with each column once.",
        )
    return Header(names=names, extra=extra)


def _open_bytes(delivery: Delivery) -> io.BufferedIOBase:
    raw = open(delivery.path, "rb")  # noqa: SIM115 - closed by the caller's context manager
    return gzip.GzipFile(fileobj=raw) if delivery.compression == "gzip" else raw


def detect_encoding(delivery: Delivery) -> str:
    """``utf-8`` if every byte decodes as UTF-8, else ``cp1252`` (the other NHS extract encoding).

    Also turns unreadable and truncated files into a rejection with a clear reason.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with _open_bytes(delivery) as stream:
            size = 0
            while block := stream.read(BLOCK_BYTES):
                size += len(block)
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    _drain(stream)
                    return "cp1252"
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "cp1252"
    except (OSError, EOFError) as exc:
        raise DeliveryRejected(
            "unreadable_file",
            delivery.file_name,
            f"the file cannot be read ({describe_unreadable(exc)})",
            "The file is probably truncated or not really gzip; resend it complete.",
        ) from None
    if size == 0:
        raise DeliveryRejected(
            "empty_file",
            delivery.file_name,
            "the file is empty (0 bytes)",
            "Resend the extract; an empty file usually means the export failed.",
        )
    return "utf-8"


def _drain(stream: io.BufferedIOBase) -> None:
    """Read to the end so a truncated gzip is still reported as unreadable."""
    while stream.read(BLOCK_BYTES):
        pass


class DeliveryReader:
    """Opens a delivery, maps its header, then yields its rows in chunks.

    Malformed CSV lines (wrong number of fields) are skipped by the parser and listed in
    ``malformed`` with their row numbers, so the caller can quarantine them.
    """

    def __init__(self, delivery: Delivery, source: Source) -> None:
        self.delivery = delivery
        self.source = source
        self.malformed: list[MalformedLine] = []
        with _rejecting_unreadable(delivery):
            if delivery.fmt == "parquet":
                self._parquet = pq.ParquetFile(delivery.path)
                raw_names = self._parquet.schema_arrow.names
            else:
                self.encoding = detect_encoding(delivery)
                with _open_bytes(delivery) as stream:
                    header_line = stream.readline().removeprefix(codecs.BOM_UTF8)
                    first_line = header_line.decode(self.encoding)
                raw_names = next(csv.reader([first_line]), [])
        self.header = map_header(raw_names, source, delivery.file_name)

    def __iter__(self) -> Iterator[Chunk]:
        with _rejecting_unreadable(self.delivery):
            if self.delivery.fmt == "parquet":
                yield from self._parquet_chunks()
            else:
                yield from self._csv_chunks()

    def _csv_chunks(self) -> Iterator[Chunk]:
        names = self.header.names
        with _open_bytes(self.delivery) as stream:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(
                    column_names=names,
                    skip_rows=1,
                    encoding=self.encoding,
                    block_size=BLOCK_BYTES,
                    use_threads=False,
                ),
                parse_options=pacsv.ParseOptions(
                    newlines_in_values=True, invalid_row_handler=self._on_invalid
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
            next_row = 1
            for batch in reader:
                numbers = _row_numbers(next_row, batch.num_rows, self.malformed)
                if len(numbers):
                    next_row = int(numbers[-1]) + 1
                yield Chunk(pa.Table.from_batches([batch]), numbers)

    def _on_invalid(self, row: pacsv.InvalidRow) -> str:
        """Skip a line with the wrong number of fields, to be quarantined by the caller.

        A "row" spanning several lines means an unbalanced quote has swallowed the lines
        after it: then the rows cannot be told apart, so the whole file is refused.
        """
        if "\n" in (row.text or ""):
            return "error"
        number = (row.number or 0) - 1  # physical line numbers count the header line
        self.malformed.append(MalformedLine(number, row.expected_columns, row.actual_columns))
        return "skip"

    def _parquet_chunks(self) -> Iterator[Chunk]:
        names = self.header.names
        next_row = 1
        for batch in self._parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            table = pa.Table.from_batches([batch]).rename_columns(names)
            table = pa.table({n: _as_text(table[n]) for n in names})
            yield Chunk(table, np.arange(next_row, next_row + table.num_rows, dtype=np.int64))
            next_row += table.num_rows


def _as_text(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Parquet columns as the text a CSV would carry (timestamps as their date)."""
    if pa.types.is_timestamp(values.type):
        values = values.cast(pa.date32())
    return values.cast(pa.string())


@contextmanager
def _rejecting_unreadable(delivery: Delivery) -> Iterator[None]:
    try:
        yield
    except (pa.ArrowException, UnicodeError, OSError, EOFError, csv.Error) as exc:
        raise DeliveryRejected(
            "unreadable_file",
            delivery.file_name,
            f"the file cannot be parsed ({describe_unreadable(exc)})",
            "Check that it is a complete, uncorrupted CSV or Parquet file and resend it.",
        ) from None


def describe_unreadable(exc: Exception) -> str:
    """What went wrong, without the parser's own message: Arrow quotes the offending line,
    which can hold an NHS number, and the error goes to the audit table and the logs."""
    if isinstance(exc, UnicodeError):
        return "bytes that are neither UTF-8 nor Windows-1252"
    if isinstance(exc, (EOFError, OSError)) and not isinstance(exc, pa.ArrowException):
        return "the compressed data ends early or is not gzip"
    fields = re.search(r"Expected \d+ columns, got \d+", str(exc))
    if fields:
        return f"{fields.group(0).lower()} on a line an unbalanced quote runs into"
    return f"{type(exc).__name__} while reading it"


def _row_numbers(start: int, count: int, malformed: list[MalformedLine]) -> np.ndarray:
    """Data-row numbers of ``count`` good rows from ``start``, skipping malformed lines."""
    skipped = np.array([m.row_number for m in malformed if m.row_number >= start], dtype=np.int64)
    numbers = np.arange(start, start + count + len(skipped), dtype=np.int64)
    return numbers[~np.isin(numbers, skipped)][:count]
