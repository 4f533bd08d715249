"""``hei``: run the pipeline without a scheduler.

    hei synth --out DIR      write synthetic landing files (every source) and truth.json
    hei run                  load every new or changed delivery, through Airflow's dag.test()
    hei status               the latest load per source and month, and late deliveries
    hei publish              publish the partnership release (if the data changed)
    hei releases             list the releases at the publish target
    hei report               build the monthly assurance report from the latest release
    hei wres --year YYYY     each organisation's WRES return for the year ending March YYYY
    hei warehouse-roles      set up the PostgreSQL warehouse's roles (an administrator)
    hei grant-login KIND NAME  a loader's, engineer's or analyst's login (PostgreSQL)
    hei grant-analyst NAME   the same as grant-login analyst NAME

Options default from the settings (``HEI_*`` environment variables or ``.env``); command-line
options override them for this invocation and are passed to the DAG tasks the same way.
Everything ``hei`` writes (``var/``, the warehouse file, logs) is private to the user, and no
URL is printed with its password.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from transforms.config.settings import Settings, secret_settings
from transforms.core.periods import last_complete_month, month_after
from transforms.core.redaction import display_location, display_url, display_webhook, scrub

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

# command-line option -> the setting it overrides for one invocation
RUN_OPTIONS = {
    "landing": "landing_dir",
    "warehouse": "warehouse_url",
    "publish": "publish_url",
    "reports": "reports_dir",
}

# the kinds of warehouse login (transforms.warehouse.logins.ROLES), and what each may do
LOGIN_RIGHTS = {
    "loader": "writes the pipeline's schemas",
    "engineer": "reads every schema",
    "analyst": "reads the mart views",
}


def month(text: str) -> str:
    """A ``YYYY-MM`` option, checked before anything runs."""
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a month: write YYYY-MM, e.g. 2025-03")
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hei", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    synth = commands.add_parser("synth", help="generate synthetic landing files")
    synth.add_argument("--out", type=Path, required=True)
    synth.add_argument(
        "--start", type=month, help="first month YYYY-MM (default: 24 months before --end)"
    )
    synth.add_argument(
        "--end", type=month, help="last month YYYY-MM (default: last complete month)"
    )
    synth.add_argument("--scale", type=float, default=1.0)
    synth.add_argument("--seed", type=int, default=42)
    synth.add_argument("--faults", type=float, default=0.002)

    run = commands.add_parser("run", help="load new deliveries through Airflow")
    run.add_argument("--landing", help="landing zone folder (HEI_LANDING_DIR)")
    run.add_argument("--warehouse", help="SQLAlchemy URL of the warehouse (HEI_WAREHOUSE_URL)")
    run.add_argument(
        "--publish", help="publish target: a folder or az://, s3:// URL (HEI_PUBLISH_URL)"
    )
    run.add_argument("--reports", help="report folder (HEI_REPORTS_DIR)")
    run.add_argument(
        "--until", type=month, help="load months up to YYYY-MM (default: last complete month)"
    )

    status = commands.add_parser("status", help="latest loads per source and month")
    status.add_argument("--warehouse", help="SQLAlchemy URL of the warehouse")
    status.add_argument("--source", help="only this source")
    status.add_argument(
        "--quarantine",
        nargs=2,
        metavar=("SOURCE", "PERIOD"),
        help="why rows of SOURCE's YYYY-MM delivery were quarantined",
    )

    publish = commands.add_parser("publish", help="publish the partnership release")
    publish.add_argument("--warehouse", help="SQLAlchemy URL of the warehouse")
    publish.add_argument("--publish", help="publish target: a folder or az://, s3:// URL")

    releases = commands.add_parser("releases", help="list the releases at the publish target")
    releases.add_argument("--publish", help="publish target: a folder or az://, s3:// URL")

    report = commands.add_parser("report", help="build the monthly assurance report")
    report.add_argument("--warehouse", help="SQLAlchemy URL of the warehouse")
    report.add_argument("--publish", help="publish target the release is read from")
    report.add_argument("--reports", help="report folder (HEI_REPORTS_DIR)")
    report.add_argument("--month", type=month, help="the month's newest release (default: latest)")

    wres = commands.add_parser(
        "wres", help="each organisation's WRES return (exact figures) as a CSV file"
    )
    wres.add_argument(
        "--year", type=int, required=True, help="the financial year ending in March YYYY"
    )
    wres.add_argument("--warehouse", help="SQLAlchemy URL of the warehouse")
    wres.add_argument("--out", type=Path, help="folder for the files (default: var/wres/YYYY)")

    roles = commands.add_parser(
        "warehouse-roles",
        help="set up the loader, engineer and analyst roles (PostgreSQL; an administrator)",
    )
    roles.add_argument("--warehouse", help="SQLAlchemy URL of the warehouse, as an administrator")
    login = commands.add_parser(
        "grant-login", help="create a loader's, engineer's or analyst's login (PostgreSQL)"
    )
    login.add_argument(
        "kind",
        choices=list(LOGIN_RIGHTS),
        help="loader (the DAGs), engineer (reads everything) or analyst (reads mart)",
    )
    _login_arguments(login)
    analyst = commands.add_parser(
        "grant-analyst", help="create a partner analyst's login (as grant-login analyst)"
    )
    analyst.set_defaults(kind="analyst")
    _login_arguments(analyst)
    return parser


def _login_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the login name (lower-case letters, digits and _)")
    parser.add_argument("--warehouse", help="SQLAlchemy URL of the warehouse, as an administrator")
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin instead of generating one",
    )


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    """The settings given on the command line, by setting name."""
    return {
        field: str(getattr(args, option))
        for option, field in RUN_OPTIONS.items()
        if getattr(args, option, None) is not None
    }


def cmd_synth(args: argparse.Namespace) -> int:
    from synth import generate

    end = args.end or last_complete_month()
    start = args.start or month_after(end, -23)
    started = time.monotonic()
    truth = generate(args.out, start, end, scale=args.scale, seed=args.seed, faults=args.faults)
    files = truth["files"]
    rows = sum(f["rows"] for f in files.values())
    print(
        f"wrote {len(files)} files ({rows:,} rows) for {start}..{end} to {args.out} "
        f"in {time.monotonic() - started:.1f} s; truth in {args.out / 'truth.json'}"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from hei import airflow_env

    overrides = _overrides(args)
    settings = Settings(**overrides)
    until = args.until or last_complete_month()
    home = airflow_env.configure(settings.var_dir)
    conf = {"settings": _keep_secrets_out(overrides), "until": until}
    with airflow_env.one_run_at_a_time(home, sys.stderr):
        return _run(settings, home, conf)


def _keep_secrets_out(overrides: dict[str, str]) -> dict[str, str]:
    """The options a run's configuration may carry.

    Airflow stores a run's configuration and OpenLineage copies it into every event of the
    run, so an option holding a secret (a warehouse URL with its password) is put in this
    process's environment instead, where the tasks ``dag.test()`` runs here read it.
    """
    secret = secret_settings(overrides)
    for name in secret:
        os.environ[f"HEI_{name.upper()}"] = overrides[name]
    return {name: value for name, value in overrides.items() if name not in secret}


def _run(settings: Settings, home: Path, conf: dict) -> int:
    """Run the DAGs with ``conf`` as each run's configuration (read by the tasks)."""
    from hei import airflow_env

    if _warehouse_file_held(settings):
        return 3
    if airflow_env.migrate_if_needed(home):
        print(f"set up Airflow metadata in {home}", file=sys.stderr)
    from hei.runner import NOT_RUN, PIPELINE_ORDER, run_dags, work_left

    log_path = settings.var_dir / "logs" / f"hei-run-{time.strftime('%Y%m%dT%H%M%S')}.log"
    print(
        f"hei run: landing {settings.landing_dir} -> {display_url(settings.warehouse_url)} "
        f"(months up to {conf['until']}; alerts to "
        f"{display_webhook(settings.alert_webhook_url)})",
        file=sys.stderr,
    )
    with warehouse_errors_reported(settings):
        skip = work_left(settings, conf["until"])
    outcomes = run_dags(PIPELINE_ORDER, log_path, conf, skip)
    with warehouse_errors_reported(settings):
        _print_summary(settings, outcomes, log_path, home)
    return 0 if all(o.state in ("success", NOT_RUN) for o in outcomes) else 1


