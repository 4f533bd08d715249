"""Finding deliveries in the landing zone.

A delivery is one file ``<landing>/<source>/<source>_<YYYY-MM>.(csv|csv.gz|parquet)``. Its
identity for the audit trail is its name plus the sha256 of its bytes, so the same bytes
delivered twice are recognised and a changed file is a resubmission.

The landing zone is written by others, so nothing found there is trusted: a file is refused
here, before it is read and before its name travels anywhere (XCom, logs, the audit table),
when its name holds an NHS number, when it is not a regular file (a symbolic link can point
at anything on the server), when it cannot be opened, or when it is still being written.
Names are made printable first (control characters escaped, NHS numbers masked), because
they are written into logs and tables.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from transforms.core.identifiers import holds_nhs_number, mask_nhs_numbers
from transforms.ingest.errors import DeliveryInProgress, DeliveryRejected

# A month from 1900-01 to 2099-12 in ASCII digits: year 0000 or 9999 is a typing error, and
# no date arithmetic may be done on it (the month's bounds, the indicator periods).
_NAME = re.compile(
    r"(?P<source>[a-z_]+)_(?P<period>(19|20)[0-9]{2}-(0[1-9]|1[0-2]))\.(csv|csv\.gz|parquet)"
)


@dataclass(frozen=True)
class Delivery:
    """A file found in the landing zone (serialisable, so it can travel through XCom).

    ``file_name`` is printable and masked (see :func:`printable_name`). A file refused when
    found has ``refused`` set to the reason, an empty ``path`` (it is never opened again,
    and its path may hold what must not travel) and an empty ``sha256`` (it was not read).
    """

    source: str
    path: str
    file_name: str
    period: str | None
    sha256: str
    modified_at: str
    size: int = 0
    refused: str | None = None

    def to_dict(self) -> dict[str, str | int | None]:
        return asdict(self)

    @property
    def fmt(self) -> str:
        return "parquet" if self.file_name.endswith(".parquet") else "csv"

    @property
    def compression(self) -> str | None:
        return "gzip" if self.file_name.endswith(".gz") else None


class NotARegularFile(OSError):
    """The path is a symbolic link, a folder, a pipe or a device: never read."""


def parse_period(file_name: str, source: str) -> str | None:
    """The ``YYYY-MM`` a well-formed file name covers, or None if the name breaks the pattern.

    The whole name must match: ``$`` would let a trailing newline through.
    """
    match = _NAME.fullmatch(file_name)
    if not match or match["source"] != source:
        return None
    return match["period"]


def printable_name(name: str) -> str:
    """The name as it may be logged and stored: NHS-number-like digits masked, and
    backslashes, control and other unprintable characters escaped, so a name cannot forge
    a log line or move the terminal's cursor."""
    masked = mask_nhs_numbers(name)
    return "".join(
        c if c.isprintable() and c != "\\" else c.encode("unicode_escape").decode("ascii")
        for c in masked
    )


