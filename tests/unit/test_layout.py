"""The import rules of the layout (stated in ``transforms/__init__.py``), read from the source.

Every ``import`` statement counts, inside functions too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# package of transforms -> layer; a package imports only its own and lower layers
LAYERS = {
    "core": 1,
    "config": 2,
    "warehouse": 3,
    "quality": 4,
    "ingest": 5,
    "indicators": 5,
    "ops": 5,
    "publish": 6,
    "report": 7,
    "lineage": 7,
    "tasks": 8,
}
# what would make core do I/O or tie it to a scheduler or the network. Core may parse URLs
# (``sqlalchemy.engine.url``, ``urllib.parse``) and compute in an in-memory DuckDB.
NOT_IN_CORE = (
    "airflow",
    "great_expectations",
    "http",
    "os",
    "pathlib",
    "psycopg",
    "requests",
    "shutil",
    "socket",
    "sqlalchemy",
    "subprocess",
    "tempfile",
    "urllib.request",
)
ALLOWED_IN_CORE = ("sqlalchemy.engine.url",)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def stage(module: str) -> str | None:
    """``transforms.ingest.load`` -> ``ingest``; ``transforms.tasks`` -> ``tasks``."""
    parts = module.split(".")
    if parts[0] != "transforms" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in LAYERS else None


def name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


@pytest.mark.parametrize("path", modules("transforms"), ids=name)
def test_transforms_import_only_lower_layers(path: Path) -> None:
    own = stage(name(path))
    if own is None:
        return  # transforms/__init__.py
    wrong = {
        module
        for module in imports_of(path)
        if (other := stage(module)) is not None and other != own and LAYERS[other] >= LAYERS[own]
    }
    assert not wrong, f"{name(path)} ({own}, layer {LAYERS[own]}) imports {sorted(wrong)}"


@pytest.mark.parametrize("path", modules("transforms"), ids=name)
def test_transforms_never_import_airflow_the_dags_the_cli_or_the_generator(path: Path) -> None:
    roots = {module.split(".")[0] for module in imports_of(path)}
    assert not roots & {"airflow", "dags", "hei", "synth"}


def within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in packages)


@pytest.mark.parametrize("path", modules("transforms/core"), ids=name)
def test_core_does_no_io(path: Path) -> None:
    wrong = {
        m for m in imports_of(path) if within(m, NOT_IN_CORE) and not within(m, ALLOWED_IN_CORE)
    }
    assert not wrong, f"{name(path)} imports {sorted(wrong)}"
    calls = [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)]
    named = {c.func.id for c in calls if isinstance(c.func, ast.Name)}
    assert "open" not in named, "core reads only its reference data, through reference_file()"
    connects = [c for c in calls if isinstance(c.func, ast.Attribute) and c.func.attr == "connect"]
    assert all(not c.args and not c.keywords for c in connects), "only in-memory DuckDB"


@pytest.mark.parametrize("path", modules("synth"), ids=name)
def test_the_generator_is_independent_of_the_pipeline(path: Path) -> None:
    """The generator is the tests' oracle: it must not reuse the code it checks."""
    roots = {module.split(".")[0] for module in imports_of(path)}
    assert not roots & {"transforms", "hei", "dags"}


@pytest.mark.parametrize("path", sorted((ROOT / "dags").glob("*.py")), ids=name)
def test_dag_files_import_only_the_shared_wiring(path: Path) -> None:
    imported = {m for m in imports_of(path) if m.split(".")[0] not in {"__future__"}}
    assert all(m.startswith("dags.common") for m in imported), sorted(imported)


def test_the_old_flat_modules_are_gone() -> None:
    """A module left at ``transforms/`` top level would escape the layer rules."""
    assert sorted(p.name for p in (ROOT / "transforms").glob("*.py")) == ["__init__.py", "tasks.py"]
