"""Builds the pipeline's DAGs from the source catalogue.

Only light imports happen at module level; pandas, Arrow, SQLAlchemy, Great Expectations and
the warehouse are touched inside tasks, so the DAG processor parses these files quickly and
never opens a connection.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from functools import reduce
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import DAG, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException
from airflow.timetables.interval import CronDataIntervalTimetable
from airflow.timetables.trigger import CronTriggerTimetable

from dags.common.assets import (
    COMPLETENESS_ASSET,
    INDICATOR_VALUES_ASSET,
    PERSON_ETHNICITY_ASSET,
    RELEASE_ASSET,
    REPORT_ASSET,
    STAGING_ASSETS,
)
from transforms.config.sources import SOURCES

if TYPE_CHECKING:
    from types import ModuleType

    from airflow.sdk import Context

    from transforms.config.settings import Settings
    from transforms.lineage.datasets import Lineage

OWNER = "hei-data-engineering"
WAREHOUSE_POOL = "warehouse"
START = pendulum.datetime(2024, 1, 1, tz="UTC")
# Loads: each morning, so a month delivered by its due day (transforms.config.sources) is
# loaded that night, before the delivery check at 06:00; a day with nothing new costs a scan.
DAILY_LOADS = CronDataIntervalTimetable("0 5 * * *", timezone="UTC")
# The delivery check: each morning, after the night's loads and before the working day.
DAILY_CHECK = CronTriggerTimetable("0 6 * * *", timezone="UTC")


def _conf(context: Context | None = None) -> dict[str, Any]:
    """The run's configuration: what ``hei run`` passed (``{}`` for a scheduled run)."""
    dag_run = (context or get_current_context()).get("dag_run")
    return dict(getattr(dag_run, "conf", None) or {})


