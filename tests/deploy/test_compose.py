"""docker-compose.yml checked for the mistakes that would break or weaken a deployment:
against the Compose specification's JSON schema, and for consistency with .env.example,
the Dockerfile, the lock file and the DAGs. No Docker engine is needed."""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest

from hei.airflow_env import LINEAGE_NAMESPACE, SENSITIVE_SETTINGS
from tests.support.deploy import (
    LOCK_FILE,
    ROOT,
    MissingRequiredVariable,
    compose,
    compose_schema,
    dockerfile,
    dockerfile_env,
    env_example,
    filled_env,
    healthcheck_argv,
    interpolate,
    interpolate_tree,
    resolved_services,
    strings,
    variables,
    volume_targets,
)

SECRET = re.compile(r"(PASSWORD|SECRET|SECRET_KEY|FERNET_KEY|PSEUDONYM_KEY)$")


def airflow_services(services: dict) -> dict[str, dict]:
    """The services running the project's image (the Airflow components and airflow-init)."""
    return {name: s for name, s in services.items() if "build" in s}


def in_profile(services: dict, profile: str | None) -> dict[str, dict]:
    """The services ``docker compose`` starts with ``--profile profile`` (None: no profile)."""
    return {
        name: s for name, s in services.items() if not s.get("profiles") or profile in s["profiles"]
    }


def one_shot(service: dict) -> bool:
    return service.get("restart", "no") == "no"


def database_services(services: dict) -> dict[str, dict]:
    return {
        name: s for name, s in services.items() if str(s.get("image", "")).startswith("postgres")
    }


@pytest.fixture(scope="module")
def services() -> dict[str, dict]:
    """As Compose sees them with every value .env.example asks for filled in."""
    return resolved_services()


