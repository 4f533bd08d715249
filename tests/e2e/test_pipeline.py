"""The whole chain on synthetic data: ``hei synth``, then ``hei run`` under real Airflow.

Row counts are checked against the generator's own record of what it wrote (truth.json),
not against numbers computed by the pipeline.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.support.cli import hei, user_env
from tests.support.deliveries import fetch
from transforms.config.sources import SOURCES

pytestmark = pytest.mark.e2e
# HEI_E2E_SCALE / HEI_E2E_MONTHS run the same checks at full size (see the README's figures).
SCALE = os.environ.get("HEI_E2E_SCALE", "0.02")
END = "2025-03"
START = {"3": "2025-01"}.get(os.environ.get("HEI_E2E_MONTHS", "3"), "2023-04")


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("e2e")
    env = user_env(root)
    landing, url = root / "landing", f"duckdb:///{root / 'warehouse.duckdb'}"
    synth = hei(
        "synth",
        "--out",
        str(landing),
        "--start",
        START,
        "--end",
        END,
        "--scale",
        SCALE,
        "--faults",
        "0.01",
        env=env,
    )
    assert synth.returncode == 0, synth.stderr
    crashed = run_killed_mid_load(root, env, url, landing)
    first = hei("run", "--landing", str(landing), "--warehouse", url, "--until", END, env=env)
    assert first.returncode == 0, first.stderr + first.stdout
    second = hei("run", "--landing", str(landing), "--warehouse", url, "--until", END, env=env)
    status = hei("status", "--warehouse", url, env=env)
    return {
        "root": root,
        "env": env,
        "landing": landing,
        "url": url,
        "first": first,
        "second": second,
        "status": status,
        "truth": json.loads((landing / "truth.json").read_text()),
        "crashed": crashed,
    }


def run_killed_mid_load(root: Path, env: dict[str, str], url: str, landing: Path) -> str:
    """``hei run`` on one large delivery, killed with SIGKILL once the load is under way.

    The delivery has the name of one of the month's files (so the next run loads that name)
    and about three reading chunks of rows; the whole process group is killed a moment after
    the load says it started (in ``var/logs``), long before it could commit. Returns the
    file's name.
    """
    [like] = (landing / "gp_register").glob(f"gp_register_{START}.*")
    big = root / "crash" / "gp_register" / like.name
    big.parent.mkdir(parents=True)
    header = "nhs_number,practice_code,age,sex,ethnic_category,ethnicity_snomed,lsoa_code,"
    body = (header + "registration_date\n").encode() + (
        b"9434765919,P92001,40,1,A,,E01006201,2019-02-27\n" * 900_000
    )
    big.write_bytes(gzip.compress(body, compresslevel=1) if big.suffix == ".gz" else body)
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hei.cli",
            "run",
            "--landing",
            str(root / "crash"),
            "--warehouse",
            url,
            "--until",
            END,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    started = f"{big.name}: loading (load "
    deadline = time.monotonic() + 600
    while not any(started in log.read_text(errors="replace") for log in logs_of(root)):
        assert run.poll() is None, run.communicate()[0].decode()[-3000:]
        assert time.monotonic() < deadline, "the load never started"
        time.sleep(0.05)
    time.sleep(0.5)
    assert run.poll() is None, "the load finished before it could be killed"
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    return big.name


def ingested_files(truth: dict) -> dict[str, dict]:
    return {Path(k).name: v for k, v in truth["files"].items() if v["source"] in SOURCES}


def test_every_file_loads_with_the_generators_row_counts(pipeline_run):
    expected = ingested_files(pipeline_run["truth"])
    audit = {
        r[0]: r[1:]
        for r in fetch(
            pipeline_run["url"],
            "select file_name, status, rows_read, rows_loaded from audit.file_loads",
        )
    }
    assert set(audit) == set(expected)
    for name, truth in expected.items():
        assert audit[name] == ("loaded", truth["rows"], truth["expected_rows_loaded"]), name


def test_quarantine_reasons_match_the_injected_faults(pipeline_run):
    expected = ingested_files(pipeline_run["truth"])
    found = Counter()
    for name, reason, count in fetch(
        pipeline_run["url"],
        "select file_name, reason, count(*) from quality.quarantine group by 1, 2",
    ):
        found[(name, reason)] = count
    injected = Counter(
        {(name, reason): n for name, t in expected.items() for reason, n in t["row_faults"].items()}
    )
    assert found == +injected


def test_staging_holds_exactly_the_loaded_rows(pipeline_run):
    for source in SOURCES:
        loaded = fetch(
            pipeline_run["url"],
            f"select period, count(*) from staging.stg_{source} group by period order by period",
        )
        expected = sorted(
            (t["period"], t["expected_rows_loaded"])
            for t in pipeline_run["truth"]["files"].values()
            if t["source"] == source
        )
        assert loaded == expected


def test_audit_invariant_holds_for_every_file(pipeline_run):
    broken = fetch(
        pipeline_run["url"],
        "select file_name from audit.file_loads where rows_read <> rows_loaded + rows_quarantined",
    )
    assert broken == []


STANDALONE_NUMBER = r"\b[0-9]{10}\b"  # a whole value or a word in text; not a run inside hex


def test_no_raw_nhs_number_in_the_warehouse_or_the_logs(pipeline_run):
    nhs_numbers: set[str] = set()
    for source in SOURCES:
        for path in (pipeline_run["landing"] / source).iterdir():
            raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            nhs_numbers |= set(re.findall(r"(?<![0-9])[0-9]{10}(?![0-9])", raw.decode("latin-1")))
    assert len(nhs_numbers) > 1000
    url = pipeline_run["url"]
    columns = fetch(
        url,
        "select table_schema, table_name, column_name from information_schema.columns "
        "where data_type = 'VARCHAR' and column_name <> 'ethnicity_snomed'",
    )
    for schema, table, column in columns:
        found = fetch(
            url,
            f"select distinct unnest(regexp_extract_all({column}, "
            f"'{STANDALONE_NUMBER}')) from {schema}.{table}",
        )
        assert not {r[0] for r in found} & nhs_numbers, f"{schema}.{table}.{column}"
    logs = logs_of(pipeline_run["root"])
    assert logs
    for log in logs:
        assert not set(re.findall(STANDALONE_NUMBER, log.read_text(errors="replace"))) & nhs_numbers
    published = list((pipeline_run["root"] / "var" / "publish").rglob("*.*"))
    assert published
    for path in published:
        text = published_text(path)
        assert not set(re.findall(STANDALONE_NUMBER, text)) & nhs_numbers, path


def published_text(path: Path) -> str:
    """Every value of a published file as text (a Parquet file's cells, cast to strings)."""
    if path.suffix != ".parquet":
        return path.read_text(errors="replace")
    table = pq.read_table(path)
    return "\n".join(str(v) for column in table.columns for v in column.to_pylist())


def test_second_run_finds_nothing_new_and_changes_nothing(pipeline_run):
    assert pipeline_run["second"].returncode == 0
    assert "nothing new in the landing zone" in pipeline_run["second"].stdout
    runs = pipeline_run["second"].stdout
    for source in SOURCES:  # as a scheduler would, hei run starts only DAG runs with work
        assert re.search(rf"^ingest_{source} +not run +0.0 +nothing new to load$", runs, re.M)
    assert re.search(r"^assess_ethnicity +not run .*linked after the last load$", runs, re.M)
    assert re.search(r"^compute_indicators +not run .*already computed from what is", runs, re.M)
    assert re.search(r"^publish_partnership +not run .*holds what the warehouse does", runs, re.M)
    assert re.search(r"^assurance_report +not run .*report is built$", runs, re.M)
    assert fetch(
        pipeline_run["url"], "select count(*) from audit.file_loads where status <> 'loaded'"
    ) == [(0,)]


def test_the_run_publishes_the_last_month_and_the_second_run_publishes_nothing(pipeline_run):
    publish = pipeline_run["root"] / "var" / "publish"
    latest = json.loads((publish / "latest.json").read_text())
    assert latest["release"] == END
    assert (publish / latest["path"] / "indicator_values.parquet").exists()
    assert re.search(r"^publish_partnership +success", pipeline_run["first"].stdout, re.M)
    releases = hei("releases", env=pipeline_run["env"], cwd=pipeline_run["root"])
    assert releases.returncode == 0, releases.stderr
    listed = [line.split()[0] for line in releases.stdout.splitlines()[2:]]
    assert listed == [END]
    assert f"release:    {END} at" in pipeline_run["second"].stdout


def test_the_run_writes_the_months_assurance_report_from_the_release(pipeline_run):
    report = pipeline_run["root"] / "var" / "reports" / END / "assurance_report.html"
    assert report.exists() and report.with_suffix(".pdf").exists()
    latest = json.loads((pipeline_run["root"] / "var" / "publish" / "latest.json").read_text())
    assert f"release <strong>{latest['release']}</strong>" in report.read_text()
    assert re.search(r"^assurance_report +success", pipeline_run["first"].stdout, re.M)


def test_status_lists_the_latest_load_per_source_and_month(pipeline_run):
    lines = pipeline_run["status"].stdout.splitlines()
    assert pipeline_run["status"].returncode == 0
    months = len({t["period"] for t in pipeline_run["truth"]["files"].values()})
    for source in SOURCES:
        assert sum(1 for line in lines if line.startswith(source + " ")) == months


PASSWORD = "hunter2-not-real"
UNREACHABLE = f"postgresql+psycopg://nobody:{PASSWORD}@127.0.0.1:1/nowhere?sslpassword={PASSWORD}"


@pytest.fixture(scope="module")
def failed_run(pipeline_run: dict) -> dict:
    """``hei run`` and ``hei status`` on a warehouse that cannot be reached, whose URL has a
    password (in its user part and in its query)."""
    root, env = pipeline_run["root"], pipeline_run["env"]
    logs_before = set(logs_of(root))
    run = hei("run", "--landing", str(pipeline_run["landing"]), "--warehouse", UNREACHABLE, env=env)
    status = hei("status", "--warehouse", UNREACHABLE, env=env)
    unwritable = root / "a file, not a folder"
    unwritable.write_text("")
    failing_dag = hei(
        "run",
        "--landing",
        str(pipeline_run["landing"]),
        "--warehouse",
        pipeline_run["url"],
        "--publish",
        str(unwritable / "publish"),
        "--reports",
        str(root / "failed-reports"),
        env=env,
    )
    return {
        "run": run,
        "status": status,
        "failing_dag": failing_dag,
        "logs": set(logs_of(root)) - logs_before,
    }


def logs_of(root: Path) -> list[Path]:
    logs = root / "var" / "logs"
    return [*(logs.iterdir() if logs.exists() else ()), *(root / "airflow").rglob("*.log")]


def test_run_exits_non_zero_naming_the_dag_run_that_failed(failed_run):
    failing = failed_run["failing_dag"]
    assert failing.returncode == 1
    assert "publish_partnership: failed" in failing.stderr
    assert re.search(r"^publish_partnership +failed", failing.stdout, re.M)


def test_run_exits_non_zero_before_any_dag_run_when_the_warehouse_cannot_be_reached(failed_run):
    assert failed_run["run"].returncode == 1
    assert "failed: connection failed" in failed_run["run"].stderr
    assert "running ingest_" not in failed_run["run"].stderr


def test_no_warehouse_password_is_printed_or_logged(failed_run, pipeline_run):
    shown = "postgresql+psycopg://nobody:***@127.0.0.1:1/nowhere?sslpassword=***"
    run, status = failed_run["run"], failed_run["status"]
    assert "hei run: landing" in run.stderr and shown in run.stderr  # the banner
    assert f"hei: the warehouse at {shown} failed: connection failed" in run.stderr  # summary
    assert status.returncode == 1 and f"hei: the warehouse at {shown} failed" in status.stderr
    task_logs = "".join(log.read_text(errors="replace") for log in failed_run["logs"])
    events = (pipeline_run["root"] / "var" / "lineage" / "openlineage.jsonl").read_text()
    for text in (run.stdout, run.stderr, status.stdout, status.stderr, task_logs, events):
        assert PASSWORD not in text


def test_recorded_completeness_matches_the_generators_truth(pipeline_run):
    rows = fetch(
        pipeline_run["url"],
        "select source, period, records, known, not_stated, not_known, "
        "invalid from quality.ethnicity_completeness where basis = 'recorded' "
        "and organisation = 'ALL'",
    )
    found = {
        (r[0], r[1]): dict(
            zip(("records", "known", "not_stated", "not_known", "invalid"), r[2:], strict=True)
        )
        for r in rows
    }
    expected = {
        (t["source"], t["period"]): t["ethnicity"]
        for t in pipeline_run["truth"]["files"].values()
        if "ethnicity" in t
    }
    assert found == expected


def test_linking_raises_completeness_and_gives_everyone_one_ethnicity(pipeline_run):
    url = pipeline_run["url"]
    assert fetch(url, "select count(*) - count(distinct person_id) from core.person_ethnicity") == [
        (0,)
    ]
    pct = dict(
        ((r[0], r[1]), r[2])
        for r in fetch(
            url,
            "select source, basis, 100.0 * sum(known) / sum(records) from "
            "quality.ethnicity_completeness where organisation = 'ALL' group by 1, 2",
        )
    )
    for source in ("gp_register", "ae_attendances", "inpatient_spells"):
        assert pct[(source, "linked")] > pct[(source, "recorded")]
    assert pct[("workforce", "linked")] == pct[("workforce", "recorded")]


def test_every_loaded_file_passed_its_reject_suite_and_has_one_data_docs_page_per_suite(
    pipeline_run,
):
    rows = fetch(
        pipeline_run["url"],
        "select f.file_name, v.suite, v.success, v.rows_validated, f.rows_loaded "
        "from audit.file_loads f join quality.validation_runs v on v.load_id = f.load_id "
        "where f.status = 'loaded' and v.suite like '%.reject'",
    )
    assert len(rows) == len(ingested_files(pipeline_run["truth"]))
    assert all(success and validated == loaded for _, _, success, validated, loaded in rows)
    docs = pipeline_run["root"] / "var" / "data_docs"
    assert "gp_register" in (docs / "index.html").read_text()
    pages = list((docs / "validations").rglob("*.html"))
    assert len(pages) == 2 * len(ingested_files(pipeline_run["truth"]))  # reject and warn


def test_a_run_killed_mid_load_is_failed_in_airflow_and_gone_from_the_data_docs(pipeline_run):
    root, crashed = pipeline_run["root"], pipeline_run["crashed"]
    airflow = sqlite3.connect(root / "airflow" / "airflow.db")
    runs = airflow.execute("select dag_id, state from dag_run order by id").fetchall()
    assert ("ingest_gp_register", "failed") in runs  # the killed run, marked by the next one
    assert not [r for r in runs if r[1] in ("running", "queued")]
    tasks = airflow.execute("select state from task_instance where state = 'running'").fetchall()
    assert tasks == []
    rows_read = dict(
        fetch(pipeline_run["url"], "select file_name, rows_read from audit.file_loads")
    )
    loads = {r[0] for r in fetch(pipeline_run["url"], "select load_id from audit.file_loads")}
    stored = [p.parts[-3] for p in (root / "var" / "gx").rglob("validations/*/*/*/*/*.json")]
    shown = [p.parts[-3] for p in (root / "var" / "data_docs").rglob("validations/**/*.html")]
    assert any(name.startswith(f"{crashed} ") for name in stored)  # its loaded version
    for run_name in stored + shown:  # e.g. "gp_register_2025-01.csv.gz 2025-01 load 9f0c…"
        file_name, _, _, load_id = run_name.rsplit(" ", 3)
        assert load_id in loads and file_name in rows_read, run_name


def test_var_the_warehouse_and_the_logs_are_private_to_the_user(pipeline_run):
    root = pipeline_run["root"]
    made = [
        root / "var",
        *(root / "var").rglob("*"),
        root / "airflow",
        *(root / "airflow").rglob("*"),
        *root.glob("warehouse.duckdb*"),
    ]
    assert len(made) > 100
    readable_by_others = [
        str(path) for path in made if path.lstat().st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    ]
    assert readable_by_others == []