def open_regular(path: str) -> BinaryIO:
    """Open a regular file for reading without following a symbolic link.

    Checked on the open descriptor, so a file swapped for a link or a pipe after it was
    found is refused too; non-blocking, so opening a pipe cannot hang the loader.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        descriptor = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotARegularFile(errno.ELOOP, "a symbolic link") from None
        raise
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise NotARegularFile(errno.EINVAL, "not a regular file")
    return os.fdopen(descriptor, "rb")


def sha256_of(handle: BinaryIO, block: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    while chunk := handle.read(block):
        digest.update(chunk)
    return digest.hexdigest()


def modified_at(info: os.stat_result) -> str:
    return datetime.fromtimestamp(info.st_mtime, UTC).replace(tzinfo=None).isoformat()


def scan(
    landing_dir: Path, source: str, until: str | None = None, settle_seconds: float = 0.0
) -> list[Delivery]:
    """Every file in the source's folder, oldest period first (refused files included).

    Files for periods after ``until`` are left for a later run; hidden and partial files
    (``.``-prefixed, ``.tmp``/``.part``) are ignored because they may still be arriving. A
    file modified less than ``settle_seconds`` ago is found ``in_progress``, unread.
    """
    found = []
    for path, period in _listed(landing_dir, source):
        if until and period and period > until:
            continue
        try:
            found.append(_found(path, source, period, settle_seconds))
        except FileNotFoundError:  # removed since the folder was listed
            continue
    return sorted(found, key=lambda d: (d.period or "", d.modified_at, d.file_name))


def landed_months(landing_dir: Path, sources: Iterable[str]) -> dict[str, set[str]]:
    """Each source's months with a well-named file in the landing zone, read or not (the
    files are listed, not opened): what the delivery check says of a late month whose file
    is waiting for the next ingest run."""
    return {
        source: {period for _, period in _listed(landing_dir, source) if period}
        for source in sources
    }


def _listed(landing_dir: Path, source: str) -> list[tuple[Path, str | None]]:
    """The source's files and the month each name covers, in name order; hidden and partial
    files (``.``-prefixed, ``.tmp``/``.part``) are left out: they may still be arriving."""
    folder = landing_dir / source
    if not folder.is_dir():
        return []
    return [
        (path, parse_period(path.name, source))
        for path in sorted(folder.iterdir())
        if not (path.name.startswith(".") or path.suffix in (".tmp", ".part"))
    ]


def _found(path: Path, source: str, period: str | None, settle_seconds: float) -> Delivery:
    info = path.lstat()
    sha256, refused = "", _refusal(path, info, period, settle_seconds)
    if refused is None:
        sha256, refused = _hashed(path, info)
    return Delivery(
        source,
        "" if refused else str(path),
        printable_name(path.name),
        period,
        sha256,
        modified_at(info),
        info.st_size,
        refused,
    )


def _hashed(path: Path, info: os.stat_result) -> tuple[str, str | None]:
    """The file's sha256, or why it could not be read whole and unchanged."""
    try:
        with open_regular(str(path)) as handle:
            sha256 = sha256_of(handle)
    except NotARegularFile:
        return "", "not_a_regular_file"
    except FileNotFoundError:
        raise
    except OSError:
        return "", "unreadable_file"
    if _fingerprint(path.lstat()) != _fingerprint(info):  # written while it was hashed
        return "", "in_progress"
    return sha256, None


def _refusal(
    path: Path, info: os.stat_result, period: str | None, settle_seconds: float
) -> str | None:
    """Why a file must not be read at all, judged from its name and ``lstat`` alone."""
    if holds_nhs_number(path.name):
        return "identifier_in_file_name"
    if not stat.S_ISREG(info.st_mode):
        return "not_a_regular_file"
    if period is None:
        return "bad_file_name"
    # Every write moves the modification time to now, so a file being written looks fresh.
    # A time far in the future is a wrong clock, not a writer, and does not hold a file back.
    if abs(datetime.now(UTC).timestamp() - info.st_mtime) < settle_seconds:
        return "in_progress"
    return None


def _fingerprint(info: os.stat_result) -> tuple[int, int, int]:
    return info.st_size, info.st_mtime_ns, info.st_ctime_ns


def changed_since_found(delivery: Delivery) -> bool:
    """True if the file is gone, or no longer the regular file of the size and modification
    time it had when found: then whatever was read from it may be half old, half new."""
    try:
        info = os.lstat(delivery.path)
    except OSError:
        return True
    return (
        not stat.S_ISREG(info.st_mode)
        or info.st_size != delivery.size
        or modified_at(info) != delivery.modified_at
    )


REFUSALS = {  # reason -> (what is wrong, what to do); {source} is the delivery's source
    "identifier_in_file_name": (
        "the file name holds an NHS number (masked here), so the file was not read",
        "Deliver it again named {source}_YYYY-MM.csv (.csv.gz, .parquet), with no identifier "
        "in the name, and delete this file.",
    ),
    "not_a_regular_file": (
        "it is a symbolic link or not a regular file (a folder, a pipe, a device), so it was "
        "not read",
        "Deliver the extract itself as an ordinary file: links are refused because they can "
        "point anywhere on the server.",
    ),
    "bad_file_name": (
        "the name does not match {source}_YYYY-MM.csv, .csv.gz or .parquet (a month from "
        "1900-01 to 2099-12)",
        "Rename the file to the month it covers (e.g. {source}_2025-01.csv) and deliver it again.",
    ),
    "unreadable_file": (
        "the file cannot be opened for reading (permissions or a storage fault)",
        "Make it readable by the loader's user, then touch it or deliver it again.",
    ),
}
IN_PROGRESS = "it was modified moments ago, so it may still be arriving"


def refusal(delivery: Delivery) -> DeliveryRejected | None:
    """The rejection of a delivery refused when found (None if it was not)."""
    if delivery.refused is None:
        return None
    if delivery.refused == "in_progress":
        return DeliveryInProgress(delivery.file_name, IN_PROGRESS)
    problem, action = (text.format(source=delivery.source) for text in REFUSALS[delivery.refused])
    return DeliveryRejected(delivery.refused, delivery.file_name, problem, action)
