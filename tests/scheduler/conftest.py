"""Fixtures of the tests that run Airflow's own components: the warehouse they load, the
LocalExecutor chain (shared with the Celery test, which must end in the same warehouse), and
the components' logs beside any failure."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest

from tests.support import airflow_cluster, postgres
from tests.support.scheduled_chain import ChainRun, scheduled_chain


@pytest.fixture(scope="session")
def new_warehouse() -> Callable[[], AbstractContextManager[str]]:
    """Makes the warehouse a chain loads (``HEI_WAREHOUSE_URL``): a new PostgreSQL database,
    dropped afterwards.

    The one place to change to run the pipeline as another role (e.g. a loader role with
    rights on the warehouse schemas only): yield that role's URL on the new database.
    """
    return lambda: postgres.scratch_database("hei_sched_wh_")


@pytest.fixture(scope="session")
def local_chain(
    tmp_path_factory: pytest.TempPathFactory, new_warehouse: Callable
) -> Iterator[ChainRun]:
    """The chain under the scheduler with its LocalExecutor, run once per session."""
    with new_warehouse() as url, scheduled_chain(tmp_path_factory.mktemp("local"), url) as run:
        yield run


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Attach the Airflow components' logs (once per cluster) to the first failed report."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    while airflow_cluster.STARTED:
        cluster = airflow_cluster.STARTED.pop()
        report.sections.append((f"Airflow logs under {cluster.root}", cluster.diagnostics()))
