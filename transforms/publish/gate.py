"""The release gate: every written file read back and checked before a release is visible.

The gate trusts nothing the writer did. It copies each file of the release folder through
fsspec (so it works on any storage: local, ``memory://``, ``az://``, ``s3://``), hashes the
bytes it copied, and reads the tables with DuckDB, not with pyarrow, which wrote them: a
bug in the writer's library cannot hide itself from a different reader. The disclosure rules
are restated below rather than imported, and nothing of ``transforms.core.disclosure`` or
``transforms.indicators`` is imported either, so one bug cannot pass both the rules and the
gate (``PUBLICATION.md``, "Gate"). The attacking audit (``disclosure_audit``) is independent
of disclosure control by the same rule.

The CSV (``indicator_values.csv``, written by another module in the Fingertips layout) is
compared with ``indicator_values.parquet`` as a multiset of (indicator, count, denominator,
whether a value is shown): its period and group labels are written for people, so matching
row by row would make the gate depend on the CSV writer's formatting. Every CSV row is also
checked on its own (counts of 1-7, rounding, statistics beside a withheld count), so a CSV
that shows anything the Parquet file withholds fails either way.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import fsspec
import numpy as np
import pandas as pd

from transforms.config.catalogue import QUALITY_SOURCE, catalogue
from transforms.core.disclosure_audit import DERIVED as AUDITED_STATISTICS
from transforms.core.disclosure_audit import WRES_OF_5, attack
from transforms.core.identifiers import holds_nhs_number, mask_nhs_numbers
from transforms.core.wres_audit import attack_wres
from transforms.publish import scratch
from transforms.publish.tables import RELEASE_KEY, RELEASE_TABLES, ROWS_AT_ONCE, ReleaseTable

WITHHELD_UP_TO = 7
"""Published rule: counts from 1 to this are withheld (restated here, not imported)."""
ROUNDED_TO = 5
"""Published rule: every other count is a multiple of this."""

RULES = {
    "missing": "a file the manifest lists, a declared table, manifest.json or SHA256SUMS is absent",
    "unlisted": "a file in the release folder the manifest does not list (it was not checked)",
    "manifest": "manifest.json is not the manifest the release was written with",
    "bytes": "a file's size differs from the manifest's",
    "sha256": "a file's SHA-256 differs from the manifest's",
    "sha256sums": "SHA256SUMS lacks a file, has a wrong hash, or names a file not released",
    "rows": "a table's row count differs from the manifest's",
    "schema": "a table's columns (names, order, types) differ from its declaration",
    "metadata": "a Parquet file's release id or table name differs from the manifest's",
    "small_count": "a published count of 1-7",
    "not_rounded": "a published count that is negative or not a multiple of 5",
    "derived_shown": "a value or limit shown beside a withheld count",
    "category": "a code outside its column's declared list (a data-team reason such as "
    "small_count would say a withheld count is 1-7)",
    "lone_withheld": "the only withheld count of an additive set (the total less the others)",
    "attack": "the attacking audit narrows a count down (disclosure_audit.attack)",
    "completeness_differs": "ethnicity_completeness and indicator DQ01 show different figures",
    "csv_differs": "the CSV's counts or shown values are not the Parquet file's",
    "identifier": "a person-level identifier (NHS number, pseudonym, identifier column)",
}
"""Every rule id the gate reports, and what it means."""

SUMS_FILE = "SHA256SUMS"
MANIFEST_FILE = "manifest.json"
VALUES, COMPLETENESS, GROUPS, CATALOGUE, WRES = (
    "indicator_values",
    "ethnicity_completeness",
    "ethnic_groups",
    "indicators",
    "wres",
)
WRES_STATISTICS = ["value", "lower_95", "upper_95"]
WRES_COMPARED = ("White", "BME")
"""The groups a WRES relative likelihood is computed from (a board gap: BME alone)."""
WRES_STAFF = "staff"
"""The population a board's share of BME members is set against (WRES9)."""
DERIVED = {
    VALUES: AUDITED_STATISTICS,
    COMPLETENESS: ("pct_known", "lower_95", "upper_95"),
}
"""Per table, the statistics that must be null where a count of their row is withheld."""
FAMILY = ["indicator_id", "measure", "period_type", "period_start"]
PERIOD_MONTHS = 12
"""The tables of every period are checked a year of periods at a time (see ``_Yearly``), so
the gate's memory does not grow with the years of history a release carries."""
DATED = {"indicator_values": "period_start", "ethnicity_completeness": "month"}
"""The tables of every period, and the column that dates their rows: the one the sets, the
attack's families and the DQ01 pairs are keyed on, so that none of them spans two chunks."""
DUCKDB_TYPES = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "number": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
}
"""How DuckDB reads each declared Arrow type (string, int64, float64, bool, date32)."""
CSV_FILE = "indicator_values.csv"
CSV_TABLE = "release_csv"
"""The gate's DuckDB table of the CSV's text (see ``_Csv``)."""
GATE_DUCKDB = {"memory_limit": "64MB", "threads": 1}
"""The gate's DuckDB: a database file in the gate's temporary folder, in at most 64 MB of
memory, so that the CSV's text and the multisets, which carry every period of the history,
go to disk beyond it rather than grow the task (a 64-year release, 275k rows and an 84 MB
CSV, passes in it; in memory the CSV's table alone took 31 MB at 16 years)."""
CSV_BUFFER = 1 << 20
"""Bytes DuckDB's CSV reader holds at a time (its default, 32 MB, would not fit beside the
rest in ``GATE_DUCKDB``'s limit); also the longest line it reads, thousands of times the
CSV's longest."""
CSV_COUNTS = {"Count": "numerator", "Denominator": "denominator"}
CSV_DERIVED = re.compile(r"^(Value|(Lower|Upper) CI .* limit)$")
"""The CSV's statistics (not its ``Value note``, which says why a value is missing)."""
IDENTIFIER_COLUMN = re.compile(r"person.?id|patient.?id|nhs.?(number|no\b|num\b)|pseudonym", re.I)
PSEUDONYM = re.compile(r"(?<![0-9a-f])[0-9a-f]{32,}(?![0-9a-f])", re.I)
"""A hex run as long as a pseudonym (128-bit, see ``identifiers``) or a SHA-256 (64)."""
DECIMAL = re.compile(r"^[+-]?[0-9]*\.[0-9]+(e[+-]?[0-9]+)?$", re.I)
"""A decimal number: its digits are a measurement, never an NHS number (``123.4567890``
would otherwise read as one written with a dot)."""


