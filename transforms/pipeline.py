"""The steps of an ingest run, as plain functions of the settings.

Airflow tasks call these with values that travel through XCom as plain dicts; tests and
benchmarks call them directly. Nothing is passed between steps but those dicts, so each
step can run in any worker.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict

import sqlalchemy as sa

from transforms import audit, completeness, indicator_store, landing, validation, warehouse
from transforms.alerts import send_alert
from transforms.ingest import LoadContext, ingest
from transforms.landing import Delivery
from transforms.reading import ReadLimits
from transforms.settings import Settings

log = logging.getLogger(__name__)


def prepare_warehouse(settings: Settings) -> None:
    """Create missing schemas and tables, and say which pseudonym key is in use."""
    warehouse.apply_ddl(warehouse.make_engine(settings.warehouse_url))
    if settings.uses_development_key:
        log.warning(
            "Using a generated DEVELOPMENT pseudonym key (%s, fingerprint %s). Set "
            "HEI_PSEUDONYM_KEY before loading real data.",
            settings.var_dir / "pseudonym.key",
            settings.key_fingerprint(),
        )


def find_deliveries(settings: Settings, source: str, until: str | None) -> list[dict]:
    """New or changed files for the source, grouped by month in delivery order.

    Grouping by month keeps a month's files in one task, so a resubmission is applied after
    the file it replaces even when months load in parallel.
    """
    engine = warehouse.make_engine(settings.warehouse_url)
    found = landing.scan(settings.landing_dir, source, until, settings.settle_seconds)
    planned = audit.plan(engine, found)
    groups: dict[str, list[dict]] = defaultdict(list)
    for item in planned:
        groups[item.delivery.period or ""].append(item.delivery.to_dict())
    log.info("%s: %d file(s) to process in %d month(s)", source, len(planned), len(groups))
    return [{"period": period, "deliveries": found} for period, found in sorted(groups.items())]


def load_month(settings: Settings, group: dict, run_id: str | None) -> list[dict]:
    """Apply a month's planned deliveries in order.

    Returns their audit records (with any data-quality warnings) for the run's summary.
    """
    ctx = LoadContext(
        warehouse.make_engine(settings.warehouse_url),
        settings.pseudonym_secret,
        run_id,
        validation.gx_context(settings.var_dir),
        ReadLimits(settings.max_decompressed_bytes, settings.max_compression_ratio),
    )
    records = []
    for delivery in group["deliveries"]:
        # Planned here, not when found: an earlier file of the month may have just loaded,
        # and a retried task must not load again what its first try already loaded.
        now = audit.plan(ctx.engine, [Delivery(**delivery)])
        if not now:
            continue
        record = ingest(now[0], ctx)
        records.append(
            {k: v for k, v in asdict(record).items() if k not in ("started_at", "finished_at")}
        )
    return records


def render_data_docs(settings: Settings, records: list[list[dict]]) -> str | None:
    """Add this run's validation results to the Data Docs; returns the index page."""
    names = {r["file_name"] for month in records for r in month if r["status"] != "unchanged"}
    if not names:
        return None
    index = validation.build_data_docs(validation.gx_context(settings.var_dir), names)
    log.info("Data Docs: %s", index)
    return str(index)


def changed_periods(records: list[list[dict]]) -> list[str]:
    """Months whose staging data changed in this run (what downstream DAGs must recompute)."""
    return sorted({r["period"] for month in records for r in month if r["status"] == "loaded"})


def assess_ethnicity(settings: Settings) -> dict[str, int]:
    """Rebuild best-known ethnicity per person and the linked completeness figures."""
    engine = warehouse.make_engine(settings.warehouse_url)
    with engine.begin() as conn:
        completeness.rebuild_person_ethnicity(conn)
        completeness.rebuild_linked(conn)
        people = conn.execute(sa.text("select count(*) from core.person_ethnicity")).scalar_one()
    log.info("best-known ethnicity for %d people; linked completeness rebuilt", people)
    return {"people": people}


def compute_indicators(settings: Settings, run_id: str | None) -> dict[str, int]:
    """Recompute the indicator periods whose inputs changed, in one transaction."""
    engine = warehouse.make_engine(settings.warehouse_url)
    warehouse.apply_ddl(engine)
    with warehouse.snapshot_connection(engine) as conn, conn.begin():
        warehouse.lock(conn, "hei:indicators")
        return indicator_store.compute(conn, run_id)


class DataQualityFailure(Exception):
    """Raised when ``HEI_COMPLETENESS_ACTION=fail`` and a load breached a threshold."""


def report_quality(settings: Settings, source: str, records: list[list[dict]]) -> list[str]:
    """Alert on the run's data-quality warnings; fail the run instead if configured to.

    The data stays loaded either way: the warning is about what the data says, and
    withholding a month would hide the very gap the partnership needs to see.
    """
    warnings = [w for month in records for r in month for w in r.get("warnings", [])]
    if warnings:
        send_alert(
            settings.alert_webhook_url,
            f"health-equity-indicators: ethnicity completeness below threshold ({source})",
            warnings,
        )
        if settings.completeness_action == "fail":
            raise DataQualityFailure(f"{len(warnings)} completeness warning(s): {warnings[0]}")
    return warnings
