"""Reading a delivery in bounded chunks with Arrow.

Every column is read as text: typing is a row rule (a bad date must quarantine one row, not
fail the file). CSV may be UTF-8 (with or without BOM) or Windows-1252; the encoding is found
by a streaming pre-scan so a stray byte on the last line cannot half-load a file, and a file
that mixes the two is refused rather than garbled.

The landing zone is written by others, so every read is bounded: by the block size, by a cap
on the header line, and for gzip by a cap on the decompressed size and on the compression
ratio (``ReadLimits``), so a hostile file cannot exhaust memory, disk or time. The file is
opened once (never through a link) and every pass reads that descriptor; the bytes loaded are
hashed as they are read and must be the bytes planned, so a file overwritten during the load
is never loaded half old, half new.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import os
import re
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from transforms.config.sources import Source
from transforms.core.identifiers import holds_nhs_number
from transforms.ingest.errors import DeliveryInProgress, DeliveryRejected
from transforms.ingest.landing import (
    Delivery,
    NotARegularFile,
    modified_at,
    open_regular,
    sha256_of,
)

BLOCK_BYTES = 16 << 20
HEADER_BYTES = 1 << 20  # a header line longer than this is not a header
SMALL_FILE_BYTES = 1 << 20  # any file may expand this far, whatever its compression ratio
PERSON_IDENTIFIERS = ("person_id", "nhs_number")  # either identifies a person
SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
PARQUET_BATCH_ROWS = 200_000
CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")  # no character in Windows-1252
# Over text decoded as UTF-8 with the undecodable bytes escaped (U+DC80..U+DCFF):
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
_UTF8_SEQUENCE = re.compile("[^\x00-\x7f\udc80-\udcff]")  # a character UTF-8 writes in 2-4 bytes
_NOT_CP1252 = re.compile("[\udc81\udc8d\udc8f\udc90\udc9d]")
CHANGED = "its bytes changed while it was being loaded (an upload or overwrite under way)"


@dataclass(frozen=True)
class ReadLimits:
    """How far a compressed delivery may expand (``HEI_MAX_DECOMPRESSED_BYTES``,
    ``HEI_MAX_COMPRESSION_RATIO``): CSV compresses about 10 to 1, a gzip bomb a thousand."""

    max_decompressed_bytes: int = 8 << 30
    max_compression_ratio: float = 100.0

    def allowed(self, stored_bytes: int) -> int:
        ratio_cap = max(SMALL_FILE_BYTES, int(self.max_compression_ratio * stored_bytes))
        return min(self.max_decompressed_bytes, ratio_cap)


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
    known: list[str] = field(default_factory=list)  # the names that are the source's columns
    absent: list[str] = field(default_factory=list)  # optional columns the file does not carry


def normalise_name(name: str) -> str:
    return name.strip().lower().replace(" ", "_")


def _separator_hint(raw_names: list[str]) -> str:
    """Why a header may be one name: a separator other than the contract's comma."""
    if len(raw_names) == 1:
        for mark, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "vertical bars")):
            if mark in raw_names[0]:
                return (
                    f" (the header is one field holding {name}: the file looks separated by "
                    f"{name}, and the contract's separator is the comma)"
                )
    return ""


def map_header(raw_names: list[str], source: Source, file_name: str) -> Header:
    """Match columns case-insensitively (and by alias); reject if a required one is missing,
    if one of the source's repeats, or if a name holds an NHS number. The optional columns
    the file lacks are listed (``absent``): they load as null, and the audit says the nulls
    were not sent."""
    lookup = {}
    for column in source.columns:
        for alias in (column.name, *column.aliases):
            lookup[alias] = column.name
    names = [lookup.get(normalise_name(n), normalise_name(n)) for n in raw_names]
    known = set(lookup.values())
    # Unrecognised names are never echoed as they are: a file without a header has data
    # (NHS numbers, say) where the names should be.
    shown = (n if SAFE_NAME.match(n) else "(unnamed column)" for n in names if n not in known)
    extra = list(dict.fromkeys(shown))
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
            f"required column(s) missing: {', '.join(missing)}{_separator_hint(raw_names)}",
            f"Check the extract's header against the {source.name} data contract and resend.",
        )
    leaked = [holds_nhs_number(name) for name in raw_names]
    if any(leaked):
        raise DeliveryRejected(
            "identifier_in_header",
            file_name,
            f"the name of column {leaked.index(True) + 1} in the header holds an NHS number, "
            "so the file was not read",
            "Send the extract with the data contract's column names, and NHS numbers only "
            "in the nhs_number column.",
        )
    # A column the contract does not know is not read, however often it appears (Excel's
    # trailing empty columns: ``a,b,,``); one of the source's twice is ambiguous.
    repeated = sorted({n for n in names if n in known and names.count(n) > 1})
    if repeated:
        raise DeliveryRejected(
            "duplicate_column",
            file_name,
            f"the header repeats column(s) {', '.join(repeated)}",
            "Send the file with each column once.",
        )
    absent = [c.name for c in source.columns if c.name not in present | set(PERSON_IDENTIFIERS)]
    return Header(names, extra, [n for n in names if n in known], absent)


