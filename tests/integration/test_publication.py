"""The partnership release, published from a small synthetic Wigan: files, immutability,
crash safety, byte identity, revisions, readers and real object storage."""

from __future__ import annotations

import csv as csv_module
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from frictionless import Package, Resource, Schema

from tests.support import object_stores
from tests.support.cli import hei, user_env
from tests.support.pipeline import compute, copy_inputs, settings_for
from tests.support.releases import differ_next_time
from transforms import tasks as pipeline
from transforms.core.periods import utcnow
from transforms.publish import contents as release_contents
from transforms.publish import gate, release
from transforms.publish.gate import GateFailure
from transforms.publish.spool import Spool
from transforms.publish.store import ReleaseStore
from transforms.publish.tables import ETHNIC_GROUPS, INDICATOR_VALUES, RELEASE_TABLES
from transforms.warehouse import engine as warehouse

MONTH = "2025-10"
DATA_FILES = [t.file_name for t in RELEASE_TABLES.values()] + [release.CSV_NAME]
DOCUMENTS = list(release.DOCUMENTS)


def publish(url: str, target: str | Path, **options) -> release.Outcome:
    return release.publish(warehouse.make_engine(url), str(target), **options)


def folder(target: Path, release_id: str) -> Path:
    return target / "releases" / f"release={release_id}"


def latest(target: Path) -> dict:
    return json.loads((target / "latest.json").read_text())


def test_release_has_every_file_checksummed_and_latest_points_at_it(url, tmp_path):
    target = tmp_path / "publish"
    outcome = publish(url, target, run_id="run-1")
    assert (outcome.status, outcome.release) == ("published", MONTH)
    written = folder(target, MONTH)
    names = {p.name for p in written.iterdir()}
    assert names == {*DATA_FILES, *DOCUMENTS, "manifest.json", "SHA256SUMS"}
    pointer = latest(target)
    assert pointer["release"] == MONTH and pointer["path"] == f"releases/release={MONTH}"
    manifest = json.loads((written / "manifest.json").read_text())
    assert manifest["covers"] == {"first_month": "2024-09", "last_month": MONTH}
    assert manifest["run_id"] == "run-1" and manifest["supersedes"] is None
    assert {f["path"] for f in manifest["files"]} == {*DATA_FILES, *DOCUMENTS}
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=written, capture_output=True)
    assert check.returncode == 0, check.stdout
    assert not (target / "staging").exists() or not any((target / "staging").iterdir())


def test_data_files_reach_the_store_as_streams_never_held_whole(url, tmp_path, monkeypatch):
    """The CSV and Parquet files grow with every month of history, so each is written in
    parts as it is produced and hashed on the way; the manifest still describes the bytes."""
    writes: dict[str, list[int]] = {}
    opened = ReleaseStore.open_to_write

    def recording(self, folder, name):
        handle = opened(self, folder, name)
        write = handle.write
        handle.write = lambda data: writes.setdefault(name, []).append(len(data)) or write(data)
        return handle

    monkeypatch.setattr(ReleaseStore, "open_to_write", recording)
    written = Path(publish(url, tmp_path / "publish").path)
    manifest = json.loads((written / "manifest.json").read_text())
    for entry in manifest["files"]:
        data = (written / entry["path"]).read_bytes()
        assert (entry["bytes"], entry["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    csv_writes = writes[release.CSV_NAME]
    assert len(csv_writes) > 1 and max(csv_writes) < manifest_entry(manifest, "csv")["bytes"]
    assert len(writes["indicator_values.parquet"]) > 1


def test_the_release_is_read_a_part_at_a_time_and_its_files_do_not_depend_on_the_parts(
    url, tmp_path, monkeypatch
):
    """The release task's memory must not grow with history: the tables that hold every
    period reach the spool and leave it ``ROWS_AT_ONCE`` rows at a time, and how many rows a
    part holds changes no byte of a file."""
    whole = Path(publish(url, tmp_path / "whole").path)
    parts: dict[str, list[int]] = {}
    batches = Spool.batches

    def recorded(self, spec):
        for batch in batches(self, spec):
            parts.setdefault(spec.name, []).append(batch.num_rows)
            yield batch

    monkeypatch.setattr(release_contents, "ROWS_AT_ONCE", 7)
    monkeypatch.setattr(Spool, "batches", recorded)
    small = publish(url, tmp_path / "small")
    assert small.status == "published"
    for table in ("indicator_values", "ethnicity_completeness"):
        assert max(parts[table]) <= 7 and len(parts[table]) > 10, table
    assert max(parts.get("wres", [0])) <= 7  # the small Wigan's workforce may hold none
    for name in DATA_FILES:
        assert (Path(small.path) / name).read_bytes() == (whole / name).read_bytes(), name
    manifests = [json.loads((p / "manifest.json").read_text()) for p in (whole, Path(small.path))]
    assert manifests[0]["content_sha256"] == manifests[1]["content_sha256"]
    for spec in RELEASE_TABLES.values():  # in key order as Arrow sorts, nulls last
        table = pq.read_table(whole / spec.file_name)
        assert table.equals(table.sort_by([(k, "ascending") for k in spec.primary_key]))


def test_a_publish_leaves_no_spool_behind_whatever_its_outcome(url, tmp_path, monkeypatch):
    spools = tmp_path / "tmp"
    spools.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spools))
    target = tmp_path / "publish"
    assert publish(url, target).status == "published"
    assert publish(url, target).status == "unchanged"
    assert not release.pending(warehouse.make_engine(url), str(target))
    monkeypatch.setattr(gate, "check_release", lambda *_: ["a finding"])
    differ_next_time(monkeypatch)
    with pytest.raises(GateFailure):
        publish(url, target)
    assert not list(spools.iterdir())  # neither the spool nor the gate's copies


