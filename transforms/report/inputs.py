"""What the report is built from: one published release, and the pipeline's own audit.

Every figure about people comes from the release partners received (its Parquet files, read
from the publish target): the report can show nothing the release withholds, and names the
release and its manifest checksum. Only the pipeline-health section reads the warehouse, and
only its audit of files and rows (``audit.file_loads``, ``quality.quarantine``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from sqlalchemy.engine import Engine

from transforms.config.sources import SOURCES
from transforms.core.periods import month_after, month_bounds
from transforms.ops import status
from transforms.publish.store import MANIFEST, ReleaseStore, release_order
from transforms.publish.tables import RELEASE_TABLES

DUE_DAY = 15
"""A month's delivery is due by this day of the following month (after SUS's flex date)."""
HTML_NAME = "assurance_report.html"  # in <reports_dir>/<month>/, beside its PDF
PDF_NAME = "assurance_report.pdf"
TOP_REASONS = 3


class NoRelease(Exception):
    """There is no release to report on (none yet, or none for the month asked for)."""


@dataclass(frozen=True)
class Release:
    """A published release: its manifest, the checksum of that manifest, its tables."""

    release_id: str
    manifest: dict
    manifest_sha256: str
    tables: dict[str, pd.DataFrame]
    files: tuple[str, ...] = ()  # what was read, as paths at the publish target

    @property
    def month(self) -> str:
        return self.manifest["covers"]["last_month"]


def report_of_latest_release_exists(target: str, reports_dir: Path) -> bool:
    """Whether the report in ``reports_dir`` was built from the release ``latest.json`` points
    at (its HTML names the release), as the ``assurance_report`` DAG builds it once per release;
    ``hei run`` then leaves that DAG out."""
    store = ReleaseStore(target)
    pointer = store.latest()
    if pointer is None:
        return True  # nothing published: there is nothing to report on
    folder = store.release_path(pointer["release"])
    month = store.read_json(f"{folder}/{MANIFEST}")["covers"]["last_month"]
    html, pdf = reports_dir / month / HTML_NAME, reports_dir / month / PDF_NAME
    return pdf.exists() and html.exists() and f">{pointer['release']}<" in html.read_text()


def load_release(target: str, month: str | None = None) -> Release:
    """The release ``latest.json`` points at, or the newest release of ``month``."""
    store = ReleaseStore(target)
    if month is None:
        pointer = store.latest()
        if pointer is None:
            raise NoRelease(f"no release has been published at {target} yet: run hei publish")
        release_id = pointer["release"]
    else:
        of_month = [e.release for e in store.complete() if e.month == month]
        if not of_month:
            raise NoRelease(f"no complete release of {month} at {target} (see hei releases)")
        release_id = max(of_month, key=release_order)
    folder = store.release_path(release_id)
    manifest_bytes = store.read(folder, MANIFEST)
    manifest = store.read_json(f"{folder}/{MANIFEST}")
    tables = {}
    files = [f"{folder}/{MANIFEST}"]
    released = {entry["path"] for entry in manifest["files"]}
    for name, spec in RELEASE_TABLES.items():
        if spec.file_name not in released:  # a release made before the table existed
            continue
        files.append(f"{folder}/{spec.file_name}")
        with store.fs.open(files[-1], "rb") as handle:
            tables[name] = pq.read_table(handle).to_pandas()
    digest = hashlib.sha256(manifest_bytes).hexdigest()
    return Release(release_id, manifest, digest, tables, tuple(files))


@dataclass(frozen=True)
class Delivery:
    """One source's delivery for the report's month, as the audit recorded it."""

    source: str
    title: str
    status: str  # loaded, rejected, in_progress or missing
    file_name: str | None
    rows_read: int | None
    rows_loaded: int | None
    rows_quarantined: int | None
    received_on: date | None
    due_on: date
    error: str | None
    top_reasons: tuple[tuple[str, int], ...]

    @property
    def late_days(self) -> int | None:
        """Days after the due date it arrived (None if on time or not at all)."""
        if self.received_on is None or self.received_on <= self.due_on:
            return None
        return (self.received_on - self.due_on).days


def due_date(month: str) -> date:
    return month_bounds(month_after(month))[0] + timedelta(days=DUE_DAY - 1)


def deliveries(engine: Engine, month: str) -> list[Delivery]:
    """Every source's delivery for ``month``, with the top quarantine reasons."""
    latest = {r["source"]: r for r in status.latest_loads(engine) if r["period"] == month}
    due = due_date(month)
    found = []
    for name, source in SOURCES.items():
        load = latest.get(name)
        if load is None:
            found.append(Delivery(name, source.title, "missing", *[None] * 5, due, None, ()))
            continue
        reasons = status.quarantine_reasons(engine, name, month) if load["rows_quarantined"] else []
        found.append(
            Delivery(
                source=name,
                title=source.title,
                status=load["status"],
                file_name=load["file_name"],
                rows_read=load["rows_read"],
                rows_loaded=load["rows_loaded"],
                rows_quarantined=load["rows_quarantined"],
                received_on=status.first_seen(engine, name, month),
                due_on=due,
                error=load["error"],
                top_reasons=tuple((r["reason"], int(r["rows"])) for r in reasons[:TOP_REASONS]),
            )
        )
    return found