@dataclass(frozen=True)
class GateFinding:
    """One way the release breaks the rules, located as precisely as the gate can."""

    file: str
    table: str
    row: int | None
    rule: str
    detail: str

    def __str__(self) -> str:
        where = self.file if self.row is None else f"{self.file} row {self.row}"
        if self.table:
            where += f" ({self.table})"
        return f"{where}: {self.rule}: {self.detail}"


class GateOutOfMemory(Exception):
    """The gate could not check the release within its DuckDB's memory: not a fault of the
    release, so not a finding; the publish fails and says how to give the gate more."""


class GateFailure(Exception):
    """The release may not be published; ``findings`` says every reason."""

    SHOWN = 10

    def __init__(self, findings: list[GateFinding]) -> None:
        self.findings = findings
        lines = [str(f) for f in findings[: self.SHOWN]]
        if len(findings) > self.SHOWN:
            lines.append(f"... and {len(findings) - self.SHOWN} more")
        super().__init__(f"the release gate found {len(findings)} problems:\n" + "\n".join(lines))


@dataclass
class _Table:
    """A file of the release and the table it holds: where a finding points."""

    file: str
    table: str

    def finding(self, row: int | None, rule: str, detail: str) -> GateFinding:
        return GateFinding(self.file, self.table, row, rule, detail)


@dataclass
class _Read(_Table):
    """A table as DuckDB read it back, rows in file order, or a part of one: ``rows`` are
    then the file rows of ``frame``'s rows. Findings name the row of the file."""

    frame: pd.DataFrame
    rows: np.ndarray | None = None

    def file_row(self, row: int) -> int:
        return int(row) if self.rows is None else int(self.rows[row])

    def finding(self, row: int | None, rule: str, detail: str) -> GateFinding:
        at = None if row is None else self.file_row(row)
        return GateFinding(self.file, self.table, at, rule, detail)


@dataclass
class _Yearly(_Table):
    """A table that holds every period of the history (``indicator_values``,
    ``ethnicity_completeness``), left in its Parquet file and read ``PERIOD_MONTHS`` of
    periods at a time (by the month of its ``dated`` column), so that the gate's memory does
    not grow with the history. No set, attack family or DQ01 pair spans two periods."""

    db: duckdb.DuckDBPyConnection
    source: str
    dated: str
    columns: list[str]

    @property
    def _chunk(self) -> str:
        month = f"year({self.dated}) * 12 + month({self.dated}) - 1"
        return f"coalesce(({month}) // {PERIOD_MONTHS}, -1)"

    def chunks(self) -> set[int]:
        query = f"select distinct {self._chunk} from read_parquet({self.source})"
        return {chunk for (chunk,) in self.db.sql(query).fetchall()}

    def part(self, chunk: int) -> _Read:
        query = (
            f"select * from read_parquet({self.source}, file_row_number = true) "
            f"where {self._chunk} = {chunk} order by file_row_number"
        )
        frame = self.db.sql(query).df()
        rows = frame.pop("file_row_number").to_numpy()
        return _Read(self.file, self.table, frame, rows)


@dataclass
class _Csv(_Table):
    """The CSV as a DuckDB table of text (every column a string, rows in file order), read
    ``ROWS_AT_ONCE`` rows at a time: as pandas text, the whole of it was the largest thing
    the gate held, and it grows with every month of history the release carries."""

    db: duckdb.DuckDBPyConnection
    count: int
    columns: list[str]

    def parts(self) -> Iterator[_Read]:
        for first in range(0, self.count, ROWS_AT_ONCE):
            rows = f"rowid between {first} and {first + ROWS_AT_ONCE - 1}"
            query = f"select * from {CSV_TABLE} where {rows} order by rowid"
            frame = self.db.sql(query).df()
            yield _Read(self.file, self.table, frame, np.arange(first, first + len(frame)))


def check_release(fs: fsspec.AbstractFileSystem, folder: str, manifest: dict) -> list[GateFinding]:
    """Every way the release in ``folder`` (a path on ``fs``, no trailing slash) breaks the
    rules; [] if it may be published."""
    with scratch.folder("gate") as local:
        copies, findings = _copy(fs, folder, manifest, local)
        findings += _integrity(fs, folder, manifest, copies)
        try:
            with duckdb.connect(f"{local}/gate.duckdb", config=GATE_DUCKDB) as db:
                tables, yearly, read_findings = _read_tables(db, manifest, copies)
                findings += read_findings
                csv, csv_findings = _read_csv(db, manifest, copies)
                findings += csv_findings
                findings += _content(tables, yearly, csv)
        except duckdb.OutOfMemoryException as exc:
            raise GateOutOfMemory(
                f"the release gate ran out of its DuckDB's {GATE_DUCKDB['memory_limit']} of "
                f"memory ({exc}); raise memory_limit in GATE_DUCKDB "
                "(transforms/publish/gate.py) and publish again"
            ) from exc
    return findings