def test_a_table_no_longer_released_is_named_in_the_revision(url, tmp_path):
    target = tmp_path / "publish"
    publish(url, target)
    written = folder(target, MONTH)
    manifest = json.loads((written / "manifest.json").read_text())
    retired = {"path": "retired.parquet", "table": "retired", "format": "parquet"}
    manifest["files"].append(retired | {"content_sha256": "0" * 64})
    (written / "manifest.json").write_text(json.dumps(manifest))

    revision = publish(url, target)
    reason = json.loads((folder(target, revision.release) / "manifest.json").read_text())
    assert revision.release == f"{MONTH}.1"
    assert reason["supersedes_reason"].endswith("changed: retired.parquet")


def test_an_older_release_that_cannot_be_read_back_fails_the_publish_naming_its_file(url, tmp_path):
    target = tmp_path / "publish"
    publish(url, target)
    written = folder(target, MONTH)
    manifest = json.loads((written / "manifest.json").read_text())
    del manifest["content_scheme"]  # published before: compared by rereading its files
    (written / "manifest.json").write_text(json.dumps(manifest))
    (written / "wres.parquet").write_bytes(b"not a parquet file")
    pointer = latest(target)

    with pytest.raises(release.PublishError, match=f"release {MONTH}'s wres.parquet"):
        publish(url, target)
    assert latest(target) == pointer and not folder(target, f"{MONTH}.1").exists()


@pytest.mark.parametrize(
    "warehouse_url",
    ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)
def test_release_rows_are_read_in_the_byte_order_of_their_key_whatever_the_collation(
    warehouse_url,
):
    """Arrow orders strings by their bytes; a PostgreSQL database in a locale's collation
    (here en-US, per column) orders them otherwise, which ``COLLATE "C"`` overrides."""
    codes = ["é", "a", "Z", "B", "ab", "A"]
    engine = warehouse.make_engine(warehouse_url)
    postgres = engine.dialect.name == "postgresql"
    locale = ' collate "en-US-x-icu"' if postgres else " collate nocase"
    with engine.begin() as conn:
        conn.execute(sa.text(f"create temporary table codes (code varchar{locale})"))
        conn.execute(sa.text("insert into codes values (:c)"), [{"c": c} for c in codes])
        code = sa.table("codes", sa.column("code")).c.code
        ordered = release_contents.in_byte_order(ETHNIC_GROUPS, {"group_code": code})
        found = conn.execute(sa.select(code).order_by(*ordered)).scalars().all()
        as_is = conn.execute(sa.select(code).order_by(code)).scalars().all()
    assert found == sorted(codes, key=str.encode)
    assert as_is != found  # the test can tell: the column's own order is not the bytes'