def _warehouse_file_held(settings: Settings) -> bool:
    """Say once, before any DAG runs, that another program holds the DuckDB warehouse file."""
    from transforms.warehouse.engine import duckdb_holder

    holder = duckdb_holder(settings.warehouse_url)
    if holder:
        print(
            f"hei run: the warehouse file {display_url(settings.warehouse_url)} is open in "
            f"another program: {holder}. DuckDB lets no other program open it meanwhile. "
            "Close it there (a notebook, DBeaver, another hei run) and run hei run again. "
            "Nothing was loaded.",
            file=sys.stderr,
        )
    return holder is not None


@contextmanager
def warehouse_errors_reported(settings: Settings) -> Iterator[None]:
    """Turn a failure to reach or query the warehouse into one line, with no secret in it."""
    from sqlalchemy.exc import DBAPIError

    try:
        yield
    except DBAPIError as error:
        reason = scrub(str(error.orig).strip().splitlines()[0], settings.secret_values())
        raise SystemExit(
            f"hei: the warehouse at {display_url(settings.warehouse_url)} failed: {reason}"
        ) from None


def _print_summary(settings: Settings, outcomes: list, log_path: Path, home: Path) -> None:
    from hei import airflow_env
    from transforms.ops import status
    from transforms.warehouse import engine as warehouse

    engine = warehouse.make_engine(settings.warehouse_url)
    run_ids = [o.run_id for o in outcomes if o.run_id]
    totals = status.run_totals(engine, run_ids)
    print("\nDAG runs:")
    runs = [
        {"dag_id": o.dag_id, "state": o.state, "seconds": f"{o.seconds:.1f}", "why": o.reason}
        for o in outcomes
    ]
    print(status.format_table(runs, ["dag_id", "state", "seconds", "why"]))
    print("\nFiles processed in this run:")
    print(
        status.format_table(
            totals, ["source", "status", "files", "rows_read", "rows_loaded", "rows_quarantined"]
        )
        if totals
        else "  none: nothing new in the landing zone"
    )
    for refused in status.refused_in_runs(engine, run_ids):
        print(f"{refused['status'].replace('_', ' ').upper()} {refused['error']}")
    _print_indicators(engine)
    warnings = status.warnings_in_runs(engine, run_ids)
    if warnings:
        print(f"\n{len(warnings)} data-quality warning(s) in this run (all of them: hei status):")
        for message in warnings[:10]:
            print(f"  {message}")
    if settings.uses_development_key:
        print(
            "\nNOTE: NHS numbers were pseudonymised with a generated development key "
            f"({settings.var_dir / 'pseudonym.key'}); set HEI_PSEUDONYM_KEY for real data."
        )
    print(
        f"\nwarehouse:  {display_url(settings.warehouse_url)}\nlanding:    {settings.landing_dir}\n"
        f"data docs:  {settings.var_dir / 'data_docs' / 'index.html'}\n"
        f"release:    {_latest_release(settings)}\n"
        f"report:     {_latest_report(settings)}\n"
        f"lineage:    {airflow_env.lineage_destination()}\n"
        f"airflow:    {home} (run `make airflow` for the UI)\nlog:        {log_path}\n"
        "status:     hei status"
    )


