"""Airflow as it is deployed: its components as separate processes, driven over the REST API.

``running_cluster`` migrates a fresh PostgreSQL metadata database, sets the ``warehouse``
pool, then starts ``airflow api-server``, ``airflow dag-processor`` and ``airflow scheduler``
(and, for the CeleryExecutor, ``airflow celery worker`` processes), each in its own process
group with its output in ``<root>/logs/<component>.log``. Everything it started is stopped on
the way out, however the test ends. The REST API is used as an operator's client would:
a JWT from the simple auth manager's ``/auth/token``, then ``/api/v2``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import sqlalchemy as sa
from cryptography.fernet import Fernet

from hei.airflow_env import DAGS_FOLDER, write_local_settings

ADMIN, PASSWORD = "admin", "admin-password-for-tests"
BUSY_STATES = {"queued", "running"}
LOG_TAIL = 6000  # characters of each log shown when a test fails


class ChainFailed(AssertionError):
    """A DAG run failed, or the chain did not settle in time (with the cluster's logs)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _async_url(metadata_url: str) -> str:
    return (
        sa.make_url(metadata_url)
        .set(drivername="postgresql+psycopg_async")
        .render_as_string(hide_password=False)
    )


def airflow_env(root: Path, metadata_url: str, api_port: int, executor: str) -> dict[str, str]:
    """The configuration every component shares, as a deployment's environment would hold it."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("HEI_", "AIRFLOW"))}
    bin_dir = str(Path(sys.executable).parent)
    return inherited | {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(root / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": executor,
        "AIRFLOW__CORE__PARALLELISM": "4",  # the test machines have two cores
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": _async_url(metadata_url),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(root / "auth" / "passwords.json"),
        # A retry comes 5 s after a failure, not the deployment's 5 minutes.
        "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "5",
        # Ports other Airflows on the same machine would also take by default.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
    }


@dataclass
class AirflowCluster:
    root: Path
    env: dict[str, str]
    api_port: int
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    killed: tuple[str, ...] = ()
    _client: httpx.Client | None = None

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    def airflow(self, *args: str) -> None:
        """A one-off ``airflow`` command (migration, pools); fails with its output."""
        done = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout}\n{done.stderr}"

    def start(self, name: str, *args: str, env: dict[str, str] | None = None, cwd=None) -> None:
        """``airflow ARGS`` in a new process group (so its children can be stopped with it)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "airflow", *args],
                env=env or self.env,
                cwd=cwd or self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, name: str) -> None:
        """SIGKILL a component and every process under it, as when its machine goes down;
        the checks that every component is still running leave it out from then on."""
        self.killed += (name,)
        self._signal(name, signal.SIGKILL)

    def _signal(self, name: str, sig: signal.Signals) -> None:
        """Send ``sig`` to a component and every process under it: Airflow runs each task in
        a process group of its own, so the component's group alone would miss the tasks."""
        try:
            leader = psutil.Process(self.processes[name].pid)
            tree = [leader, *leader.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for process in tree:
            try:
                process.send_signal(sig)
            except psutil.NoSuchProcess:
                pass

    def stop(self) -> None:
        """SIGTERM every component, wait a little, then SIGKILL whatever is left of them and
        of every process they started."""
        trees = []
        for name, process in self.processes.items():
            try:
                trees += [psutil.Process(process.pid), *psutil.Process(process.pid).children(True)]
            except psutil.NoSuchProcess:
                pass
            self._signal(name, signal.SIGTERM)
        psutil.wait_procs(trees, timeout=20)
        for process in trees:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        for process in self.processes.values():
            process.wait()
        if self._client is not None:
            self._client.close()

    def check_running(self, killed: tuple[str, ...] = ()) -> None:
        """Fail if a component exited (other than those the test ``killed``)."""
        exited = [n for n, p in self.processes.items() if p.poll() is not None and n not in killed]
        if exited:
            raise ChainFailed(f"{exited} exited: see their logs")

    def wait_for_api(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.check_running()
            try:
                if httpx.get(f"{self.base_url}/api/v2/version", timeout=5).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise ChainFailed("the api-server did not answer")
            time.sleep(1)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def api(self) -> httpx.Client:
        """A client of ``/api/v2`` holding the admin's JWT."""
        if self._client is None:
            answer = httpx.post(
                f"{self.base_url}/auth/token",
                json={"username": ADMIN, "password": PASSWORD},
                timeout=30,
            )
            answer.raise_for_status()
            token = answer.json()["access_token"]
            self._client = httpx.Client(
                base_url=f"{self.base_url}/api/v2",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
        return self._client

    def get(self, path: str, **params: object) -> dict:
        answer = self.api.get(path, params=params)
        answer.raise_for_status()
        return answer.json()

    def dag_runs(self) -> list[dict]:
        return self.get("/dags/~/dagRuns", limit=1000, order_by="start_date")["dag_runs"]

    def task_instances(self, dag_id: str = "~", run_id: str = "~", **params) -> list[dict]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        return self.get(path, limit=1000, **params)["task_instances"]

    def queued_asset_events(self, dag_ids: list[str]) -> int:
        """Asset events waiting to start a run of one of ``dag_ids``."""
        return sum(
            self.get(f"/dags/{dag_id}/assets/queuedEvents")["total_entries"] for dag_id in dag_ids
        )

    def wait_for_chain(self, dag_ids: list[str], timeout: float, settle: float = 15) -> list[dict]:
        """Wait until every DAG of ``dag_ids`` has run and nothing is running, queued, or
        waiting on an Asset event for ``settle`` seconds; returns every DAG run. A failed run,
        a component that exited, or a chain still busy after ``timeout`` seconds fails the test
        (``tests/scheduler/conftest.py`` shows the logs beside it)."""
        deadline, quiet_since = time.monotonic() + timeout, None
        while True:
            self.check_running(self.killed)
            runs = self.dag_runs()
            failed = [f"{r['dag_id']} {r['dag_run_id']}" for r in runs if r["state"] == "failed"]
            if failed:
                raise ChainFailed(f"failed: {failed}")
            quiet = (
                set(dag_ids) <= {r["dag_id"] for r in runs}
                and not any(r["state"] in BUSY_STATES for r in runs)
                and not self.queued_asset_events(dag_ids)
            )
            now = time.monotonic()
            quiet_since = (quiet_since or now) if quiet else None
            if quiet_since is not None and now - quiet_since >= settle:
                return runs
            if now > deadline:
                states = sorted((r["dag_id"], r["state"]) for r in runs)
                raise ChainFailed(f"not settled after {timeout} s: {states}")
            time.sleep(2)

    def diagnostics(self) -> str:
        """The end of every component's log and of the logs of task tries that did not
        succeed: what a CI failure needs to be understood."""
        parts = []
        for log in sorted(self.log_dir.glob("*.log")):
            parts.append(f"===== {log.name} (end) =====\n{_tail(log)}")
        for log in sorted(self.root.glob("**/dag_id=*/**/attempt=*.log")):
            text = log.read_text(errors="replace")
            if '"level":"error"' in text or "Traceback" in text or "ERROR" in text:
                parts.append(f"===== task log {log.relative_to(self.root)} =====\n{_tail(log)}")
        return "\n".join(parts)


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-LOG_TAIL:]


STARTED: list[AirflowCluster] = []
"""Every cluster started in this session, for the logs shown beside a failed test."""


def celery_env(metadata_url: str, broker_url: str) -> dict[str, str]:
    """The CeleryExecutor's configuration: Redis as broker, PostgreSQL as result backend, and
    a dead worker noticed within seconds instead of the defaults' minutes."""
    backend = sa.make_url(metadata_url).render_as_string(hide_password=False)
    return {
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{backend}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        # A task whose worker died stops heartbeating: failed (then retried) after this.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        # A task the dead worker had taken but not started is queued again after this.
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "15",
    }


def start_celery_worker(cluster: AirflowCluster, name: str) -> Path:
    """``airflow celery worker`` as on a machine of its own: its own working directory,
    Airflow home (task logs), ``HEI_VAR_DIR`` and log-server port; returns its directory."""
    machine = cluster.root / name
    home = machine / "airflow"
    write_local_settings(home)
    env = cluster.env | {
        "AIRFLOW_HOME": str(home),
        "HEI_VAR_DIR": str(machine / "var"),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
    }
    cluster.start(name, "celery", "worker", "--celery-hostname", f"{name}@%h", env=env, cwd=machine)
    return machine


@contextmanager
def running_cluster(
    root: Path,
    metadata_url: str,
    settings_env: dict[str, str],
    *,
    executor: str = "LocalExecutor",
    celery_workers: int = 0,
    broker_url: str = "",
) -> Iterator[AirflowCluster]:
    """api-server, dag-processor and scheduler on a migrated ``metadata_url``, with the
    project's ``HEI_*`` settings in ``settings_env`` (and ``celery_workers`` Celery workers on
    ``broker_url`` for the CeleryExecutor); all stopped on exit."""
    port = free_port()
    env = airflow_env(root, metadata_url, port, executor) | settings_env
    if executor == "CeleryExecutor":
        env |= celery_env(metadata_url, broker_url)
    cluster = AirflowCluster(root, env, port)
    STARTED.append(cluster)
    (root / "auth").mkdir(parents=True, exist_ok=True)
    (root / "auth" / "passwords.json").write_text(json.dumps({ADMIN: PASSWORD}))
    write_local_settings(Path(env["AIRFLOW_HOME"]))  # task code imported once per executor
    with ExitStack() as stack:
        stack.callback(cluster.stop)
        cluster.airflow("db", "migrate")
        cluster.airflow("pools", "set", "warehouse", "8", "warehouse writers")
        cluster.start("api-server", "api-server", "--port", str(port), "--host", "127.0.0.1")
        cluster.start("dag-processor", "dag-processor")
        cluster.start("scheduler", "scheduler")
        for number in range(1, celery_workers + 1):
            start_celery_worker(cluster, f"worker-{number}")
        cluster.wait_for_api()
        yield cluster


@contextmanager
def empty_redis_db(url: str) -> Iterator[str]:
    """The Celery broker: a Redis database emptied before and after (so a message left by an
    earlier run is never delivered); fails with a one-line reason without a server."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        raise ChainFailed(f"Redis not reachable at {url}: {exc}") from exc
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()
