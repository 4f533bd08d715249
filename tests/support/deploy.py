"""Reading the Docker deployment files as Compose and Docker would, without a Docker engine.

The compose file is parsed with PyYAML (merge keys resolved) and Compose's ``${VAR...}``
interpolation (https://docs.docker.com/reference/compose-file/interpolation/) is reproduced
by :func:`interpolate`; the Dockerfile is split into its instructions.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
LOCK_FILE = ROOT / "requirements.lock"
COMPOSE_SCHEMA = ROOT / "tests" / "fixtures" / "compose-spec" / "compose-spec.json"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+x}...
_BRACED = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")
_BARE = re.compile(r"\$(?P<name>[A-Za-z_][A-Za-z0-9_]*)")


class MissingRequiredVariable(Exception):
    def __init__(self, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.name = name


@cache
def compose_text() -> str:
    return COMPOSE_FILE.read_text()


def compose() -> dict:
    """The compose file as parsed YAML (a fresh copy: tests may change it)."""
    return yaml.safe_load(compose_text())


@cache
def compose_schema() -> dict:
    return json.loads(COMPOSE_SCHEMA.read_text())


def variables(text: str) -> list[tuple[str, str | None, str]]:
    """Every interpolation in ``text`` as (name, operator or None, argument); ``$$`` escapes
    (a literal ``$`` for the container's shell) are not interpolations."""
    found = []
    for part in text.split("$$"):
        found += [(m["name"], m["op"], m["arg"] or "") for m in _BRACED.finditer(part)]
        found += [(m["name"], None, "") for m in _BARE.finditer(_BRACED.sub("", part))]
    return found


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose-style interpolation of one string, ``$$`` giving a literal ``$``."""

    def braced(m: re.Match[str]) -> str:
        name, op, arg = m["name"], m["op"], m["arg"] or ""
        is_set, is_non_empty = name in env, bool(env.get(name))
        if op is None:
            return env.get(name, "")
        if op in (":-", "-"):
            return env[name] if (is_non_empty if op == ":-" else is_set) else arg
        if op in (":?", "?"):
            if not (is_non_empty if op == ":?" else is_set):
                raise MissingRequiredVariable(name, arg)
            return env[name]
        return arg if (is_non_empty if op == ":+" else is_set) else ""

    parts = [
        _BARE.sub(lambda m: env.get(m["name"], ""), _BRACED.sub(braced, part))
        for part in value.split("$$")
    ]
    return "$".join(parts)


def interpolate_tree(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {k: interpolate_tree(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(v, env) for v in node]
    return node


def strings(node: Any):
    """Every string in a parsed YAML tree, keys included."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def env_example() -> dict[str, str | None]:
    """Variables .env.example names: assigned ones with their value (often empty, to fill
    in), commented-out ones (``# NAME=default``: optional, default shown) with None."""
    found: dict[str, str | None] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if m := re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line):
            found[m[1]] = m[2]
        elif m := re.match(r"\s*#\s*([A-Za-z_][A-Za-z0-9_]*)=", line):
            found.setdefault(m[1], None)
    return found


def filled_env(**overrides: str) -> dict[str, str]:
    """A .env made from .env.example by someone who filled in every value it asks for."""
    example = env_example()
    env = {
        name: value or f"test-{name.lower()}"
        for name, value in example.items()
        if value is not None
    }
    return env | overrides


def resolved_services(**overrides: str) -> dict[str, dict]:
    """The services as Compose sees them with :func:`filled_env` as .env."""
    return interpolate_tree(compose(), filled_env(**overrides))["services"]


def volume_targets(service: dict) -> dict[str, str]:
    """container path -> 'source[:mode]' for short-syntax volumes."""
    targets = {}
    for spec in service.get("volumes", []):
        source, target, *mode = spec.split(":")
        targets[target] = ":".join([source, *mode])
    return targets


def healthcheck_argv(service: dict) -> list[str]:
    """The healthcheck's command line: ``CMD`` as given, ``CMD-SHELL`` as one string."""
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return ["CMD-SHELL", test]
    return test


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


def dockerfile(instruction: str) -> list[str]:
    """The arguments of every ``instruction`` (e.g. RUN) in the Dockerfile, in order."""
    return [args for name, args in dockerfile_instructions() if name == instruction]


def dockerfile_env() -> dict[str, str]:
    """The image's environment as its ENV instructions set it (``KEY=value`` form)."""
    env: dict[str, str] = {}
    for args in dockerfile("ENV"):
        for m in re.finditer(r"([A-Za-z_][A-Za-z0-9_]*)=(\S*)", args):
            env[m[1]] = m[2]
    return env
