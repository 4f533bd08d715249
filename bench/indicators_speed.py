"""Indicator engine speed against one hand-written DuckDB query over the same staging data.

    python bench/indicators_speed.py [--months 24] [--scale 1] [--warehouse duckdb postgres]
                                     [--data DIR] [--repeat 3] [--keep]

Synthetic data for ``--months`` months ending at ``--end`` (fixed, so runs compare) is
generated unless ``--data`` names a landing zone, and loaded into each warehouse with
``hei run`` (Airflow ``dag.test()``; its duration is printed but is not what is measured).
Then, each in a fresh child process so that its peak RSS is its own:

* engine: ``indicator_store.compute(conn, "bench", force=True)`` in one committed
  transaction, as ``compute_indicators`` runs it; ``force`` recomputes every period of the
  catalogue (SQL counts, rolling periods, statistics, comparisons, disclosure control and
  the rewrite of ``indicators.values``), ``--repeat`` times;
* baseline (DuckDB only): one SQL statement, fetched in full, counting every numerator and
  denominator of the catalogue per month x best-known ethnic code x ESP2013 age band, with
  the catalogue's filters. It reads each staging table once, so a count shared by several
  indicators (the register's person-years) is counted once. It is the floor the issue's
  target is set against: the engine should take no more than twice its time.

The baseline is written by hand from ``transforms/config/indicators.yml``, not generated
from it (a new or changed indicator needs an edit here), so it is checked: every
all-persons, ethnicity_16 and DQ01 row of ``indicators.values`` must have the numerator and
denominator the baseline's counts give (person-years within 1e-9). Which VAC01/VAC02
campaigns are complete is looked up before the timed statement and written into it as a
VALUES list. Staff vaccination (VAC03/VAC04) counts the workforce snapshot, which the
baseline does not read: those rows are not compared, and the engine's time includes them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

from common import machine, peak_rss_mb, postgres_database

from transforms.core.periods import month_after

PG_DATABASE = "hei_bench_indicators"
PSEUDONYM_KEY = "bench"
ACTIVITY_TABLES = (
    "gp_appointments",
    "ae_attendances",
    "inpatient_spells",
    "outpatient_appointments",
    "talking_therapies",
    "vaccinations",
    "deaths",
)

# --- the baseline --------------------------------------------------------------------------

# indicator -> (numerator, denominator): names of the baseline's counts
COUNTS = {
    "ACC01": ("gp_attended", "reg_all"),
    "ACC02": ("gp_dna", "gp_attended_or_dna"),
    "ACC03": ("ae_type_1_3", "reg_all"),
    "ACC04": ("ip_elective", "reg_all"),
    "ACC05": ("op_first_attended", "reg_all"),
    "ACC06": ("op_dna", "op_booked"),
    "ACC07": ("tt_adult", "reg_18_plus"),
    "OUT01": ("ip_emergency", "reg_all"),
    "OUT02": ("ip_emergency_acsc", "reg_all"),
    "OUT03": ("tt_recovered", "tt_completed"),
    "OUT04": ("deaths_under_75", "reg_under_75"),
    "VAC01": ("covid_vaccinated", "covid_eligible"),
    "VAC02": ("flu_vaccinated", "flu_eligible"),
    "DQ01": ("dq_known", "dq_records"),
}
PERSON_YEARS = ("reg_all", "reg_18_plus", "reg_under_75")
# name -> (programme, minimum age, first calendar month, months): VAC01 and VAC02
CAMPAIGNS = {"covid": ("COVID-19", 18, 9, 4), "flu": ("Influenza", 65, 10, 6)}
EMERGENCY = "('21', '22', '23', '24', '25', '2A', '2B', '2C', '2D', '28')"
# the chronic ACSC prefixes of reference/acsc_icd10_codes.csv, on the normalised diagnosis
ACSC_CHRONIC = "^(D50[189]|E1[0-4][0-8]|E4[0-3]|E550|E643|I10|I11[09]|I20|I24[089]|I50|J4[1-7]|J81)"

BASELINE_SQL = """
with
register as (
    select r.period as month, {code} as grp, {band_r} as age_band,
        count(*) as reg_all,
        count(*) filter (where r.age >= 18) as reg_18_plus,
        count(*) filter (where r.age <= 74) as reg_under_75
    from staging.stg_gp_register r {ethnicity_r}
    group by all
),
gp as (
    select a.period as month, {code} as grp, {band_r} as age_band,
        count(*) filter (where a.appointment_status = 'Attended') as gp_attended,
        count(*) filter (where a.appointment_status = 'DNA') as gp_dna,
        count(*) as gp_attended_or_dna
    from staging.stg_gp_appointments a
    left join core.person_ethnicity pe on pe.person_id = a.person_id
    left join staging.stg_gp_register r on r.person_id = a.person_id and r.period = a.period
    where a.appointment_status in ('Attended', 'DNA')
    group by all
),
ae as (
    select e.period as month, {code} as grp, {band_e} as age_band, count(*) as ae_type_1_3
    from staging.stg_ae_attendances e {ethnicity_e}
    where e.department_type in ('01', '02', '03')
    group by all
),
ip as (
    select e.period as month, {code} as grp, {band_e} as age_band,
        count(*) filter (where e.admission_method in ('11', '12', '13')) as ip_elective,
        count(*) filter (where e.admission_method in {emergency}) as ip_emergency,
        count(*) filter (
            where e.admission_method in {emergency} and regexp_matches(
                case when e.dx like '___X' then left(e.dx, 3) else e.dx end, '{acsc}')
        ) as ip_emergency_acsc
    from (
        select *, replace(upper(trim(primary_diagnosis)), '.', '') as dx
        from staging.stg_inpatient_spells
    ) e {ethnicity_e}
    where e.admission_method in ('11', '12', '13') or e.admission_method in {emergency}
    group by all
),
op as (
    select e.period as month, {code} as grp, {band_e} as age_band,
        count(*) filter (where e.first_attendance in ('1', '3')
                         and e.attendance_status in ('5', '6')) as op_first_attended,
        count(*) filter (where e.attendance_status in ('3', '7')) as op_dna,
        count(*) as op_booked
    from staging.stg_outpatient_appointments e {ethnicity_e}
    where e.attendance_status in ('3', '5', '6', '7')
    group by all
),
tt as (
    select e.period as month, {code} as grp, {band_e} as age_band,
        count(*) filter (where e.age >= 18) as tt_adult,
        count(*) filter (where e.completed_treatment and e.caseness_at_start
                         and e.caseness_at_end is false) as tt_recovered,
        count(*) filter (where e.completed_treatment and e.caseness_at_start) as tt_completed
    from staging.stg_talking_therapies e {ethnicity_e}
    group by all
),
deaths as (
    select e.period as month, {code} as grp, {band_e} as age_band, count(*) as deaths_under_75
    from staging.stg_deaths e {ethnicity_e}
    where e.age <= 74
    group by all
),
windows (campaign, programme, min_age, start_month, month) as (values {windows}),
dosed as (
    select distinct w.campaign, w.start_month, v.person_id
    from staging.stg_vaccinations v
    join windows w on v.period = w.month and v.programme = w.programme
),
campaigns as (
    select s.campaign, r.period as month, {code} as grp, 'all' as age_band,
        count(distinct r.person_id) as eligible, count(d.person_id) as vaccinated
    from (select distinct campaign, min_age, start_month from windows) s
    join staging.stg_gp_register r on r.period = s.start_month and r.age >= s.min_age
    left join core.person_ethnicity pe on pe.person_id = r.person_id
    left join dosed d on d.campaign = s.campaign and d.start_month = s.start_month
        and d.person_id = r.person_id
    group by all
),
quality as (
    select period as month,
        source || ':' || case when organisation = 'ALL' then 'all' else organisation end as grp,
        'all' as age_band, sum(known) as dq_known, sum(records) as dq_records
    from quality.ethnicity_completeness
    where basis = 'recorded'  -- organisation 'ALL' is the whole-source row: DQ01's total
    group by all
)
select count_name, month, grp, age_band, n from (
    from (unpivot register on reg_all, reg_18_plus, reg_under_75 into name count_name value n)
    union all by name
    from (unpivot gp on gp_attended, gp_dna, gp_attended_or_dna into name count_name value n)
    union all by name
    from (unpivot ae on ae_type_1_3 into name count_name value n)
    union all by name
    from (unpivot ip on ip_elective, ip_emergency, ip_emergency_acsc
          into name count_name value n)
    union all by name
    from (unpivot op on op_first_attended, op_dna, op_booked into name count_name value n)
    union all by name
    from (unpivot tt on tt_adult, tt_recovered, tt_completed into name count_name value n)
    union all by name
    from (unpivot deaths on deaths_under_75 into name count_name value n)
    union all by name
    select campaign || '_eligible' as count_name, month, grp, age_band, eligible as n
    from campaigns
    union all by name
    select campaign || '_vaccinated' as count_name, month, grp, age_band, vaccinated as n
    from campaigns
    union all by name
    from (unpivot quality on dq_known, dq_records into name count_name value n)
)
where n > 0
"""


def age_band(age: str) -> str:
    """The ESP2013 band label of ``age`` ('0-4' ... '85-89', '90+'; null stays null)."""
    return (
        f"case when {age} is null then null when {age} >= 90 then '90+' "
        f"else ({age} // 5 * 5)::varchar || '-' || ({age} // 5 * 5 + 4)::varchar end"
    )


def campaign_windows(months: set[str]) -> list[tuple[str, str, int, str, str]]:
    """(campaign, programme, min age, start month, month) of each campaign fully loaded."""
    rows = []
    years = range(int(min(months)[:4]) - 1, int(max(months)[:4]) + 1)
    for name, (programme, min_age, first, length) in CAMPAIGNS.items():
        for year in years:
            start = f"{year:04d}-{first:02d}"
            window = [month_after(start, i) for i in range(length)]
            if months.issuperset(window):
                rows += [(name, programme, min_age, start, m) for m in window]
    return rows


def baseline_sql(windows: list[tuple[str, str, int, str, str]]) -> str:
    values = ", ".join(f"('{c}', '{p}', {a}, '{s}', '{m}')" for c, p, a, s, m in windows)
    # no complete campaign: one window that matches no month keeps the statement valid
    values = values or "('none', 'none', 0, '0000-00', '0000-00')"
    return BASELINE_SQL.format(
        code="coalesce(pe.ethnic_code, '99')",
        band_r=age_band("r.age"),
        band_e=age_band("e.age"),
        ethnicity_r="left join core.person_ethnicity pe on pe.person_id = r.person_id",
        ethnicity_e="left join core.person_ethnicity pe on pe.person_id = e.person_id",
        emergency=EMERGENCY,
        acsc=ACSC_CHRONIC,
        windows=values,
    )


def campaign_months(raw: Any) -> set[str]:
    """Months loaded in both the register and vaccinations (where campaigns can be complete)."""
    found = raw.execute(
        "select distinct period from staging.stg_gp_register intersect "
        "select distinct period from staging.stg_vaccinations"
    ).fetchall()
    return {row[0] for row in found} or {"0000-00"}


def fetch_baseline(url: str) -> tuple[list[tuple], float]:
    """The baseline's rows and the seconds its statement took (connection already open)."""
    from transforms.warehouse import engine as warehouse

    with warehouse.make_engine(url).connect() as conn:
        raw = conn.connection.driver_connection
        sql = baseline_sql(campaign_windows(campaign_months(raw)))
        started = time.perf_counter()
        rows = raw.execute(sql).fetchall()
        return rows, time.perf_counter() - started


