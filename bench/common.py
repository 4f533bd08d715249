"""Helpers shared by the benchmarks."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path


def peak_rss_mb() -> int:
    """This process's peak RSS (VmHWM; unlike ru_maxrss it is not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    raise RuntimeError("no VmHWM in /proc/self/status")


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