def test_a_release_published_before_content_scheme_2_is_compared_by_its_files(
    url, tmp_path, monkeypatch
):
    """Releases published before the content hashes were made a part at a time carry hashes
    of another kind: their tables are hashed again from their files, so an upgrade publishes
    no revision of unchanged data, and a revision names only the tables that changed."""
    target = tmp_path / "publish"
    publish(url, target)
    written = folder(target, MONTH)
    manifest = json.loads((written / "manifest.json").read_text())
    del manifest["content_scheme"]
    for entry in manifest["files"]:
        if entry["format"] == "parquet":
            entry["content_sha256"] = hashlib.sha256(entry["path"].encode()).hexdigest()
    (written / "manifest.json").write_text(json.dumps(manifest))

    assert publish(url, target).status == "unchanged"
    catalogue = next(e for e in manifest["files"] if e["path"] == "indicators.parquet")
    catalogue["schema_fingerprint"] = "an older declaration of its columns"
    (written / "manifest.json").write_text(json.dumps(manifest))
    revision = publish(url, target)
    reason = json.loads((folder(target, revision.release) / "manifest.json").read_text())
    assert reason["supersedes_reason"].endswith("changed: indicators.parquet")


def manifest_entry(manifest: dict, format_: str) -> dict:
    return next(f for f in manifest["files"] if f["format"] == format_)


def test_publishing_again_with_nothing_changed_creates_nothing(url, tmp_path):
    target = tmp_path / "publish"
    publish(url, target)
    before = sorted(p for p in target.rglob("*"))
    pointer = latest(target)
    again = publish(url, target, run_id="run-2")
    assert (again.status, again.release) == ("unchanged", MONTH)
    assert sorted(p for p in target.rglob("*")) == before
    assert latest(target) == pointer


def test_same_content_gives_byte_identical_data_files_whatever_time_run_or_target(url, tmp_path):
    first = publish(url, tmp_path / "one", run_id="a")
    later = utcnow().replace(year=2030)
    second = publish(url, tmp_path / "elsewhere" / "two", run_id="b", now=later)
    for name in DATA_FILES:
        one = (Path(first.path) / name).read_bytes()
        assert one == (Path(second.path) / name).read_bytes(), name
    manifests = [json.loads((Path(o.path) / "manifest.json").read_text()) for o in (first, second)]
    assert manifests[0]["created_at"] != manifests[1]["created_at"]


@pytest.mark.postgres
@pytest.mark.parametrize("warehouse_url", ["postgres"], indirect=True)
def test_duckdb_and_postgres_publish_byte_identical_data_files(url, warehouse_url, tmp_path):
    copy_inputs(url, warehouse_url)
    compute(warehouse_url)
    ours = Path(publish(url, tmp_path / "duckdb").path)
    theirs = Path(publish(warehouse_url, tmp_path / "postgres").path)
    for name in DATA_FILES:
        assert (ours / name).read_bytes() == (theirs / name).read_bytes(), name


def test_a_resubmission_publishes_a_revision_superseding_the_month(url, computed, tmp_path):
    target = tmp_path / "publish"
    publish(url, target)
    original = {p.name: p.read_bytes() for p in folder(target, MONTH).iterdir()}
    resubmit_half_a_month(url, computed, tmp_path, "gp_appointments", "2025-06")
    compute(url)

    revision = publish(url, target)

    assert (revision.release, revision.supersedes) == (f"{MONTH}.1", MONTH)
    manifest = json.loads((folder(target, f"{MONTH}.1") / "manifest.json").read_text())
    assert manifest["supersedes"] == MONTH
    assert "indicator_values.parquet" in manifest["supersedes_reason"]
    assert latest(target)["release"] == f"{MONTH}.1"
    assert {p.name: p.read_bytes() for p in folder(target, MONTH).iterdir()} == original


