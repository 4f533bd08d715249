"""Builds the pipeline's DAGs from the source catalogue.

Only light imports happen at module level; pandas, Arrow, SQLAlchemy and the warehouse are
touched inside tasks, so the DAG processor parses these files in milliseconds and never
opens a connection.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Asset, dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

OWNER = "hei-data-engineering"
WAREHOUSE_POOL = "warehouse"
START = pendulum.datetime(2024, 1, 1, tz="UTC")
MONTHLY = CronDataIntervalTimetable("0 0 1 * *", timezone="UTC")
DEFAULT_ARGS = {"owner": OWNER, "retries": 2, "retry_delay": timedelta(minutes=5)}


def _settings():  # noqa: ANN202 - imported lazily to keep parsing light
    from transforms.settings import Settings

    return Settings()


def _interval_month() -> str:
    """``YYYY-MM`` of the run's data interval: the last month this run may load."""
    return get_current_context()["data_interval_start"].strftime("%Y-%m")


def ingest_dag(source_name: str, title: str, asset_uri: str) -> DAG:
    """The ``ingest_<source>`` DAG: find new files, load each month, announce the Asset."""
    staging_asset = Asset(asset_uri)

    @dag(
        dag_id=f"ingest_{source_name}",
        description=f"Load {title} deliveries into staging",
        doc_md=f"Loads `{source_name}` deliveries from the landing zone (see transforms.ingest).",
        schedule=MONTHLY,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["ingest", source_name],
    )
    def ingest_source() -> None:
        @task(pool=WAREHOUSE_POOL)
        def prepare_warehouse() -> None:
            from transforms.pipeline import prepare_warehouse

            prepare_warehouse(_settings())

        @task(pool=WAREHOUSE_POOL)
        def find_deliveries() -> list[dict]:
            from transforms.pipeline import find_deliveries

            settings = _settings()
            return find_deliveries(settings, source_name, settings.until or _interval_month())

        @task(pool=WAREHOUSE_POOL, map_index_template="{{ task.op_kwargs['group']['period'] }}")
        def load_month(group: dict) -> list[dict]:
            from transforms.pipeline import load_month

            return load_month(_settings(), group, get_current_context()["run_id"])

        @task(outlets=[staging_asset])
        def announce(records: list[list[dict]], *, outlet_events=None) -> list[str]:  # noqa: ANN001
            from transforms.pipeline import changed_periods

            periods = changed_periods(list(records))
            outlet_events[staging_asset].extra = {"periods": periods}
            return periods

        months = find_deliveries()
        prepare_warehouse() >> months
        announce(load_month.expand(group=months))

    return ingest_source()
