"""Publish the partnership release: build it, check it, and only then let partners see it.

One call (:func:`publish`) does the whole step, in this order, so that a failure at any point
leaves ``latest.json`` on the previous complete release:

1. read the release's tables from the warehouse, in one snapshot;
2. compare their content with the latest release: nothing changed, nothing is published;
3. choose the id: the last complete month (``2026-10``), or its next revision
   (``2026-10.1``, superseding ``2026-10``) when that month was released with other data;
4. write every file to a staging folder, with the manifest and ``SHA256SUMS``;
5. run the gate (``transforms.publish.gate``) on the files as written, with another reader;
6. move the folder to ``releases/release=<id>/``, read every file back against the manifest;
7. replace ``latest.json``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from typing import BinaryIO

import pyarrow.parquet as pq
from sqlalchemy.engine import Engine

from transforms.core.periods import utcnow
from transforms.publish import contents as release_contents
from transforms.publish import documents, gate
from transforms.publish.contents import Contents
from transforms.publish.parquet import (
    HashingSink,
    content_sha256,
    schema_fingerprint,
    sha256,
    write_parquet,
)
from transforms.publish.store import (
    INCOMPLETE,
    MANIFEST,
    SUMS,
    Entry,
    ReleaseStore,
    release_order,
)
from transforms.publish.tables import INDICATOR_VALUES, INDICATORS, RELEASE_TABLES, ROWS_AT_ONCE
from transforms.warehouse.engine import locked_snapshot

log = logging.getLogger(__name__)

PUBLISH_LOCK = "publish_partnership"
CSV_NAME = "indicator_values.csv"
DOCUMENTS = {
    "datapackage.json": "json",
    "dataset.jsonld": "jsonld",
    "README.md": "markdown",
}
PUBLISHED, UNCHANGED, NOTHING_LOADED = "published", "unchanged", "nothing_loaded"
CONTENT_SCHEME = 2
"""How a manifest's content hashes are made (``parquet.content_sha256``): 2 hashes each table
in parts of ``CONTENT_PART_ROWS`` rows. Releases published before (no ``content_scheme`` in
the manifest) hashed each table whole, so theirs are made again from their files when
compared: an upgrade publishes no revision of data that did not change."""


class PublishError(Exception):
    """The release could not be published; ``latest.json`` still points at the previous one."""


@dataclass(frozen=True)
class Outcome:
    """What a publish did: ``status`` is published, unchanged or nothing_loaded."""

    status: str
    release: str | None = None
    path: str | None = None
    supersedes: str | None = None
    removed_incomplete: tuple[str, ...] = ()
    files: tuple[str, ...] = ()  # the files of the release published, in its folder ``path``

    def to_xcom(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        if self.status == PUBLISHED:
            extra = f", superseding {self.supersedes}" if self.supersedes else ""
            return f"published release {self.release} to {self.path}{extra}"
        if self.status == UNCHANGED:
            return f"nothing changed since release {self.release}: nothing published"
        return "nothing has been loaded yet: nothing published"


def publish(
    engine: Engine,
    target: str,
    *,
    run_id: str | None = None,
    keep: int | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Publish the release of the warehouse's current content to ``target`` (fsspec URL)."""
    store = ReleaseStore(target)
    removed = tuple(store.remove_incomplete())
    for release in removed:
        log.warning("removed release folder %s: its move was cut short (no manifest)", release)
    with _current(engine) as current:
        if current is None:
            return Outcome(NOTHING_LOADED, removed_incomplete=removed)
        found, parts = current
        latest = _latest_entry(store)
        if _holds(store, latest, parts):
            return Outcome(UNCHANGED, release=latest.release, removed_incomplete=removed)
        unpointed = _unpointed_with(store, latest, parts)
        if unpointed is not None:
            return _point_at(store, unpointed, removed)
        release_id, supersedes = next_release(found.month, store.complete())
        manifest = _write_and_check(
            store, found, release_id, supersedes, parts, run_id, now or utcnow()
        )
    store.prune(keep)
    return Outcome(
        PUBLISHED,
        release=release_id,
        path=store.release_path(release_id),
        supersedes=manifest["supersedes"],
        removed_incomplete=removed,
        files=release_files(manifest),
    )