def resubmit_half_a_month(url: str, computed: Path, root: Path, source: str, month: str) -> None:
    """Replace ``source``'s ``month`` with a delivery of half its rows, and load it."""
    landing = root / "landing"
    shutil.copytree(computed / "landing", landing)
    (delivered,) = (landing / source).glob(f"{source}_{month}.*")
    truth = json.loads((landing / "truth.json").read_text())
    entry = truth["files"][f"{source}/{delivered.name}"]
    if entry["format"] == "parquet":
        rows = pd.read_parquet(delivered)
    else:
        rows = pd.read_csv(delivered, dtype=str, encoding=entry["encoding"], keep_default_na=False)
    delivered.unlink()
    rows.head(len(rows) // 2).to_csv(landing / source / f"{source}_{month}.csv", index=False)
    settings = settings_for(root, url)
    for group in pipeline.find_deliveries(settings, source, None):
        pipeline.load_month(settings, group, "resubmission")
    pipeline.link_ethnicity(settings)


def test_hei_publish_and_hei_releases_say_what_was_done(url, tmp_path):
    warehouse.make_engine(url).dispose()  # hei opens the DuckDB file in its own process
    env = user_env(tmp_path)
    target = str(tmp_path / "publish")
    first = hei("publish", "--warehouse", url, "--publish", target, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"published release {MONTH}: ")
    again = hei("publish", "--warehouse", url, "--publish", target, env=env)
    assert again.stdout.strip() == f"nothing changed since release {MONTH}: nothing published"
    listed = hei("releases", "--publish", target, env=env)
    (row,) = listed.stdout.splitlines()[2:]
    assert row.split()[:3] == [MONTH, "latest", f"2024-09..{MONTH}"]
    manifest = json.loads((folder(Path(target), MONTH) / "manifest.json").read_text())
    assert f"indicator_values {manifest['files'][0]['rows']:,}" in row


def test_an_unknown_storage_scheme_is_refused_saying_what_to_give(url, tmp_path):
    env = user_env(tmp_path)
    for command in (["publish", "--warehouse", url], ["releases"]):
        refused = hei(*command, "--publish", "nosuch://bucket/hwp", env=env)
        assert refused.returncode == 1, refused.stderr
        assert "cannot open the publish target 'nosuch://bucket/hwp'" in refused.stderr
        assert "az://, abfs:// or s3://" in refused.stderr and "Traceback" not in refused.stderr


# --- failures leave the previous release in place ----------------------------------------


def previous_release(url: str, target: Path) -> dict:
    """Publish once, then make the next publish differ (its CSV), as a changed month would."""
    publish(url, target)
    return latest(target)


def assert_still_on(target: Path, pointer: dict) -> None:
    assert latest(target) == pointer
    assert [e.release for e in ReleaseStore(str(target)).entries()] == [pointer["release"]]
    staging = target / "staging"
    assert not staging.exists() or not any(staging.iterdir())


def test_a_write_error_half_way_publishes_nothing(url, tmp_path, monkeypatch):
    target = tmp_path / "publish"
    pointer = previous_release(url, target)
    differ_next_time(monkeypatch)
    writes = []
    original = ReleaseStore.write

    def failing(self, folder, name, data):
        writes.append(name)
        if len(writes) == 3:
            raise OSError(28, "No space left on device")
        original(self, folder, name, data)

    monkeypatch.setattr(ReleaseStore, "write", failing)
    with pytest.raises(OSError, match="No space left"):
        publish(url, target)
    assert_still_on(target, pointer)


def test_a_gate_failure_publishes_nothing_and_names_table_row_and_rule(url, tmp_path, monkeypatch):
    target = tmp_path / "publish"
    pointer = previous_release(url, target)
    original = release_contents.read

    def leaks_a_small_count(conn):
        found = original(conn)
        values = found.spool.table(INDICATOR_VALUES)
        row = pc.index(pc.is_valid(values["numerator"]), True).as_py()
        numerators = values["numerator"].to_pylist()
        numerators[row] = 3
        column = values.schema.get_field_index("numerator")
        leaking = values.set_column(
            column, values.schema.field(column), pa.array(numerators, pa.int64())
        )
        found.spool.put(INDICATOR_VALUES, leaking.to_batches())
        return found

    monkeypatch.setattr(release_contents, "read", leaks_a_small_count)
    with pytest.raises(GateFailure) as failure:
        publish(url, target)
    message = str(failure.value)
    assert "indicator_values" in message and "row" in message
    assert any(f.table == "indicator_values" and f.row is not None for f in failure.value.findings)
    assert_still_on(target, pointer)


CRASH_BEFORE_POINTER = """
import os, sys
from tests.support.releases import differ_next_time
from transforms.publish import release
from transforms.publish.store import ReleaseStore
from transforms.warehouse.engine import make_engine
import pytest

with pytest.MonkeyPatch.context() as patch:
    differ_next_time(patch)
    patch.setattr(ReleaseStore, "point_latest", lambda self, pointer: os._exit(9))
    release.publish(make_engine(sys.argv[1]), sys.argv[2])
"""


def test_a_crash_before_the_pointer_moves_leaves_latest_and_the_next_run_finishes(
    url, tmp_path, monkeypatch
):
    target = tmp_path / "publish"
    pointer = previous_release(url, target)
    warehouse.make_engine(url).dispose()  # one process at a time opens a DuckDB file
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH_BEFORE_POINTER, url, str(target)], capture_output=True
    )
    assert crashed.returncode == 9, crashed.stderr
    assert latest(target) == pointer
    unpointed = ReleaseStore(str(target)).entries()[-1]
    assert unpointed.release == f"{MONTH}.1" and unpointed.status == "complete"

    differ_next_time(monkeypatch)
    finished = publish(url, target)

    assert (finished.status, finished.release) == ("published", f"{MONTH}.1")
    assert latest(target)["release"] == f"{MONTH}.1"