# --- integrity: the files are the ones the manifest describes ---------------------------------


def _listed(manifest: dict) -> list[str]:
    return [entry["path"] for entry in manifest.get("files", [])]


def _copy(
    fs: fsspec.AbstractFileSystem, folder: str, manifest: dict, local: Path
) -> tuple[dict[str, tuple[Path, str]], list[GateFinding]]:
    """Each file of the release copied to ``local``, with the SHA-256 of the bytes copied
    (hashed as they are read, so what is hashed is what is checked)."""
    copies: dict[str, tuple[Path, str]] = {}
    findings = []
    for name in [*_listed(manifest), MANIFEST_FILE, SUMS_FILE]:
        source = f"{folder}/{name}"
        if not fs.exists(source):
            findings.append(
                GateFinding(
                    name,
                    _table_of(manifest, name),
                    None,
                    "missing",
                    "the file is not in the release folder",
                )
            )
            continue
        target = local / name
        digest = hashlib.sha256()
        with fs.open(source, "rb") as reader, target.open("wb") as writer:
            while chunk := reader.read(1 << 20):
                digest.update(chunk)
                writer.write(chunk)
        copies[name] = (target, digest.hexdigest())
    return copies, findings


def _table_of(manifest: dict, name: str) -> str:
    return next((e.get("table", "") for e in manifest.get("files", []) if e["path"] == name), "")


def _integrity(
    fs: fsspec.AbstractFileSystem,
    folder: str,
    manifest: dict,
    copies: dict[str, tuple[Path, str]],
) -> list[GateFinding]:
    findings = []
    for entry in manifest.get("files", []):
        name, table = entry["path"], entry.get("table", "")
        if name not in copies:
            continue
        path, sha = copies[name]
        if path.stat().st_size != entry.get("bytes"):
            findings.append(
                GateFinding(
                    name,
                    table,
                    None,
                    "bytes",
                    f"{path.stat().st_size} bytes, the manifest says {entry.get('bytes')}: "
                    "the file is not the one the manifest describes",
                )
            )
        if sha != entry.get("sha256"):
            findings.append(
                GateFinding(
                    name,
                    table,
                    None,
                    "sha256",
                    f"SHA-256 {sha}, the manifest says {entry.get('sha256')}: the file changed "
                    "after the manifest was written, or was written incompletely",
                )
            )
    declared = {e.get("table") for e in manifest.get("files", []) if e.get("format") == "parquet"}
    findings += [
        GateFinding(
            spec.file_name,
            spec.name,
            None,
            "missing",
            "a declared table of the release is not in the manifest",
        )
        for spec in RELEASE_TABLES.values()
        if spec.name not in declared
    ]
    findings += _manifest_file(manifest, copies)
    findings += _sums(manifest, copies)
    findings += _unlisted(fs, folder, manifest)
    return findings


def _manifest_file(manifest: dict, copies: dict[str, tuple[Path, str]]) -> list[GateFinding]:
    """manifest.json is what partners verify against: it must say what the gate checked."""
    if MANIFEST_FILE not in copies:
        return []
    try:
        written = json.loads(copies[MANIFEST_FILE][0].read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [GateFinding(MANIFEST_FILE, "", None, "manifest", f"not JSON: {exc}")]
    if written != manifest:
        return [
            GateFinding(
                MANIFEST_FILE,
                "",
                None,
                "manifest",
                "differs from the manifest the release was written with",
            )
        ]
    return []


def _sums(manifest: dict, copies: dict[str, tuple[Path, str]]) -> list[GateFinding]:
    """SHA256SUMS must let a partner run ``sha256sum -c`` over every released file."""
    if SUMS_FILE not in copies:
        return []
    listed: dict[str, str] = {}
    findings = []
    text = copies[SUMS_FILE][0].read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.splitlines()):
        match = re.fullmatch(r"([0-9a-f]{64}) [ *](.+)", line)
        if not match:
            findings.append(
                GateFinding(SUMS_FILE, "", number, "sha256sums", "not a '<sha256>  <file>' line")
            )
            continue
        listed[match.group(2)] = match.group(1)
    expected = [*_listed(manifest), MANIFEST_FILE]
    for name in expected:
        actual = copies.get(name, (None, None))[1]
        if name not in listed:
            problem = "has no line for the file"
        elif actual is not None and listed[name] != actual:
            problem = f"says {listed[name]}, the file's SHA-256 is {actual}"
        else:
            continue
        findings.append(GateFinding(SUMS_FILE, "", None, "sha256sums", f"{name}: {problem}"))
    findings += [
        GateFinding(SUMS_FILE, "", None, "sha256sums", f"{name}: not a file of the release")
        for name in sorted(set(listed) - set(expected))
    ]
    return findings


def _unlisted(fs: fsspec.AbstractFileSystem, folder: str, manifest: dict) -> list[GateFinding]:
    """A file the manifest does not list would be published without any check."""
    known = {*_listed(manifest), MANIFEST_FILE, SUMS_FILE}
    present = {posixpath.basename(p.rstrip("/")) for p in fs.ls(folder, detail=False)}
    return [
        GateFinding(name, "", None, "unlisted", "in the release folder but not in the manifest")
        for name in sorted(present - known)
    ]


# --- reading the tables back ------------------------------------------------------------------


