"""The audit trail of file loads, and the decisions it drives.

``audit.file_loads`` answers "what happened to this file?" for the data engineer, and it is
also how the pipeline knows which deliveries are new, re-sent unchanged, or resubmissions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.core.periods import utcnow
from transforms.ingest import landing
from transforms.ingest.landing import Delivery
from transforms.warehouse.tables import audit_file_loads

Action = Literal["load", "unchanged"]


@dataclass(frozen=True)
class Planned:
    delivery: Delivery
    action: Action


@dataclass(frozen=True)
class LoadRecord:
    """One row of ``audit.file_loads``: what became of one delivery. Immutable: each step of
    a load that learns something makes a new record (``dataclasses.replace``)."""

    load_id: str
    source: str
    file_name: str
    period: str | None
    sha256: str
    status: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    error: str | None = None
    extra_columns: str | None = None
    absent_columns: str | None = None
    file_modified_at: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    run_id: str | None = None
    warnings: tuple[str, ...] = ()  # data-quality warnings, stored in quality.warnings

    def to_xcom(self) -> dict[str, Any]:
        """As a task returns it: JSON types only (the timestamps stay in the audit table)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in TIMES}
        return data | {"warnings": list(self.warnings)}

    @classmethod
    def from_xcom(cls, data: dict[str, Any]) -> LoadRecord:
        """Back from what :meth:`to_xcom` returned, e.g. in a downstream task."""
        return cls(**data | {"warnings": tuple(data.get("warnings", ()))})


TIMES = ("started_at", "finished_at")


def plan(conn: Connection, deliveries: Iterable[Delivery]) -> list[Planned]:
    """Decide what to do with each file found in the landing zone.

    A file whose latest audit record has these bytes, and which has not been delivered again
    since, is skipped (so a rerun, or a retried task, does nothing). The same bytes as the
    month's current load, delivered again, are recorded as ``unchanged``. Anything else is
    loaded, including an older version restored with its old timestamp: the landing zone is
    the truth, so the warehouse follows it. An ``in_progress`` record decided nothing, so it
    never makes a file count as seen: the file is planned again until it loads.
    """
    deliveries = list(deliveries)
    if not deliveries:
        return []
    loads = audit_file_loads.c
    rows = conn.execute(
        sa.select(loads.file_name, loads.sha256, loads.period, loads.status, loads.file_modified_at)
        .where(loads.source == deliveries[0].source, loads.status != "in_progress")
        .order_by(loads.finished_at, loads.load_id)
    ).all()
    latest: dict[str, tuple[str, str]] = {}  # file name -> (sha256, modified) of its last record
    current: dict[str, str] = {}  # period -> sha256 of the loaded file
    for file_name, sha, period, status, modified in rows:
        latest[file_name] = (sha, modified.isoformat() if modified else "")
        if status == "loaded":
            current[period] = sha
    planned = []
    for delivery in deliveries:
        sha, seen = latest.get(delivery.file_name, (None, ""))
        if sha == delivery.sha256 and seen >= delivery.modified_at:
            continue
        same_as_loaded = (
            delivery.period is not None and current.get(delivery.period) == delivery.sha256
        )
        planned.append(Planned(delivery, "unchanged" if same_as_loaded else "load"))
    return planned


def sources_to_load(
    conn: Connection, landing_dir: Path, sources: Iterable[str], until: str | None, settle: float
) -> list[str]:
    """The sources with a file in the landing zone that a run would load or record (see
    :func:`plan`): ``hei run`` starts only their ingest DAG runs."""
    return [s for s in sources if plan(conn, landing.scan(landing_dir, s, until, settle))]


def record(conn: Connection, entry: LoadRecord) -> LoadRecord:
    """Write the record, finished now unless it says when; returns what was written."""
    entry = replace(entry, finished_at=entry.finished_at or utcnow())
    written = {c.name: getattr(entry, c.name) for c in audit_file_loads.columns}
    written["file_modified_at"] = _timestamp(entry.file_modified_at)
    conn.execute(sa.insert(audit_file_loads).values(written))
    return entry


def supersede(conn: Connection, source: str, period: str) -> None:
    """Mark the month's current load as replaced (called in the resubmission's transaction)."""
    loads = audit_file_loads.c
    conn.execute(
        sa.update(audit_file_loads)
        .where(loads.source == source, loads.period == period, loads.status == "loaded")
        .values(status="superseded")
    )


def _timestamp(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