def test_a_release_folder_without_its_manifest_is_incomplete_and_removed(url, tmp_path):
    target = tmp_path / "publish"
    pointer = previous_release(url, target)
    cut_short = folder(target, f"{MONTH}.1")
    cut_short.mkdir()
    (cut_short / "indicator_values.parquet").write_bytes(b"PAR1 half")
    store = ReleaseStore(str(target))
    assert {e.release: e.status for e in store.entries()} == {
        MONTH: "complete",
        f"{MONTH}.1": "incomplete",
    }
    listed = hei("releases", "--publish", str(target), env=user_env(tmp_path))
    assert [line.split()[0] for line in listed.stdout.splitlines()[2:]] == [MONTH]
    assert (
        f"ignored: 1 incomplete release folder(s) without a manifest ({MONTH}.1)" in listed.stderr
    )
    outcome = publish(url, target)
    assert outcome.removed_incomplete == (f"{MONTH}.1",)
    assert not cut_short.exists()
    assert latest(target) == pointer


OUT_OF_MEMORY = """
import sys
from hei import cli
from transforms.publish import gate

gate.GATE_DUCKDB["memory_limit"] = "1MB"
sys.exit(cli.main(["publish", "--warehouse", sys.argv[1], "--publish", sys.argv[2]]))
"""


def test_hei_publish_says_the_gate_ran_out_of_memory_and_publishes_nothing(url, tmp_path):
    warehouse.make_engine(url).dispose()  # one process at a time opens a DuckDB file
    target = tmp_path / "publish"
    run = subprocess.run(
        [sys.executable, "-c", OUT_OF_MEMORY, url, str(target)],
        capture_output=True,
        text=True,
        env=user_env(tmp_path),
    )
    assert run.returncode == 1, run.stderr
    assert "hei publish: nothing published: the release gate ran out of its DuckDB's 1MB" in (
        run.stderr
    )
    assert "raise memory_limit in GATE_DUCKDB" in run.stderr and "Traceback" not in run.stderr
    assert not (target / "latest.json").exists() and not list(target.glob("releases/*"))


def test_keep_removes_the_oldest_complete_releases_but_never_the_latest(url, tmp_path, monkeypatch):
    target = tmp_path / "publish"
    original = release_contents.read
    for fewer in range(3):  # three contents: the month's release and two revisions

        def read(conn, fewer=fewer):
            found = original(conn)
            groups = found.spool.table(ETHNIC_GROUPS)
            found.spool.put(ETHNIC_GROUPS, groups.slice(0, groups.num_rows - fewer).to_batches())
            return found

        monkeypatch.setattr(release_contents, "read", read)
        publish(url, target, keep=2)
    kept = [e.release for e in ReleaseStore(str(target)).entries()]
    assert kept == [f"{MONTH}.1", f"{MONTH}.2"] and latest(target)["release"] == f"{MONTH}.2"


