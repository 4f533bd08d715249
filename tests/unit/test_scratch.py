"""Temporary folders of the release and the gate: removed after use, and swept when a killed
process left them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile

import pytest

from transforms.publish import scratch


@pytest.fixture
def temp(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_folders_left_by_dead_processes_of_this_machine_are_removed_by_the_next(temp):
    host, dead = socket.gethostname(), dead_pid()
    left = temp / f"hei-release-{host}-{dead}-abc"
    (left / "inner").mkdir(parents=True)
    (left / "inner" / "values.arrow").write_bytes(b"rows")
    running = temp / f"hei-release-{host}-{os.getpid()}-def"
    other_machine = temp / f"hei-release-elsewhere.{host}-{dead}-ghi"
    longer_name = temp / f"hei-release-{host}-{dead}-{os.getpid()}-mno"  # host "<host>-<dead>"
    no_such_pid = temp / f"hei-release-{host}-99999999999999999999-pqr"
    other_kind = temp / f"hei-gate-{host}-{dead}-jkl"
    for kept in (running, other_machine, other_kind, longer_name, no_such_pid):
        kept.mkdir()
    outside = temp / "outside"
    outside.mkdir()
    link = temp / f"hei-release-{host}-{dead}-link"
    link.symlink_to(outside)

    made = scratch.new_folder("release")

    assert not left.exists()
    kept = (running, other_machine, other_kind, longer_name, no_such_pid, link, outside, made)
    assert all(p.exists() for p in kept)
    assert made.name.startswith(f"hei-release-{host}-{os.getpid()}-")


def test_a_folder_block_removes_its_folder_even_when_the_work_fails(temp):
    with pytest.raises(RuntimeError), scratch.folder("gate") as made:
        (made / "gate.duckdb").write_bytes(b"db")
        raise RuntimeError("the gate failed")
    assert not made.exists()
    assert list(temp.iterdir()) == []