def _read_tables(
    db: duckdb.DuckDBPyConnection, manifest: dict, copies: dict[str, tuple[Path, str]]
) -> tuple[dict[str, _Read], dict[str, _Yearly], list[GateFinding]]:
    """Each Parquet table whose file matches its declaration, read by DuckDB (the tables of
    every period, ``DATED``, a year at a time later); a table that does not is reported and
    left out of the content checks (the release fails anyway)."""
    tables: dict[str, _Read] = {}
    yearly: dict[str, _Yearly] = {}
    findings = []
    for entry in manifest.get("files", []):
        name, table = entry["path"], entry.get("table", "")
        if entry.get("format") != "parquet" or name not in copies:
            continue
        spec = RELEASE_TABLES.get(table)
        if spec is None:
            findings.append(
                GateFinding(
                    name,
                    table,
                    None,
                    "schema",
                    "not a declared table of the release: nothing would check it",
                )
            )
            continue
        source = _sql_text(copies[name][0])
        try:
            columns = db.sql(f"describe select * from read_parquet({source})").fetchall()
        except duckdb.OutOfMemoryException:
            raise  # the gate's own limit, not the file's fault (check_release)
        except duckdb.Error as exc:
            findings.append(GateFinding(name, table, None, "schema", f"unreadable: {exc}"))
            continue
        problems = _schema_problems(spec, [(c[0], c[1]) for c in columns])
        findings += [GateFinding(name, table, None, "schema", p) for p in problems]
        findings += _file_metadata(db, source, name, table, manifest.get("release", ""))
        [(rows,)] = db.sql(f"select count(*) from read_parquet({source})").fetchall()
        if rows != entry.get("rows"):
            findings.append(
                GateFinding(
                    name, table, None, "rows", f"{rows} rows, the manifest says {entry.get('rows')}"
                )
            )
        if problems:
            continue
        if table in DATED:
            names = [c[0] for c in columns]
            yearly[table] = _Yearly(name, table, db, source, DATED[table], names)
            continue
        query = (
            f"select * exclude (file_row_number) from read_parquet({source}, "
            "file_row_number = true) order by file_row_number"
        )
        tables[table] = _Read(name, table, db.sql(query).df())
    return tables, yearly, findings


