"""The publish target: releases in any fsspec storage, and the one pointer readers follow.

Layout (``PUBLICATION.md``)::

    <root>/latest.json                       written last, in one write
    <root>/releases/release=<id>/...         complete releases, never changed once written
    <root>/staging/<id>/...                  a release being written and checked

A release is written into ``staging/``, outside the folders partners read (a glob such as
``releases/*/indicator_values.parquet`` never sees it), checked there, then moved to
``releases/release=<id>/``: a rename on a local disk, so the folder appears whole; a copy with
``manifest.json`` last on object storage, so a folder without its manifest is one whose move
was cut short. Such a folder is *incomplete*: listed as such, never pointed at, and removed by
the next publish. Credentials for ``az://``, ``abfs://`` and ``s3://`` come from the
environment (``AZURE_STORAGE_CONNECTION_STRING`` or ``AZURE_STORAGE_ACCOUNT_NAME`` /
``AZURE_STORAGE_ACCOUNT_KEY``; ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` /
``AWS_ENDPOINT_URL``) and are never written anywhere.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import BinaryIO

import fsspec
from fsspec.implementations.local import LocalFileSystem

from transforms.core.redaction import display_location
from transforms.publish.parquet import HashingSink

LATEST = "latest.json"
RELEASES = "releases"
STAGING = "staging"
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
FOLDER_PREFIX = "release="
RELEASE_ID = re.compile(r"^(?P<month>\d{4}-\d{2})(?:\.(?P<revision>\d+))?$")
COMPLETE, INCOMPLETE = "complete", "incomplete"
READ_BLOCK = 1 << 20


class TargetUnusable(Exception):
    """The publish target's URL names no storage fsspec can open."""


class ReleaseExists(Exception):
    """A release folder with this id is already there: releases are never overwritten."""


@dataclass(frozen=True)
class Entry:
    """A release folder: its id, whether it is complete, and its manifest if it is."""

    release: str
    path: str
    status: str
    manifest: dict | None

    @property
    def month(self) -> str:
        return release_month(self.release)


def release_month(release_id: str) -> str:
    match = RELEASE_ID.match(release_id)
    if match is None:
        raise ValueError(f"{release_id!r} is not a release id (YYYY-MM or YYYY-MM.N)")
    return match["month"]


def release_order(release_id: str) -> tuple[str, int]:
    """Sort key: by month, then revision (``2026-10`` < ``2026-10.1`` < ``2026-10.2``)."""
    match = RELEASE_ID.match(release_id)
    if match is None:
        raise ValueError(f"{release_id!r} is not a release id")
    return match["month"], int(match["revision"] or 0)