# --- measurements (each in a fresh child process) -------------------------------------------


def measure_engine(url: str) -> dict:
    import sqlalchemy as sa

    from transforms.indicators import store as indicator_store
    from transforms.warehouse import engine as warehouse

    engine = warehouse.make_engine(url)
    with engine.connect() as conn:  # opening the database is a per-process constant
        conn.execute(sa.text("select count(*) from indicators.values")).scalar_one()
    rss_before = peak_rss_mb()
    started = time.perf_counter()
    with engine.begin() as conn:
        warehouse.lock(conn, "hei:indicators")
        done = indicator_store.compute(conn, "bench", force=True)
    return {
        "seconds": time.perf_counter() - started,
        "periods": sum(done.values()),
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": rss_before,
    }


def measure_baseline(url: str) -> dict:
    rss_before = peak_rss_mb()
    rows, seconds = fetch_baseline(url)
    return {
        "seconds": seconds,
        "rows": len(rows),
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": rss_before,
    }


def check(url: str, baseline_url: str | None) -> dict:
    """Warehouse sizes, and the engine's stored counts against the baseline's."""
    import sqlalchemy as sa

    from transforms.warehouse import engine as warehouse

    with warehouse.make_engine(url).connect() as conn:
        sizes = {
            "values_rows": conn.execute(sa.text("select count(*) from indicators.values")).scalar(),
            "activity_rows": sum(
                conn.execute(sa.text(f"select count(*) from staging.stg_{t}")).scalar()
                for t in ACTIVITY_TABLES
            ),
            "register_rows": conn.execute(
                sa.text("select count(*) from staging.stg_gp_register")
            ).scalar(),
        }
        stored = conn.execute(
            sa.text(
                "select indicator_id, measure, period_type, period_start, period_end, breakdown, "
                "group_code, numerator, denominator from indicators.values "
                "where breakdown in ('all', 'ethnicity_16', 'source_organisation')"
            )
        ).all()
    if baseline_url is None:
        return sizes | {"comparisons": None}
    rows, _ = fetch_baseline(baseline_url)
    return sizes | {"comparisons": compare(stored, rows)}


