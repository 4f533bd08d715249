"""The whole pipeline, month after month, at a chosen scale: time and peak memory of every task.

    python bench/pipeline_scale.py [--scale 1] [--months 12] [--end 2026-03]
                                   [--warehouse postgres|duckdb] [--json out.json]

Scale 1 is Wigan (about 330,000 registered people); scale 10 is Greater Manchester's ten
boroughs (3.3M). The synthetic deliveries of every month are written first; then each month
is run as the deployment runs it when that month's files have landed: for every source
``prepare_warehouse``, ``find_deliveries``, ``load_month`` and ``render_data_docs`` (the
ingest DAG), then ``link_ethnicity``, ``compute_indicators``, ``publish_release`` and
``build_report`` (the downstream DAGs). The task functions are called directly, not through Airflow.

Each month runs in a fresh Python process that imports the task code once, then forks a child
per task, as Airflow's executors do with preloaded task code; the child's peak RSS (reset at
the fork through ``/proc/self/clear_refs``) is the task's, on top of the imports it shares
(printed as the baseline). Memory flat in
history means the last month's peak of each task is no higher than the first month's, give or
take noise. On PostgreSQL the warehouse is a new database, dropped at the end; its size per
schema is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from common import (
    current_rss_mb,
    machine,
    peak_rss_mb,
    postgres_database,
    postgres_server,
    run_child,
)

DATABASE = "hei_bench_pipeline"
DOWNSTREAM = ("link_ethnicity", "compute_indicators", "publish_release", "build_report")

WORKER = """
import json, sys
sys.path.insert(0, "bench")
from pipeline_scale import run_month
print(json.dumps(run_month(json.loads(sys.argv[1]))))
"""


def in_fork(call: Callable[[], Any]) -> tuple[Any, float, int]:
    """Run ``call`` in a forked child, as Airflow's executors run a task after preloading its
    code; returns its result, seconds and the child's peak RSS (MB), the shared imports
    included. Each task starts from the same process, so no task's peak carries another's."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            Path("/proc/self/clear_refs").write_text("5")  # the peak restarts from here
            started = time.perf_counter()
            result = call()
            payload = pickle.dumps((result, time.perf_counter() - started, peak_rss_mb()))
        except BaseException:
            payload = pickle.dumps(RuntimeError(traceback.format_exc()))
        with os.fdopen(write, "wb") as out:
            out.write(payload)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        outcome = pickle.loads(answer.read())
    os.waitpid(pid, 0)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def run_month(job: dict) -> dict:
    """In a worker process: one month's tasks, each timed and with its own peak RSS."""
    import transforms.report.build  # noqa: F401  (preloaded, as hei.airflow_env does)
    from transforms import tasks
    from transforms.config.settings import Settings
    from transforms.config.sources import SOURCES
    from transforms.quality import validation

    settings = Settings(
        var_dir=Path(job["var_dir"]),
        landing_dir=Path(job["landing"]),
        warehouse_url=job["warehouse"],
        pseudonym_key="bench-pipeline-scale-key",
        settle_seconds=0,
    )
    validation.gx_context(settings.var_dir)  # import GX before the baseline
    baseline = current_rss_mb()
    measured = []

    def measure(task: str, source: str | None, call: Callable[[], Any]) -> Any:
        result, seconds, peak = in_fork(call)
        measured.append({"task": task, "source": source, "seconds": seconds, "peak_rss_mb": peak})
        return result

    rows = 0
    for source in SOURCES:
        measure("prepare_warehouse", source, lambda: tasks.prepare_warehouse(settings))
        groups = measure(
            "find_deliveries",
            source,
            lambda s=source: tasks.find_deliveries(settings, s, job["month"]),
        )
        records = [
            measure("load_month", source, lambda g=g: tasks.load_month(settings, g, "bench"))
            for g in groups
        ]
        rows += sum(r["rows_read"] for month in records for r in month)
        measure("render_data_docs", source, lambda r=records: tasks.render_data_docs(settings, r))
    measure("link_ethnicity", None, lambda: tasks.link_ethnicity(settings))
    measure("compute_indicators", None, lambda: tasks.compute_indicators(settings, "bench"))
    measure("publish_release", None, lambda: tasks.publish_release(settings, "bench"))
    measure("build_report", None, lambda: tasks.build_report(settings))
    return {"month": job["month"], "rows": rows, "baseline_mb": baseline, "tasks": measured}


def month_labels(end: str, months: int) -> list[str]:
    year, month = map(int, end.split("-"))
    index = year * 12 + month - 1 - months + 1
    return [f"{i // 12}-{i % 12 + 1:02d}" for i in range(index, index + months)]


