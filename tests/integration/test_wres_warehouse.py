"""WRES in the warehouse: a financial year of synthetic staff and applicants loaded through
the real ingest, computed into ``indicators.wres`` and shown to partners by ``mart.wres``."""

from __future__ import annotations

import json
import math
import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from synth import generate
from tests.support.cli import hei, user_env
from tests.support.pipeline import settings_for
from transforms import tasks as pipeline
from transforms.indicators import wres_store
from transforms.warehouse import engine as warehouse
from transforms.warehouse.views import mart_wres

YEAR_END = date(2025, 3, 31)
WORKFORCE_SOURCES = ("workforce", "recruitment")
KEYS = ["indicator_id", "organisation_code", "measure", "group_label", "band", "staff_group"]


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two March snapshots and the twelve months of shortlisting between them."""
    root = tmp_path_factory.mktemp("wres")
    generate(root / "landing", "2024-03", "2025-03", scale=0.3, seed=11, faults=0.0)
    return root / "landing"


def load_workforce(root: Path, url: str, landing: Path) -> None:
    shutil.copytree(landing, root / "landing", dirs_exist_ok=True)
    settings = settings_for(root, url)
    pipeline.prepare_warehouse(settings)
    for source in WORKFORCE_SOURCES:
        for group in pipeline.find_deliveries(settings, source, None):
            pipeline.load_month(settings, group, "test-load")
    with warehouse.make_engine(url).begin() as conn:
        assert wres_store.compute(conn) == [YEAR_END]


def shown(url: str) -> pd.DataFrame:
    with warehouse.make_engine(url).connect() as conn:
        frame = warehouse.fetch_frame(conn, sa.select(mart_wres))
    return frame.sort_values(KEYS, ignore_index=True, na_position="first")


def test_every_published_count_follows_the_rules(landing, tmp_path):
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    load_workforce(tmp_path, url, landing)
    rows = shown(url)
    assert set(rows["indicator_id"]) == {"WRES1", "WRES2", "WRES3", "WRES4", "WRES9"}
    assert set(rows["period_end"]) == {YEAR_END}
    for column in ("numerator", "denominator"):
        counts = rows[column].dropna().astype(int)
        assert not counts.between(1, 7).any(), column
        assert (counts % 5 == 0).all(), column
    withheld = rows["numerator"].isna() & rows["measure"].eq("percentage")
    assert rows.loc[withheld, "value"].isna().all()


def test_the_relative_likelihoods_recover_the_generators_truth(landing, tmp_path):
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    load_workforce(tmp_path, url, landing)
    truth = json.loads((landing / "truth.json").read_text())["workforce"]
    rows = shown(url)
    partnership = rows[rows["organisation_code"].eq("ALL") & rows["group_label"].isna()]
    expected = {
        "WRES2": truth["appointment_relative_likelihood_white_vs_bme"],
        "WRES4": 1 / truth["training_relative_likelihood"],
    }
    for indicator, ratio in expected.items():
        (row,) = partnership[partnership["indicator_id"] == indicator].to_dict("records")
        assert row["lower_95"] <= ratio <= row["upper_95"], (indicator, ratio, row)
        assert math.isclose(row["value"], ratio, rel_tol=0.35), (indicator, ratio, row)


@pytest.mark.postgres
@pytest.mark.parametrize("warehouse_url", ["postgres"], indirect=True)
def test_duckdb_and_postgres_give_identical_wres(landing, warehouse_url, tmp_path):
    duckdb_url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    load_workforce(tmp_path / "duckdb", duckdb_url, landing)
    load_workforce(tmp_path / "postgres", warehouse_url, landing)
    ours, theirs = shown(duckdb_url), shown(warehouse_url)
    assert len(ours) > 100
    pd.testing.assert_frame_equal(ours, theirs, check_dtype=False)


def test_hei_wres_writes_each_organisations_return(landing, tmp_path):
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    load_workforce(tmp_path, url, landing)
    warehouse.make_engine(url).dispose()  # hei opens the DuckDB file in its own process
    env = user_env(tmp_path)
    out = tmp_path / "returns"
    done = hei("wres", "--year", "2025", "--warehouse", url, "--out", str(out), env=env)
    assert done.returncode == 0, done.stderr
    files = sorted(p.name for p in out.iterdir())
    assert "wres_return_ALL_2025.csv" in files and len(files) >= 2
    first = pd.read_csv(out / "wres_return_ALL_2025.csv")
    assert list(first.columns[:4]) == ["Indicator", "Measure", "Counted among", "Group"]
    assert {"WRES1", "WRES2", "WRES3", "WRES4", "WRES9"} == set(first["Indicator"])
    none = hei("wres", "--year", "2031", "--warehouse", url, "--out", str(out), env=env)
    assert none.returncode == 1 and "no WRES figures" in none.stderr


def computed_at(url: str) -> list:
    with warehouse.make_engine(url).connect() as conn:
        return sorted(
            conn.execute(sa.text("select distinct computed_at from indicators.wres")).scalars()
        )


def test_wres_is_recomputed_only_when_its_loads_or_its_method_change(
    landing, tmp_path, monkeypatch
):
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    load_workforce(tmp_path, url, landing)
    first, before = computed_at(url), shown(url)
    engine = warehouse.make_engine(url)
    with engine.begin() as conn:
        assert wres_store.compute(conn) == []  # nothing changed: nothing rewritten
    assert computed_at(url) == first
    with engine.begin() as conn:
        assert wres_store.compute(conn, force=True) == [YEAR_END]
    assert computed_at(url) != first
    pd.testing.assert_frame_equal(shown(url), before)
    rewritten = computed_at(url)
    with engine.begin() as conn:  # a change to the method's code (here: one more module)
        monkeypatch.setattr(wres_store, "METHOD_MODULES", (*wres_store.METHOD_MODULES, json))
        assert wres_store.compute(conn) == [YEAR_END]
    assert computed_at(url) != rewritten
    with engine.begin() as conn:  # a month loaded again, as a resubmission would
        conn.execute(
            sa.text(
                "update audit.file_loads set load_id = load_id || 'again' "
                "where source = 'workforce' and period = '2025-03'"
            )
        )
        assert wres_store.compute(conn) == [YEAR_END]
