"""Running the Great Expectations suites on each delivery as it will land; the Data Docs.

Once a delivery's rows are written, and before its transaction commits, the delivery is
measured in SQL (``metrics.py``) and its two suites (``suites.py``) run once on that small
frame: a ``reject`` failure refuses the delivery (the load rolls back), a ``warn`` failure
stores a data-quality warning in ``quality.warnings``. One result per suite and delivery is
stored in ``quality.validation_runs`` in the load's transaction, and in GX's own store under
``<var>/gx``, from which the Data Docs are rendered into ``<var>/data_docs``: one page per
delivery and suite, run name ``<file> <YYYY-MM> load <load_id>``, run time the validation's
time, served with vendored copies of their scripts and stylesheets (``data_docs/``), so they
work offline and call no outside host. GX's results are written before the load commits, so
results of a load that has no ``audit.file_loads`` row never committed and are deleted
(``discard_uncommitted``).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from transforms.config.sources import SOURCES, Source
from transforms.core.periods import utcnow
from transforms.quality import completeness, metrics
from transforms.warehouse.engine import try_lock
from transforms.warehouse.tables import audit_file_loads, quality_validation_runs, quality_warnings

log = logging.getLogger(__name__)
SITE = "hei"
# GX run names: "<file> <YYYY-MM> load <load_id>"; earlier versions validated chunk by chunk
# as "<file> rows <first>-<last>[ load <load_id>]" (results without a load id are kept).
RUN_NAME = re.compile(
    r"(?P<file>.+?) (?:\d{4}-\d{2}|rows \d+-\d+)(?: load (?P<load_id>[0-9a-f]+))?"
)
INDEX_MONTHS = 24
INDEX_RESULTS = INDEX_MONTHS * len(SOURCES) * 2  # a result per delivery and suite
"""How many results the Data Docs index lists, newest validated first: two years of every
source's monthly deliveries (fewer when deliveries were resent). GX reads each listed result
to build the index, so listing all of them made each render take more time and memory every
month (0.4 MB a month, without end). Older pages stay on disk, and every outcome stays in
``quality.validation_runs``."""
ASSETS = resources.files("transforms.quality").joinpath("data_docs")
VIEWS = "transforms.quality.data_docs_views"
# Failed rows are named by their subject (a code, an organisation) in results and Data Docs.
RESULT_FORMAT = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": ["subject", "detail"],
}


@cache
def gx_context(var_dir: Path):  # no return type: GX's context types are internal
    """A file-backed GX context under ``var_dir`` with a Data Docs site in ``var/data_docs``."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine import pandas_execution_engine

    # GX fingerprints every DataFrame batch with an md5 over all its rows, on every validate
    # call, for batch metadata we never use; it doubled validation time. 0 turns it off.
    pandas_execution_engine.HASH_THRESHOLD = 0

    var_dir.mkdir(parents=True, exist_ok=True)
    with _config_lock(var_dir):
        return _configured_context(gx, ProgressBarsConfig, var_dir)


def _configured_context(gx: Any, progress_bars: Any, var_dir: Path):
    """The file context with the project's Data Docs site (held under the config lock)."""
    context = gx.get_context(mode="file", project_root_dir=str(var_dir.resolve()))
    site = {
        "class_name": "SiteBuilder",
        # No "how to" buttons: they are for GX newcomers and link out with the context's id.
        "show_how_to_buttons": False,
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str((var_dir / "data_docs").resolve()),
        },
        # Pages rendered with our templates first: scripts and stylesheets from static/vendor.
        # The index's limit is GX's default for the validation pages too, which would leave
        # unrendered the pages of a run with more new results than the index lists: none.
        "site_section_builders": {
            section: {
                "view": {"module_name": VIEWS, "class_name": "LocalAssetsPageView"},
                "validation_results_limit": None,
            }
            for section in ("expectations", "validations")
        },
        "site_index_builder": {
            "class_name": "DefaultSiteIndexBuilder",
            "validation_results_limit": INDEX_RESULTS,
            "view": {"module_name": VIEWS, "class_name": "LocalAssetsIndexPageView"},
        },
    }
    sites = context.get_config().data_docs_sites or {}
    if SITE not in sites:
        context.add_data_docs_site(site_name=SITE, site_config=site)
    elif dict(sites[SITE]) != site:  # a store made by an earlier version
        context.update_data_docs_site(site_name=SITE, site_config=site)
    context.variables.progress_bars = progress_bars(globally=False)
    return context