class _Metered(io.RawIOBase):
    """A read-only view of a stream that hashes the bytes passing through it, or refuses
    to pass more than ``limit`` of them (``too_large`` says why)."""

    def __init__(
        self,
        inner: BinaryIO,
        digest: hashlib._Hash | None = None,
        limit: int | None = None,
        too_large: Callable[[], DeliveryRejected] | None = None,
    ) -> None:
        self._inner, self._digest, self._limit, self._too_large = inner, digest, limit, too_large
        self._passed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:
        count = self._inner.readinto(buffer)
        self._passed += count
        if self._limit is not None and self._passed > self._limit:
            raise self._too_large()
        if self._digest is not None:
            self._digest.update(memoryview(buffer)[:count])
        return count


def detect_encoding(open_text: Callable[[], BinaryIO], file_name: str) -> str:
    """``utf-8`` if every byte decodes as UTF-8; ``cp1252`` (the other NHS extract encoding)
    if no byte sequence in the file is UTF-8 and every byte is Windows-1252.

    Anything else is refused, naming the first line at fault: a UTF-8 file with one stray
    Windows-1252 byte read as Windows-1252 throughout would garble every UTF-8 character
    (``H – Indian`` into an invalid code), and the reverse would garble the other lines.
    ``open_text`` opens the decompressed bytes from the start; they are read once, and again
    only to name the line when the file is refused.
    """
    with open_text() as stream:
        verdict, size = _classify(stream)
    if size == 0:
        raise DeliveryRejected(
            "empty_file",
            file_name,
            "the file is empty (0 bytes)",
            "Resend the extract; an empty file usually means the export failed.",
        )
    if verdict == "neither":
        line = _survey(open_text, _NOT_CP1252)[1]
        raise DeliveryRejected(
            "unreadable_file",
            file_name,
            f"line {line} (the header is line 1) has a byte that is neither UTF-8 nor Windows-1252",
            "Re-export the file in UTF-8 and resend it.",
        )
    if verdict == "mixed":
        raise DeliveryRejected(
            "mixed_encoding",
            file_name,
            _mixed_encoding_problem(open_text),
            "Re-export the whole file in one encoding (UTF-8 preferably) and resend it: read "
            "in either encoding, some of its lines would be garbled.",
        )
    return verdict


def _classify(stream: BinaryIO) -> tuple[str, int]:
    """``utf-8``, ``cp1252``, ``mixed`` or ``neither``, and the bytes read.

    Valid UTF-8 is decoded strictly (the fast path); from the first byte that is not UTF-8
    on, what is left is decoded ignoring such bytes, and any character that still comes out
    non-ASCII is a UTF-8 sequence in a file that is not UTF-8.
    """
    strict = codecs.getincrementaldecoder("utf-8")()
    lenient = codecs.getincrementaldecoder("utf-8")("ignore")
    size, utf8_seen, not_utf8 = 0, False, False
    while True:
        block = stream.read(BLOCK_BYTES)
        size += len(block)
        if not not_utf8:
            try:
                utf8_seen |= not strict.decode(block, final=not block).isascii()
            except UnicodeDecodeError as exc:
                not_utf8 = True
                utf8_seen |= not exc.object[: exc.start].isascii()
                block = exc.object[exc.start :]
        if not_utf8:
            utf8_seen |= not lenient.decode(block, final=not block).isascii()
            if utf8_seen:
                return "mixed", size
            if any(byte in block for byte in CP1252_UNDEFINED):
                return "neither", size
        if not block:
            return ("cp1252" if not_utf8 else "utf-8"), size