def pending(engine: Engine, target: str) -> bool:
    """Whether :func:`publish` would change anything at ``target``: a release folder to clear
    away, or data unlike the latest release's (what ``hei run`` asks before the DAG)."""
    store = ReleaseStore(target)
    if any(entry.status == INCOMPLETE for entry in store.entries()):
        return True
    with _current(engine) as current:
        return current is not None and not _holds(store, _latest_entry(store), current[1])


def _holds(store: ReleaseStore, latest: Entry | None, parts: dict[str, str]) -> bool:
    """Whether the latest release holds exactly the data with these content hashes."""
    return latest is not None and published_parts(store, latest) == parts


@contextmanager
def _current(engine: Engine) -> Iterator[tuple[Contents, dict[str, str]] | None]:
    """The release's tables as the warehouse holds them now (one snapshot) and their content
    hashes (:func:`content_parts`); None when nothing is loaded."""
    found = None
    try:
        with locked_snapshot(engine, PUBLISH_LOCK) as conn:
            found = release_contents.read(conn)
    except BaseException:
        if found is not None:  # the snapshot failed to end after the spool was written
            found.spool.close()
        raise
    if found is None:
        yield None
        return
    with found:
        yield found, content_parts(found)


def release_files(manifest: dict) -> tuple[str, ...]:
    """Every file of a release: those its manifest lists, the manifest and ``SHA256SUMS``."""
    return (*(f["path"] for f in manifest["files"]), MANIFEST, SUMS)


def content_parts(found: Contents) -> dict[str, str]:
    """The content hash of every table's rows and of the CSV: equal exactly when the data
    are. The CSV is hashed as it is written, never kept (it grows with every month of
    history)."""
    parts = {
        name: content_sha256(found.spool.batches(spec), spec)
        for name, spec in RELEASE_TABLES.items()
    }
    csv = HashingSink()
    _write_csv(found, csv)
    parts[CSV_NAME] = csv.hexdigest()
    return parts


def fingerprint(parts: dict[str, str]) -> str:
    """The manifest's ``content_sha256``: one hash of the content hashes."""
    return sha256(json.dumps(parts, sort_keys=True).encode())


def published_parts(store: ReleaseStore, entry: Entry) -> dict[str, str]:
    """The content hashes of a published release's tables and CSV, as :func:`content_parts`
    makes them (from its files, for a release published before ``CONTENT_SCHEME``)."""
    current = entry.manifest.get("content_scheme") == CONTENT_SCHEME
    parts = {}
    for file in entry.manifest["files"]:
        if file.get("format") == "csv":
            parts[CSV_NAME] = file["content_sha256"]
        elif file.get("format") == "parquet":
            known = current or file.get("table") not in RELEASE_TABLES
            parts[file["table"]] = (
                file["content_sha256"] if known else _rehashed(store, entry, file)
            )
    return parts


def _rehashed(store: ReleaseStore, entry: Entry, file: dict) -> str:
    """A published Parquet file's content hash, made again from its rows; for a table whose
    columns have changed since, a mark that no content hash equals (the table changed)."""
    spec = RELEASE_TABLES[file["table"]]
    if file.get("schema_fingerprint") != schema_fingerprint(spec):
        return f"columns changed since release {entry.release}"
    try:
        with store.fs.open(f"{entry.path}/{file['path']}", "rb") as handle:
            rows = pq.ParquetFile(handle).iter_batches(batch_size=ROWS_AT_ONCE)
            return content_sha256(rows, spec)
    except (OSError, ValueError) as exc:  # pyarrow's errors are ValueErrors or OSErrors
        raise PublishError(
            f"release {entry.release}'s {file['path']} could not be read to compare it with "
            f"the warehouse ({exc}); check the publish target, or move that release aside"
        ) from exc