def _latest_release(settings: Settings) -> str:
    from transforms.publish.store import ReleaseStore

    pointer = ReleaseStore(settings.publish_url).latest()
    target = display_location(settings.publish_url)
    if pointer is None:
        return f"none yet at {target} (hei releases)"
    return f"{pointer['release']} at {target}/{pointer['path']} (hei releases)"


def _latest_report(settings: Settings) -> str:
    """The newest month's report under the reports folder, or where reports will go."""
    from transforms.report.inputs import HTML_NAME

    built = sorted(settings.reports_dir.glob(f"*/{HTML_NAME}"))
    return str(built[-1]) if built else f"none yet in {settings.reports_dir} (hei report)"


def _print_indicators(engine: Engine) -> None:
    from transforms.ops import status

    rows = status.indicator_summary(engine)
    print("\nIndicators (indicators.values; partners see mart.indicator_values):")
    columns = ["indicator_id", "measure", "periods", "latest_period_end", "values", "suppressed"]
    print(status.format_table(rows, columns) if rows else "  none computed yet")
    for row in status.not_computed(engine):
        period = f"{row['period_start']} to {row['period_end']}"
        print(f"  {row['indicator_id']} {period}: {row['note']}")


def cmd_status(args: argparse.Namespace) -> int:
    settings = Settings(**_overrides(args))
    with warehouse_errors_reported(settings):
        return _status(args, settings)


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from transforms.ops import status
    from transforms.warehouse import ddl
    from transforms.warehouse import engine as warehouse

    engine = warehouse.make_engine(settings.warehouse_url)
    ddl.apply_ddl(engine)
    if args.quarantine:
        source, period = args.quarantine
        rows = status.quarantine_reasons(engine, source, period)
        print(
            status.format_table(rows, ["file_name", "reason", "rows", "first_row", "example"])
            if rows
            else f"no quarantined rows for {source} {period}"
        )
        return 0
    rows = status.latest_loads(engine, args.source)
    if not rows:
        print("no loads recorded yet: run `hei run`")
    else:
        print(status.format_table(rows, STATUS_COLUMNS))
        if args.source is None:
            _print_indicators(engine)
    warnings = status.current_warnings(engine, args.source)
    if warnings:
        print(f"\nData-quality warnings ({len(warnings)}):")
        for warning in warnings:
            print(f"  {warning['message']}")
    _print_late(engine, settings, args.source)
    return 0