def validation_errors(document: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(compose_schema())
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


# --------------------------------------------------------------------------- specification


def test_compose_file_is_valid_against_the_compose_specification():
    assert validation_errors(compose()) == []
    assert validation_errors(interpolate_tree(compose(), filled_env())) == []


MISTAKES = {  # what a slip in editing the compose file looks like, on the airflow-db service
    "misspelt key": lambda s: s.__setitem__("healtcheck", s.pop("healthcheck")),
    "misspelt healthcheck option": lambda s: s["healthcheck"].__setitem__("intervall", "9s"),
    "depends_on as a string": lambda s: s.__setitem__("depends_on", "airflow-db"),
    "ports as a mapping": lambda s: s.__setitem__("ports", {"5432": 5432}),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_the_schema_check_finds_a_mistake(mistake):
    document = compose()  # a fresh parse
    MISTAKES[mistake](document["services"]["airflow-db"])
    assert validation_errors(document), f"{mistake} passed the schema"


# --------------------------------------------------------------------------- .env


def test_every_variable_the_compose_file_uses_is_in_env_example():
    documented = env_example()
    used = {(name, op) for text in strings(compose()) for name, op, _ in variables(text)}
    missing = sorted({name for name, _ in used} - set(documented))
    assert not missing, f"not in .env.example: {missing}"
    required = {name for name, op in used if op in (":?", "?")}
    to_fill = sorted(name for name in required if documented[name] is None)
    assert not to_fill, f".env.example must have a line to fill in for {to_fill}"


def test_secrets_are_required_variables_never_literals_or_defaults():
    """A secret is ``${VAR:?...}``: Compose refuses to start without it, and no default or
    literal password can reach production."""
    for text in strings(compose()):
        for name, op, _ in variables(text):
            if SECRET.search(name):
                assert op == ":?", f"${{{name}}} is used with {op!r}, not ':?'"
    for service_name, service in compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET.search(key):
                assert any(op == ":?" for _, op, _ in variables(str(value))), (
                    f"{service_name}: {key} is not a required variable"
                )
    with pytest.raises(MissingRequiredVariable, match="AIRFLOW_FERNET_KEY"):
        resolved_services(AIRFLOW_FERNET_KEY="")


# --------------------------------------------------------------------------- Airflow


def test_airflow_components_share_one_configuration(services):
    """Fernet key, JWT secret, database, executor...: a component configured differently
    cannot read what another wrote. LocalExecutor unless .env asks for Celery."""
    configs = {
        name: {k: v for k, v in s["environment"].items() if not k.startswith("_")}
        for name, s in airflow_services(services).items()
    }
    first = next(iter(configs.values()))
    for name, config in configs.items():
        assert config == first, f"{name} is configured differently"
    assert first["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"


@pytest.mark.parametrize(
    ("profile", "workers"), [(None, []), ("celery", ["celery worker"])], ids=["local", "celery"]
)
def test_each_airflow_3_component_runs_once_after_the_database_is_migrated(
    services, profile, workers
):
    started = airflow_services(in_profile(services, profile))
    commands = [s.get("command") for s in started.values() if not one_shot(s)]
    assert sorted(commands) == ["api-server", *workers, "dag-processor", "scheduler", "triggerer"]
    [init] = [s for s in airflow_services(services).values() if one_shot(s)]
    assert "airflow db migrate" in "\n".join(init["command"])
    for name, service in airflow_services(services).items():
        if service is not init:
            assert service["depends_on"]["airflow-init"] == {
                "condition": "service_completed_successfully"
            }, name


def test_database_urls_reach_their_database_with_its_credentials(services):
    """Airflow's own database as its owner; the warehouse as the loader login airflow-init
    makes with the administrator's URL (the database's owner)."""
    databases = database_services(services)
    [init] = [s for s in airflow_services(services).values() if one_shot(s)]
    command = "\n".join(init["command"])
    for name, service in airflow_services(services).items():
        env = service["environment"]
        urls = {
            key: env[key]
            for key in (
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC",
                "HEI_WAREHOUSE_URL",
            )
        }
        hosts = {}
        for key, url in urls.items():
            parts = urlsplit("//" + url.partition("://")[2])
            database = databases[parts.hostname]["environment"]
            owner = database["POSTGRES_USER"], database["POSTGRES_PASSWORD"]
            if key == "HEI_WAREHOUSE_URL":
                login = parts.username, init["environment"]["_HEI_LOADER_PASSWORD"]
                assert f"hei grant-login loader {parts.username} " in command, name
                assert (parts.username, parts.password) == login != owner, name
            else:
                assert (parts.username, parts.password) == owner, (name, key)
            assert parts.path == "/" + database["POSTGRES_DB"], (name, key)
            if key.startswith("AIRFLOW__") or not one_shot(service):  # init: migration only
                wait = service["depends_on"][parts.hostname]
                assert wait == {"condition": "service_healthy"}, (name, key)
            hosts[key] = parts.hostname
        assert hosts["HEI_WAREHOUSE_URL"] != hosts["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert (
            hosts["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"]
            == (hosts["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        )
    admin = urlsplit("//" + init["environment"]["_HEI_WAREHOUSE_ADMIN_URL"].partition("://")[2])
    warehouse = databases[admin.hostname]["environment"]
    assert (admin.username, admin.password) == (
        warehouse["POSTGRES_USER"],
        warehouse["POSTGRES_PASSWORD"],
    )
    assert admin.path == "/" + warehouse["POSTGRES_DB"]
    assert 'hei warehouse-roles --warehouse "${_HEI_WAREHOUSE_ADMIN_URL}"' in command
    assert init["depends_on"][admin.hostname] == {"condition": "service_healthy"}


def test_database_drivers_are_in_the_lock_file(services):
    """Airflow derives an asyncpg URL unless told otherwise, and asyncpg is not locked."""
    locked = set(re.findall(r"(?m)^([A-Za-z0-9_.-]+)==", LOCK_FILE.read_text()))
    drivers = {"psycopg": "psycopg", "psycopg_async": "psycopg", "asyncpg": "asyncpg"}
    for service in airflow_services(services).values():
        for value in service["environment"].values():
            if m := re.match(r"postgresql\+(\w+)://", str(value)):
                assert drivers[m[1]] in locked, f"{m[1]} is not in requirements.lock"


def test_databases_keep_their_data_in_separate_named_volumes():
    raw = compose()
    data = "/var/lib/postgresql/data"
    volumes = [volume_targets(s)[data] for s in database_services(raw["services"]).values()]
    assert len(set(volumes)) == len(volumes) == 2
    assert set(volumes) <= set(raw["volumes"])


def test_execution_api_url_reaches_the_api_server(services):
    [(api_name, api)] = [
        (n, s) for n, s in airflow_services(services).items() if s.get("command") == "api-server"
    ]
    container_ports = {int(str(p).rsplit(":", 1)[-1]) for p in api["ports"]}
    for name, service in airflow_services(services).items():
        url = urlsplit(service["environment"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
        assert (url.hostname, url.path.rstrip("/")) == (api_name, "/execution"), name
        assert url.port in container_ports, name


def test_ui_is_published_on_localhost_only(services):
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} to the network"


def test_data_directories_are_mounted_where_the_settings_point(services):
    """Landing read-only (the pipeline never changes a delivery); publish, reports writable."""
    for name, service in airflow_services(services).items():
        mounts = volume_targets(service)
        env = service["environment"]
        for setting in ("HEI_LANDING_DIR", "HEI_PUBLISH_URL", "HEI_REPORTS_DIR"):
            assert env[setting] in mounts, f"{name}: {setting} {env[setting]} is not mounted"
        assert mounts[env["HEI_LANDING_DIR"]].endswith(":ro"), name
        assert not mounts[env["HEI_PUBLISH_URL"]].endswith(":ro"), name
        assert not mounts[env["HEI_REPORTS_DIR"]].endswith(":ro"), name


def test_task_logs_are_one_volume_in_airflow_home(services):
    """The api-server shows the logs the scheduler's tasks write: same volume, at the log
    folder Airflow uses by default ($AIRFLOW_HOME/logs)."""
    logs = dockerfile_env()["AIRFLOW_HOME"] + "/logs"
    sources = {volume_targets(s).get(logs) for s in airflow_services(services).values()}
    assert len(sources) == 1 and None not in sources, sources


def test_admin_password_is_given_to_airflow_init_only_and_read_by_the_api_server():
    for overrides in ({}, {"AIRFLOW_ADMIN_USERNAME": "alice"}):
        services = resolved_services(**overrides)
        init = services["airflow-init"]
        api = services["airflow-apiserver"]
        path = api["environment"]["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
        folder = str(Path(path).parent)
        assert volume_targets(init)[folder] == volume_targets(api)[folder]
        users = api["environment"]["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
        username = users.split(":")[0]
        assert init["environment"]["_HEI_ADMIN_USERNAME"] == username
        assert username == overrides.get("AIRFLOW_ADMIN_USERNAME", "admin")
        password = filled_env()["AIRFLOW_ADMIN_PASSWORD"]
        assert init["environment"]["_HEI_ADMIN_PASSWORD"] == password
        for name, service in services.items():
            if name != "airflow-init":
                assert password not in str(service.get("environment")), name


def test_startup_waits_only_for_conditions_that_can_be_met(services):
    for name, service in services.items():
        for other, wait in (service.get("depends_on") or {}).items():
            condition = wait["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[other], f"{name} waits on {other}'s health"
            elif condition == "service_completed_successfully":
                assert one_shot(services[other]), f"{other} never completes"
            assert name not in (services[other].get("depends_on") or {}), "a cycle"


def test_every_long_running_service_has_a_healthcheck_that_can_pass(services):
    image_packages = " ".join(dockerfile("RUN"))
    for name, service in services.items():
        if one_shot(service):
            continue
        assert "healthcheck" in service, f"{name} has no healthcheck"
        argv = healthcheck_argv(service)
        assert argv[0] in ("CMD", "CMD-SHELL"), f"{name}: {argv}"
        program = argv[1] if argv[0] == "CMD" else shlex.split(argv[1])[0]
        if "build" in service and program not in ("airflow", "celery"):  # in the lock file
            assert re.search(rf"apt-get install[^&]*\b{program}\b", image_packages), (
                f"{name}'s healthcheck runs {program}, which the image does not install"
            )
        command = " ".join(argv[1:])
        if "8974/health" in command:
            assert service["environment"]["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
        if m := re.search(r"--job-type (\w+)", command):
            assert m[1] in {"SchedulerJob", "TriggererJob", "DagProcessorJob"}, m[1]
        if program == "pg_isready":
            env = service["environment"]
            assert argv[argv.index("-U") + 1] == env["POSTGRES_USER"], name
            assert argv[argv.index("-d") + 1] == env["POSTGRES_DB"], name


def test_the_celery_variant_reaches_its_broker_and_result_backend():
    """``AIRFLOW_EXECUTOR=CeleryExecutor`` with ``--profile celery``: every component runs
    the CeleryExecutor; the workers wait for a healthy Redis, which the broker URL names; the
    result backend is Airflow's metadata database, with its credentials."""
    services = in_profile(resolved_services(AIRFLOW_EXECUTOR="CeleryExecutor"), "celery")
    airflow = airflow_services(services)
    assert {s["environment"]["AIRFLOW__CORE__EXECUTOR"] for s in airflow.values()} == {
        "CeleryExecutor"
    }
    worker = airflow["airflow-worker"]
    env = worker["environment"]
    broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
    assert broker.scheme == "redis"
    assert services[broker.hostname]["image"].startswith("redis")
    assert worker["depends_on"][broker.hostname] == {"condition": "service_healthy"}
    backend = env["AIRFLOW__CELERY__RESULT_BACKEND"]
    assert backend == "db+" + env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert not in_profile(resolved_services(), None).keys() & {"redis", "airflow-worker"}


def test_every_task_runner_shares_the_great_expectations_store():
    """Loads write validation results to HEI_VAR_DIR and render_data_docs reads them, on
    whichever container runs each: one volume for the scheduler and every worker."""
    services = resolved_services(AIRFLOW_EXECUTOR="CeleryExecutor")
    runners = [services["airflow-scheduler"], services["airflow-worker"]]
    sources = {volume_targets(s).get(s["environment"]["HEI_VAR_DIR"]) for s in runners}
    assert len(sources) == 1 and None not in sources, sources


def test_airflow_init_creates_the_pool_the_dags_use():
    factory = (ROOT / "dags" / "common" / "factory.py").read_text()
    [pool] = [
        node.value.value
        for node in ast.parse(factory).body
        if isinstance(node, ast.Assign)
        and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["WAREHOUSE_POOL"]
    ]
    init = compose()["services"]["airflow-init"]
    script = interpolate("\n".join(init["command"]), filled_env())
    [line] = [line for line in script.splitlines() if "airflow pools set" in line]
    argv = shlex.split(line)
    assert argv[3] == pool
    assert argv[4] == "${HEI_WAREHOUSE_POOL_SLOTS}"  # the container's variable, set by compose
    assert "HEI_WAREHOUSE_POOL_SLOTS" in init["environment"]


def test_lineage_is_emitted_and_the_settings_that_may_hold_secrets_are_masked(services):
    """As under ``hei run``: a run's configuration may carry the warehouse URL (with its
    password) or the key, and OpenLineage events and logs must show neither."""
    for name, service in airflow_services(services).items():
        env = service["environment"]
        masked = env["AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES"].split(",")
        assert set(SENSITIVE_SETTINGS) <= set(masked), name
        assert json.loads(env["AIRFLOW__OPENLINEAGE__TRANSPORT"])["type"], name
        assert env["AIRFLOW__OPENLINEAGE__NAMESPACE"] == LINEAGE_NAMESPACE, name
