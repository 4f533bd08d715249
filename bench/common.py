"""Helpers shared by the benchmarks."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def peak_rss_mb() -> int:
    """This process's peak RSS (VmHWM; unlike ru_maxrss it is not inherited across exec)."""
    return _status_mb("VmHWM")


def current_rss_mb() -> int:
    """This process's RSS now (what a child forked now starts from)."""
    return _status_mb("VmRSS")


def _status_mb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024)
    raise RuntimeError(f"no {field} in /proc/self/status")


def postgres_server() -> str:
    """The PostgreSQL server benches create their databases on (as the tests')."""
    return os.environ.get("HEI_TEST_POSTGRES_URL", DEFAULT_PG)


def postgres_database(name: str, create: bool = True, server: str | None = None) -> str:
    """Drop database ``name`` on the server, and create it afresh when ``create``; returns
    its URL."""
    import sqlalchemy as sa

    server = server or postgres_server()
    engine = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"drop database if exists {name} with (force)"))
        if create:
            conn.execute(sa.text(f"create database {name}"))
    engine.dispose()
    return sa.make_url(server).set(database=name).render_as_string(hide_password=False)


def machine() -> str:
    """One line describing the machine, for the README's figures."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_gb:.0f} GiB, Python {platform.python_version()}"
    )


def run_child(code: str, *args: str) -> dict:
    """Run ``code`` in a fresh Python (so its imports and peak RSS are its own) with ``args``;
    it prints one JSON line last, which is returned."""
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"the measured child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