def _write_csv(found: Contents, out: BinaryIO) -> None:
    values, indicators = found.spool.batches(INDICATOR_VALUES), found.spool.table(INDICATORS)
    documents.write_fingertips_csv(values, indicators, out)


def next_release(month: str, complete: list[Entry]) -> tuple[str, dict | None]:
    """The id for a new release of ``month`` and what it supersedes (the month's latest
    release, if the month has one), as ``{"release", "reason"}``."""
    same_month = [e for e in complete if e.month == month]
    if not same_month:
        return month, None
    previous = max(same_month, key=lambda e: release_order(e.release))
    revision = release_order(previous.release)[1] + 1
    return f"{month}.{revision}", {"release": previous.release}


def _unpointed_with(
    store: ReleaseStore, latest: Entry | None, parts: dict[str, str]
) -> Entry | None:
    """A complete release newer than the latest with this content: one whose publish stopped
    after the move and before ``latest.json`` (a crash), to be finished rather than redone."""
    newer = [
        e
        for e in store.complete()
        if latest is None or release_order(e.release) > release_order(latest.release)
    ]
    return next((e for e in reversed(newer) if published_parts(store, e) == parts), None)


def _point_at(store: ReleaseStore, entry: Entry, removed: tuple[str, ...]) -> Outcome:
    """Finish a release that was written and moved but never pointed at."""
    wrong = store.verify(entry.path, entry.manifest)
    if wrong:
        raise PublishError(f"release {entry.release} is damaged: {'; '.join(wrong)}")
    _point_latest(store, entry.release, entry.path, entry.manifest)
    log.warning("release %s was complete but not pointed at: latest.json now is", entry.release)
    return Outcome(
        PUBLISHED,
        release=entry.release,
        path=entry.path,
        supersedes=entry.manifest["supersedes"],
        removed_incomplete=removed,
        files=release_files(entry.manifest),
    )


def _point_latest(store: ReleaseStore, release_id: str, final: str, manifest: dict) -> None:
    store.point_latest(
        {
            "release": release_id,
            "path": f"releases/{final.rsplit('/', 1)[-1]}",
            "manifest_sha256": sha256(store.read(final, MANIFEST)),
            "published_at": manifest["created_at"],
        }
    )


def _latest_entry(store: ReleaseStore) -> Entry | None:
    pointer = store.latest()
    if pointer is None:
        return None
    return next((e for e in store.complete() if e.release == pointer["release"]), None)


def _write_and_check(
    store: ReleaseStore,
    found: Contents,
    release_id: str,
    supersedes: dict | None,
    parts: dict[str, str],
    run_id: str | None,
    now: datetime,
) -> dict:
    """Steps 4–7 of the module docstring; on any failure nothing is left for readers."""
    staged = store.stage(release_id)
    final = None
    try:
        files = _write_data(store, staged, found, release_id, parts)
        if supersedes is not None:
            supersedes["reason"] = _changes(store, supersedes["release"], parts)
        manifest = {
            "release": release_id,
            "supersedes": supersedes["release"] if supersedes else None,
            "supersedes_reason": supersedes["reason"] if supersedes else None,
            "covers": {"first_month": found.first_month, "last_month": found.month},
            "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "code_version": code_version(),
            "run_id": run_id,
            "content_sha256": fingerprint(parts),
            "content_scheme": CONTENT_SCHEME,
            "files": files,
        }
        manifest["files"] += _write_documents(store, staged, manifest, found)
        written = [*manifest["files"], _write(store, staged, MANIFEST, _json(manifest))]
        _write(store, staged, SUMS, _sums(written))
        findings = gate.check_release(store.fs, staged, manifest)
        if findings:
            raise gate.GateFailure(findings)
        final = store.promote(staged, release_id, [*(f["path"] for f in written), SUMS])
        wrong = store.verify(final, manifest)
        if wrong:
            raise PublishError(f"release {release_id} did not read back: {'; '.join(wrong)}")
        _point_latest(store, release_id, final, manifest)
        return manifest
    except BaseException:
        store.discard(staged)
        if final is not None and (store.latest() or {}).get("release") != release_id:
            store.discard(final)
        raise