def compare(stored: list[Any], baseline: list[tuple]) -> dict[str, dict]:
    """Per indicator: rows compared, rows that disagree, and its latest all-persons row."""
    counts: dict[tuple[str, str], list[tuple[str, str | None, int]]] = defaultdict(list)
    for name, month, grp, band, n in baseline:
        counts[(name, month)].append((grp, band, n))
    result: dict[str, dict] = {}
    for row in sorted(stored, key=lambda r: (r.indicator_id, str(r.period_start))):
        if row.indicator_id not in COUNTS:  # staff vaccination (VAC03/04): not in the baseline
            result.setdefault(row.indicator_id, {"rows": 0, "disagree": 0, "skipped": True})
            continue
        numerator, denominator = COUNTS[row.indicator_id]
        months = months_of(row.period_start, row.period_end)
        if row.indicator_id.startswith("VAC"):
            months = months[:1]  # both counts are of the campaign's first register snapshot
        dsr = row.measure == "dsr"
        expected = (
            total(counts, numerator, months, row.group_code, dsr),
            total(counts, denominator, months, row.group_code, dsr)
            / (len(months) if denominator in PERSON_YEARS else 1),
        )
        found = (float(row.numerator), float(row.denominator))
        agrees = expected[0] == found[0] and abs(expected[1] - found[1]) <= 1e-9 * found[1]
        entry = result.setdefault(row.indicator_id, {"rows": 0, "disagree": 0})
        entry["rows"] += 1
        entry["disagree"] += not agrees
        if row.group_code in ("all", "gp_appointments:all"):
            entry["latest"] = (
                f"{row.measure} {row.period_type} {row.period_start}: engine "
                f"{found[0]:g}/{found[1]:.6g}, baseline {expected[0]:g}/{expected[1]:.6g}"
            )
    return result