# --- readers -------------------------------------------------------------------------------


def test_every_table_reads_the_same_in_pyarrow_pandas_polars_and_duckdb(url, tmp_path):
    written = Path(publish(url, tmp_path / "publish").path)
    for spec in RELEASE_TABLES.values():
        path = str(written / spec.file_name)
        expected = pq.read_table(path)
        assert expected.schema.names == spec.column_names
        assert [f.type for f in expected.schema] == [c.arrow_type for c in spec.columns]
        from_pandas = pa.Table.from_pandas(pd.read_parquet(path), preserve_index=False)
        from_polars = pl.read_parquet(path).to_arrow()
        from_duckdb = (
            duckdb.connect()
            .sql(f"select * from read_parquet('{path}', hive_partitioning = false)")
            .to_arrow_table()
        )
        for other in (from_pandas, from_polars, from_duckdb):
            assert other.cast(expected.schema.remove_metadata()).equals(
                expected.cast(expected.schema.remove_metadata())
            ), spec.name
        assert list(pl.read_parquet_schema(path)) == spec.column_names, spec.name


def test_duckdb_reads_every_release_at_once_with_its_release_id(url, computed, tmp_path):
    target = tmp_path / "publish"
    publish(url, target)
    resubmit_half_a_month(url, computed, tmp_path, "gp_appointments", "2025-06")
    compute(url)
    publish(url, target)
    glob = f"{target}/releases/*/indicator_values.parquet"
    counts = duckdb.connect().sql(
        f"select release, count(*) from read_parquet('{glob}', hive_partitioning=true) "
        "group by release order by release"
    )
    assert [r[0] for r in counts.fetchall()] == [MONTH, f"{MONTH}.1"]
    metadata = pq.read_schema(folder(target, f"{MONTH}.1") / "indicators.parquet").metadata
    assert metadata[b"hei:release_id"] == f"{MONTH}.1".encode()


def test_the_data_package_is_valid_frictionless_v2(url, tmp_path):
    written = Path(publish(url, tmp_path / "publish").path)
    descriptor = json.loads((written / "datapackage.json").read_text())
    assert [e.message for e in Package.metadata_validate(descriptor)] == []
    assert {r["path"] for r in descriptor["resources"]} == set(DATA_FILES)
    csv = next(r for r in descriptor["resources"] if r["path"] == release.CSV_NAME)
    rows = list(csv_module.reader(io.StringIO((written / release.CSV_NAME).read_text())))
    report = Resource(data=rows, schema=Schema.from_descriptor(csv["schema"])).validate()
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])[:5]


# --- object storage: the same publish against real servers --------------------------------


def round_trip(url: str, target: str) -> None:
    outcome = publish(url, target, run_id="remote")
    assert outcome.status == "published"
    store = ReleaseStore(target)
    pointer = store.latest()
    assert pointer["release"] == MONTH
    manifest = store.read_json(f"{store.release_path(MONTH)}/manifest.json")
    assert store.verify(store.release_path(MONTH), manifest) == []
    with store.fs.open(f"{store.release_path(MONTH)}/indicator_values.parquet", "rb") as handle:
        assert pq.read_table(handle).num_rows == manifest["files"][0]["rows"]
    assert publish(url, target).status == "unchanged"
    secrets = [v for k, v in os.environ.items() if k.startswith(("AZURE_", "AWS_SECRET"))]
    text = json.dumps(manifest)
    assert not any(secret and secret in text for secret in secrets)


def test_publishes_to_azure_blob_storage_on_azurite(url, monkeypatch):
    with object_stores.azurite() as connection_string:
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection_string)
        store = ReleaseStore("az://partnership")
        store.fs.mkdir("partnership")
        round_trip(url, "az://partnership/hwp")


def test_publishes_to_s3_on_a_local_s3_server(url, monkeypatch):
    with object_stores.moto_s3() as endpoint:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing-secret",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        store = ReleaseStore("s3://partnership")
        store.fs.mkdir("partnership")
        round_trip(url, "s3://partnership/hwp")
