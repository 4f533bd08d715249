"""Rows of ``audit.file_loads`` written directly: what a source's loads left, without files."""

from __future__ import annotations

from datetime import datetime

from transforms.ingest.audit import LoadRecord, record
from transforms.warehouse.engine import make_engine


def record_load(url: str, source: str, period: str, status: str, minute: int = 0) -> None:
    """Record that ``source``'s ``period`` file ended ``status``, ``minute`` past 09:00 on
    1 November 2025 (later minutes are later attempts)."""
    at = datetime(2025, 11, 1, 9, minute)
    with make_engine(url).begin() as conn:
        record(
            conn,
            LoadRecord(
                load_id=f"{source}-{period}-{status}-{minute}",
                source=source,
                file_name=f"{source}_{period}.csv",
                period=period,
                sha256="0" * 64,
                status=status,
                started_at=at,
                finished_at=at,
            ),
        )
