"""Static checks of the Docker deployment files (docker-compose.yml, Dockerfile, .dockerignore).

No Docker engine is available where the tests run, so nothing here calls `docker`:
the compose file is parsed with PyYAML, and Compose's `${VAR...}` interpolation is
reproduced by a small helper below to check which variables are required.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"

DATABASE_SERVICES = {"airflow-db", "warehouse-db"}
LONG_RUNNING_AIRFLOW = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
}
AIRFLOW_SERVICES = LONG_RUNNING_AIRFLOW | {"airflow-init"}
LONG_RUNNING = LONG_RUNNING_AIRFLOW | DATABASE_SERVICES

# Variables .env must define (Compose `${VAR:?...}`): keep .env.example in step with this.
REQUIRED_ENV = {
    "HEI_PSEUDONYM_KEY",
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW_ADMIN_PASSWORD",
    "AIRFLOW_DB_PASSWORD",
    "WAREHOUSE_DB_PASSWORD",
}


# --------------------------------------------------------------------------- helpers


class MissingRequiredVariable(Exception):
    def __init__(self, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.name = name


_BRACED = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")
_BARE = re.compile(r"\$(?P<name>[A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose-style interpolation (https://docs.docker.com/reference/compose-file/interpolation/).

    Supports ${VAR}, $VAR, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e}, ${VAR:+r}, ${VAR+r}
    and the `$$` escape. Nested expressions are not used in our compose file.
    """
    parts = value.split("$$")

    def braced(m: re.Match[str]) -> str:
        name, op, arg = m.group("name"), m.group("op"), m.group("arg") or ""
        is_set = name in env
        is_non_empty = bool(env.get(name))
        if op is None:
            return env.get(name, "")
        if op == ":-":
            return env[name] if is_non_empty else arg
        if op == "-":
            return env[name] if is_set else arg
        if op == ":?":
            if not is_non_empty:
                raise MissingRequiredVariable(name, arg)
            return env[name]
        if op == "?":
            if not is_set:
                raise MissingRequiredVariable(name, arg)
            return env[name]
        if op == ":+":
            return arg if is_non_empty else ""
        if op == "+":
            return arg if is_set else ""
        raise AssertionError(op)

    out = []
    for part in parts:
        part = _BRACED.sub(braced, part)
        part = _BARE.sub(lambda m: env.get(m.group("name"), ""), part)
        out.append(part)
    return "$".join(out)


def parse_db_url(url: str):
    """urlsplit() for SQLAlchemy URLs (their schemes, e.g. postgresql+psycopg_async, have '_')."""
    scheme, sep, rest = url.partition("://")
    assert sep, f"not a URL: {url}"
    parts = urlsplit("//" + rest)
    return scheme, parts


def walk_strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from walk_strings(key)
            yield from walk_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk_strings(item)


