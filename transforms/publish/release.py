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
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from typing import BinaryIO

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
from transforms.publish.tables import INDICATOR_VALUES, INDICATORS, RELEASE_TABLES
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
    current = _current(engine)
    if current is None:
        return Outcome(NOTHING_LOADED, removed_incomplete=removed)
    found, fingerprint = current
    latest = _latest_entry(store)
    if _holds(latest, fingerprint):
        return Outcome(UNCHANGED, release=latest.release, removed_incomplete=removed)
    unpointed = _unpointed_with(store, latest, fingerprint)
    if unpointed is not None:
        return _point_at(store, unpointed, removed)
    release_id, supersedes = next_release(found.month, store.complete())
    manifest = _write_and_check(
        store, found, release_id, supersedes, fingerprint, run_id, now or utcnow()
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
    current = _current(engine)
    if current is None:
        return False
    return not _holds(_latest_entry(store), current[1])


def _holds(latest: Entry | None, fingerprint: str) -> bool:
    """Whether the latest release holds exactly the data with this content fingerprint."""
    return latest is not None and latest.manifest["content_sha256"] == fingerprint


def _current(engine: Engine) -> tuple[Contents, str] | None:
    """The release's tables as the warehouse holds them now (one snapshot) and their
    fingerprint; None when nothing is loaded."""
    with locked_snapshot(engine, PUBLISH_LOCK) as conn:
        found = release_contents.read(conn)
    if found is None:
        return None
    return found, content_fingerprint(found)


def release_files(manifest: dict) -> tuple[str, ...]:
    """Every file of a release: those its manifest lists, the manifest and ``SHA256SUMS``."""
    return (*(f["path"] for f in manifest["files"]), MANIFEST, SUMS)


def content_fingerprint(found: Contents) -> str:
    """One hash of every table's rows and the CSV: equal exactly when the data are. The CSV
    is hashed as it is written, never kept (it grows with every month of history)."""
    parts = {name: content_sha256(table) for name, table in sorted(found.tables.items())}
    csv = HashingSink()
    _write_csv(found, csv)
    parts[CSV_NAME] = csv.hexdigest()
    return sha256(json.dumps(parts, sort_keys=True).encode())


def _write_csv(found: Contents, out: BinaryIO) -> None:
    values, indicators = found.tables[INDICATOR_VALUES.name], found.tables[INDICATORS.name]
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


def _unpointed_with(store: ReleaseStore, latest: Entry | None, fingerprint: str) -> Entry | None:
    """A complete release newer than the latest with this content: one whose publish stopped
    after the move and before ``latest.json`` (a crash), to be finished rather than redone."""
    newer = [
        e
        for e in store.complete()
        if latest is None or release_order(e.release) > release_order(latest.release)
    ]
    return next((e for e in reversed(newer) if e.manifest["content_sha256"] == fingerprint), None)


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
    fingerprint: str,
    run_id: str | None,
    now: datetime,
) -> dict:
    """Steps 4–7 of the module docstring; on any failure nothing is left for readers."""
    staged = store.stage(release_id)
    final = None
    try:
        files = _write_data(store, staged, found, release_id)
        if supersedes is not None:
            supersedes["reason"] = _changes(store, supersedes["release"], files)
        manifest = {
            "release": release_id,
            "supersedes": supersedes["release"] if supersedes else None,
            "supersedes_reason": supersedes["reason"] if supersedes else None,
            "covers": {"first_month": found.first_month, "last_month": found.month},
            "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "code_version": code_version(),
            "run_id": run_id,
            "content_sha256": fingerprint,
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


def _write_data(store: ReleaseStore, staged: str, found: Contents, release_id: str) -> list[dict]:
    """The Parquet files and the CSV, as manifest entries."""
    files = []
    for name, spec in RELEASE_TABLES.items():
        table = found.tables[name]
        entry = _write_with(
            store, staged, spec.file_name, partial(write_parquet, table, spec, release_id)
        )
        files.append(
            entry
            | {
                "table": name,
                "format": "parquet",
                "rows": table.num_rows,
                "schema_fingerprint": schema_fingerprint(spec),
                "content_sha256": content_sha256(table),
            }
        )
    csv = _write_with(store, staged, CSV_NAME, partial(_write_csv, found))
    rows = found.tables[INDICATOR_VALUES.name].num_rows
    files.append(
        csv
        | {
            "table": INDICATOR_VALUES.name,
            "format": "csv",
            "rows": rows,
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
        "README.md": documents.readme(manifest, found.tables[INDICATORS.name]).encode(),
    }
    return [
        _write(store, staged, name, data) | {"format": DOCUMENTS[name]}
        for name, data in written.items()
    ]


def _changes(store: ReleaseStore, previous: str, files: list[dict]) -> str:
    """Why a revision supersedes ``previous``: which tables' content changed."""
    before = store.read_json(f"{store.release_path(previous)}/{MANIFEST}") or {"files": []}
    old = {f["path"]: f.get("content_sha256") for f in before["files"]}
    changed = [f["path"] for f in files if old.get(f["path"]) != f["content_sha256"]]
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