def _mixed_encoding_problem(open_text: Callable[[], BinaryIO]) -> str:
    """Which line breaks the file's main encoding: the minority is taken for the stray."""
    not_utf8, not_utf8_line = _survey(open_text, _NOT_UTF8)
    utf8, utf8_line = _survey(open_text, _UTF8_SEQUENCE)
    if utf8 >= not_utf8:
        return (
            f"line {not_utf8_line} (the header is line 1) has bytes that are not UTF-8, in a "
            f"file otherwise UTF-8 ({not_utf8} such byte(s) against {utf8} UTF-8 characters)"
        )
    return (
        f"line {utf8_line} (the header is line 1) is UTF-8, in a file otherwise Windows-1252 "
        f"({utf8} UTF-8 character(s) against {not_utf8} other non-ASCII bytes)"
    )


def _survey(open_text: Callable[[], BinaryIO], pattern: re.Pattern[str]) -> tuple[int, int]:
    """How often ``pattern`` occurs in the file decoded as UTF-8 (undecodable bytes escaped),
    and the line of its first occurrence. Only run to explain a refusal."""
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    count, first_line, lines_before = 0, 0, 0
    with open_text() as stream:
        while True:
            block = stream.read(BLOCK_BYTES)
            text = decoder.decode(block, final=not block)
            found = pattern.search(text)
            if found and not first_line:
                first_line = lines_before + _line_breaks(text[: found.start()]) + 1
            count += len(pattern.findall(text))
            lines_before += _line_breaks(text)
            if not block:
                return count, first_line