def interpolate_tree(node, env: dict[str, str]):
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {k: interpolate_tree(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(v, env) for v in node]
    return node


def fake_env(**overrides: str) -> dict[str, str]:
    env = {name: f"test-{name.lower().replace('_', '-')}" for name in REQUIRED_ENV}
    env.update(overrides)
    return env


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuations joined."""
    logical: list[str] = []
    buffer = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        logical.append(buffer + line)
        buffer = ""
    if buffer:
        logical.append(buffer)
    result = []
    for line in logical:
        instruction, _, args = line.partition(" ")
        result.append((instruction.upper(), args.strip()))
    return result


def volume_targets(service: dict) -> dict[str, str]:
    """container path -> 'source[:mode]' for short-syntax volumes."""
    targets = {}
    for spec in service.get("volumes", []):
        source, target, *mode = spec.split(":")
        targets[target] = ":".join([source, *mode])
    return targets


def healthcheck_command(service: dict) -> str:
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return test
    return " ".join(test[1:])


@pytest.fixture(scope="module")
def compose_text() -> str:
    assert COMPOSE_FILE.is_file(), "docker-compose.yml is missing"
    return COMPOSE_FILE.read_text()


@pytest.fixture(scope="module")
def compose(compose_text) -> dict:
    return yaml.safe_load(compose_text)


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def resolved(compose) -> dict:
    """The compose file as Compose would see it with every required variable set."""
    return interpolate_tree(compose, fake_env())["services"]


# --------------------------------------------------------------------------- services


def test_compose_defines_exactly_the_expected_services(services):
    assert set(services) == AIRFLOW_SERVICES | DATABASE_SERVICES


def test_no_celery_or_redis_is_configured(services):
    for value in walk_strings(services):
        assert "redis" not in value.lower()
        assert "celery" not in value.lower()
    for name in AIRFLOW_SERVICES:
        assert not any(k.startswith("AIRFLOW__CELERY__") for k in services[name]["environment"])


def test_both_databases_are_postgres_16(services):
    for name in DATABASE_SERVICES:
        assert services[name]["image"] == "postgres:16"


def test_airflow_services_build_from_project_dockerfile(services):
    for name in AIRFLOW_SERVICES:
        build = services[name]["build"]
        assert build["context"] == "."
        assert build.get("dockerfile", "Dockerfile") == "Dockerfile"
        assert (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).is_file()


def test_airflow_services_share_the_x_airflow_common_anchor(compose_text):
    """Every Airflow service merges the same `x-airflow-common` node (`<<: *airflow-common`)."""
    root = yaml.compose(compose_text)
    top = {key.value: value for key, value in root.value}
    common = top["x-airflow-common"]
    services = {key.value: value for key, value in top["services"].value}
    for name in AIRFLOW_SERVICES:
        merged = [value for key, value in services[name].value if key.value == "<<"]
        assert merged and merged[0] is common, f"{name} does not merge *airflow-common"
    for name in DATABASE_SERVICES:
        assert not any(key.value == "<<" for key, _ in services[name].value)


def test_api_server_runs_api_server_command_on_port_8080(services):
    api = services["airflow-apiserver"]
    assert api["command"] == "api-server"
    assert any(str(p).endswith("8080:8080") for p in api["ports"])


def test_components_run_their_airflow_3_commands(services):
    assert services["airflow-scheduler"]["command"] == "scheduler"
    assert services["airflow-dag-processor"]["command"] == "dag-processor"
    assert services["airflow-triggerer"]["command"] == "triggerer"


# --------------------------------------------------------------------------- environment


def test_every_airflow_service_uses_the_local_executor(services):
    for name in AIRFLOW_SERVICES:
        assert services[name]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"


def test_metadata_db_and_warehouse_are_different_services(resolved):
    for name in AIRFLOW_SERVICES:
        env = resolved[name]["environment"]
        meta_scheme, meta = parse_db_url(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        _, meta_async = parse_db_url(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"])
        warehouse_scheme, warehouse = parse_db_url(env["HEI_WAREHOUSE_URL"])
        assert meta_scheme == "postgresql+psycopg"
        assert meta.hostname == "airflow-db"
        assert meta.path == "/airflow"
        assert (meta_async.hostname, meta_async.path) == (meta.hostname, meta.path)
        assert warehouse_scheme == "postgresql+psycopg"
        assert warehouse.hostname == "warehouse-db"
        assert warehouse.path == "/warehouse"
        assert warehouse.username == resolved["warehouse-db"]["environment"]["POSTGRES_USER"]
        assert meta.username == resolved["airflow-db"]["environment"]["POSTGRES_USER"]


def test_database_urls_use_the_database_passwords(resolved):
    env = resolved["airflow-scheduler"]["environment"]
    _, meta = parse_db_url(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    _, warehouse = parse_db_url(env["HEI_WAREHOUSE_URL"])
    assert meta.password == resolved["airflow-db"]["environment"]["POSTGRES_PASSWORD"]
    assert warehouse.password == resolved["warehouse-db"]["environment"]["POSTGRES_PASSWORD"]


def test_async_metadata_url_uses_psycopg_because_asyncpg_is_not_locked(services):
    lock = (ROOT / "requirements.lock").read_text()
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"].startswith(
        "postgresql+psycopg_async://"
    )
    if not re.search(r"(?m)^asyncpg==", lock):
        assert "asyncpg" not in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"]


def test_databases_keep_data_in_separate_named_volumes(compose, services):
    data = "/var/lib/postgresql/data"
    meta_volume = volume_targets(services["airflow-db"])[data]
    warehouse_volume = volume_targets(services["warehouse-db"])[data]
    assert meta_volume != warehouse_volume
    assert {meta_volume, warehouse_volume} <= set(compose["volumes"])


def test_execution_api_points_at_the_api_server(services):
    for name in AIRFLOW_SERVICES:
        url = urlsplit(services[name]["environment"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
        assert url.hostname == "airflow-apiserver"
        assert url.port == 8080
        assert url.path.rstrip("/") == "/execution"


def test_hei_settings_point_at_mounted_data_dirs(services):
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["HEI_ENVIRONMENT"] == "production"
        assert env["HEI_LANDING_DIR"] == "/data/landing"
        assert env["HEI_PUBLISH_DIR"] == "/data/publish"
        assert env["HEI_REPORTS_DIR"] == "/data/reports"
        assert "HEI_WAREHOUSE_POOL_SLOTS" in env


def test_pseudonym_key_uses_required_variable_syntax(services):
    for name in AIRFLOW_SERVICES:
        assert re.fullmatch(
            r"\$\{HEI_PSEUDONYM_KEY:\?[^}]+\}", services[name]["environment"]["HEI_PSEUDONYM_KEY"]
        )


@pytest.mark.parametrize(
    "setting",
    [
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
    ],
)
def test_airflow_secrets_come_from_env_file_and_are_required(services, setting):
    values = {services[name]["environment"][setting] for name in AIRFLOW_SERVICES}
    assert len(values) == 1, f"{setting} differs between Airflow components"
    (value,) = values
    assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", value), f"{setting} is not ${{VAR:?...}}"


def test_compose_refuses_to_start_without_each_required_variable(compose):
    interpolate_tree(compose, fake_env())  # complete .env: fine
    for name in sorted(REQUIRED_ENV):
        for env in (
            {k: v for k, v in fake_env().items() if k != name},  # unset
            fake_env(**{name: ""}),  # empty
        ):
            with pytest.raises(MissingRequiredVariable) as excinfo:
                interpolate_tree(compose, env)
            assert excinfo.value.name == name


def test_required_variables_are_exactly_the_documented_set(compose):
    required = {
        m.group(1)
        for value in walk_strings(compose)
        for m in re.finditer(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*):?\?", value)
    }
    assert required == REQUIRED_ENV


def test_env_example_lists_every_required_variable():
    if not ENV_EXAMPLE.is_file():
        pytest.skip(".env.example not written yet")
    defined = set(
        re.findall(r"(?m)^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=", ENV_EXAMPLE.read_text())
    )
    assert REQUIRED_ENV <= defined, f"missing from .env.example: {sorted(REQUIRED_ENV - defined)}"


def test_no_secret_values_are_hardcoded(services):
    secret_names = re.compile(r"(PASSWORD|SECRET|SECRET_KEY|FERNET_KEY|PSEUDONYM_KEY)$")
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if secret_names.search(key):
                assert re.search(r"\$\{[A-Z_]+:\?", str(value)), f"{name}: {key} is hardcoded"


def test_simple_auth_manager_has_one_admin_user(services):
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("simple_auth_manager.SimpleAuthManager")
        users = interpolate(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"], {})
        assert users == "admin:admin"
        assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"].lower() == "false"


def test_admin_password_file_is_on_a_volume_shared_by_init_and_api_server(services):
    path = services["airflow-apiserver"]["environment"][
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
    ]
    directory = str(Path(path).parent)
    init_mounts = volume_targets(services["airflow-init"])
    api_mounts = volume_targets(services["airflow-apiserver"])
    assert directory in init_mounts and directory in api_mounts
    assert init_mounts[directory] == api_mounts[directory]
    assert "AIRFLOW_ADMIN_PASSWORD" in str(services["airflow-init"]["environment"])
    # The admin password is only given to airflow-init, not to the components running tasks.
    for name in LONG_RUNNING_AIRFLOW:
        assert "AIRFLOW_ADMIN_PASSWORD" not in str(services[name]["environment"])


# --------------------------------------------------------------------------- startup order


def test_airflow_services_wait_for_init(services):
    for name in LONG_RUNNING_AIRFLOW:
        depends = services[name]["depends_on"]
        assert depends["airflow-init"] == {"condition": "service_completed_successfully"}
        assert depends["airflow-db"] == {"condition": "service_healthy"}
        assert depends["warehouse-db"] == {"condition": "service_healthy"}


def test_airflow_init_waits_for_healthy_metadata_db(services):
    depends = services["airflow-init"]["depends_on"]
    assert depends["airflow-db"] == {"condition": "service_healthy"}
    assert "airflow-init" not in depends


def test_airflow_init_migrates_db_and_creates_warehouse_pool(services):
    init = services["airflow-init"]
    command = init["command"]
    script = command if isinstance(command, str) else "\n".join(command)
    assert "airflow db migrate" in script
    pool_lines = [line for line in script.splitlines() if "airflow pools set" in line]
    assert len(pool_lines) == 1
    argv = shlex.split(pool_lines[0])
    assert argv[:4] == ["airflow", "pools", "set", "warehouse"]
    # slots come from HEI_WAREHOUSE_POOL_SLOTS, which defaults to several slots
    assert "HEI_WAREHOUSE_POOL_SLOTS" in argv[4]
    default = re.fullmatch(
        r"\$\{HEI_WAREHOUSE_POOL_SLOTS:-(\d+)\}", init["environment"]["HEI_WAREHOUSE_POOL_SLOTS"]
    )
    assert default and int(default.group(1)) > 1
    assert init.get("restart", "no") == "no"


def test_every_long_running_service_has_a_healthcheck(services):
    for name in LONG_RUNNING:
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert "healthcheck" not in services["airflow-init"]


def test_healthchecks_use_airflow_3_endpoints_and_job_types(services):
    assert "http://localhost:8080/api/v2/version" in healthcheck_command(
        services["airflow-apiserver"]
    )
    scheduler = healthcheck_command(services["airflow-scheduler"])
    if "8974/health" in scheduler:
        env = services["airflow-scheduler"]["environment"]
        assert env["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"].lower() == "true"
    else:
        assert "--job-type SchedulerJob" in scheduler
    assert "--job-type DagProcessorJob" in healthcheck_command(services["airflow-dag-processor"])
    assert "--job-type TriggererJob" in healthcheck_command(services["airflow-triggerer"])
    for name in DATABASE_SERVICES:
        assert "pg_isready" in healthcheck_command(services[name])


def test_long_running_services_restart(services):
    for name in LONG_RUNNING:
        assert services[name]["restart"] in {"always", "unless-stopped"}


# --------------------------------------------------------------------------- volumes


def test_data_volumes_are_mounted_in_every_airflow_service(services):
    for name in AIRFLOW_SERVICES:
        mounts = volume_targets(services[name])
        assert mounts.get("/data/landing") == "./var/landing:ro", (
            f"{name}: landing must be read-only"
        )
        assert mounts.get("/data/publish") == "./var/publish"
        assert mounts.get("/data/reports") == "./var/reports"
        assert "/opt/airflow/logs" in mounts


def test_logs_volume_is_shared_by_all_airflow_services(services):
    sources = {volume_targets(services[name])["/opt/airflow/logs"] for name in AIRFLOW_SERVICES}
    assert len(sources) == 1


def test_compose_header_explains_how_to_start(compose_text):
    header = compose_text.split("\n---", 1)[0]
    for needle in ("cp .env.example .env", "docker compose up -d", "http://localhost:8080"):
        assert needle in header


# --------------------------------------------------------------------------- Dockerfile


def test_dockerfile_exists_and_uses_plain_python_311_base():
    assert DOCKERFILE.is_file()
    froms = [args for instr, args in dockerfile_instructions() if instr == "FROM"]
    assert froms == ["python:3.11-slim-bookworm"]


def test_dockerfile_installs_lock_file_with_hashes():
    runs = [args for instr, args in dockerfile_instructions() if instr == "RUN"]
    copies = [args for instr, args in dockerfile_instructions() if instr == "COPY"]
    assert any("requirements.lock" in c for c in copies)
    assert any(
        ("--require-hashes" in r and "requirements.lock" in r)
        or re.search(r"uv (pip )?sync\b.*requirements\.lock", r)
        for r in runs
    )


def test_dockerfile_installs_project_without_resolving_dependencies():
    runs = [args for instr, args in dockerfile_instructions() if instr == "RUN"]
    project_installs = [
        r for r in runs if re.search(r"pip install[^&]*--no-deps[^&]*(/tmp/hei-src|\s\.)", r)
    ]
    assert project_installs
    # Nothing is installed from an index by name after the lock file.
    for r in runs:
        for cmd in r.split("&&"):
            if "pip install" in cmd and "requirements.lock" not in cmd:
                assert "--no-deps" in cmd, cmd


def test_project_is_installed_as_a_package_with_its_data():
    """Nothing may depend on the source tree: the image installs a wheel and checks that the
    SQL and the DAG files came with it, at the DAGs folder Airflow is pointed at."""
    runs = " ".join(args for instr, args in dockerfile_instructions() if instr == "RUN")
    assert not re.search(r"pip install[^&]*\s(-e|--editable)\s", runs)
    env = " ".join(args for instr, args in dockerfile_instructions() if instr == "ENV")
    dags = re.search(r"AIRFLOW__CORE__DAGS_FOLDER=(\S+)", env).group(1)
    assert dags == "/opt/venv/lib/python3.11/site-packages/dags"
    assert f"test -f {dags}/ingest_sources.py" in runs


def test_dockerfile_runs_as_non_root_airflow_user():
    instructions = dockerfile_instructions()
    runs = " ".join(args for instr, args in instructions if instr == "RUN")
    assert re.search(r"useradd[^&]*--uid 50000[^&]*\bairflow\b", runs)
    users = [args for instr, args in instructions if instr == "USER"]
    assert users and users[-1].split(":")[0] in {"airflow", "50000"}


def test_dockerfile_sets_airflow_home_and_no_examples():
    env = " ".join(args for instr, args in dockerfile_instructions() if instr == "ENV")
    assert "AIRFLOW_HOME=/opt/airflow" in env
    assert "AIRFLOW__CORE__LOAD_EXAMPLES=false" in env


def test_dockerfile_installs_curl_for_healthchecks():
    runs = " ".join(args for instr, args in dockerfile_instructions() if instr == "RUN")
    assert re.search(r"apt-get install[^&]*\bcurl\b", runs)


def test_compose_dags_folder_matches_image(services):
    env = " ".join(args for instr, args in dockerfile_instructions() if instr == "ENV")
    image_dags = re.search(r"AIRFLOW__CORE__DAGS_FOLDER=(\S+)", env).group(1)
    for name in AIRFLOW_SERVICES:
        assert (
            services[name]["environment"].get("AIRFLOW__CORE__DAGS_FOLDER", image_dags)
            == image_dags
        )


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image():
    assert DOCKERIGNORE.is_file()
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".git", ".venv", "var"} <= patterns
    # The build needs these: pyproject.toml, the lock file, README.md (named by pyproject).
    for needed in ("pyproject.toml", "requirements.lock", "README.md", "dags", "hei", "transforms"):
        assert needed not in patterns
        assert not any(p in {"*", "*.md", "*.toml", "*.lock"} for p in patterns)