def _sql_text(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _schema_problems(spec: ReleaseTable, columns: list[tuple[str, str]]) -> list[str]:
    """Names, order and types as DuckDB reads them, against the table's declaration."""
    names = [name for name, _ in columns]
    if names != spec.column_names:
        return [f"columns {names}, declared {spec.column_names}"]
    return [
        f"column {name} is {found}, declared {DUCKDB_TYPES[spec.column(name).kind]} "
        f"({spec.column(name).arrow_type})"
        for name, found in columns
        if found != DUCKDB_TYPES[spec.column(name).kind]
    ]


def _file_metadata(
    db: duckdb.DuckDBPyConnection, source: str, name: str, table: str, release: str
) -> list[GateFinding]:
    """Each file names its release and table, so a file copied into the wrong release shows."""
    pairs = dict(db.sql(f"select key, value from parquet_kv_metadata({source})").fetchall())
    wanted = {RELEASE_KEY: release.encode(), b"hei:table": table.encode()}
    return [
        GateFinding(
            name,
            table,
            None,
            "metadata",
            f"{key.decode()} is {pairs.get(key)!r}, expected {value.decode()!r}",
        )
        for key, value in wanted.items()
        if pairs.get(key) != value
    ]


def _read_csv(
    db: duckdb.DuckDBPyConnection, manifest: dict, copies: dict[str, tuple[Path, str]]
) -> tuple[_Csv | None, list[GateFinding]]:
    """The CSV as text, every column a string, rows in file order (a plain scan keeps it)."""
    if CSV_FILE not in copies:
        return None, []
    source = _sql_text(copies[CSV_FILE][0])
    query = (
        f"select * from read_csv({source}, header = true, all_varchar = true, "
        f"buffer_size = {CSV_BUFFER}, max_line_size = {CSV_BUFFER})"
    )
    try:
        db.execute(f"create table {CSV_TABLE} as {query}")
    except duckdb.OutOfMemoryException:
        raise  # the gate's own limit, not the file's fault (check_release)
    except duckdb.Error as exc:
        return None, [GateFinding(CSV_FILE, VALUES, None, "csv_differs", f"unreadable: {exc}")]
    [(count,)] = db.sql(f"select count(*) from {CSV_TABLE}").fetchall()
    columns = [c[0] for c in db.sql(f"describe {CSV_TABLE}").fetchall()]
    csv = _Csv(CSV_FILE, VALUES, db, count, columns)
    rows = next(e.get("rows") for e in manifest["files"] if e["path"] == CSV_FILE)
    if count == rows:
        return csv, []
    return csv, [csv.finding(None, "rows", f"{count} rows, the manifest says {rows}")]


# --- what the tables show ---------------------------------------------------------------------


def _content(
    tables: dict[str, _Read], yearly: dict[str, _Yearly], csv: _Csv | None
) -> list[GateFinding]:
    findings = []
    for read in tables.values():
        findings += _row_rules(read) + _identifiers(read)
    for table in yearly.values():
        findings += _identifier_columns(table, table.columns)
    groups = tables.get(GROUPS)
    parents = _parents(groups.frame) if groups else {}
    multipliers = _multipliers(tables.get(CATALOGUE))
    unaudited: dict[str, int] = {}
    for chunk in sorted(set().union(*(table.chunks() for table in yearly.values()))):
        parts = {name: table.part(chunk) for name, table in yearly.items()}
        for part in parts.values():
            findings += _row_rules(part) + _identifier_values(part)
        values, completeness = parts.get(VALUES), parts.get(COMPLETENESS)
        if values is not None:
            findings += _lone_withheld(values, _value_sets(values.frame, parents))
            findings += _attack(values, multipliers)
            _first_unaudited(values, multipliers, unaudited)
        if values is not None and completeness is not None:
            findings += _completeness_differs(completeness, values)
        if completeness is not None:
            findings += _lone_withheld(completeness, _completeness_sets(completeness.frame))
    findings += [
        yearly[VALUES].finding(
            row,
            "attack",
            f"indicator {indicator} has no multiplier in indicators.parquet, so the attacking "
            "audit cannot check its values",
        )
        for indicator, row in sorted(unaudited.items(), key=lambda item: item[1])
    ]
    if WRES in tables:
        findings += _wres_findings(tables[WRES])
    if csv is not None:
        findings += _csv_content(csv, yearly.get(VALUES))
    return findings


def _row_rules(read: _Read) -> list[GateFinding]:
    """The rules each row meets on its own."""
    spec = RELEASE_TABLES[read.table]
    return _count_rules(read, spec) + _categories(read, spec) + _derived_shown(read)


def _counts(frame: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _count_findings(read: _Read, column: str, shown: np.ndarray) -> Iterator[GateFinding]:
    """Published rules on each shown count: never 1-7, else a non-negative multiple of 5."""
    small = (shown >= 1) & (shown <= WITHHELD_UP_TO)
    for i in np.flatnonzero(small):
        yield read.finding(
            int(i),
            "small_count",
            f"{column} {shown[i]:g} is a count of 1-{WITHHELD_UP_TO}, which must be withheld "
            "(null): it could identify a person",
        )
    unrounded = ~small & ~np.isnan(shown) & ((shown % ROUNDED_TO != 0) | (shown < 0))
    for i in np.flatnonzero(unrounded):
        yield read.finding(
            int(i),
            "not_rounded",
            f"{column} {shown[i]:g} is not a non-negative multiple of {ROUNDED_TO}: the exact "
            "count is published",
        )


def _count_rules(read: _Read, spec: ReleaseTable) -> list[GateFinding]:
    findings = []
    for column in (c.name for c in spec.columns if c.count):
        findings += _count_findings(read, column, _counts(read.frame, column))
    return findings


def _categories(read: _Read, spec: ReleaseTable) -> list[GateFinding]:
    """Every coded value within its declared list: partners read codes against that list,
    and a code outside it says something the list does not (e.g. why a cell is withheld)."""
    findings = []
    for column in (c for c in spec.columns if c.categories):
        values = read.frame[column.name]
        outside = values.notna() & ~values.isin(column.categories)
        for i in np.flatnonzero(outside.to_numpy()):
            findings.append(
                read.finding(
                    int(i),
                    "category",
                    f"{column.name} {values.iloc[i]!r} is not one of {list(column.categories)}",
                )
            )
    return findings


def _derived_shown(read: _Read) -> list[GateFinding]:
    """A statistic beside a withheld count lets a partner compute the count back."""
    if read.table not in DERIVED:
        return []
    spec = RELEASE_TABLES[read.table]
    counts = [c.name for c in spec.columns if c.count]
    withheld = read.frame[counts].isna().any(axis=1).to_numpy()
    return _shown_beside(read, withheld, list(DERIVED[read.table]))


def _shown_beside(read: _Read, withheld: np.ndarray, derived: list[str]) -> list[GateFinding]:
    shown = read.frame[derived].notna().to_numpy() & withheld[:, None]
    return [
        read.finding(
            int(i),
            "derived_shown",
            f"{', '.join(np.array(derived)[shown[i]])} shown where a count is withheld: "
            "the statistic gives the withheld count away",
        )
        for i in np.flatnonzero(shown.any(axis=1))
    ]


# --- additive sets ----------------------------------------------------------------------------


def _parents(groups: pd.DataFrame) -> dict[str, str]:
    """16-group code -> 5-group code, from the release's own ethnic_groups table."""
    sixteen = groups[groups["breakdown"] == "ethnicity_16"]
    return dict(zip(sixteen["group_code"], sixteen["parent_group_code"], strict=True))


def _value_sets(frame: pd.DataFrame, parents: dict[str, str]) -> pd.DataFrame:
    """Each row's place in the sets of indicator_values, as rows (set, row, is_total): All
    persons = Σ 5-groups (Σ 16-groups where a family has no 5-groups), each 5-group = Σ its
    16-groups, ``<source>:all`` = Σ ``<source>:<organisation>``."""
    family = frame.groupby(FAMILY, sort=False, dropna=False).ngroup().to_numpy()
    breakdown = frame["breakdown"].astype(object)
    code = frame["group_code"].astype(str)
    source = "org:" + code.str.split(":", n=1).str[0]
    organisation_total = (breakdown == "source_organisation") & code.str.endswith(":all")
    organisation = (breakdown == "source_organisation") & ~organisation_total
    has_five = pd.Series(family).isin(family[(breakdown == "ethnicity_5").to_numpy()]).to_numpy()
    sixteen = breakdown == "ethnicity_16"
    totals = pd.Series(None, index=frame.index, dtype=object)
    totals[breakdown == "all"] = "all"
    totals[breakdown == "ethnicity_5"] = "5:" + code
    totals[organisation_total] = source
    members = pd.Series(None, index=frame.index, dtype=object)
    members[(breakdown == "ethnicity_5") | (sixteen & ~has_five)] = "all"
    members[sixteen & has_five] = "5:" + code.map(parents)
    members[organisation] = source
    return _combined(
        _memberships(family, totals.to_numpy(), members.to_numpy()), *_wres_group_sets(frame)
    )


def _wres_group_sets(frame: pd.DataFrame) -> list[pd.DataFrame]:
    """Where the WRES groups are published: All persons = White + BME + Unknown, and each of
    them = Σ its 5-groups (White is the 5-group White)."""
    family = frame.groupby(FAMILY, sort=False, dropna=False).ngroup().to_numpy()
    breakdown = frame["breakdown"].astype(object).to_numpy()
    label = frame["group_label"].astype(object)
    wres = breakdown == "wres_group"
    five = breakdown == "ethnicity_5"
    top = _memberships(
        family, np.where(breakdown == "all", "wres", None), np.where(wres, "wres", None)
    )
    parent = label.map(WRES_OF_5).to_numpy(dtype=object)
    groups = _memberships(family, np.where(wres, label, None), np.where(five, parent, None))
    return [top, groups]


def _combined(*sets: pd.DataFrame) -> pd.DataFrame:
    """Several families of sets as one, their set numbers kept apart."""
    offset, parts = 0, []
    for part in sets:
        parts.append(part.assign(set=part["set"] + offset))
        offset += int(part["set"].max()) + 1 if len(part) else 0
    return pd.concat(parts, ignore_index=True)


def _completeness_sets(frame: pd.DataFrame) -> pd.DataFrame:
    """Per source, month and basis, the 'ALL' organisation = Σ organisations."""
    family = frame.groupby(["source", "month", "basis"], sort=False).ngroup().to_numpy()
    total = (frame["organisation"] == "ALL").to_numpy()
    return _memberships(family, np.where(total, "source", None), np.where(total, None, "source"))


def _memberships(family: np.ndarray, totals: np.ndarray, members: np.ndarray) -> pd.DataFrame:
    """(set, row, is_total) rows of the sets with exactly one total and at least one member:
    only those add up to something a partner can use."""
    rows = np.arange(len(family))
    both = pd.DataFrame(
        {
            "family": np.concatenate([family, family]),
            "label": np.concatenate([totals, members]),
            "row": np.concatenate([rows, rows]),
            "is_total": np.concatenate([np.ones(len(rows), bool), np.zeros(len(rows), bool)]),
        }
    ).dropna(subset=["label"])
    both["set"] = both.groupby(["family", "label"], sort=False).ngroup()
    shape = both.groupby("set")["is_total"].agg(["sum", "size"])
    whole = shape.index[(shape["sum"] == 1) & (shape["size"] >= 2)]
    return both[both["set"].isin(whole)]


def _lone_withheld(read: _Read, sets: pd.DataFrame) -> list[GateFinding]:
    """A set with one withheld cell: the total less the other (published) cells gives it to
    within the rounding, so secondary suppression must have withheld a second cell."""
    findings = []
    spec = RELEASE_TABLES[read.table]
    for column in (c.name for c in spec.columns if c.count):
        withheld = read.frame[column].isna().to_numpy()[sets["row"].to_numpy()]
        per_set = pd.Series(withheld).groupby(sets["set"].to_numpy()).transform("sum").to_numpy()
        for i in sorted(set(sets["row"].to_numpy()[withheld & (per_set == 1)])):
            findings.append(
                read.finding(
                    int(i),
                    "lone_withheld",
                    f"{column} is the only withheld count of its set ({_cell(read, int(i))}): "
                    "the set's other published counts give it away",
                )
            )
    return findings


def _cell(read: _Read, i: int) -> str:
    keys = RELEASE_TABLES[read.table].primary_key
    row = read.frame.iloc[i]
    return ", ".join(f"{k}={_plain(row[k])}" for k in keys)


def _plain(value: object) -> object:
    return value.date() if isinstance(value, pd.Timestamp) else value


# --- WRES ------------------------------------------------------------------------------------


def _wres_findings(read: _Read) -> list[GateFinding]:
    """WRES rows: a group row's statistics are withheld with its counts; a comparison row's
    with the counts of the groups it compares (for a board gap, the board's and the staff's);
    each organisation's count of a figure is part of the partnership's (ALL)."""
    frame = read.frame
    is_group = frame["group_label"].notna().to_numpy()
    percentage = frame["measure"].eq("percentage").to_numpy()
    withheld = frame["numerator"].isna().to_numpy() | (
        percentage & frame["denominator"].isna().to_numpy()
    )
    findings = _shown_beside(read, withheld & is_group, WRES_STATISTICS)
    figure = ["indicator_id", "organisation_code", "period_end"]
    compared = frame["group_label"].isin(WRES_COMPARED) & ~(
        frame["indicator_id"].eq("WRES9") & frame["group_label"].ne("BME")
    )
    used = frame[is_group & withheld & compared.to_numpy()]
    hidden = set(map(tuple, used[[*figure, "population"]].astype(str).fillna("").to_numpy()))
    comparisons = frame[~is_group]
    needs = np.array(
        [
            (*key, population) in hidden or (*key, WRES_STAFF) in hidden
            if indicator == "WRES9"
            else (*key, population) in hidden
            for key, population, indicator in zip(
                map(tuple, comparisons[figure].astype(str).fillna("").to_numpy()),
                comparisons["population"].astype(str).fillna(""),
                comparisons["indicator_id"],
                strict=True,
            )
        ],
        dtype=bool,
    )
    beside = np.zeros(len(frame), dtype=bool)
    beside[np.flatnonzero(~is_group)[needs]] = True
    findings += _shown_beside(read, beside, WRES_STATISTICS)
    findings += _lone_withheld(read, _wres_sets(frame))
    return findings + [
        read.finding(int(found.row), "attack", f"{found.cell}: {found.problem} (WRES audit)")
        for found in attack_wres(_audit_frame(frame))
    ]


def _wres_sets(frame: pd.DataFrame) -> pd.DataFrame:
    """Per figure (indicator, year, measure, population, group, band, staff group), the
    partnership's row (ALL) = Σ the organisations' rows."""
    keys = ["indicator_id", "period_end", "measure", "population", "group_label", "band"]
    keys.append("staff_group")
    groups = frame["group_label"].notna().to_numpy()
    family = frame[keys].astype(str).groupby(keys, sort=False, dropna=False).ngroup().to_numpy()
    family = np.where(groups, family, -1)
    total = (frame["organisation_code"] == "ALL").to_numpy()
    label = np.where(groups, "organisations", None)
    sets = _memberships(family, np.where(total, label, None), np.where(total, None, label))
    return sets[sets["family"] >= 0]


# --- the attacking audit ----------------------------------------------------------------------


def _multipliers(indicators: _Read | None) -> dict[str, float]:
    """Each catalogued indicator's multiplier (the attack needs it to read rates)."""
    if indicators is None:
        return {}
    catalogued = indicators.frame.dropna(subset=["multiplier"])
    return {
        str(i): float(m)
        for i, m in zip(catalogued["indicator_id"], catalogued["multiplier"], strict=True)
    }


def _attack(values: _Read, multipliers: dict[str, float]) -> list[GateFinding]:
    """The LP attack of ``disclosure_audit`` on the values as DuckDB read them back (those of
    indicators with a multiplier in the release's catalogue: see :func:`_first_unaudited`)."""
    audited = _audit_frame(values.frame[values.frame["indicator_id"].isin(list(multipliers))])
    return [
        values.finding(
            int(audited.index[found.row]),
            "attack",
            f"{found.cell}: {found.problem} (the audit's {found.kind} check)",
        )
        for found in attack(audited, multipliers)
    ]


def _first_unaudited(values: _Read, multipliers: dict[str, float], first: dict[str, int]) -> None:
    """Rows of an indicator without a multiplier cannot be audited, which is itself a
    finding, made once at its first row in the file: ``first`` gains those of ``values``."""
    frame = values.frame
    for i in np.flatnonzero(~frame["indicator_id"].isin(list(multipliers)).to_numpy()):
        indicator, row = str(frame["indicator_id"].iloc[i]), values.file_row(int(i))
        first[indicator] = min(row, first.get(indicator, row))


def _audit_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns as ``attack`` takes them (as ``fetch_frame`` gives the mart): strings as
    objects with None, counts and statistics as floats with NaN."""
    audit = frame.copy()
    for column in audit.columns:
        if pd.api.types.is_string_dtype(audit[column]):
            audit[column] = audit[column].astype(object).where(audit[column].notna(), None)
        elif pd.api.types.is_integer_dtype(audit[column]) or column == "ethnicity_known_pct":
            audit[column] = pd.to_numeric(audit[column]).astype(float)
    return audit


# --- the second copy of DQ01 --------------------------------------------------------------------

_COMPLETENESS_PAIRS = {
    "records": "denominator",
    "known": "numerator",
    "pct_known": "value",
    "lower_95": "lower_95",
    "upper_95": "upper_95",
}
"""ethnicity_completeness column -> the DQ01 column of indicator_values it restates."""


def _completeness_differs(completeness: _Read, values: _Read) -> list[GateFinding]:
    """Two copies of a count that differ let a partner difference them: each completeness row
    must be the DQ01 row of its source, organisation and month, figure for figure."""
    quality = [i.id for i in catalogue().values() if i.numerator.source == QUALITY_SOURCE]
    v = values.frame
    dq = v[v["indicator_id"].isin(quality) & v["breakdown"].eq("source_organisation")]
    split = dq["group_code"].astype(str).str.split(":", n=1)
    organisation = split.str[1]
    dq = dq.assign(
        source=split.str[0],
        organisation=organisation.where(organisation != "all", "ALL"),
        month=dq["period_start"],
        _values_row=dq.index,
    )
    joined = completeness.frame.assign(_row=completeness.frame.index).merge(
        dq[
            [
                "source",
                "organisation",
                "month",
                "_values_row",
                *dict.fromkeys(_COMPLETENESS_PAIRS.values()),
            ]
        ],
        on=["source", "organisation", "month"],
        how="outer",
        suffixes=("", "_dq"),
        indicator=True,
    )
    findings = []
    for record in joined.to_dict("records"):
        if record["_merge"] == "left_only":
            findings.append(
                completeness.finding(
                    int(record["_row"]),
                    "completeness_differs",
                    "no DQ01 row in indicator_values has this source, organisation and month",
                )
            )
        elif record["_merge"] == "right_only":
            findings.append(
                values.finding(
                    int(record["_values_row"]),
                    "completeness_differs",
                    "this DQ01 row has no row in ethnicity_completeness",
                )
            )
        elif differing := _differing(record):
            findings.append(
                completeness.finding(
                    int(record["_row"]),
                    "completeness_differs",
                    f"differs from DQ01 (indicator_values row "
                    f"{values.file_row(int(record['_values_row']))}): "
                    f"{'; '.join(differing)}: a partner could difference the two copies",
                )
            )
    return findings


def _differing(record: dict) -> list[str]:
    out = []
    for ours, theirs in _COMPLETENESS_PAIRS.items():
        a, b = record[ours], record[theirs if theirs != ours else f"{theirs}_dq"]
        if pd.isna(a) and pd.isna(b):
            continue
        if pd.isna(a) or pd.isna(b) or not np.isclose(float(a), float(b), rtol=1e-12, atol=0):
            out.append(f"{ours} {_shown(a)} but {theirs} {_shown(b)}")
    return out


def _shown(value: object) -> str:
    return "withheld" if pd.isna(value) else f"{float(value):g}"


# --- the CSV ----------------------------------------------------------------------------------


def _csv_content(csv: _Csv, values: _Yearly | None) -> list[GateFinding]:
    """The CSV, a part at a time: no person-level identifier anywhere; beside
    indicator_values.parquet, the published-count rules row by row and the same rows as it
    shows (:func:`_multiset_differs`), and nothing more."""
    findings = _identifier_columns(csv, csv.columns)
    missing = [c for c in ("Indicator ID", *CSV_COUNTS, "Value") if c not in csv.columns]
    if values is not None and missing:
        findings.append(csv.finding(None, "csv_differs", f"no column {', '.join(missing)}"))
    compared = values is not None and not missing
    for part in csv.parts():
        findings += _identifier_values(part)
        findings += _csv_rows(part) if compared else []
    return findings + (_multiset_differs(csv, values) if compared else [])


def _csv_rows(part: _Read) -> list[GateFinding]:
    """A part of the CSV checked row by row."""
    frame = part.frame
    findings = []
    for column in CSV_COUNTS:
        text = frame[column].astype(object).where(frame[column].notna(), None)
        numbers = _counts(frame, column)
        for i in np.flatnonzero(pd.notna(text).to_numpy() & np.isnan(numbers)):
            detail = f"{column} {text.iloc[i]!r} is not a number"
            findings.append(part.finding(int(i), "csv_differs", detail))
        findings += _count_findings(part, column, numbers)
    withheld = frame[list(CSV_COUNTS)].isna().any(axis=1).to_numpy()
    derived = [c for c in frame.columns if CSV_DERIVED.match(c)]
    return findings + _shown_beside(part, withheld, derived)


def _multiset_differs(csv: _Csv, values: _Yearly) -> list[GateFinding]:
    """Each CSV row's (indicator, Count, Denominator, Value shown?) against the Parquet rows',
    as multisets, compared by DuckDB rather than held in Python (they grow with the history).
    A key with more rows on one side reports that side's first rows in file order."""
    sides = {
        "csv": f"""select rowid as row, "Indicator ID" as indicator,
            try_cast("Count" as double) as count,
            try_cast("Denominator" as double) as denominator, "Value" is not null as shown
            from {CSV_TABLE}""",
        "parquet": f"""select file_row_number as row, indicator_id as indicator,
            cast(numerator as double) as count, cast(denominator as double) as denominator,
            value is not null as shown
            from read_parquet({values.source}, file_row_number = true)""",
    }
    numbered = {
        side: f"""select *, row_number() over (partition by indicator, count, denominator,
            shown order by row desc) as k from ({query})"""
        for side, query in sides.items()
    }
    same = " and ".join(
        f"b.{c} is not distinct from a.{c}" for c in ("indicator", "count", "denominator", "shown")
    )

    def surplus(side: str, other: str) -> list[tuple]:
        query = f"""select row, indicator, count, denominator, shown from ({numbered[side]}) a
            where not exists (select 1 from ({numbered[other]}) b where {same} and b.k = a.k)
            order by row"""
        return values.db.sql(query).fetchall()

    findings = [
        csv.finding(
            int(row), "csv_differs", f"no row of indicator_values.parquet has {_described(key)}"
        )
        for row, *key in surplus("csv", "parquet")
    ]
    return findings + [
        csv.finding(
            None,
            "csv_differs",
            f"indicator_values.parquet row {row} ({_described(key)}) has no CSV row",
        )
        for row, *key in surplus("parquet", "csv")
    ]


def _described(key: Sequence[object]) -> str:
    indicator, count, denominator, shown = key
    value = "a value" if shown else "no value"
    return (
        f"indicator {indicator}, count {_shown(count)}, denominator {_shown(denominator)}, {value}"
    )


# --- person-level identifiers -----------------------------------------------------------------


def _identifiers(read: _Read) -> list[GateFinding]:
    """No column may be named for, or hold, a person-level identifier. Details mask any
    number found, so the gate's own report never prints one."""
    return _identifier_columns(read, list(read.frame.columns)) + _identifier_values(read)


def _identifier_columns(read: _Table, columns: list[str]) -> list[GateFinding]:
    return [
        read.finding(None, "identifier", f"column {name!r} is named like a person-level identifier")
        for name in columns
        if IDENTIFIER_COLUMN.search(str(name))
    ]


def _identifier_values(read: _Read) -> list[GateFinding]:
    findings = []
    for column in read.frame.columns:
        if not pd.api.types.is_string_dtype(read.frame[column]):
            continue
        text = read.frame[column].astype(object)
        for value in _identifying(text.dropna().unique()):
            for i in np.flatnonzero((text == value).to_numpy()):
                findings.append(
                    read.finding(
                        int(i),
                        "identifier",
                        f"{column} holds {_identifier_kind(value)} "
                        f"({mask_nhs_numbers(PSEUDONYM.sub('<hex>', value))})",
                    )
                )
    return findings


def _identifying(values: Iterable[str]) -> list[str]:
    return [
        v
        for v in map(str, values)
        if PSEUDONYM.search(v) or (not DECIMAL.match(v.strip()) and holds_nhs_number(v))
    ]


def _identifier_kind(value: str) -> str:
    return "a pseudonym-like hex string" if PSEUDONYM.search(value) else "an NHS number"
