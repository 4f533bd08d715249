"""Time to publish the partnership release from a computed warehouse.

    python bench/publish_speed.py [--warehouse duckdb:///var/warehouse.duckdb] [--repeat 3]

The warehouse must hold computed indicators (``make run`` leaves the full 24-month synthetic
one in ``var/warehouse.duckdb``). Each repeat publishes into a new, empty folder, so every
step runs: reading the mart, writing the Parquet files, the CSV and the documents, the gate
(integrity, rules, sets, the attacking audit, identifiers) reading everything back with
DuckDB, the move and ``latest.json``. A last publish into the same folder measures the
"nothing changed" path. Each publish runs in a fresh child process so that its peak RSS is its
own.
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
sys.path.insert(0, "bench")
from common import peak_rss_mb
from transforms.publish import release
from transforms.warehouse.engine import make_engine

started = time.monotonic()
outcome = release.publish(make_engine(sys.argv[1]), sys.argv[2], run_id="bench")
seconds = time.monotonic() - started
print(json.dumps({"status": outcome.status, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}))
"""


def publish_once(warehouse: str, target: Path) -> dict:
    return run_child(CHILD, warehouse, str(target))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warehouse", default="duckdb:///var/warehouse.duckdb")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hei-bench-publish-") as scratch:
        runs = [publish_once(args.warehouse, Path(scratch) / f"p{i}") for i in range(args.repeat)]
        again = publish_once(args.warehouse, Path(scratch) / "p0")
        release = next((Path(scratch) / "p0" / "releases").iterdir())
        sizes = {p.name: p.stat().st_size for p in sorted(release.iterdir())}
    seconds = [r["seconds"] for r in runs]
    print(f"machine: {machine()}")
    print(f"release files: {json.dumps(sizes)}")
    print(
        f"publish (new release): median {statistics.median(seconds):.2f} s "
        f"(runs: {', '.join(f'{s:.2f}' for s in seconds)}), "
        f"peak RSS {max(r['peak_rss_mb'] for r in runs)} MB"
    )
    print(f"publish (nothing changed): {again['seconds']:.2f} s, status {again['status']}")


if __name__ == "__main__":
    main()