def _write(store: ReleaseStore, folder: str, name: str, data: bytes) -> dict:
    store.write(folder, name, data)
    return {"path": name, "bytes": len(data), "sha256": sha256(data)}


def _write_with(
    store: ReleaseStore, folder: str, name: str, produce: Callable[[BinaryIO], None]
) -> dict:
    """A file as ``produce`` writes it, hashed on its way to the store: its manifest entry."""
    with store.open_to_write(folder, name) as handle:
        sink = HashingSink(handle)
        produce(sink)
    return {"path": name, "bytes": sink.size, "sha256": sink.hexdigest()}


def _write_data(
    store: ReleaseStore, staged: str, found: Contents, release_id: str, parts: dict[str, str]
) -> list[dict]:
    """The Parquet files and the CSV, as manifest entries."""
    files = []
    for name, spec in RELEASE_TABLES.items():
        rows = found.spool.batches(spec)
        entry = _write_with(
            store, staged, spec.file_name, partial(write_parquet, rows, spec, release_id)
        )
        files.append(
            entry
            | {
                "table": name,
                "format": "parquet",
                "rows": found.spool.rows(spec),
                "schema_fingerprint": schema_fingerprint(spec),
                "content_sha256": parts[name],
            }
        )
    csv = _write_with(store, staged, CSV_NAME, partial(_write_csv, found))
    if csv["sha256"] != parts[CSV_NAME]:
        raise PublishError(f"{CSV_NAME} was written unlike the content it was compared by")
    files.append(
        csv
        | {
            "table": INDICATOR_VALUES.name,
            "format": "csv",
            "rows": found.spool.rows(INDICATOR_VALUES),
            "content_sha256": csv["sha256"],
        }
    )
    return files


def _write_documents(
    store: ReleaseStore, staged: str, manifest: dict, found: Contents
) -> list[dict]:
    """``datapackage.json``, ``dataset.jsonld`` and ``README.md``, as manifest entries."""
    written = {
        "datapackage.json": _json(documents.datapackage(manifest)),
        "dataset.jsonld": _json(documents.dcat(manifest)),
        "README.md": documents.readme(manifest, found.spool.table(INDICATORS)).encode(),
    }
    return [
        _write(store, staged, name, data) | {"format": DOCUMENTS[name]}
        for name, data in written.items()
    ]


def _changes(store: ReleaseStore, previous: str, parts: dict[str, str]) -> str:
    """Why a revision supersedes ``previous``: which tables' content changed."""
    entry = next((e for e in store.complete() if e.release == previous), None)
    old = published_parts(store, entry) if entry is not None else {}
    files = {name: spec.file_name for name, spec in RELEASE_TABLES.items()} | {CSV_NAME: CSV_NAME}
    if entry is not None:  # a table released then and no longer has changed too
        released = [f for f in entry.manifest["files"] if f.get("format") == "parquet"]
        files = {f["table"]: f["path"] for f in released} | files
    changed = [file for part, file in files.items() if old.get(part) != parts.get(part)]
    return (
        f"the data changed since release {previous} (a resubmission or a recomputation); "
        f"changed: {', '.join(changed)}"
    )


def _sums(written: list[dict]) -> bytes:
    """``SHA256SUMS``, which ``sha256sum -c`` checks."""
    return "".join(f"{f['sha256']}  {f['path']}\n" for f in sorted(written, key=_path)).encode()


def _path(entry: dict) -> str:
    return entry["path"]


def _json(document: dict) -> bytes:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def code_version() -> str:
    try:
        return version("health-equity-indicators")
    except PackageNotFoundError:
        return "unknown"


def releases(target: str) -> list[Entry]:
    """Every release folder under ``target``, oldest first (incomplete ones marked)."""
    return ReleaseStore(target).entries()
