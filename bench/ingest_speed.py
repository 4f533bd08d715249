"""Ingest throughput and peak memory for a large gp_appointments delivery, against a bare
bulk load of the same file measured in the same run.

    python bench/ingest_speed.py [--rows 1000000 5000000] [--warehouse duckdb postgres]
                                 [--repeat 3]

The file is written first. Each repeat then times the bare load (DuckDB: ``create table as
select * from read_csv(...)``; PostgreSQL: ``COPY`` of the file into an unlogged table of text
columns) and the project's load of the same file into a new, empty warehouse, in a fresh child
process so its peak RSS belongs to that load alone. The ratio of the medians is printed, so the
figure does not depend on how busy the machine is. The project's time includes reading, the
row rules, pseudonymisation, both Great Expectations suites, the duplicate checks, the
completeness figures, the audit and the transactional swap into staging.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from common import machine, peak_rss_mb, postgres_database

from synth.population import nhs_numbers


def write_delivery(folder: Path, rows: int) -> Path:
    rng = np.random.default_rng(1)
    path = folder / "gp_appointments" / "gp_appointments_2025-01.csv"
    path.parent.mkdir(parents=True)
    days = rng.integers(1, 29, size=rows)
    table = pa.table(
        {
            "appointment_id": pa.array(np.char.add("APT", np.arange(rows).astype(str))),
            "nhs_number": pa.array(rng.choice(nhs_numbers(rng), rows).astype(str)),
            "practice_code": pa.array(
                np.char.add("P920", (rng.integers(10, 70, size=rows)).astype(str))
            ),
            "appointment_date": pa.array(
                np.char.add("2025-01-", np.char.zfill(days.astype(str), 2))
            ),
            "appointment_status": pa.array(
                rng.choice(["Attended", "DNA", "Cancelled", "Unknown"], rows)
            ),
            "appointment_mode": pa.array(rng.choice(["Face-to-Face", "Telephone", "Video"], rows)),
            "hcp_type": pa.array(rng.choice(["GP", "Other Practice staff"], rows)),
            "ethnic_category": pa.array(rng.choice(["A", "B", "C", "H", "N", "Z", "99", ""], rows)),
        }
    )
    pacsv.write_csv(table, path)
    return path


def measure(landing: Path, url: str) -> dict:
    """Run in a fresh child process: time the load of the one delivery in ``landing``."""
    from transforms import tasks as pipeline
    from transforms.config.settings import Settings
    from transforms.quality import validation

    settings = Settings(
        var_dir=landing.parent, landing_dir=landing, warehouse_url=url, pseudonym_key="bench"
    )
    pipeline.prepare_warehouse(settings)
    started = time.perf_counter()
    validation.gx_context(settings.var_dir)  # importing GX is a per-process constant
    startup = time.perf_counter() - started
    rss_before = peak_rss_mb()
    started = time.perf_counter()
    [group] = pipeline.find_deliveries(settings, "gp_appointments", None)
    [record] = pipeline.load_month(settings, group, "bench")
    seconds = time.perf_counter() - started
    rows = record["rows_read"]
    return {
        "rows": rows,
        "warehouse": sa_dialect(url),
        "seconds": round(seconds, 2),
        "gx_startup_s": round(startup, 1),
        "rows_per_s": round(rows / seconds),
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_load_mb": rss_before,
        "loaded": record["rows_loaded"],
    }


def sa_dialect(url: str) -> str:
    return url.split(":")[0].split("+")[0]


def bare_load(path: Path, url: str) -> float:
    """Seconds for the warehouse's own bulk load of the file, with no check at all."""
    if url.startswith("duckdb:///"):
        import duckdb

        with duckdb.connect(url.removeprefix("duckdb:///")) as conn:
            started = time.perf_counter()
            conn.execute(f"create table bare as select * from read_csv('{path}')")
        return time.perf_counter() - started
    import psycopg

    header = path.open().readline().strip().split(",")
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        columns = ", ".join(f"{name} text" for name in header)
        conn.execute(f"create unlogged table bare ({columns})")
        started = time.perf_counter()
        with (
            conn.cursor().copy("copy bare from stdin with (format csv, header true)") as copy,
            path.open("rb") as file,
        ):
            while block := file.read(1 << 20):
                copy.write(block)
        seconds = time.perf_counter() - started
        conn.execute("drop table bare")
    return seconds


def load_once(landing: Path, kind: str, tmp: str, attempt: int) -> tuple[float, dict]:
    """The bare load, then the project's load into a new warehouse of the same kind."""
    if kind == "duckdb":
        bare = bare_load(next(landing.rglob("*.csv")), f"duckdb:///{tmp}/bare{attempt}.duckdb")
        url = f"duckdb:///{tmp}/bench{attempt}.duckdb"
    else:
        url = postgres_database("hei_bench")
        bare = bare_load(next(landing.rglob("*.csv")), url)
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(landing), url],
        capture_output=True,
        text=True,
        check=True,
    )
    return bare, json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--warehouse", nargs="+", default=["duckdb", "postgres"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child[0]), args.child[1])))
        return
    print(f"# {machine()}", flush=True)
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as tmp:
            landing = Path(tmp) / "landing"
            path = write_delivery(landing, rows)
            print(f"# {rows:,} rows, {path.stat().st_size / 1e6:.0f} MB CSV", flush=True)
            for kind in args.warehouse:
                runs = [load_once(landing, kind, tmp, i) for i in range(args.repeat)]
                bare = statistics.median(b for b, _ in runs)
                ours = statistics.median(r["seconds"] for _, r in runs)
                print(
                    json.dumps(
                        {
                            "warehouse": kind,
                            "rows": rows,
                            "bare_s": [round(b, 2) for b, _ in runs],
                            "load_s": [r["seconds"] for _, r in runs],
                            "ratio_of_medians": round(ours / bare, 2),
                            "peak_rss_mb": max(r["peak_rss_mb"] for _, r in runs),
                            "loaded": runs[0][1]["loaded"],
                        }
                    ),
                    flush=True,
                )


if __name__ == "__main__":
    main()
