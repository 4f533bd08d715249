"""Running the Great Expectations suites on each delivery, chunk by chunk.

Every chunk of rows that passed the row rules is validated against the source's structure
and completeness suites (``suites.py``), so the whole delivery is checked while memory
stays bounded. Chunk results are combined into one outcome per suite and delivery, stored in
``quality.validation_runs`` in the load's transaction; GX keeps its own results under
``<var>/gx`` and renders them as Data Docs into ``<var>/data_docs``. GX's results are written
as the load goes, outside its transaction, so each is named after its load (``load_id``):
results of a load with no ``audit.file_loads`` row never committed, and are deleted.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from transforms.config.sources import Source
from transforms.core.periods import utcnow
from transforms.warehouse.engine import try_lock

log = logging.getLogger(__name__)
SITE = "hei"
# GX run names: "<file> rows <first>-<last> load <load_id>" (results stored before load ids
# were added have no " load " part, and are kept as they are).
RUN_NAME = re.compile(r"(?P<file>.+) rows \d+-\d+(?: load (?P<load_id>[0-9a-f]+))?")


@dataclass
class ExpectationTally:
    """One expectation's results summed over chunks."""

    description: str
    mostly: float | None
    chunks_failed: int = 0
    element_count: int = 0
    unexpected_count: int = 0

    @property
    def success(self) -> bool:
        if self.mostly is None or not self.element_count:
            return self.chunks_failed == 0
        return self.unexpected_count <= (1 - self.mostly) * self.element_count


@dataclass
class SuiteOutcome:
    suite: str
    rows: int = 0
    chunks: int = 0
    tallies: dict[int, ExpectationTally] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return all(t.success for t in self.tallies.values())

    def failed(self) -> list[dict[str, Any]]:
        return [
            {
                "expectation": t.description,
                "unexpected": t.unexpected_count,
                "of": t.element_count,
                "mostly": t.mostly,
            }
            for t in self.tallies.values()
            if not t.success
        ]


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
    context = gx.get_context(mode="file", project_root_dir=str(var_dir.resolve()))
    if SITE not in (context.get_config().data_docs_sites or {}):
        context.add_data_docs_site(
            site_name=SITE,
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str((var_dir / "data_docs").resolve()),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


class DeliveryValidator:
    """Validates a delivery's checked chunks; one instance per delivery."""

    def __init__(
        self, context: Any, source: Source, period: str, file_name: str, load_id: str
    ) -> None:
        from transforms.quality.suites import completeness_suite, structure_suite

        self.context, self.source, self.file_name = context, source, file_name
        self.load_id = load_id
        suites = [structure_suite(source, period)]
        if source.has_ethnicity:
            suites.append(completeness_suite(source))
        with _file_lock(Path(context.root_directory) / ".suites.lock"):
            self.suites = [context.suites.add_or_update(suite) for suite in suites]
        self.batches = _dataframe_asset(context, source.name)
        self.outcomes = {suite.name: SuiteOutcome(suite.name) for suite in self.suites}

    def validate(self, rows: pa.Table, first_row: int, last_row: int) -> None:
        """Validate one chunk of checked rows (identifiers dropped) and tally the results.

        Results are stored in GX's validation store (for Data Docs) under a run named after
        the file, its rows and the load.
        """
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
            ValidationResultIdentifier,
        )

        from transforms.quality.suites import validated_columns

        if rows.num_rows == 0:
            return
        frame = rows.select(validated_columns(self.source)).to_pandas()
        batch = self.batches.get_batch(batch_parameters={"dataframe": frame})
        run = RunIdentifier(
            run_name=f"{self.file_name} rows {first_row}-{last_row} load {self.load_id}"
        )
        for suite in self.suites:
            result = batch.validate(suite, result_format="SUMMARY")
            key = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite.name),
                run_id=run,
                batch_identifier=batch.id,
            )
            self.context.validation_results_store.set(key, result)
            self._tally(self.outcomes[suite.name], result, rows.num_rows)

    @staticmethod
    def _tally(outcome: SuiteOutcome, result: Any, rows: int) -> None:
        outcome.rows += rows
        outcome.chunks += 1
        for index, item in enumerate(result.results):
            config = item.expectation_config
            kwargs = config.kwargs
            tally = outcome.tallies.setdefault(
                index,
                ExpectationTally(
                    description=f"{config.type}({_columns_of(kwargs)})",
                    mostly=kwargs.get("mostly"),
                ),
            )
            tally.chunks_failed += 0 if item.success else 1
            tally.element_count += int(item.result.get("element_count") or 0)
            tally.unexpected_count += int(item.result.get("unexpected_count") or 0)

    def record(self, conn: Connection, load_id: str, period: str) -> None:
        for outcome in self.outcomes.values():
            conn.execute(
                sa.text(
                    "insert into quality.validation_runs (load_id, source, file_name, period, "
                    "suite, success, evaluated, successful, rows_validated, statistics, "
                    "failed_expectations, validated_at) values (:load_id, :source, :file_name, "
                    ":period, :suite, :success, :evaluated, :successful, :rows, :statistics, "
                    ":failed, :now)"
                ),
                {
                    "load_id": load_id,
                    "source": self.source.name,
                    "file_name": self.file_name,
                    "period": period,
                    "suite": outcome.suite,
                    "success": outcome.success,
                    "evaluated": len(outcome.tallies),
                    "successful": sum(t.success for t in outcome.tallies.values()),
                    "rows": outcome.rows,
                    "statistics": json.dumps({"chunks": outcome.chunks, "rows": outcome.rows}),
                    "failed": json.dumps(outcome.failed()),
                    "now": utcnow(),
                },
            )

    def structure_failures(self) -> list[dict[str, Any]]:
        return self.outcomes[f"{self.source.name}.structure"].failed()


def _columns_of(kwargs: dict[str, Any]) -> str:
    return kwargs.get("column") or f"{kwargs.get('column_A', '')}, {kwargs.get('column_B', '')}"


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Processes sharing the GX store (parallel tasks on one worker) update suites in turn."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _dataframe_asset(context: Any, name: str) -> Any:
    """The whole-dataframe batch definition for a source (created on first use)."""
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
    suites = {f"{source}.structure", f"{source}.completeness"}
    keys = [
        key
        for key in context.validation_results_store.list_keys()
        if key.expectation_suite_identifier.name in suites
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
                sa.text("select load_id from audit.file_loads where source = :source"),
                {"source": source},
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
    site = context.get_config().data_docs_sites[SITE]["store_backend"]["base_directory"]
    return Path(site) / "index.html"
