"""The Dockerfile and .dockerignore checked for the mistakes that would give an image other
than the one tested: versions not from the lock file, a Python other than the project's,
DAGs where Airflow does not look, root at run time, secrets in the build context."""

from __future__ import annotations

import re
import tomllib

from tests.support.deploy import (
    DOCKERIGNORE,
    ROOT,
    compose,
    dockerfile,
    dockerfile_env,
)


def test_image_python_is_the_projects():
    [base] = dockerfile("FROM")
    version = re.fullmatch(r"python:(\d+\.\d+)-slim(-\w+)?", base)
    assert version, base
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert f">={version[1]}" in requires, (base, requires)
    assert f"/python{version[1]}/site-packages/" in dockerfile_env()["AIRFLOW__CORE__DAGS_FOLDER"]


def test_image_has_the_system_libraries_weasyprint_loads():
    """The assurance report's PDF: WeasyPrint opens Pango (and needs a font) at run time, and
    a slim image has neither, so the report task would fail only in production."""
    packages = " ".join(dockerfile("RUN"))
    for package in ("libpango-1.0-0", "libpangoft2-1.0-0", "fonts-dejavu-core"):
        assert re.search(rf"apt-get install[^&]*\b{re.escape(package)}\b", packages), package


def test_image_installs_exactly_the_lock_file():
    """Every third-party package from requirements.lock, hash-checked; the project itself
    without resolving anything (no version from an index) and not as an editable install."""
    assert any("requirements.lock" in args for args in dockerfile("COPY"))
    commands = [c.strip() for run in dockerfile("RUN") for c in run.split("&&")]
    installs = [c for c in commands if re.search(r"\bpip install\b", c)]
    assert any("--require-hashes" in c and "requirements.lock" in c for c in installs)
    for command in installs:
        if "requirements.lock" not in command:
            assert "--no-deps" in command, command
            assert not re.search(r"\s(-e|--editable)\s", command), command
    assert "pip check" in commands


def test_dags_folder_is_the_installed_dags_and_compose_agrees():
    """The build fails if the DAG files did not come with the wheel, at the folder Airflow is
    pointed at; compose must not point elsewhere."""
    folder = dockerfile_env()["AIRFLOW__CORE__DAGS_FOLDER"]
    checked = re.findall(rf"test -f {re.escape(folder)}/(\S+)", " ".join(dockerfile("RUN")))
    assert checked and all((ROOT / "dags" / name).is_file() for name in checked), checked
    for name, service in compose()["services"].items():
        env = service.get("environment") or {}
        assert env.get("AIRFLOW__CORE__DAGS_FOLDER", folder) == folder, name


def test_image_runs_as_the_non_root_user_compose_expects():
    [user] = dockerfile("USER")[-1:]
    uid, _, gid = user.partition(":")
    assert uid not in ("0", "root"), user
    runs = " ".join(dockerfile("RUN"))
    assert re.search(rf"useradd[^&]*--uid {uid}\b[^&]*--gid 0\b", runs), "no such user"
    for name, service in compose()["services"].items():
        if "build" in service and service.get("restart", "no") != "no":
            assert service["user"] == f"${{AIRFLOW_UID:-{uid}}}:0", name


def test_dockerignore_keeps_secrets_and_local_state_out_and_the_build_inputs_in():
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".git", ".venv", "var"} <= patterns
    assert not patterns & {"*", "*.md", "*.toml", "*.lock", "*.py"}
    # The build needs these: pyproject.toml names README.md as its readme.
    for needed in ("pyproject.toml", "requirements.lock", "README.md", "dags", "hei", "transforms"):
        assert needed not in patterns
