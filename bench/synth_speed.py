"""Synthetic generator speed: 12 months at scale 1 (every source), wall time and peak RSS.

python bench/synth_speed.py [--months 12] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, peak_rss_mb


def measure(months: int, scale: float) -> dict:
    from synth import generate
    from transforms.core.periods import month_after

    end = "2026-10"
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        truth = generate(Path(tmp), month_after(end, 1 - months), end, scale=scale)
        seconds = time.perf_counter() - started
    rows = sum(f["rows"] for f in truth["files"].values())
    return {
        "months": months,
        "scale": scale,
        "files": len(truth["files"]),
        "rows": rows,
        "seconds": round(seconds, 1),
        "rows_per_s": round(rows / seconds),
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.months, args.scale)))
        return
    print(f"# {machine()}", flush=True)
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            "--months",
            str(args.months),
            "--scale",
            str(args.scale),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
