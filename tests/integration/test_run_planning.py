"""What ``hei run`` leaves out when a DAG has nothing to do: an ingest DAG whose source has no
new or changed file, ``assess_ethnicity`` when ethnicity was linked after the last load,
``compute_indicators`` when its inputs are those of its last compute, ``publish_partnership``
when the latest release holds what the warehouse does; and what the first task of a run
says of the warehouse (``hei run`` now stops before any DAG when the warehouse cannot be
reached, so the e2e failed run no longer writes task logs)."""

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
from transforms.indicators import store as indicator_store
from transforms.indicators import wres_store
from transforms.ingest import audit
from transforms.publish import release
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


def computed(settings: Settings) -> bool:
    with warehouse.make_engine(settings.warehouse_url).connect() as conn:
        return not (indicator_store.pending(conn) or wres_store.pending(conn))


def published(settings: Settings) -> bool:
    return not release.pending(warehouse.make_engine(settings.warehouse_url), settings.publish_url)


def catalogue_table(settings: Settings) -> list[tuple]:
    with warehouse.make_engine(settings.warehouse_url).connect() as conn:
        return list(conn.execute(sa.text("select * from indicators.catalogue order by 1")))


def computed_at(settings: Settings) -> list[tuple]:
    """When each part of the compute last wrote (``indicators.compute_inputs``)."""
    with warehouse.make_engine(settings.warehouse_url).connect() as conn:
        query = "select part, computed_at from indicators.compute_inputs order by part"
        return list(conn.execute(sa.text(query)))


def reword_an_indicator(monkeypatch: pytest.MonkeyPatch) -> None:
    """The catalogue as it would be with the first indicator's definition reworded."""
    entries = indicator_store.catalogue()
    first = next(iter(entries.values()))
    reworded = entries | {first.id: first.model_copy(update={"definition": "Reworded."})}
    monkeypatch.setattr(indicator_store, "catalogue", lambda: reworded)


def test_the_compute_has_work_only_when_its_inputs_changed(settings, monkeypatch):
    pipeline.prepare_warehouse(settings)
    deliver(settings, "gp_register", REGISTER, csv_bytes(rows_of("gp_register", 3)))
    load(settings, "gp_register")
    pipeline.link_ethnicity(settings)
    assert not computed(settings)
    pipeline.compute_indicators(settings, "test-run")
    assert computed(settings)
    written, stamped = catalogue_table(settings), computed_at(settings)
    assert [part for part, _ in stamped] == ["indicators", "wres"]
    pipeline.compute_indicators(settings, "test-run")  # nothing changed: nothing written
    assert catalogue_table(settings) == written
    assert computed_at(settings) == stamped
    reword_an_indicator(monkeypatch)
    assert not computed(settings)  # prose is written to the catalogue table too
    pipeline.compute_indicators(settings, "test-run")
    assert computed(settings)
    assert "Reworded." in str(catalogue_table(settings))
    resent = csv_bytes(rows_of("gp_register", 4))
    deliver(settings, "gp_register", REGISTER, resent, age_seconds=60)
    load(settings, "gp_register")
    assert not computed(settings)


def test_publishing_has_work_only_when_the_release_differs_from_the_warehouse(
    settings, monkeypatch
):
    pipeline.prepare_warehouse(settings)
    assert published(settings)  # nothing loaded: nothing to publish
    deliver(settings, "gp_register", REGISTER, csv_bytes(rows_of("gp_register", 3)))
    load(settings, "gp_register")
    pipeline.link_ethnicity(settings)
    pipeline.compute_indicators(settings, "test-run")
    assert not published(settings)
    assert pipeline.publish_release(settings, "test-run")["status"] == "published"
    assert published(settings)
    cut_short = settings.var_dir / "publish" / "releases" / "release=2099-01"
    cut_short.mkdir(parents=True)  # a move cut short: a folder without a manifest
    assert not published(settings)
    pipeline.publish_release(settings, "test-run")  # clears it away
    assert published(settings)
    reword_an_indicator(monkeypatch)  # partners see the definitions: a new release is due
    pipeline.compute_indicators(settings, "test-run")
    assert not published(settings)


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