@dataclass
class DeliveryOutcome:
    """What the suites found: reject failures (what failed, what to do) and warnings (check,
    message), as sentences."""

    rejections: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)


def validate_delivery(
    context: Any,
    conn: Connection,
    source: Source,
    period: str,
    file_name: str,
    load_id: str,
    rows: int,
) -> DeliveryOutcome:
    """Measure the delivery just written, run its suites once, store and record the results.

    Called inside the load's transaction, after the rows are written and de-duplicated and
    completeness is computed. The results go to ``quality.validation_runs`` (with the load)
    and to GX's store (for the Data Docs, named after the load).
    """
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from transforms.quality.suites import BY_NAME, delivery_suites, measures_frame

    found = metrics.profile(conn, source, period, rows)
    frame = measures_frame(found)
    suites = delivery_suites(found)
    with _file_lock(Path(context.root_directory) / ".suites.lock"):
        stored = [context.suites.add_or_update(suite) for suite in suites.values()]
    batch = _dataframe_asset(context, source.name).get_batch(batch_parameters={"dataframe": frame})
    run = RunIdentifier(run_name=f"{file_name} {period} load {load_id}", run_time=utcnow())
    measures = {(m.check, m.subject): m for m in found.measures}
    outcome = DeliveryOutcome()
    for suite in stored:
        result = batch.validate(suite, result_format=RESULT_FORMAT)
        result.meta["run_id"] = run
        # What the index and the page show about the delivery (GX's own batch metadata
        # names only the in-memory frame: "Data asset: None").
        asset = f"{file_name} ({period})"
        result.meta["active_batch_definition"] = {"data_asset_name": asset}
        result.meta["batch_spec"] = {
            "data_asset_name": asset,
            "file": file_name,
            "month": period,
            "load_id": load_id,
            "rows_loaded": rows,
            "compared_with": ", ".join(sorted(found.history)) or "no earlier month",
        }
        result.meta.pop("batch_markers", None)
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite.name),
            run_id=run,
            batch_identifier=f"{source.name}_{period}",
        )
        context.validation_results_store.set(key, result)
        failed = []
        for item in result.results:
            if item.success:
                continue
            config = item.expectation_config
            check = BY_NAME[config.meta["check"]]
            found_wrong = [
                measures[(check.name, index["subject"])]
                for index in item.result.get("unexpected_index_list") or []
            ]
            what = "; ".join(m.detail for m in found_wrong)
            failed.append({"check": check.name, "rule": config.description, "found": what})
            if check.severity == "reject":
                outcome.rejections.append((f"{config.description} ({what})", check.action))
            elif check.name == metrics.COMPLETENESS:
                below = [(m.subject, m.value) for m in found_wrong]
                message = completeness.warning_message(source, period, below)
                outcome.warnings.append((check.name, message))
            else:
                message = f"{source.name} {period}: {config.description} ({what}). {check.action}"
                outcome.warnings.append((check.name, message))
        _record(conn, load_id, source, file_name, period, suite.name, result, found, failed)
    return outcome


def _record(
    conn: Connection,
    load_id: str,
    source: Source,
    file_name: str,
    period: str,
    suite: str,
    result: Any,
    found: metrics.Profile,
    failed: list[dict[str, Any]],
) -> None:
    statistics = {
        "rows": found.rows,
        "compared_with": found.history,
        "skipped": found.skipped,
        "measures": len(found.measures),
    }
    conn.execute(
        sa.insert(quality_validation_runs).values(
            load_id=load_id,
            source=source.name,
            file_name=file_name,
            period=period,
            suite=suite,
            success=bool(result.success),
            evaluated=len(result.results),
            successful=sum(bool(r.success) for r in result.results),
            rows_validated=found.rows,
            statistics=json.dumps(statistics),
            failed_expectations=json.dumps(failed),
            validated_at=utcnow(),
        )
    )


def record_warnings(
    conn: Connection,
    warnings: list[tuple[str, str]],
    source: str,
    period: str,
    load_id: str,
    run_id: str | None,
) -> list[str]:
    """Store the delivery's warnings in ``quality.warnings`` (kind: the check), log them, and
    return their messages (carried by the load record to the run's alert)."""
    for kind, message in warnings:
        conn.execute(
            sa.insert(quality_warnings).values(
                load_id=load_id,
                run_id=run_id,
                source=source,
                period=period,
                kind=kind,
                message=message,
                raised_at=utcnow(),
            )
        )
        log.warning("DATA QUALITY: %s", message)
    return [message for _, message in warnings]