def _line_breaks(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


_UTF16 = ("UTF-16 text", "Export it as UTF-8 (or Windows-1252) CSV and resend it.")
_OTHER_FORMATS = {  # what a file named as CSV holds instead, by its first bytes
    b"\x1f\x8b": (
        "gzip-compressed data",
        "Send the CSV text compressed once and named .csv.gz, or uncompressed and named .csv.",
    ),
    b"PK\x03\x04": (
        "a zip archive (an Excel workbook is one)",
        "Export the data as a CSV file and send that.",
    ),
    b"PAR1": ("a Parquet file", "Name it .parquet and deliver it again."),
    codecs.BOM_UTF16_LE: _UTF16,
    codecs.BOM_UTF16_BE: _UTF16,
}


_MAGIC_BYTES = max(map(len, _OTHER_FORMATS))


def _refuse_other_formats(first_bytes: bytes, delivery: Delivery) -> None:
    """Refuse CSV text that is another format, naming it: read as text, such content failed
    later with a misleading reason (a mixed encoding, every column missing)."""
    for magic, (what, action) in _OTHER_FORMATS.items():
        if first_bytes.startswith(magic):
            raise DeliveryRejected(
                "unreadable_file",
                delivery.file_name,
                f"it holds {what}, not CSV text",
                action,
            )


def _read_header(stream: BinaryIO, encoding: str, file_name: str) -> list[str]:
    """The names on the first line, which ends at the first LF or CR and must be short."""
    head = stream.read(HEADER_BYTES)
    end = re.search(b"[\r\n]", head)
    if end is None and len(head) == HEADER_BYTES:
        raise DeliveryRejected(
            "unreadable_file",
            file_name,
            f"its first line is longer than {HEADER_BYTES:,} bytes, so it is not a header row "
            "(or the file has no line breaks)",
            "Check that the file is a CSV extract with a header row and resend it.",
        )
    line = head[: end.start() if end else len(head)].removeprefix(codecs.BOM_UTF8)
    if not line.strip():  # judged on what was read: the whole file, unless over HEADER_BYTES
        blank = len(head) < HEADER_BYTES and not head.removeprefix(codecs.BOM_UTF8).strip()
        raise DeliveryRejected(
            "empty_file" if blank else "missing_column",
            file_name,
            "it holds only blank lines" if blank else "its first line is blank",
            "Resend the extract with its header row as the first line"
            + ("; a blank file usually means the export failed." if blank else "."),
        )
    return next(csv.reader([line.decode(encoding)]), [])


class DeliveryReader:
    """Opens a delivery, maps its header, then yields its rows in chunks.

    Malformed CSV lines (wrong number of fields) are skipped by the parser and listed in
    ``malformed`` with their row numbers, so the caller can quarantine them. Only the
    source's columns are read: extra columns are listed in the header and ignored, whatever
    their type. Use as a context manager: it holds the file open.
    """

    def __init__(self, delivery: Delivery, source: Source, limits: ReadLimits) -> None:
        self.delivery = delivery
        self.source = source
        self.limits = limits
        self.malformed: list[MalformedLine] = []
        self._runaway_from: int | None = None  # the row an unbalanced quote runs on from
        self._file = _open(delivery)
        try:
            with _rejecting_unreadable(delivery):
                if delivery.fmt == "parquet":
                    self._parquet = self._open_parquet()
                    raw_names = self._parquet.schema_arrow.names
                else:
                    with self._text() as stream:
                        _refuse_other_formats(stream.read(_MAGIC_BYTES), delivery)
                    self.encoding = detect_encoding(self._text, delivery.file_name)
                    with self._text() as stream:
                        raw_names = _read_header(stream, self.encoding, delivery.file_name)
            self.header = map_header(raw_names, source, delivery.file_name)
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> DeliveryReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._file.close()

    def __iter__(self) -> Iterator[Chunk]:
        with _rejecting_unreadable(self.delivery, self._where):
            if self.delivery.fmt == "parquet":
                yield from self._parquet_chunks()
            else:
                yield from self._csv_chunks()

    def _text(self, digest: hashlib._Hash | None = None) -> BinaryIO:
        """The file's text bytes from the start (decompressed, within the limits); the
        stored bytes are hashed into ``digest`` as they are read."""
        self._file.seek(0)
        stored = _Metered(self._file, digest)  # closing it leaves the file open
        if self.delivery.compression != "gzip":
            return stored
        limit = self.limits.allowed(os.fstat(self._file.fileno()).st_size)
        return _Metered(gzip.GzipFile(fileobj=stored), limit=limit, too_large=self._too_large)

    def _too_large(self) -> DeliveryRejected:
        return DeliveryRejected(
            "decompressed_too_large",
            self.delivery.file_name,
            "it expands beyond the limits when decompressed (HEI_MAX_DECOMPRESSED_BYTES = "
            f"{self.limits.max_decompressed_bytes:,} bytes, HEI_MAX_COMPRESSION_RATIO = "
            f"{self.limits.max_compression_ratio:g}), so it was not read further",
            "A real extract this large needs the limits raised; otherwise the file is "
            "corrupt or hostile and must not be resent as it is.",
        )

    def _csv_chunks(self) -> Iterator[Chunk]:
        names = self.header.names
        digest = hashlib.sha256()
        with self._text(digest) as stream:
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
                    column_types={n: pa.string() for n in self.header.known},
                    include_columns=self.header.known,
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
            while stream.read(BLOCK_BYTES):  # to the end, so every stored byte is hashed
                pass
        if digest.hexdigest() != self.delivery.sha256:
            raise DeliveryInProgress(self.delivery.file_name, CHANGED)

    def _where(self) -> str:
        """Where in the file reading stopped, if the parser said."""
        if self._runaway_from is None:
            return ""
        return f", from data row {self._runaway_from}"

    def _on_invalid(self, row: pacsv.InvalidRow) -> str:
        """Skip a line with the wrong number of fields, to be quarantined by the caller.

        A "row" spanning several lines means an unbalanced quote has swallowed the lines
        after it: then the rows cannot be told apart, so the whole file is refused.
        """
        number = (row.number or 0) - 1  # physical line numbers count the header line
        if "\n" in (row.text or ""):
            self._runaway_from = number
            return "error"
        self.malformed.append(MalformedLine(number, row.expected_columns, row.actual_columns))
        return "skip"

    def _open_parquet(self) -> pq.ParquetFile:
        """Parquet is read out of order, so its bytes are hashed first and the file must be
        unchanged (size, modification and change times) from then until the last batch."""
        self._before = _fingerprint(self._file)
        self._file.seek(0)
        if sha256_of(self._file) != self.delivery.sha256:
            raise DeliveryInProgress(self.delivery.file_name, CHANGED)
        parquet = pq.ParquetFile(self._file)
        metadata = parquet.metadata
        expands_to = sum(
            metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups)
        )
        if expands_to > self.limits.allowed(self._before[0]):
            raise self._too_large()
        return parquet

    def _parquet_chunks(self) -> Iterator[Chunk]:
        known = self.header.known
        raw = [
            n
            for n, name in zip(self._parquet.schema_arrow.names, self.header.names, strict=True)
            if name in known
        ]
        next_row = 1
        for batch in self._parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=raw):
            table = pa.Table.from_batches([batch]).rename_columns(known)
            rows = np.arange(next_row, next_row + table.num_rows, dtype=np.int64)
            table = pa.table({n: self._text_column(table[n], n, rows) for n in known})
            yield Chunk(table, rows)
            next_row += table.num_rows
        if _fingerprint(self._file) != self._before:
            raise DeliveryInProgress(self.delivery.file_name, CHANGED)

    def _text_column(self, values: pa.ChunkedArray, name: str, rows: np.ndarray) -> pa.ChunkedArray:
        """A Parquet column as text, or the file refused naming the column and its rows: one
        typed value that has no text (bytes that are not UTF-8, a list) fails the cast."""
        try:
            return _as_text(values)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise DeliveryRejected(
                "unreadable_file",
                self.delivery.file_name,
                f"column {name} (Parquet type {values.type}) holds a value that cannot be read "
                f"as text, in data rows {rows[0]} to {rows[-1]}",
                "Write the column as text, or in its type in the data contract, and resend it.",
            ) from None