def generate(landing: Path, months: list[str], scale: float) -> dict:
    code = (
        "import json, sys, time; sys.path.insert(0, 'bench')\n"
        "from common import peak_rss_mb\n"
        "from synth.generator import generate\n"
        "t = time.perf_counter()\n"
        "truth = generate(sys.argv[1], sys.argv[2], sys.argv[3], scale=float(sys.argv[4]))\n"
        "rows = sum(f['rows'] for f in truth['files'].values())\n"
        "print(json.dumps({'seconds': time.perf_counter() - t, 'rows': rows,"
        " 'peak_rss_mb': peak_rss_mb()}))"
    )
    return run_child(code, str(landing), months[0], months[-1], str(scale))


def warehouse_size(url: str) -> dict[str, int]:
    """Bytes per schema (tables with their indexes and TOAST), or the DuckDB file's size."""
    if url.startswith("duckdb:///"):
        return {"file": Path(url.removeprefix("duckdb:///")).stat().st_size}
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        sizes = conn.exec_driver_sql(
            "select n.nspname, sum(pg_total_relation_size(c.oid))::bigint from pg_class c "
            "join pg_namespace n on n.oid = c.relnamespace where c.relkind in ('r', 'm') "
            "and n.nspname not in ('pg_catalog', 'information_schema') "
            "and n.nspname not like 'pg_toast%%' group by 1 order by 1"
        ).all()
        total = conn.exec_driver_sql("select pg_database_size(current_database())").scalar()
    engine.dispose()
    return {**{schema: int(size) for schema, size in sizes}, "database": int(total)}


def summarise(months: list[dict]) -> list[dict]:
    """Per task kind: time per month and peak RSS in the first and last months and at most."""
    kinds = [t["task"] for t in months[0]["tasks"]]
    summary = []
    for kind in dict.fromkeys(kinds):
        per_month = [
            [t for t in m["tasks"] if t["task"] == kind] for m in months
        ]  # one entry per source for the ingest tasks
        seconds = [sum(t["seconds"] for t in ts) for ts in per_month]
        peaks = [max((t["peak_rss_mb"] for t in ts), default=0) for ts in per_month]
        summary.append(
            {
                "task": kind,
                "seconds_total": sum(seconds),
                "seconds_per_month_median": statistics.median(seconds),
                "seconds_per_month_max": max(seconds),
                "peak_rss_first_month_mb": peaks[0],
                "peak_rss_last_month_mb": peaks[-1],
                "peak_rss_max_mb": max(peaks),
                "peak_rss_by_month_mb": peaks,
            }
        )
    return summary


def print_report(args: argparse.Namespace, result: dict) -> None:
    print(f"machine: {machine()}")
    gen = result["generate"]
    print(
        f"scale {args.scale}, {args.months} months to {args.end}, {args.warehouse}: "
        f"{gen['rows']:,} rows generated in {gen['seconds']:.0f} s"
    )
    baselines = [m["baseline_mb"] for m in result["months"]]
    print(f"worker baseline after imports: {min(baselines)}-{max(baselines)} MB")
    print("| task | total s | s per month (median, max) | peak RSS MB first → last month (max) |")
    print("| --- | --- | --- | --- |")
    for s in result["summary"]:
        print(
            f"| {s['task']} | {s['seconds_total']:.0f} | {s['seconds_per_month_median']:.1f}, "
            f"{s['seconds_per_month_max']:.1f} | {s['peak_rss_first_month_mb']} → "
            f"{s['peak_rss_last_month_mb']} ({s['peak_rss_max_mb']}) |"
        )
    pipeline = sum(s["seconds_total"] for s in result["summary"])
    rows = sum(m["rows"] for m in result["months"])
    print(f"pipeline: {pipeline:.0f} s for {rows:,} rows read ({rows / pipeline:,.0f} rows/s)")
    print(f"warehouse bytes: {json.dumps(result['warehouse_bytes'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--end", default="2026-03", help="last month (a March completes WRES)")
    parser.add_argument("--warehouse", choices=["postgres", "duckdb"], default="postgres")
    parser.add_argument("--postgres-url", default=postgres_server(), help="its server")
    parser.add_argument("--workdir", help="where the landing zone goes (default: a temp dir)")
    parser.add_argument("--json", help="also write every measurement to this file")
    args = parser.parse_args()
    months = month_labels(args.end, args.months)
    with tempfile.TemporaryDirectory(prefix="hei-bench-pipeline-", dir=args.workdir) as tmp:
        var = Path(tmp)
        if args.warehouse == "postgres":
            url = postgres_database(DATABASE, server=args.postgres_url)
        else:
            url = f"duckdb:///{var / 'warehouse.duckdb'}"
        try:
            result = {"generate": generate(var / "landing", months, args.scale), "months": []}
            for month in months:
                job = {"month": month, "var_dir": str(var), "landing": str(var / "landing")}
                done = run_child(WORKER, json.dumps({**job, "warehouse": url}))
                result["months"].append(done)
                print(f"{month}: {done['rows']:,} rows", file=sys.stderr, flush=True)
            result["summary"] = summarise(result["months"])
            result["warehouse_bytes"] = warehouse_size(url)
        finally:
            if args.warehouse == "postgres":
                postgres_database(DATABASE, create=False, server=args.postgres_url)
    print_report(args, result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