def warnings_of_kind(conn: Connection, load_ids: list[str], kind: str) -> list[str]:
    """The messages of the loads' warnings raised by one check (``quality.warnings.kind``)."""
    found = quality_warnings.c
    query = (
        sa.select(found.message)
        .where(found.load_id.in_(load_ids), found.kind == kind)
        .order_by(found.raised_at)
    )
    return list(conn.execute(query).scalars())


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Processes sharing the GX store (parallel tasks on one worker) update suites in turn."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _config_lock(var_dir: Path) -> Iterator[None]:
    """GX rewrites ``great_expectations.yml`` in place when a datasource or site is added:
    parallel tasks on one machine read and write it in turn, or one reads it half-written
    ("duplicate key found in project YAML file", seen under the scheduler)."""
    with _file_lock(var_dir / ".gx-config.lock"):
        yield


def _dataframe_asset(context: Any, name: str) -> Any:
    """The whole-dataframe batch definition for a source (created on first use)."""
    with _config_lock(Path(context.root_directory).parent):  # the context's var_dir
        return _batch_definition(context, name)


def _batch_definition(context: Any, name: str) -> Any:
    sources = context.data_sources
    try:
        datasource = sources.get("deliveries")
    except (KeyError, ValueError):
        datasource = sources.add_pandas("deliveries")
    if name not in [a.name for a in datasource.assets]:
        datasource.add_dataframe_asset(name).add_batch_definition_whole_dataframe("delivery")
    return datasource.get_asset(name).get_batch_definition("delivery")


def _run_name(key: Any) -> re.Match[str] | None:
    return RUN_NAME.fullmatch(key.run_id.run_name or "")


def discard_uncommitted(context: Any, engine: Engine, source: str) -> int:
    """Delete the stored results of the source's loads that never committed; how many.

    A load writes its results as it validates, before its transaction commits; killed part-
    way, it leaves results for rows that were rolled back. Its ``load_id`` then has no audit
    record (a rejected load has one). Nothing is deleted while another process holds the
    source's load lock, so a load under way keeps its results.
    """
    keys = [
        key
        for key in context.validation_results_store.list_keys()
        if key.expectation_suite_identifier.name.startswith(f"{source}.")
        and (m := _run_name(key))
        and m["load_id"]
    ]
    if not keys:
        return 0
    with engine.begin() as conn:
        if not try_lock(conn, f"hei:load:{source}"):
            return 0
        decided = set(
            conn.execute(
                sa.select(audit_file_loads.c.load_id).where(audit_file_loads.c.source == source)
            ).scalars()
        )
        orphans = [key for key in keys if _run_name(key)["load_id"] not in decided]
        for key in orphans:
            context.validation_results_store.remove_key(key)
    return len(orphans)


def build_data_docs(context: Any, file_names: set[str]) -> Path:
    """Render the validation pages of these files' deliveries and the site index.

    Rendering only new results keeps the cost flat as history grows (GX re-renders every
    stored result otherwise). Returns the index page.
    """
    keys = [
        key
        for key in context.validation_results_store.list_keys()
        if (m := _run_name(key)) and m["file"] in file_names
    ]
    if keys:
        context.build_data_docs(site_names=[SITE], resource_identifiers=keys)
    site = Path(context.get_config().data_docs_sites[SITE]["store_backend"]["base_directory"])
    _copy_vendored_assets(site / "static" / "vendor")
    return site / "index.html"


def _copy_vendored_assets(vendor: Path) -> None:
    """The pages' scripts, stylesheets and fonts, copied beside them (again when the
    vendored set changed: its README lists the packages and versions)."""
    with resources.as_file(ASSETS.joinpath("static", "vendor")) as copies:
        listed = (copies / "README").read_text()
        if (vendor / "README").exists() and (vendor / "README").read_text() == listed:
            return
        shutil.rmtree(vendor, ignore_errors=True)
        for path in sorted(copies.rglob("*")):  # files made under the umask (var/ is private)
            target = vendor / path.relative_to(copies)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
