"""What ``hei run`` leaves out when a DAG has nothing to do: an ingest DAG whose source has no
new or changed file, and ``assess_ethnicity`` when ethnicity was linked after the last load;
and what the first task of a run says of the warehouse (``hei run`` now stops before any DAG
when the warehouse cannot be reached, so the e2e failed run no longer writes task logs)."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from tests.support import postgres
from tests.support.deliveries import csv_bytes, deliver, load, rows_of
from tests.support.pipeline import settings_for
from transforms import tasks as pipeline
from transforms.config.settings import Settings
from transforms.config.sources import SOURCES
from transforms.ingest import audit
from transforms.quality import completeness
from transforms.warehouse import engine as warehouse

REGISTER = "gp_register_2025-01.csv"


def to_load(settings: Settings) -> list[str]:
    with warehouse.make_engine(settings.warehouse_url).connect() as conn:
        return audit.sources_to_load(conn, settings.landing_dir, SOURCES, "2025-01", 0)


def linked(settings: Settings) -> bool:
    with warehouse.make_engine(settings.warehouse_url).connect() as conn:
        return completeness.person_ethnicity_current(conn)


def test_only_sources_with_a_new_or_changed_file_are_to_load(settings):
    pipeline.prepare_warehouse(settings)
    assert to_load(settings) == []
    deliver(settings, "gp_register", REGISTER, csv_bytes(rows_of("gp_register", 3)))
    deliver(settings, "deaths", "deaths_2025-01.csv", csv_bytes(rows_of("deaths", 3)))
    deliver(settings, "deaths", "deaths_2025-02.csv", csv_bytes(rows_of("deaths", 3)))
    assert to_load(settings) == ["gp_register", "deaths"]  # February is after --until
    load(settings, "gp_register")
    assert to_load(settings) == ["deaths"]
    resent = csv_bytes(rows_of("gp_register", 4))
    deliver(settings, "gp_register", REGISTER, resent, age_seconds=60)
    assert to_load(settings) == ["gp_register", "deaths"]


def test_ethnicity_counts_as_linked_only_after_the_last_load(settings):
    pipeline.prepare_warehouse(settings)
    assert linked(settings)  # nothing loaded: nothing to link
    deliver(settings, "gp_register", REGISTER, csv_bytes(rows_of("gp_register", 3)))
    load(settings, "gp_register")
    assert not linked(settings)
    pipeline.link_ethnicity(settings)
    assert linked(settings)
    resent = csv_bytes(rows_of("gp_register", 4))
    deliver(settings, "gp_register", REGISTER, resent, age_seconds=60)
    load(settings, "gp_register")
    assert not linked(settings)


@pytest.mark.postgres
def test_prepare_warehouse_names_the_warehouse_in_the_task_log_without_its_password(
    postgres_url, tmp_path, caplog
):
    postgres.reset(postgres_url)
    url = sa.make_url(postgres_url).set(password="hunter2-not-real")  # trust: accepted
    settings = settings_for(tmp_path, url.render_as_string(hide_password=False))
    with caplog.at_level(logging.INFO, logger="transforms.tasks"):
        pipeline.prepare_warehouse(settings)
    assert f"warehouse {url.render_as_string(hide_password=True)}" in caplog.text
    assert "hunter2-not-real" not in caplog.text