def _print_late(engine: Engine, settings: Settings, source: str | None) -> None:
    """The months each source owes (the ``check_deliveries`` DAG alerts on them)."""
    from transforms.config.sources import SOURCES
    from transforms.core import periods
    from transforms.ingest import landing
    from transforms.ops import deliveries

    today = periods.utc_today()
    chosen = [s for s in SOURCES.values() if source is None or s.name == source]
    landed = landing.landed_months(settings.landing_dir, [s.name for s in chosen])
    with engine.connect() as conn:
        late = deliveries.late_deliveries(
            conn, today, settings.deliveries_expected_from, landed=landed, sources=chosen
        )
    if late:
        print(f"\nLate deliveries on {today:%Y-%m-%d} ({len(late)}):")
        for delivery in late:
            print(f"  {delivery.message}")


def cmd_publish(args: argparse.Namespace) -> int:
    """The ``publish_partnership`` step by hand, without Airflow."""
    from transforms.publish.gate import GateFailure, GateOutOfMemory
    from transforms.publish.release import PublishError
    from transforms.publish.store import TargetUnusable
    from transforms.tasks import publish_release

    settings = Settings(**_overrides(args))
    with warehouse_errors_reported(settings), library_output_to_stderr():
        try:
            outcome = publish_release(settings, run_id=None)
        except (GateFailure, GateOutOfMemory, PublishError, TargetUnusable) as failure:
            print(f"hei publish: nothing published: {failure}", file=sys.stderr)
            return 1
    print(_describe_outcome(outcome))
    return 0