def _open(delivery: Delivery) -> BinaryIO:
    """The delivery's file, if it is still the regular file that was found."""
    try:
        handle = open_regular(delivery.path)
    except NotARegularFile:
        raise DeliveryRejected(
            "not_a_regular_file",
            delivery.file_name,
            "it is no longer a regular file (a symbolic link, folder, pipe or device)",
            "Deliver the extract itself as an ordinary file.",
        ) from None
    except FileNotFoundError:
        raise DeliveryInProgress(delivery.file_name, "it disappeared after it was found") from None
    except OSError as exc:
        raise DeliveryRejected(
            "unreadable_file",
            delivery.file_name,
            f"the file cannot be opened for reading ({os.strerror(exc.errno or 0).lower()})",
            "Make it readable by the loader's user, then touch it or deliver it again.",
        ) from None
    info = os.fstat(handle.fileno())
    if info.st_size != delivery.size or modified_at(info) != delivery.modified_at:
        handle.close()
        raise DeliveryInProgress(delivery.file_name, "it changed after it was found")
    return handle


def _fingerprint(handle: BinaryIO) -> tuple[int, int, int]:
    info = os.fstat(handle.fileno())
    return info.st_size, info.st_mtime_ns, info.st_ctime_ns


def _as_text(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Parquet columns as the text a CSV would carry (timestamps as their date)."""
    if pa.types.is_timestamp(values.type):
        values = values.cast(pa.date32())
    return values.cast(pa.string())


@contextmanager
def _rejecting_unreadable(
    delivery: Delivery, where: Callable[[], str] = lambda: ""
) -> Iterator[None]:
    try:
        yield
    except (pa.ArrowException, UnicodeError, OSError, EOFError, zlib.error, csv.Error) as exc:
        raise DeliveryRejected(
            "unreadable_file",
            delivery.file_name,
            f"the file cannot be parsed ({describe_unreadable(exc)}{where()})",
            "Check that it is a complete, uncorrupted CSV or Parquet file and resend it.",
        ) from None


def describe_unreadable(exc: Exception) -> str:
    """What went wrong, without the parser's own message: Arrow quotes the offending line,
    which can hold an NHS number, and the error goes to the audit table and the logs."""
    if isinstance(exc, UnicodeError):
        return "bytes that are neither UTF-8 nor Windows-1252"
    if isinstance(exc, (EOFError, OSError, zlib.error)) and not isinstance(exc, pa.ArrowException):
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