def _settings(context: Context | None = None) -> Settings:
    """The deployment's settings, with any overrides the run was given by ``hei run``.

    Overrides holding a secret are refused (``transforms.config.settings.secret_settings``):
    the run's configuration is kept in Airflow's metadata and in every lineage event.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from transforms.config.settings import Settings, secret_settings  # kept out of parsing

    given = _conf(context).get("settings", {})
    secret = secret_settings(given)
    if secret:
        raise AirflowFailException(
            f"the run's configuration holds {', '.join(secret)}: secrets must come from the "
            "deployment's environment (HEI_*), never from a run's configuration, which Airflow "
            "stores and copies into every lineage event. Trigger the run again without them."
        )
    return Settings(**given)


def emit_lineage(describe: Callable[[ModuleType], Lineage]) -> None:
    """Tell OpenLineage which datasets the running task read and wrote.

    The provider emits every task's start and end by itself, but cannot see inside a Python
    task; ``describe`` names the datasets (``transforms.lineage.datasets``, from what the
    task returns), sent as an extra event of the task's run. Nothing is imported or built
    when OpenLineage is disabled.
    """
    from airflow.providers.openlineage import conf

    if conf.is_disabled():
        return
    from airflow.providers.openlineage.api import emit_dataset_lineage

    from transforms.lineage import datasets

    lineage = describe(datasets)
    if lineage:
        emit_dataset_lineage(inputs=lineage.inputs, outputs=lineage.outputs)


def alert_on_failure(context: dict[str, Any]) -> None:
    """Task failure callback: send the failure to the configured alert webhook.

    The error goes to a chat channel, so any secret it happens to quote is taken out first.
    The webhook and secrets are the deployment's, never the run's: a run refused for carrying
    a secret in its configuration is still reported.
    """
    from transforms.config.settings import Settings
    from transforms.core.redaction import scrub
    from transforms.ops.alerts import send_alert

    settings = Settings()
    ti = context["ti"]
    error = scrub(str(context.get("exception")), settings.secret_values())
    send_alert(
        settings.alert_webhook_url,
        f"health-equity-indicators: {ti.dag_id}.{ti.task_id} failed",
        [f"run {context['run_id']}", f"error: {error}"],
    )


# The delay between retries is Airflow's ``[core] default_task_retry_delay`` (300 s unless a
# deployment changes it), so a test of retries can shorten it without touching the DAGs.
DEFAULT_ARGS = {"owner": OWNER, "retries": 2, "on_failure_callback": alert_on_failure}
# Every DAG: monthly history is not back-filled, and one run at a time per DAG. The DAGs start
# unpaused: they form one chain (ingest -> assess -> compute -> publish -> report) linked by
# Assets, and a link left paused on a fresh deployment silently stops everything after it. A
# pause set later in the UI is kept (this applies only when Airflow first sees a DAG).
POLICY = {
    "start_date": START,
    "catchup": False,
    "max_active_runs": 1,
    "is_paused_upon_creation": False,
    "default_args": DEFAULT_ARGS,
}


def _until() -> str:
    """``YYYY-MM``: the last month this run may load.

    A scheduled run loads up to the last month complete when its data interval ends (a
    delivery for the month under way would be partial), and nothing can change that. A run
    started by hand (``hei run``, or the UI) may say ``until`` in its configuration; without
    it, or without a data interval (a manual run in Airflow 3 has none), the last complete
    month.
    """
    from transforms.core.periods import last_complete_month

    context = get_current_context()
    end = context.get("data_interval_end")
    if context["dag_run"].run_type == "scheduled" and end is not None:
        return end.start_of("month").subtract(days=1).strftime("%Y-%m")
    return _conf(context).get("until") or last_complete_month()


def ingest_dags() -> dict[str, DAG]:
    """One ``ingest_<source>`` DAG per source of the catalogue, by DAG id."""
    return {f"ingest_{name}": ingest_dag(name) for name in SOURCES}


def ingest_dag(source_name: str) -> DAG:
    """The ``ingest_<source>`` DAG: find new files, load each month, announce the Asset."""
    staging_asset = STAGING_ASSETS[source_name]
    title = SOURCES[source_name].title

    @dag(
        dag_id=f"ingest_{source_name}",
        description=f"Load {title} deliveries into staging",
        doc_md=f"Loads `{source_name}` deliveries from the landing zone (transforms.ingest.load).",
        schedule=DAILY_LOADS,
        **POLICY,
        tags=["ingest", source_name],
    )
    def ingest_source() -> None:
        @task(pool=WAREHOUSE_POOL)
        def prepare_warehouse() -> None:
            from transforms.tasks import prepare_warehouse

            prepare_warehouse(_settings())

        @task(pool=WAREHOUSE_POOL)
        def find_deliveries() -> list[dict]:
            from transforms.tasks import find_deliveries

            return find_deliveries(_settings(), source_name, _until())

        @task(pool=WAREHOUSE_POOL, map_index_template="{{ task.op_kwargs['group']['period'] }}")
        def load_month(group: dict) -> list[dict]:
            from transforms.tasks import load_month

            settings = _settings()
            records = load_month(settings, group, get_current_context()["run_id"])
            emit_lineage(lambda d: d.of_load(settings.warehouse_url, group, records))
            return records

        @task(outlets=[staging_asset])
        def announce(records: list[list[dict]], *, outlet_events=None) -> list[str]:
            from transforms.tasks import changed_periods

            periods = changed_periods(list(records))
            if not periods:  # nothing changed: no Asset event, so nothing downstream reruns
                raise AirflowSkipException("no month of this source changed")
            outlet_events[staging_asset].extra = {"periods": periods}
            return periods

        @task
        def check_quality(records: list[list[dict]]) -> list[str]:
            from airflow.sdk.exceptions import AirflowFailException

            from transforms.tasks import DataQualityFailure, report_quality

            try:
                return report_quality(_settings(), source_name, list(records))
            except DataQualityFailure as failure:  # a retry would not change the data
                raise AirflowFailException(str(failure)) from failure

        @task
        def render_data_docs(records: list[list[dict]]) -> str | None:
            from transforms.tasks import render_data_docs

            return render_data_docs(_settings(), list(records))

        months = find_deliveries()
        prepare_warehouse() >> months
        loaded = load_month.expand(group=months)
        announce(loaded)
        check_quality(loaded)
        render_data_docs(loaded)

    return ingest_source()


def assess_dag() -> DAG:
    """``assess_ethnicity``: best-known ethnicity per person and linked completeness."""
    any_staging_change = reduce(operator.or_, STAGING_ASSETS.values())

    @dag(
        dag_id="assess_ethnicity",
        description="Best-known ethnicity per person; ethnicity completeness after linkage",
        doc_md="Runs whenever any staging table changes (see transforms.quality.completeness).",
        schedule=any_staging_change,
        **POLICY,
        tags=["quality", "ethnicity"],
    )
    def assess_ethnicity_dag() -> None:
        @task(pool=WAREHOUSE_POOL, outlets=[PERSON_ETHNICITY_ASSET, COMPLETENESS_ASSET])
        def link_ethnicity() -> dict[str, int]:
            from transforms import tasks

            settings = _settings()
            linked = tasks.link_ethnicity(settings)
            emit_lineage(lambda d: d.of_linkage(settings.warehouse_url))
            return linked

        link_ethnicity()

    return assess_ethnicity_dag()


def indicators_dag() -> DAG:
    """``compute_indicators``: the catalogue into ``indicators.values``.

    Scheduled on best-known ethnicity, which ``assess_ethnicity`` refreshes after every
    staging change: so it runs once the staging Assets have changed *and* the linkage it
    depends on is current, never on the half-updated state in between.
    """

    @dag(
        dag_id="compute_indicators",
        description="Indicators by ethnic group: counts, statistics, disclosure control",
        doc_md="Recomputes the periods whose inputs changed (see transforms.indicators.store).",
        schedule=PERSON_ETHNICITY_ASSET,
        **POLICY,
        tags=["indicators"],
    )
    def compute_indicators() -> None:
        @task(pool=WAREHOUSE_POOL, outlets=[INDICATOR_VALUES_ASSET])
        def compute() -> dict[str, int]:
            from transforms.tasks import compute_indicators

            settings = _settings()
            recomputed = compute_indicators(settings, get_current_context()["run_id"])
            if not any(recomputed.values()):
                raise AirflowSkipException("no indicator period had new inputs")
            emit_lineage(lambda d: d.of_compute(settings.warehouse_url))
            return recomputed

        compute()

    return compute_indicators()


def publish_dag() -> DAG:
    """``publish_partnership``: the partner release, after every change to the indicators."""

    @dag(
        dag_id="publish_partnership",
        description="Publish the partnership release: disclosure-checked Parquet tables",
        doc_md="Builds, gates and publishes the release for the last complete month (see "
        "transforms.publish.release); publishes nothing when nothing changed.",
        schedule=INDICATOR_VALUES_ASSET,
        **POLICY,
        tags=["publish"],
    )
    def publish_partnership() -> None:
        @task(pool=WAREHOUSE_POOL, outlets=[RELEASE_ASSET])
        def publish(*, outlet_events=None) -> dict:
            from airflow.sdk.exceptions import AirflowFailException

            from transforms.publish.gate import GateFailure
            from transforms.publish.store import TargetUnusable
            from transforms.tasks import publish_release

            settings = _settings()
            try:
                outcome = publish_release(settings, get_current_context()["run_id"])
            except (GateFailure, TargetUnusable) as failure:  # a retry would fail the same way
                raise AirflowFailException(str(failure)) from failure
            if outcome["status"] != "published":  # no new release: nothing downstream reruns
                raise AirflowSkipException(outcome["status"].replace("_", " "))
            outlet_events[RELEASE_ASSET].extra = {"release": outcome["release"]}
            emit_lineage(
                lambda d: d.of_publish(settings.warehouse_url, settings.publish_url, outcome)
            )
            return outcome

        publish()

    return publish_partnership()


def report_dag() -> DAG:
    """``assurance_report``: the monthly report, built from each new release."""

    @dag(
        dag_id="assurance_report",
        description="The monthly partnership assurance report (HTML and PDF)",
        doc_md="Builds the report from the release partners received (see "
        "transforms.report.build): findings, SPC trends, data quality, pipeline health.",
        schedule=RELEASE_ASSET,
        **POLICY,
        tags=["report"],
    )
    def assurance_report() -> None:
        @task(pool=WAREHOUSE_POOL, outlets=[REPORT_ASSET])
        def build_report() -> dict:
            from transforms.report.inputs import NoRelease
            from transforms.tasks import build_report

            settings = _settings()
            try:
                built = build_report(settings)
            except NoRelease as missing:  # nothing published yet: nothing to report on
                raise AirflowSkipException(str(missing)) from missing
            emit_lineage(lambda d: d.of_report(settings.warehouse_url, settings.publish_url, built))
            return built

        build_report()

    return assurance_report()


def deliveries_dag() -> DAG:
    """``check_deliveries``: each day, alert on the months of any source that are late.

    A small DAG of its own rather than Airflow's Deadline Alerts: a deadline watches whether
    a DAG run finishes in time, while lateness is about data (a month with no loaded file
    however many runs succeed), and it must also show in ``hei status`` without a scheduler.
    """

    @dag(
        dag_id="check_deliveries",
        description="Alert when a source's monthly delivery is late or missing",
        doc_md="Compares each source's expected delivery day with audit.file_loads (see "
        "transforms.ops.deliveries); alerts on the first day late, then weekly.",
        schedule=DAILY_CHECK,
        **POLICY,
        tags=["ops", "deliveries"],
    )
    def check_deliveries() -> None:
        @task(pool=WAREHOUSE_POOL)
        def check() -> list[str]:
            from transforms.tasks import check_deliveries

            context = get_current_context()
            today = context["dag_run"].run_after.date()  # the day the run is for: a rerun agrees
            return check_deliveries(_settings(context), today, context["run_id"])

        check()

    return check_deliveries()