@contextmanager
def library_output_to_stderr() -> Iterator[None]:
    """Send what C libraries print to stdout (HiGHS's banner, from the gate's audit) to
    stderr, so that stdout holds only the command's own answer."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _describe_outcome(outcome: dict) -> str:
    if outcome["status"] == "published":
        supersedes = f" (supersedes {outcome['supersedes']})" if outcome["supersedes"] else ""
        return f"published release {outcome['release']}{supersedes}: {outcome['path']}"
    if outcome["status"] == "unchanged":
        return f"nothing changed since release {outcome['release']}: nothing published"
    return "nothing has been loaded yet: nothing published"


def cmd_releases(args: argparse.Namespace) -> int:
    from transforms.ops import status
    from transforms.publish.store import COMPLETE, ReleaseStore, TargetUnusable

    settings = Settings(**_overrides(args))
    try:
        store = ReleaseStore(settings.publish_url)
    except TargetUnusable as unusable:
        print(f"hei releases: {unusable}", file=sys.stderr)
        return 1
    entries = store.entries()
    complete = [e for e in entries if e.status == COMPLETE]
    if complete:
        latest = (store.latest() or {}).get("release")
        print(status.format_table([_release_row(e, latest) for e in complete], RELEASE_COLUMNS))
    else:
        print(f"no releases at {display_location(settings.publish_url)}")
    incomplete = [e.release for e in entries if e.status != COMPLETE]
    if incomplete:
        print(
            f"ignored: {len(incomplete)} incomplete release folder(s) without a manifest "
            f"({', '.join(incomplete)}), left by a publish cut short; the next publish removes "
            "them",
            file=sys.stderr,
        )
    return 0


RELEASE_COLUMNS = ["release", "status", "covers", "created_at", "supersedes", "rows"]


def _release_row(entry, latest: str | None) -> dict:
    """One line of ``hei releases``; ``latest`` is what ``latest.json`` points at."""
    manifest = entry.manifest or {}
    covers = manifest.get("covers", {})
    tables = [f for f in manifest.get("files", []) if f.get("format") == "parquet"]
    state = "latest" if entry.release == latest else "complete"
    return {
        "release": entry.release,
        "status": state,
        "covers": f"{covers.get('first_month', '')}..{covers.get('last_month', '')}"
        if covers
        else "",
        "created_at": manifest.get("created_at", ""),
        "supersedes": manifest.get("supersedes") or "",
        "rows": ", ".join(f"{f['table']} {f['rows']:,}" for f in tables),
    }


def cmd_report(args: argparse.Namespace) -> int:
    """The ``assurance_report`` step by hand, without Airflow."""
    from transforms.publish.store import TargetUnusable
    from transforms.report.inputs import NoRelease
    from transforms.tasks import build_report

    settings = Settings(**_overrides(args))
    with warehouse_errors_reported(settings):
        try:
            built = build_report(settings, args.month)
        except (NoRelease, TargetUnusable) as missing:
            print(f"hei report: {missing}", file=sys.stderr)
            return 1
    print(f"assurance report for {built['month']} (release {built['release']}):")
    print(f"  {built['html']}\n  {built['pdf']}")
    return 0


def cmd_wres(args: argparse.Namespace) -> int:
    """Write ``wres_return_<organisation>_<year>.csv`` per organisation."""
    from datetime import date

    from transforms.indicators import wres_store
    from transforms.warehouse import engine as warehouse

    settings = Settings(**_overrides(args))
    out = args.out or settings.var_dir / "wres" / str(args.year)
    with warehouse_errors_reported(settings):
        with warehouse.make_engine(settings.warehouse_url).connect() as conn:
            found = wres_store.returns(conn, date(args.year, 3, 31))
    if not found:
        print(
            f"hei wres: no WRES figures for the year ending March {args.year}: a year needs its "
            "March workforce snapshot and its twelve months of recruitment loaded",
            file=sys.stderr,
        )
        return 1
    out.mkdir(parents=True, exist_ok=True)
    for organisation, rows in found.items():
        path = out / f"wres_return_{organisation}_{args.year}.csv"
        rows.to_csv(path, index=False, lineterminator="\n")
        print(path)
    return 0


def cmd_warehouse_roles(args: argparse.Namespace) -> int:
    from transforms.warehouse import logins

    settings = Settings(**_overrides(args))
    try:
        with warehouse_errors_reported(settings):
            logins.set_up_roles(settings.warehouse_url)
    except logins.LoginError as error:
        print(f"hei warehouse-roles: {error}", file=sys.stderr)
        return 2
    roles = ", ".join(logins.ROLES.values())
    print(f"roles {roles} set up on {display_url(settings.warehouse_url)}", file=sys.stderr)
    return 0


def cmd_grant_login(args: argparse.Namespace) -> int:
    from transforms.warehouse import logins

    settings = Settings(**_overrides(args))
    typed = args.password_stdin
    password = sys.stdin.readline().rstrip("\n") if typed else logins.new_password()
    try:
        with warehouse_errors_reported(settings):
            done = logins.grant_login(settings.warehouse_url, args.kind, args.name, password)
    except logins.LoginError as error:
        print(f"hei {args.command}: {error}", file=sys.stderr)
        return 2
    print(
        f"{done} login {args.name} in role {logins.ROLES[args.kind]} ({LOGIN_RIGHTS[args.kind]}) "
        f"on {display_url(settings.warehouse_url)}",
        file=sys.stderr,
    )
    if not typed:  # the only time it is shown: the server keeps a hash of it
        print(f"password: {password}")
    return 0


STATUS_COLUMNS = [
    "source",
    "period",
    "file_name",
    "status",
    "rows_loaded",
    "rows_quarantined",
    "known_recorded_pct",
    "known_linked_pct",
    "warnings",
    "error",
]


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's per-thread malloc arenas (as MALLOC_ARENA_MAX does).

    The loading threads allocate and free large buffers; with glibc's default of 8 arenas per
    core, the freed memory stays with the process and a long run grows by hundreds of MB.
    """
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # -8 is M_ARENA_MAX
    except OSError:  # not glibc: nothing to tune
        pass


def main(argv: list[str] | None = None) -> int:
    from hei.airflow_env import keep_files_private

    limit_malloc_arenas()
    keep_files_private()
    args = _parser().parse_args(argv)
    handler = {
        "synth": cmd_synth,
        "run": cmd_run,
        "status": cmd_status,
        "publish": cmd_publish,
        "releases": cmd_releases,
        "report": cmd_report,
        "wres": cmd_wres,
        "warehouse-roles": cmd_warehouse_roles,
        "grant-login": cmd_grant_login,
        "grant-analyst": cmd_grant_login,
    }[args.command]
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
