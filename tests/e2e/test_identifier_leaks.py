"""NHS numbers planted where they do not belong, through ``hei run`` under real Airflow: in
other fields, in person_id written with separators and prefixes, in a header name and in a
file name. None of them may reach the warehouse, the run log, Airflow's task logs, Airflow's
metadata database (XCom, rendered task arguments) or ``hei status``.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import duckdb
import pytest

from tests.support.cli import hei, user_env

pytestmark = pytest.mark.e2e
PERIOD = "2025-01"
CLEAN_NHS = ["9434765919", "4010232137", "9990000018"]
PLANTED = {  # planted text -> the NHS number in it
    "9990001014": "9990001014",
    "E01 999 000 1022": "9990001022",
    "APT-9990001286": "9990001286",
    "H \u2013 Indian 999\u00a0000\u00a01030": "9990001030",
    "999-000-1359": "9990001359",
    "NHS9990001421": "9990001421",
    "999\u202f000\u202f1073": "9990001073",
    "nhs_9990001111": "9990001111",
    "deaths_9990001707.csv": "9990001707",
}
# The warehouse, Airflow's SQLite database and their journals (which come and go).
DATABASE_FILES = (".duckdb", ".duckdb.wal", ".db", ".db-wal", ".db-shm", ".db-journal")
AE_HEADER = "attendance_id,nhs_number,arrival_date,age,sex,ethnic_category,lsoa_code"
DEATHS_HEADER = "person_id,date_of_death,age,sex,underlying_cause,ethnic_category"


def ae_attendances() -> str:
    clean = [f"AE{i},{n},2025-01-15,40,1,A,E01006200" for i, n in enumerate(CLEAN_NHS)]
    planted = [
        "AE10,9434765919,2025-01-15,40,1,9990001014,E01006200",
        "AE11,9434765919,2025-01-15,40,1,A,E01 999 000 1022",
        "APT-9990001286,9434765919,2025-01-15,40,1,A,E01006200",
        "AE13,9434765919,2025-01-15,40,1,H \u2013 Indian 999\u00a0000\u00a01030,E01006200",
    ]
    return "\n".join([AE_HEADER, *clean, *planted]) + "\n"


def deaths(ids: list[str]) -> str:
    return "\n".join([DEATHS_HEADER, *(f"{i},2025-01-10,80,2,I21.9,A" for i in ids)]) + "\n"


def appointments_with_a_planted_header() -> str:
    header = "appointment_id,nhs_number,practice_code,appointment_date,appointment_status"
    return f"{header},nhs_9990001111\nA1,9434765919,P92001,2025-01-15,Attended,x\n"


def write(landing: Path, source: str, name: str, text: str) -> None:
    path = landing / source / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("leaks")
    landing, warehouse = root / "landing", root / "warehouse.duckdb"
    write(landing, "ae_attendances", f"ae_attendances_{PERIOD}.csv", ae_attendances())
    write(
        landing,
        "deaths",
        f"deaths_{PERIOD}.csv",
        deaths(["p1", "999-000-1359", "NHS9990001421", "999\u202f000\u202f1073", "p2"]),
    )
    write(landing, "deaths", "deaths_9990001707.csv", deaths(["p3"]))
    write(
        landing,
        "gp_appointments",
        f"gp_appointments_{PERIOD}.csv",
        appointments_with_a_planted_header(),
    )
    env = user_env(root)
    url = f"duckdb:///{warehouse}"
    run = hei("run", "--landing", str(landing), "--warehouse", url, "--until", PERIOD, env=env)
    status = hei("status", "--warehouse", url, env=env)
    quarantine = hei(
        "status", "--warehouse", url, "--quarantine", "ae_attendances", PERIOD, env=env
    )
    return {"root": root, "warehouse": warehouse, "run": run, "outputs": [run, status, quarantine]}


def planted_in(text: str) -> list[str]:
    return [p for p in (*PLANTED, *PLANTED.values()) if p in text]


def test_the_run_succeeds_and_refuses_what_carries_a_number(planted_run):
    run, status, quarantine = planted_run["outputs"]
    assert run.returncode == 0, run.stderr + run.stdout
    assert "REJECTED [identifier_in_file_name] deaths_999******7.csv:" in run.stdout
    assert "REJECTED [identifier_in_header] gp_appointments_2025-01.csv:" in run.stdout
    assert "deaths_999******7.csv" in status.stdout
    assert "identifier_in_field" in quarantine.stdout


def test_no_planted_number_in_the_warehouse(planted_run):
    with duckdb.connect(str(planted_run["warehouse"]), read_only=True) as conn:
        tables = conn.sql(
            "select table_schema, table_name from information_schema.tables "
            "where table_type = 'BASE TABLE'"
        ).fetchall()
        dump = "\n".join(
            repr(row) for s, t in tables for row in conn.sql(f'select * from {s}."{t}"').fetchall()
        )
    assert planted_in(dump) == []
    assert "deaths_999******7.csv" in dump  # the rejection is recorded, masked


def test_no_planted_number_in_airflows_metadata_database(planted_run):
    [database] = (planted_run["root"] / "airflow").glob("*.db")
    with closing(sqlite3.connect(database)) as conn:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        assert conn.execute("select count(*) from xcom").fetchone()[0] > 0
        assert conn.execute("select count(*) from rendered_task_instance_fields").fetchone()[0]
        dump = "\n".join(
            repr(row) for t in tables for row in conn.execute(f'select * from "{t}"').fetchall()
        )
    assert planted_in(dump) == []
    raw = database.read_bytes()  # free pages too: nothing written and then deleted
    assert [p for p in (*PLANTED, *PLANTED.values()) if p.encode() in raw] == []


def test_no_planted_number_in_any_log_or_other_file_the_run_wrote(planted_run):
    root = planted_run["root"]
    files = [p for p in root.rglob("*") if p.is_file() and "landing" not in p.parts]
    assert [p for p in files if p.suffix == ".log"]
    for path in files:
        if path.name.endswith(DATABASE_FILES):  # read as databases by the tests above
            continue
        assert planted_in(path.read_bytes().decode("utf-8", "replace")) == [], path


def test_no_planted_number_in_what_hei_prints(planted_run):
    for output in planted_run["outputs"]:
        assert planted_in(output.stdout + output.stderr) == []
