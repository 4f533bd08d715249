"""Private temporary folders that a killed process does not leave behind for ever.

The release is spooled and gated in temporary folders (hundreds of MB over a long history).
A process killed outright (the out-of-memory killer, a worker shut down without notice)
cannot remove its own, so each folder is named for the machine and process that made it,
and making a new one first removes those whose process is no longer running. Only this
machine's are judged: another machine or container sharing the temporary folder has its own
process numbers.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def new_folder(kind: str) -> Path:
    """A new private folder for ``kind`` of work (``release``, ``gate``); the caller removes it.

    Folders of the same kind left by this machine's dead processes are removed first.
    """
    _sweep(kind)
    return Path(tempfile.mkdtemp(prefix=f"{_prefix(kind)}{os.getpid()}-"))


@contextmanager
def folder(kind: str) -> Iterator[Path]:
    """A new private folder for ``kind`` of work, removed when the block ends."""
    made = new_folder(kind)
    try:
        yield made
    finally:
        shutil.rmtree(made, ignore_errors=True)


def _sweep(kind: str) -> None:
    """Remove the ``kind`` folders that this machine's processes no longer running left."""
    prefix = _prefix(kind)
    owner = re.compile(re.escape(prefix) + r"(\d+)-[a-z0-9_]+")  # mkdtemp's own suffix
    for path in Path(tempfile.gettempdir()).glob(f"{glob.escape(prefix)}*"):
        found = owner.fullmatch(path.name)
        if found and path.is_dir() and not path.is_symlink() and not _running(int(found[1])):
            shutil.rmtree(path, ignore_errors=True)


def _prefix(kind: str) -> str:
    return f"hei-{kind}-{socket.gethostname()}-"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):  # another user's, or no process id
        return True
    return True
