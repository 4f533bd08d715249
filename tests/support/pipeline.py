"""A small synthetic Wigan loaded through the real ingest steps, without Airflow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from synth import generate
from transforms import tasks as pipeline
from transforms.config.settings import Settings
from transforms.config.sources import SOURCES
from transforms.indicators import store as indicator_store
from transforms.warehouse import bulk, ddl, tables
from transforms.warehouse import engine as warehouse

START, END = "2024-09", "2025-10"  # 14 months: rolling years, a COVID campaign, a flu season
INPUT_TABLES = [
    *tables.STAGING.values(),
    tables.core_person_ethnicity,
    tables.audit_file_loads,
    tables.quality_ethnicity_completeness,
]
"""Everything the indicator compute reads."""


def settings_for(root: Path, url: str, **more: object) -> Settings:
    return Settings(
        var_dir=root / "var",
        landing_dir=root / "landing",
        warehouse_url=url,
        pseudonym_key="test-key-not-secret",
        settle_seconds=0,  # the files are generated moments before they are loaded
        **more,
    )


def load_everything(settings: Settings) -> None:
    """Every delivery of the landing zone, then best-known ethnicity."""
    pipeline.prepare_warehouse(settings)
    for source in SOURCES:
        for group in pipeline.find_deliveries(settings, source, None):
            pipeline.load_month(settings, group, "test-load")
    pipeline.link_ethnicity(settings)


def run_every_task(settings: Settings, run_id: str) -> None:
    """The DAGs' tasks that touch the warehouse, in the order the chain runs them, without
    Airflow: load every delivery, link ethnicity, compute, publish and report."""
    load_everything(settings)
    pipeline.compute_indicators(settings, run_id)
    pipeline.publish_release(settings, run_id)
    pipeline.build_report(settings)


def small_wigan(root: Path, name: str = "loaded.duckdb") -> str:
    """A DuckDB warehouse under ``root`` with 14 months of every source loaded (scale 0.03);
    the landing zone stays in ``root / "landing"``. Returns its URL."""
    generate(root / "landing", START, END, scale=0.03, seed=7, faults=0.0)
    url = f"duckdb:///{root / name}"
    load_everything(settings_for(root, url))
    warehouse.make_engine(url).dispose()
    return url


def compute(url: str, *, force: bool = False) -> dict[str, int]:
    with warehouse.make_engine(url).begin() as conn:
        return indicator_store.compute(conn, "test", force=force)


def copy_inputs(source_url: str, target_url: str) -> None:
    """Make ``target_url`` hold exactly the compute's inputs of ``source_url``."""
    ddl.apply_ddl(warehouse.make_engine(target_url))
    with (
        warehouse.make_engine(source_url).connect() as src,
        warehouse.make_engine(target_url).begin() as dst,
    ):
        for table in INPUT_TABLES:
            frame = pd.DataFrame(src.execute(sa.select(table)).mappings().all())
            dst.execute(sa.delete(table))
            bulk.append_arrow(dst, table, pa.Table.from_pandas(frame, preserve_index=False))
