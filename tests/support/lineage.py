"""OpenLineage events of a pipeline run, read back from the file transport, as a graph."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

Dataset = tuple[str, str]  # (namespace, name)

# What ``hei run`` does, with any run configuration: ``hei run`` itself passes only its
# options, and a run triggered from the UI may carry any setting (the pseudonym key too).
DRIVER = """
import json, sys
from pathlib import Path
from hei import airflow_env
var, conf = Path(sys.argv[1]), json.loads(sys.argv[2])
home = airflow_env.configure(var)
airflow_env.migrate_if_needed(home)
from hei.runner import PIPELINE_ORDER, run_dags
outcomes = run_dags(PIPELINE_ORDER, var / "logs" / "lineage-run.log", conf)
print(json.dumps({o.dag_id: o.state for o in outcomes}))
"""


def run_dags_with_conf(
    root: Path, conf: dict, env: dict[str, str], timeout: float = 900
) -> dict[str, str]:
    """Every DAG of the pipeline through ``dag.test()`` with ``conf``; their final states."""
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(root / "var"), json.dumps(conf)],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def task_job(event: dict) -> str:
    """``<dag_id>.<task_id>`` of a task's event."""
    return event["job"]["name"]


def datasets(event: dict, side: str) -> set[Dataset]:
    return {(d["namespace"], d["name"]) for d in event.get(side) or []}


def producers(events: list[dict]) -> dict[Dataset, set[Dataset]]:
    """Each dataset written by a task run -> every dataset that run read (all events of a
    run together, as OpenLineage consumers merge them)."""
    runs: dict[str, dict[str, set[Dataset]]] = defaultdict(lambda: defaultdict(set))
    for event in events:
        run = runs[event["run"]["runId"]]
        run["inputs"] |= datasets(event, "inputs")
        run["outputs"] |= datasets(event, "outputs")
    made_from: dict[Dataset, set[Dataset]] = defaultdict(set)
    for run in runs.values():
        for output in run["outputs"]:
            made_from[output] |= run["inputs"]
    return made_from


def trace_back(events: list[dict], start: Dataset) -> set[Dataset]:
    """Every dataset ``start`` was made from, directly or through others."""
    made_from = producers(events)
    seen: set[Dataset] = set()
    todo = [start]
    while todo:
        for source in made_from.get(todo.pop(), set()) - seen:
            seen.add(source)
            todo.append(source)
    return seen
