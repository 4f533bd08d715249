"""The project installed as a wheel (not editable) runs the pipeline from any folder.

SQL, the indicator catalogue, the reference data and the DAG files must come with the
package: a path computed from the source tree would work in the repository and fail here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.cli import user_env

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).with_name("uv")


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the locked dependencies and the built wheel."""
    root = tmp_path_factory.mktemp("wheel")
    run(UV, "build", "--wheel", "--out-dir", root / "dist", ROOT, cwd=root)
    [wheel] = (root / "dist").glob("*.whl")
    python = root / "venv" / "bin" / "python"
    run(UV, "venv", "--quiet", "--python", sys.executable, root / "venv", cwd=root)
    run(UV, "pip", "sync", "--quiet", "--python", python, ROOT / "requirements.lock", cwd=root)
    run(UV, "pip", "install", "--quiet", "--no-deps", "--python", python, wheel, cwd=root)
    return root


def test_the_wheel_carries_its_code_and_data_outside_the_source_tree(installed: Path) -> None:
    python = installed / "venv" / "bin" / "python"
    probe = (
        "import transforms, dags; "
        "from transforms.warehouse.ddl import SQL_DIR; "
        "from transforms.config.catalogue import CATALOGUE; "
        "from hei.airflow_env import DAGS_FOLDER; "
        "print(transforms.__file__, SQL_DIR, CATALOGUE, DAGS_FOLDER, sep='\\n')"
    )
    paths = run(python, "-c", probe, cwd=installed).split()
    assert all(str(installed / "venv") in p for p in paths), paths
    assert all(Path(p).exists() for p in paths), paths


def test_a_wheel_install_runs_hei_run(installed: Path) -> None:
    env = {k: v for k, v in user_env(installed).items() if not k.startswith("PYTHON")}
    hei = installed / "venv" / "bin" / "hei"
    landing, warehouse = installed / "landing", installed / "warehouse.duckdb"
    run(
        hei,
        "synth",
        "--out",
        landing,
        "--start",
        "2025-01",
        "--end",
        "2025-02",
        "--scale",
        "0.01",
        cwd=installed,
        env=env,
    )
    run(
        hei,
        "run",
        "--landing",
        landing,
        "--warehouse",
        f"duckdb:///{warehouse}",
        "--until",
        "2025-02",
        cwd=installed,
        env=env,
    )
    engine = sa.create_engine(f"duckdb:///{warehouse}")
    with engine.connect() as conn:
        loaded = conn.execute(
            sa.text("select count(*) from audit.file_loads where status = 'loaded'")
        ).scalar_one()
        values = conn.execute(sa.text("select count(*) from indicators.values")).scalar_one()
    engine.dispose()
    assert loaded == 20  # ten sources, two months
    assert values > 0
    docs = installed / "var" / "data_docs"  # page templates and vendored assets are package data
    assert (docs / "static" / "vendor" / "jquery" / "dist" / "jquery.min.js").exists()
    assert "static/vendor/bootstrap" in (docs / "index.html").read_text()