class ReleaseStore:
    """Releases under one fsspec URL (a local folder, ``az://``, ``abfs://``, ``s3://``...)."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.fs, root = fsspec.core.url_to_fs(url)
        except (ValueError, ImportError) as exc:
            raise TargetUnusable(
                f"cannot open the publish target {display_location(url)!r} ({exc}): give a "
                "folder, or an az://, abfs:// or s3:// URL (HEI_PUBLISH_URL or --publish)"
            ) from exc
        self.root = root.rstrip("/")

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def release_path(self, release_id: str) -> str:
        return self.path(RELEASES, FOLDER_PREFIX + release_id)

    # --- reading --------------------------------------------------------------------------

    def read_json(self, path: str) -> dict | None:
        try:
            with self.fs.open(path, "rb") as handle:
                return json.loads(handle.read())
        except FileNotFoundError:
            return None

    def latest(self) -> dict | None:
        """What ``latest.json`` points at, or None before the first release."""
        return self.read_json(self.path(LATEST))

    def entries(self) -> list[Entry]:
        """Every release folder, oldest first; those without a manifest are incomplete."""
        try:
            listed = self.fs.ls(self.path(RELEASES), detail=False)
        except FileNotFoundError:
            return []
        found = []
        for path in listed:
            name = path.rstrip("/").rsplit("/", 1)[-1]
            release = name.removeprefix(FOLDER_PREFIX)
            if not name.startswith(FOLDER_PREFIX) or not RELEASE_ID.match(release):
                continue
            manifest = self.read_json(f"{self.release_path(release)}/{MANIFEST}")
            status = COMPLETE if manifest is not None else INCOMPLETE
            found.append(Entry(release, self.release_path(release), status, manifest))
        return sorted(found, key=lambda e: release_order(e.release))

    def complete(self) -> list[Entry]:
        return [e for e in self.entries() if e.status == COMPLETE]

    # --- writing --------------------------------------------------------------------------

    def stage(self, release_id: str) -> str:
        """An empty staging folder for a release (one left by a failed run is cleared)."""
        staged = self.path(STAGING, release_id)
        self.discard(staged)
        self.fs.makedirs(staged, exist_ok=True)
        return staged

    def write(self, folder: str, name: str, data: bytes) -> None:
        with self.open_to_write(folder, name) as handle:
            handle.write(data)

    def open_to_write(self, folder: str, name: str) -> BinaryIO:
        """A new file of ``folder`` to write as a stream (a multipart upload on object storage)."""
        return self.fs.open(f"{folder}/{name}", "wb")

    def read(self, folder: str, name: str) -> bytes:
        with self.fs.open(f"{folder}/{name}", "rb") as handle:
            return handle.read()

    def promote(self, staged: str, release_id: str, names: list[str]) -> str:
        """Move a checked release from staging to its own folder, which must not exist.

        ``names`` are the release's files; the manifest goes last, so that on object storage,
        where the move is a copy, a folder is complete exactly when its manifest is there.
        """
        final = self.release_path(release_id)
        if self.fs.exists(final):
            raise ReleaseExists(f"release {release_id} already exists at {final}")
        if self.is_local:
            self.fs.makedirs(self.path(RELEASES), exist_ok=True)
            os.rename(staged, final)  # atomic, and fails rather than merge into a folder
            return final
        for name in sorted(names, key=lambda n: n == MANIFEST):
            self.fs.copy(f"{staged}/{name}", f"{final}/{name}")
        self.discard(staged)
        return final

    def verify(self, folder: str, manifest: dict) -> list[str]:
        """Files of ``folder`` whose bytes differ from the manifest (read back, hashed)."""
        wrong = []
        for entry in manifest["files"]:
            try:
                read = self._digest(f"{folder}/{entry['path']}")
            except FileNotFoundError:
                wrong.append(f"{entry['path']} is missing")
                continue
            if read.size != entry["bytes"] or read.hexdigest() != entry["sha256"]:
                wrong.append(f"{entry['path']} differs from the manifest")
        return wrong

    def _digest(self, path: str) -> HashingSink:
        """A file's bytes hashed as they are read, a block at a time."""
        read = HashingSink()
        with self.fs.open(path, "rb") as handle:
            while block := handle.read(READ_BLOCK):
                read.write(block)
        return read

    def point_latest(self, pointer: dict) -> None:
        """Replace ``latest.json`` in one step: a reader sees the old pointer or the new."""
        data = json.dumps(pointer, indent=2, sort_keys=True).encode() + b"\n"
        if self.is_local:
            self.fs.makedirs(self.root, exist_ok=True)
            temporary = self.path(f".{LATEST}.tmp")
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path(LATEST))
        else:  # one PUT: object stores replace an object atomically
            self.write(self.root, LATEST, data)

    def discard(self, folder: str) -> None:
        if self.fs.exists(folder):
            self.fs.rm(folder, recursive=True)

    def remove_incomplete(self) -> list[str]:
        """Remove release folders a cut-short move left without a manifest; their ids."""
        removed = []
        for entry in self.entries():
            if entry.status == INCOMPLETE:
                self.discard(entry.path)
                removed.append(entry.release)
        return removed

    def prune(self, keep: int | None) -> list[str]:
        """Remove all but the newest ``keep`` complete releases (None keeps all); the release
        ``latest.json`` points at is always kept. Returns the removed ids."""
        if keep is None:
            return []
        latest = (self.latest() or {}).get("release")
        complete = self.complete()
        old = [e for e in complete[: max(len(complete) - keep, 0)] if e.release != latest]
        for entry in old:
            self.discard(entry.path)
        return [e.release for e in old]
