"""Fixtures of the tests that run Airflow's own components: the warehouse they load, the
LocalExecutor chain (shared with the Celery test, which must end in the same warehouse), and
the components' logs beside any failure."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest

from tests.support import airflow_cluster, postgres, roles
from tests.support.scheduled_chain import ChainRun, scheduled_chain


@contextmanager
def loader_warehouse() -> Iterator[str]:
    """A new PostgreSQL database set up by its administrator (``hei warehouse-roles``), as
    the loader login the DAGs write with in production; database and login dropped after."""
    admin = None
    try:
        with postgres.scratch_database("hei_sched_wh_") as admin:
            yield roles.loader_url(admin)
    finally:
        if admin is not None:
            roles.drop_logins(admin)


@pytest.fixture(scope="session")
def new_warehouse() -> Callable[[], AbstractContextManager[str]]:
    """Makes the warehouse a chain loads (``HEI_WAREHOUSE_URL``): the loader's URL on a new
    database, so both chains run as deployed, not as the server's superuser."""
    return loader_warehouse


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
