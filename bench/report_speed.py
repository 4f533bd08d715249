"""Time to build the monthly assurance report from a published release.

    python bench/report_speed.py [--warehouse duckdb:///var/warehouse.duckdb]
                                 [--publish var/publish] [--repeat 3]

``make run`` leaves the full 24-month synthetic warehouse and its release in ``var/``. Each
repeat builds the report (HTML and PDF) into a new folder in a fresh child process, so that
imports (matplotlib, WeasyPrint) and its peak RSS are its own.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from common import machine, run_child

CHILD = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, "bench")
started = time.monotonic()
from common import peak_rss_mb
from transforms.report.build import build
from transforms.warehouse.engine import make_engine

built = build(make_engine(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
seconds = time.monotonic() - started
sizes = {p.name: p.stat().st_size for p in (built.html, built.pdf)}
print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "sizes": sizes}))
"""


def build_once(warehouse: str, target: str, reports: Path) -> dict:
    return run_child(CHILD, warehouse, target, str(reports))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warehouse", default="duckdb:///var/warehouse.duckdb")
    parser.add_argument("--publish", default="var/publish")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hei-bench-report-") as scratch:
        runs = [
            build_once(args.warehouse, args.publish, Path(scratch) / str(i))
            for i in range(args.repeat)
        ]
    seconds = [r["seconds"] for r in runs]
    print(f"machine: {machine()}")
    print(f"files: {json.dumps(runs[0]['sizes'])}")
    print(
        f"report (HTML and PDF, imports included): median {statistics.median(seconds):.1f} s "
        f"(runs: {', '.join(f'{s:.1f}' for s in seconds)}), "
        f"peak RSS {max(r['peak_rss_mb'] for r in runs)} MB"
    )


if __name__ == "__main__":
    main()