def total(
    counts: dict[tuple[str, str], list[tuple[str, str | None, int]]],
    name: str,
    months: list[str],
    group: str,
    dsr: bool,
) -> float:
    """A count summed over ``months`` for an all-persons, ethnic-code or DQ01 group (a DSR
    counts only events with an age band)."""
    return float(
        sum(
            n
            for month in months
            for grp, band, n in counts.get((name, month), [])
            if (not dsr or band is not None) and group in ("all", grp)
        )
    )


def months_of(start: date | str, end: date | str) -> list[str]:
    first, last = str(start)[:7], str(end)[:7]
    months = [first]
    while months[-1] < last:
        months.append(month_after(months[-1]))
    return months


# --- the parent: data, loads, child processes, report ----------------------------------------


def child(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True
    )
    if out.returncode:
        raise RuntimeError(f"child {args[0]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def clean_env(**values: str) -> dict[str, str]:
    """This environment without any HEI_* or AIRFLOW_* settings, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEI_", "AIRFLOW_"))}
    return env | values


def synthesise(landing: Path, months: int, end: str, scale: float) -> None:
    start = month_after(end, 1 - months)
    command = ["synth", "--out", str(landing), "--start", start, "--end", end]
    out = hei(command + ["--scale", str(scale)], landing.parent, clean_env())
    print(f"# {out.strip().splitlines()[-1]}", flush=True)


def hei(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "hei.cli", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if out.returncode:
        raise RuntimeError(f"hei {args[0]} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out.stdout


def load(landing: Path, url: str, work: Path, until: str | None) -> float:
    """Load the landing zone into the warehouse with ``hei run``; returns its seconds."""
    env = clean_env(
        HEI_LANDING_DIR=str(landing),
        HEI_WAREHOUSE_URL=url,
        HEI_VAR_DIR=str(work / "var"),
        HEI_PSEUDONYM_KEY=PSEUDONYM_KEY,
    )
    started = time.perf_counter()
    hei(["run", *(["--until", until] if until else [])], work, env)
    return time.perf_counter() - started


def repeated(kind: str, url: str, repeat: int) -> dict:
    runs = [child(kind, url) for _ in range(repeat)]
    for run in runs:
        print(f"  {kind}: " + json.dumps(run | {"seconds": round(run["seconds"], 3)}), flush=True)
    seconds = [r["seconds"] for r in runs]
    return {
        "min_s": round(min(seconds), 2),
        "median_s": round(statistics.median(seconds), 2),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
    }


def bench_warehouse(kind: str, url: str, args: argparse.Namespace, duckdb: str | None) -> dict:
    print(f"# {kind}: {url}", flush=True)
    engine = repeated("engine", url, args.repeat)
    baseline = repeated("baseline", url, args.repeat) if kind == "duckdb" else None
    found = child("check", url, duckdb or "-")
    compared = found.pop("comparisons")
    for indicator, entry in (compared or {}).items():
        if entry.get("skipped"):
            print(f"  check {indicator}: not in the baseline (staff counts), not compared")
            continue
        flag = "DISAGREE" if entry["disagree"] else "ok"
        print(
            f"  check {indicator} {flag}: {entry['disagree']} of {entry['rows']} rows differ; "
            f"latest all persons: {entry.get('latest', '')}"
        )
    differ = sum(e["disagree"] for e in (compared or {}).values())
    found["check"] = "no baseline" if compared is None else f"{differ} rows differ"
    base = baseline["min_s"] if baseline else None
    return {
        "warehouse": kind,
        "engine_min_s": engine["min_s"],
        "engine_median_s": engine["median_s"],
        "baseline_min_s": base,
        "baseline_median_s": baseline and baseline["median_s"],
        "engine/baseline": round(engine["min_s"] / base, 1) if base else None,
        "engine_rss_mb": engine["peak_rss_mb"],
        "baseline_rss_mb": baseline and baseline["peak_rss_mb"],
        **found,
    }


COLUMNS = [
    "warehouse",
    "engine_min_s",
    "engine_median_s",
    "baseline_min_s",
    "baseline_median_s",
    "engine/baseline",
    "engine_rss_mb",
    "baseline_rss_mb",
    "values_rows",
    "activity_rows",
    "register_rows",
    "check",
]


def run(args: argparse.Namespace, work: Path) -> list[dict]:
    landing = args.data.resolve() if args.data else work / "landing"
    if not args.data:
        synthesise(landing, args.months, args.end, args.scale)
    urls = {
        "duckdb": f"duckdb:///{work}/warehouse.duckdb",
        "postgres": postgres_database(PG_DATABASE) if "postgres" in args.warehouse else "",
    }
    for kind in args.warehouse:
        seconds = load(landing, urls[kind], work, None if args.data else args.end)
        print(f"# loaded into {kind} with hei run in {seconds:.0f} s (not measured)", flush=True)
    duckdb = urls["duckdb"] if "duckdb" in args.warehouse else None
    return [bench_warehouse(kind, urls[kind], args, duckdb) for kind in args.warehouse]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--end", default="2025-12", help="last month of generated data")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument(
        "--warehouse", nargs="+", default=["duckdb", "postgres"], choices=["duckdb", "postgres"]
    )
    parser.add_argument("--data", type=Path, help="existing landing data (skips generation)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the warehouses and data")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, url, *rest = args.child
        measure = {"engine": measure_engine, "baseline": measure_baseline}.get(kind)
        found = measure(url) if measure else check(url, None if rest == ["-"] else rest[0])
        print(json.dumps(found, default=str))
        return
    args.warehouse = sorted(set(args.warehouse))  # DuckDB first: the checks need its baseline
    print(f"# {machine()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="hei-bench-indicators-"))
    try:
        results = run(args, work)
    finally:
        if args.keep:
            print(f"# kept {work} and PostgreSQL database {PG_DATABASE}")
        else:
            shutil.rmtree(work, ignore_errors=True)
            if "postgres" in args.warehouse:
                postgres_database(PG_DATABASE, create=False)
    from transforms.ops.status import format_table

    print(format_table(results, COLUMNS))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
