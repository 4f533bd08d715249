"""Time to publish the partnership release from a computed warehouse.

    python bench/publish_speed.py [--warehouse duckdb:///var/warehouse.duckdb] [--repeat 3]
                                  [--history 1 2 4 8]

The warehouse must hold computed indicators (``make run`` leaves the full 24-month synthetic
one in ``var/warehouse.duckdb``). Each repeat publishes into a new, empty folder, so every
step runs: reading the mart, writing the Parquet files, the CSV and the documents, the gate
(integrity, rules, sets, the attacking audit, identifiers) reading everything back with
DuckDB, the move and ``latest.json``. A last publish into the same folder measures the
"nothing changed" path. Each publish runs in a fresh child process so that its peak RSS is its
own.

``--history`` measures what a longer history costs without loading one: the release read
from the warehouse is repeated that many times, each copy's periods moved back by whole years
beyond the one before (the same rows in other periods, so the gate passes them as it passes
the real ones). The copies are made before the peak RSS is reset, and a publish that held
nothing beyond a chunk of its tables would keep the same peak at any history, give or take
the tables' Arrow columns (about 1.6 MB a year at Wigan scale).
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
from common import peak_rss_mb
from transforms.publish import release
from transforms.warehouse.engine import make_engine

from history import lengthen
from transforms.publish import contents

engine = make_engine(sys.argv[1])
copies = int(sys.argv[3])
if copies:
    with engine.connect() as conn:
        longer = lengthen(contents.read(conn), copies)
    contents.read = lambda conn: longer
    Path("/proc/self/clear_refs").write_text("5")  # the peak restarts from here
started = time.monotonic()
outcome = release.publish(engine, sys.argv[2], run_id="bench")
seconds = time.monotonic() - started
print(json.dumps({"status": outcome.status, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}))
"""


def publish_once(warehouse: str, target: Path, copies: int = 0) -> dict:
    return run_child(CHILD, warehouse, str(target), str(copies))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warehouse", default="duckdb:///var/warehouse.duckdb")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--history", type=int, nargs="+", help="copies of the history")
    args = parser.parse_args()
    if args.history:
        measure_history(args.warehouse, args.history)
        return
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


def measure_history(warehouse: str, copies: list[int]) -> None:
    """One new release per length of history: its rows, seconds and peak RSS."""
    print(f"machine: {machine()}")
    print("copies  indicator_values rows  CSV MB  seconds  peak RSS MB")
    with tempfile.TemporaryDirectory(prefix="hei-bench-publish-") as scratch:
        for n in copies:
            run = publish_once(warehouse, Path(scratch) / f"h{n}", n)
            release = next((Path(scratch) / f"h{n}" / "releases").iterdir())
            manifest = json.loads((release / "manifest.json").read_text())
            rows = next(f["rows"] for f in manifest["files"] if f["format"] == "csv")
            size = (release / "indicator_values.csv").stat().st_size / 2**20
            seconds, peak = run["seconds"], run["peak_rss_mb"]
            print(f"{n:>6}  {rows:>21,}  {size:>6.1f}  {seconds:>7.1f}  {peak:>11}")


if __name__ == "__main__":
    main()
