"""Finding deliveries in the landing zone.

A delivery is one file ``<landing>/<source>/<source>_<YYYY-MM>.(csv|csv.gz|parquet)``. Its
identity for the audit trail is its name plus the sha256 of its bytes, so the same bytes
delivered twice are recognised and a changed file is a resubmission.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

_NAME = re.compile(
    r"^(?P<source>[a-z_]+)_(?P<period>\d{4}-(0[1-9]|1[0-2]))\.(csv|csv\.gz|parquet)$"
)


@dataclass(frozen=True)
class Delivery:
    """A file found in the landing zone (serialisable, so it can travel through XCom)."""

    source: str
    path: str
    file_name: str
    period: str | None
    sha256: str
    modified_at: str

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)

    @property
    def fmt(self) -> str:
        return "parquet" if self.file_name.endswith(".parquet") else "csv"

    @property
    def compression(self) -> str | None:
        return "gzip" if self.file_name.endswith(".gz") else None


def parse_period(file_name: str, source: str) -> str | None:
    """The ``YYYY-MM`` a well-formed file name covers, or None if the name breaks the pattern."""
    match = _NAME.match(file_name)
    if not match or match["source"] != source:
        return None
    return match["period"]


def sha256_of(path: Path, block: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def scan(landing_dir: Path, source: str, until: str | None = None) -> list[Delivery]:
    """Every file in the source's folder, oldest period first (badly named files included).

    Files for periods after ``until`` are left for a later run; hidden and partial files
    (``.``-prefixed, ``.tmp``/``.part``) are ignored because they may still be arriving.
    """
    folder = landing_dir / source
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.suffix in (".tmp", ".part"):
            continue
        period = parse_period(path.name, source)
        if until and period and period > until:
            continue
        modified = datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)
        found.append(
            Delivery(source, str(path), path.name, period, sha256_of(path), modified.isoformat())
        )
    return sorted(found, key=lambda d: (d.period or "", d.modified_at, d.file_name))
