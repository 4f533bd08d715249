"""The steps of an ingest run, as plain functions of the settings.

Airflow tasks call these with values that travel through XCom as plain dicts; tests and
benchmarks call them directly. Nothing is passed between steps but those dicts, so each
step can run in any worker.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date

import sqlalchemy as sa

from transforms.config.settings import Settings
from transforms.config.sources import SOURCES
from transforms.core.redaction import display_url
from transforms.indicators import store as indicator_store
from transforms.indicators import wres_store
from transforms.ingest import audit, landing
from transforms.ingest.audit import LoadRecord
from transforms.ingest.landing import Delivery
from transforms.ingest.load import LoadContext, ingest
from transforms.ingest.reading import ReadLimits
from transforms.ops import deliveries
from transforms.ops.alerts import send_alert
from transforms.publish import release
from transforms.quality import completeness, metrics, validation
from transforms.warehouse import ddl
from transforms.warehouse import engine as warehouse
from transforms.warehouse.tables import core_person_ethnicity

log = logging.getLogger(__name__)


def prepare_warehouse(settings: Settings) -> None:
    """Create missing schemas and tables, and say which warehouse and pseudonym key are used."""
    log.info("warehouse %s", display_url(settings.warehouse_url))
    ddl.apply_ddl(warehouse.make_engine(settings.warehouse_url))
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
    found = landing.scan(settings.landing_dir, source, until, settings.settle_seconds)
    with warehouse.make_engine(settings.warehouse_url).connect() as conn:
        planned = audit.plan(conn, found)
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
        # and a retried task must not load again what its first try already loaded. (The
        # load decides again once it has the source's turn: another process may load it.)
        with ctx.engine.connect() as conn:
            now = audit.plan(conn, [Delivery(**delivery)])
        record = ingest(now[0], ctx) if now else None
        if record is not None:
            records.append(record.to_xcom())
    return records


def _records(months: list[list[dict]]) -> list[LoadRecord]:
    """The load records the ``load_month`` tasks returned, typed again."""
    return [LoadRecord.from_xcom(r) for month in months for r in month]


def render_data_docs(settings: Settings, records: list[list[dict]]) -> str | None:
    """Add this run's validation results to the Data Docs; returns the index page.

    First the source's results of loads that never committed (a load killed part-way, whose
    rows were rolled back) are deleted, so the Data Docs show no validation of data that is
    not in the warehouse.
    """
    done = [r for r in _records(records) if r.status != "unchanged"]
    if not done:
        return None
    context = validation.gx_context(settings.var_dir)
    engine = warehouse.make_engine(settings.warehouse_url)
    for source in {r.source for r in done}:
        discarded = validation.discard_uncommitted(context, engine, source)
        if discarded:
            log.info("%s: deleted %d result(s) of loads that never committed", source, discarded)
    index = validation.build_data_docs(context, {r.file_name for r in done})
    log.info("Data Docs: %s", index)
    return str(index)


def changed_periods(records: list[list[dict]]) -> list[str]:
    """Months whose staging data changed in this run (what downstream DAGs must recompute)."""
    return sorted({r.period for r in _records(records) if r.status == "loaded"})


def link_ethnicity(settings: Settings) -> dict[str, int]:
    """Rebuild best-known ethnicity per person and the linked completeness figures."""
    engine = warehouse.make_engine(settings.warehouse_url)
    with engine.begin() as conn:
        warehouse.lock(conn, "hei:ethnicity")  # a second at once would clash on the rows
        warehouse.allow_grouping_memory(conn)
        completeness.rebuild_person_ethnicity(conn)
        completeness.rebuild_linked(conn)
        people = conn.execute(
            sa.select(sa.func.count()).select_from(core_person_ethnicity)
        ).scalar_one()
    log.info("best-known ethnicity for %d people; linked completeness rebuilt", people)
    return {"people": people}


def compute_indicators(settings: Settings, run_id: str | None) -> dict[str, int]:
    """Recompute the indicator periods whose inputs changed, in one transaction.

    Computes take turns, each on one snapshot taken once it has its turn; one that PostgreSQL
    still aborts for a conflict with another transaction is run again.
    """
    engine = warehouse.make_engine(settings.warehouse_url)
    ddl.apply_ddl(engine)

    def attempt() -> dict[str, int]:
        with warehouse.locked_snapshot(engine, "hei:indicators") as conn:
            recomputed = indicator_store.compute(conn, run_id)
            years = wres_store.compute(conn)
            log.info("WRES recomputed for %d financial year(s): %s", len(years), years)
            return recomputed

    return warehouse.retry_on_conflict(attempt, "compute_indicators")


def publish_release(settings: Settings, run_id: str | None) -> dict:
    """Publish the partnership release to ``settings.publish_url`` if the data changed since
    the latest release (``transforms.publish.release``); returns what was done."""
    outcome = release.publish(
        warehouse.make_engine(settings.warehouse_url),
        settings.publish_url,
        run_id=run_id,
        keep=settings.publish_keep,
    )
    log.info("%s", outcome.summary())
    return outcome.to_xcom()


def build_report(settings: Settings, month: str | None = None) -> dict:
    """The monthly assurance report from the latest release (or ``month``'s) into
    ``settings.reports_dir`` (``transforms.report.build``)."""
    from transforms.report import build as report  # Matplotlib and WeasyPrint: here only

    built = report.build(
        warehouse.make_engine(settings.warehouse_url),
        settings.publish_url,
        settings.reports_dir,
        month,
    )
    return built.to_xcom()


class DataQualityFailure(Exception):
    """Raised when ``HEI_COMPLETENESS_ACTION=fail`` and a load breached a threshold."""


def report_quality(settings: Settings, source: str, records: list[list[dict]]) -> list[str]:
    """Alert on the run's data-quality warnings (every ``warn`` expectation that failed);
    with ``HEI_COMPLETENESS_ACTION=fail``, fail the run on completeness warnings.

    The data stays loaded either way: the warning is about what the data says, and
    withholding a month would hide the very gap the partnership needs to see.
    """
    loads = _records(records)
    warnings = [w for r in loads for w in r.warnings]
    if warnings:
        send_alert(
            settings.alert_webhook_url,
            f"health-equity-indicators: {len(warnings)} data-quality warning(s) ({source})",
            warnings,
        )
    if warnings and settings.completeness_action == "fail":
        with warehouse.make_engine(settings.warehouse_url).connect() as conn:
            below = validation.warnings_of_kind(
                conn, [r.load_id for r in loads], metrics.COMPLETENESS
            )
        if below:
            raise DataQualityFailure(f"{len(below)} completeness warning(s): {below[0]}")
    return warnings


def check_deliveries(settings: Settings, today: date, run_id: str | None) -> list[str]:
    """Alert on the months that are late today and due an alert; returns every late month.

    An alert is recorded only once it reached the webhook (or was logged, where no webhook
    is set), so a webhook that was down is tried again by the next day's run.
    """
    engine = warehouse.make_engine(settings.warehouse_url)
    ddl.apply_ddl(engine)
    landed = landing.landed_months(settings.landing_dir, SOURCES)
    with engine.connect() as conn:
        late = deliveries.late_deliveries(
            conn, today, settings.deliveries_expected_from, landed=landed
        )
        due = deliveries.alerts_due(late, deliveries.last_alerts(conn), today)
    log.info("%d late month(s), %d due an alert", len(late), len(due))
    if due:
        title, lines = deliveries.alert_text(due, today)
        sent = send_alert(settings.alert_webhook_url, title, lines)
        if sent or not settings.alert_webhook_url:
            with engine.begin() as conn:
                deliveries.record_alerts(conn, due, today, run_id)
    return [d.message for d in late]
