"""Compute the catalogue into ``indicators.values``, recomputing only what changed.

Each reporting period of each indicator has a fingerprint of its inputs: the catalogue entry,
the loads of every month it spans (of each source it reads) and the state of best-known
ethnicity. A period whose fingerprint is unchanged is skipped; the others are recomputed and
replaced in one transaction with their fingerprints, so a failed compute leaves the tables as
they were and a rerun of the same data gives the same rows. Best-known ethnicity is computed
over all data, so a change in it (most monthly loads bring some) recomputes every period: the
same data always gives the same values, whatever order it arrived in. A compute whose inputs
as a whole are unchanged (``fingerprints``: no new load, no new link, the same catalogue and
method) stops after reading them and writes nothing.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Connection

from transforms.config.catalogue import PERIOD_COUNTS, QUALITY_SOURCE, Count, Indicator, catalogue
from transforms.config.sources import REGISTER, SOURCES
from transforms.core import disclosure, disclosure_audit, ethnicity, statistics
from transforms.core import periods as period_module
from transforms.core.disclosure import STATISTIC_NAMES
from transforms.core.disclosure_audit import Finding, attack
from transforms.core.periods import Period, month_index, periods, utcnow
from transforms.indicators import assembly, fingerprints
from transforms.indicators import counts as aggregation
from transforms.indicators.assembly import Rows
from transforms.quality.completeness import ALL_ORGANISATIONS
from transforms.warehouse.bulk import append_arrow, arrow_types
from transforms.warehouse.engine import allow_grouping_memory, fetch_frame
from transforms.warehouse.tables import (
    audit_file_loads,
    core_person_ethnicity,
    indicators_catalogue,
    indicators_inputs,
    indicators_not_computed,
    indicators_published,
    indicators_values,
)
from transforms.warehouse.views import mart_indicator_values

log = logging.getLogger(__name__)

PART = "indicators"  # its row of indicators.compute_inputs
METHOD_MODULES = (
    sys.modules[__name__],
    aggregation,
    assembly,
    disclosure,
    disclosure_audit,
    statistics,
    ethnicity,
    period_module,
)
"""The code the values follow from: part of every fingerprint, so that a change to it
recomputes every period (as do the reference tables, see ``fingerprints.reference_digest``)."""

VALUE_COLUMNS = arrow_types(indicators_values)
PUBLISHED_COLUMNS = arrow_types(indicators_published)
COMPUTED_TABLES = (indicators_values, indicators_published, indicators_inputs)
"""The tables whose rows are replaced per indicator period."""
CHUNK_MONTHS = 24
"""Periods are counted, computed, disclosure-controlled and written a chunk at a time: those
ending within 24 months of one another. Every period is recomputed whenever best-known
ethnicity changes, so without chunks the compute would hold every period of the history at
once; with them it holds one chunk's (a rolling year's months before the chunk are counted
again for it). Disclosure control is the same either way: no set spans two periods."""
PERIODS_PER_DELETE = 1000
"""Indicator periods named in one delete (three parameters each: PostgreSQL takes at most
65,535 in a statement)."""
Work = dict[str, tuple[list[Period], list[tuple[str, date]], dict[Period, str]]]
"""Per indicator: the periods to recompute, the vanished ones to delete, and the fingerprint
of every current period."""
PROSE = {"definition", "caveats"}
"""Catalogue fields that explain an indicator without changing what is computed: rewording
them recomputes nothing."""
ETHNICITY_SOURCES = [name for name, s in SOURCES.items() if s.has_ethnicity]


def compute(conn: Connection, run_id: str | None, *, force: bool = False) -> dict[str, int]:
    """Recompute every indicator period whose inputs changed; returns periods per indicator.

    Strings are NumPy objects here rather than pandas 3's Arrow strings, which make the
    statistics and disclosure control of many small frames about a third slower (README,
    Figures). pandas 4 drops the option: ``pyproject.toml`` pins pandas below 4.

    On PostgreSQL the transaction's sorts and hashes get ``GROUPING_MEMORY``: with the
    server's 4 MB the register's and appointments' counts sorted on disk to group (a forced
    compute at full scale 28 s, 22 s with it, when they were still counted in month batches).
    """
    allow_grouping_memory(conn)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The 'future.infer_string' option is deprecated")
        with pd.option_context("future.infer_string", False):
            return _compute(conn, run_id, force=force)


def pending(conn: Connection) -> bool:
    """Whether a compute would write anything: its inputs changed since the last one."""
    return fingerprints.stored(conn, PART) != _inputs(conn, catalogue()).fingerprint


@dataclass(frozen=True)
class _Inputs:
    """What every value of a compute follows from, and its fingerprint."""

    loads: dict[str, dict[str, str]]
    absent: dict[tuple[str, str], set[str]]
    ethnicity: str
    fingerprint: str


def _inputs(conn: Connection, entries: dict[str, Indicator]) -> _Inputs:
    """The compute's inputs: the catalogue (prose included: it is written to the catalogue
    table), the loads of every source and month, the columns deliveries lacked, best-known
    ethnicity, the method version and the reference tables."""
    loads, absent = _loaded_months(conn), _absent_columns(conn)
    ethnicity = _ethnicity_version(conn)
    everything = {
        "method": _method(),
        "catalogue": {i: entry.model_dump(mode="json") for i, entry in entries.items()},
        "loads": loads,
        "absent": sorted([*key, sorted(names)] for key, names in absent.items()),
        "ethnicity": ethnicity,
    }
    return _Inputs(loads, absent, ethnicity, fingerprints.digest(everything))


def _compute(conn: Connection, run_id: str | None, *, force: bool) -> dict[str, int]:
    entries = catalogue()
    found = _inputs(conn, entries)
    if not force and fingerprints.stored(conn, PART) == found.fingerprint:
        log.info("indicators: inputs unchanged since the last compute, nothing recomputed")
        return dict.fromkeys(entries, 0)
    _refresh_catalogue(conn, entries)
    loads, absent, ethnicity = found.loads, found.absent, found.ethnicity
    stored = _stored_fingerprints(conn)
    _forget_removed(conn, entries)
    _note_not_computed(conn, entries, loads, absent)
    work: Work = {}
    for indicator in entries.values():
        planned = _plan(indicator, loads, absent, ethnicity)
        mine = {k[1:]: fp for k, fp in stored.items() if k[0] == indicator.id}
        todo = [p for p, fp in planned if force or mine.get((p.kind, p.start)) != fp]
        current = {(p.kind, p.start) for p, _ in planned}
        work[indicator.id] = (todo, [k for k in mine if k not in current], dict(planned))
    now = utcnow()
    _delete_replaced(conn, work)
    for chunk in _chunks(work):
        _append(conn, _values(conn, entries, chunk), run_id, now)
    _record_inputs(conn, work, now)
    for indicator_id, (todo, _, by_period) in work.items():
        recomputed, unchanged = len(todo), len(by_period) - len(todo)
        log.info("%s: %d period(s) recomputed, %d unchanged", indicator_id, recomputed, unchanged)
    fingerprints.record(conn, PART, found.fingerprint)
    return {i: len(todo) for i, (todo, _, _) in work.items()}


def _chunks(work: Work) -> list[Work]:
    """``work``'s periods to recompute, split by the month they end in (``CHUNK_MONTHS``);
    each chunk's periods are ``todo`` (the vanished and fingerprints stay with ``work``)."""
    ends = {p.months[-1] for todo, _, _ in work.values() for p in todo}
    if not ends:
        return []
    first = month_index(min(ends))

    def chunk_of(period: Period) -> int:
        return (month_index(period.months[-1]) - first) // CHUNK_MONTHS

    numbers = sorted({chunk_of(p) for todo, _, _ in work.values() for p in todo})
    return [
        {i: ([p for p in todo if chunk_of(p) == n], [], fps) for i, (todo, _, fps) in work.items()}
        for n in numbers
    ]


def _values(conn: Connection, entries: dict[str, Indicator], work: Work) -> dict[str, Rows]:
    """The new rows of every indicator with periods to recompute: counted source by source,
    then computed and disclosure-controlled as one catalogue (``assembly``)."""
    monthly = _MonthlyCounts(
        _monthly_counts(conn, [(entries[i], todo) for i, (todo, _, _) in work.items()])
    )
    by_group: list[assembly.Counts] = []
    by_organisation: list[pd.DataFrame] = []
    for indicator in entries.values():
        if todo := work[indicator.id][0]:
            counts, organisations = _counts_of(conn, indicator, todo, monthly)
            by_group += [counts] if counts else []
            by_organisation += [organisations] if organisations is not None else []
    return assembly.disclose_catalogue(
        assembly.exact_indicator_values(by_group),
        pd.concat(by_organisation, ignore_index=True) if by_organisation else pd.DataFrame(),
        entries,
    )


def attack_mart(conn: Connection) -> list[Finding]:
    """The attacking audit on everything partners can read in ``mart.indicator_values``
    (the compute ran it on the rows it wrote; this checks the whole view)."""
    shown = fetch_frame(conn, sa.select(mart_indicator_values))
    catalogue_rows = sa.select(
        indicators_catalogue.c.indicator_id, indicators_catalogue.c.multiplier
    )
    multipliers = dict(conn.execute(catalogue_rows).tuples().all())
    shown["ethnicity_known_pct"] = pd.to_numeric(shown["ethnicity_known_pct"])
    return attack(shown, multipliers)


@dataclass
class _MonthlyCounts:
    """The month-additive counts of a compute (see :func:`_monthly_counts`), summed over
    reporting periods once per count and periods, however many indicators share them (six
    rates divide by the same person-years). The sums are shared: callers must not change them."""

    by_count: dict[str, pd.DataFrame]
    summed: dict[tuple[str, tuple[Period, ...]], pd.DataFrame] = field(default_factory=dict)

    def in_periods(self, count: Count, todo: list[Period]) -> pd.DataFrame:
        key = (count.model_dump_json(), tuple(todo))
        if key not in self.summed:
            mean = count.count == "person_years"
            self.summed[key] = assembly.in_periods(self.by_count[key[0]], todo, mean=mean)
        return self.summed[key]


def _monthly_counts(
    conn: Connection, wanted: list[tuple[Indicator, list[Period]]]
) -> dict[str, pd.DataFrame]:
    """Every month-additive count the recomputed periods need, keyed by its definition.

    Counts are gathered per source and fetched in one scan each (``count(*) filter (...)``),
    so the register behind seven rates is read once, not seven times.
    """
    by_source: dict[str, dict[str, Count]] = defaultdict(dict)
    months: dict[str, set[str]] = defaultdict(set)
    with_age: dict[str, bool] = defaultdict(bool)
    for indicator, todo in wanted:
        for count in (indicator.numerator, indicator.denominator):
            if not todo or count.source == QUALITY_SOURCE or count.count in PERIOD_COUNTS:
                continue
            by_source[count.source][count.model_dump_json()] = count
            months[count.source].update(m for p in todo for m in p.months)
            with_age[count.source] |= "dsr" in indicator.measures
    found: dict[str, pd.DataFrame] = {}
    for source, counts in by_source.items():
        frames = aggregation.counts_by_month(
            conn, list(counts.values()), sorted(months[source]), with_age=with_age[source]
        )
        found |= dict(zip(counts, frames, strict=True))
    return found


def _counts_of(
    conn: Connection,
    indicator: Indicator,
    todo: list[Period],
    monthly: _MonthlyCounts,
) -> tuple[assembly.Counts | None, pd.DataFrame | None]:
    """What ``indicator``'s values for the ``todo`` periods follow from: its counts by ethnic
    code, and its exact rows by organisation (None where it has no such breakdown), from
    the prefetched ``monthly`` counts (see ``_monthly_counts``) and its own person counts."""
    months = sorted({m for p in todo for m in p.months})
    if indicator.numerator.source == QUALITY_SOURCE:
        counts = aggregation.completeness_by_month(conn, months)
        counts = counts.rename(columns={"known": "numerator", "records": "denominator"})
        keyed = [_keyed(counts[counts["month"] == p.months[0]], p) for p in todo]
        return None, assembly.exact_organisation_values(
            indicator, pd.concat(keyed, ignore_index=True)
        )
    with_age = "dsr" in indicator.measures
    numerator, denominator = (
        _counts(conn, indicator, which, todo, with_age, monthly)
        for which in ("numerator", "denominator")
    )
    by_group = (indicator, numerator, denominator, todo)
    if "source_organisation" not in indicator.breakdowns:
        return by_group, None
    staff = _staff_by_organisation(conn, indicator, todo)
    return by_group, assembly.exact_organisation_values(indicator, staff)


def _staff_by_organisation(
    conn: Connection, indicator: Indicator, todo: list[Period]
) -> pd.DataFrame:
    """Numerator and denominator of a staff indicator per period and organisation, with each
    period's ``ALL`` row (the partnership's total)."""
    frames = []
    for period in todo:
        counts = [
            aggregation.staff_by_organisation(conn, count, period.months).set_index("organisation")[
                "n"
            ]
            for count in (indicator.numerator, indicator.denominator)
        ]
        both = (
            pd.concat(counts, axis=1, keys=["numerator", "denominator"]).fillna(0).astype("int64")
        )
        both.loc[ALL_ORGANISATIONS] = both.sum()
        frames.append(
            both.rename_axis("organisation")
            .reset_index()
            .assign(
                source=indicator.denominator.source,
                period_type=period.kind,
                period_start=period.start,
                period_end=period.end,
            )
        )
    return pd.concat(frames, ignore_index=True)


def _counts(
    conn: Connection,
    indicator: Indicator,
    which: str,
    todo: list[Period],
    with_age: bool,
    monthly: _MonthlyCounts,
) -> pd.DataFrame:
    count = getattr(indicator, which)
    if count.count not in PERIOD_COUNTS:
        return monthly.in_periods(count, todo)
    frames = [
        _keyed(
            aggregation.count_in_period(
                conn,
                indicator.numerator,
                indicator.denominator,
                p.months,
                which=which,
                with_age=with_age,
            ),
            p,
        )
        for p in todo
    ]
    return pd.concat(frames, ignore_index=True)


def _keyed(frame: pd.DataFrame, period: Period) -> pd.DataFrame:
    return frame.drop(columns="month").assign(
        period_type=period.kind, period_start=period.start, period_end=period.end
    )


# --- what each period was computed from ----------------------------------------------------


def sources_counted() -> set[str]:
    """The sources whose staging rows the catalogue counts: every numerator's and
    denominator's, and the register (ages and persons)."""
    counted = {c.source for i in catalogue().values() for c in (i.numerator, i.denominator)}
    return (counted - {QUALITY_SOURCE}) | {REGISTER}


def _sources(indicator: Indicator) -> list[str]:
    """The sources a period reads: the register too (for ages and persons) unless it counts
    staff, who are not on it."""
    if indicator.numerator.source == QUALITY_SOURCE:
        return ETHNICITY_SOURCES
    counted = {indicator.numerator.source, indicator.denominator.source}
    staff = indicator.denominator.count == "staff"
    return sorted(counted if staff else counted | {REGISTER})


def _lacking(
    indicator: Indicator, period: Period, absent: dict[tuple[str, str], set[str]]
) -> list[str]:
    """The dated columns a staff count needs that a delivery of the period's snapshot month
    did not carry: its nulls there mean "not sent", not "not vaccinated", so the period is
    not computed at all rather than computed as 0%."""
    return sorted(
        {
            c.date_in_period
            for c in (indicator.numerator, indicator.denominator)
            if c.date_in_period in absent.get((c.source, period.months[-1]), set())
        }
    )


def _available(indicator: Indicator, loads: dict[str, dict[str, str]]) -> list[str]:
    """The months every source of the indicator has loaded (any of them, for DQ01)."""
    months = [set(loads.get(s, {})) for s in _sources(indicator)]
    quality = indicator.numerator.source == QUALITY_SOURCE
    return sorted(set.union(*months) if quality else set.intersection(*months))


def _method() -> list[str]:
    """What every value follows from besides its data: the code and the reference tables."""
    return [fingerprints.code_digest(METHOD_MODULES), fingerprints.reference_digest()]


def _plan(
    indicator: Indicator,
    loads: dict[str, dict[str, str]],
    absent: dict[tuple[str, str], set[str]],
    ethnicity: str,
) -> list[tuple[Period, str]]:
    """Every complete period of the indicator with the fingerprint of its inputs (periods
    whose snapshot lacked a column they count are left out, see ``_lacking``)."""
    sources = _sources(indicator)
    definition = indicator.model_dump(mode="json", exclude=PROSE)
    planned = []
    for kind in indicator.periods:
        for period in periods(kind, _available(indicator, loads)):
            if _lacking(indicator, period, absent):
                continue
            inputs = {
                "version": _method(),
                "definition": definition,
                "period": [kind, *period.months],
                "loads": {s: [loads.get(s, {}).get(m) for m in period.months] for s in sources},
                "ethnicity": ethnicity,
            }
            planned.append((period, fingerprints.digest(inputs)))
    return planned


def _note_not_computed(
    conn: Connection,
    entries: dict[str, Indicator],
    loads: dict[str, dict[str, str]],
    absent: dict[tuple[str, str], set[str]],
) -> None:
    """Rewrite ``indicators.not_computed``: every complete period left out because its
    snapshot delivery lacked a column it counts, so that ``hei status`` (and the data team)
    can say the campaign is absent rather than show nothing."""
    now = utcnow()
    rows = []
    for indicator in entries.values():
        for kind in indicator.periods:
            for period in periods(kind, _available(indicator, loads)):
                lacking = _lacking(indicator, period, absent)
                if not lacking:
                    continue
                note = (
                    f"not computed: the {period.months[-1]} delivery did not carry "
                    f"{', '.join(lacking)} (absent, not 0%)"
                )
                log.info("%s %s %s", indicator.id, period.label, note)
                rows.append(
                    dict(
                        indicator_id=indicator.id,
                        period_type=kind,
                        period_start=period.start,
                        period_end=period.end,
                        note=note,
                        noted_at=now,
                    )
                )
    conn.execute(sa.delete(indicators_not_computed))
    if rows:
        conn.execute(sa.insert(indicators_not_computed), rows)


def _forget_removed(conn: Connection, entries: dict[str, Indicator]) -> None:
    """Drop the values of indicators no longer in the catalogue (their definitions are gone)."""
    for table in COMPUTED_TABLES:
        conn.execute(sa.delete(table).where(table.c.indicator_id.not_in(list(entries))))


def _loaded_months(conn: Connection) -> dict[str, dict[str, str]]:
    """source -> month -> the load ids now in staging (comma-joined, sorted)."""
    loads = audit_file_loads.c
    rows = conn.execute(
        sa.select(loads.source, loads.period, loads.load_id).where(
            loads.status == "loaded", loads.period.is_not(None)
        )
    ).all()
    found: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for source, period, load_id in rows:
        found[source][period].append(load_id)
    return {s: {m: ",".join(sorted(ids)) for m, ids in by.items()} for s, by in found.items()}


def _absent_columns(conn: Connection) -> dict[tuple[str, str], set[str]]:
    """(source, month) -> the optional columns that a delivery now in staging did not carry."""
    loads = audit_file_loads.c
    rows = conn.execute(
        sa.select(loads.source, loads.period, loads.absent_columns).where(
            loads.status == "loaded", loads.absent_columns.is_not(None)
        )
    ).all()
    found: dict[tuple[str, str], set[str]] = defaultdict(set)
    for source, period, names in rows:
        found[(source, period)].update(json.loads(names))
    return found


def _ethnicity_version(conn: Connection) -> str:
    """A digest of every person's best-known code, computed in the warehouse."""
    people = core_person_ethnicity.c
    each = people.person_id.concat(sa.literal_column("':'")).concat(people.ethnic_code)
    joined = sa.func.string_agg(
        each, aggregate_order_by(sa.literal_column("','"), people.person_id)
    )
    digest = sa.func.coalesce(sa.func.md5(joined), sa.literal_column("''"))
    return conn.execute(sa.select(digest)).scalar_one()


def _stored_fingerprints(conn: Connection) -> dict[tuple[str, str, date], str]:
    inputs = indicators_inputs.c
    rows = conn.execute(
        sa.select(inputs.indicator_id, inputs.period_type, inputs.period_start, inputs.fingerprint)
    ).all()
    return {(i, k, _as_date(s)): fp for i, k, s, fp in rows}


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


# --- writing -------------------------------------------------------------------------------


def _delete_replaced(conn: Connection, work: Work) -> None:
    """Delete the rows and fingerprints of every period to recompute and every vanished one,
    in a few statements for the whole catalogue."""
    replaced = [
        (indicator_id, kind, start)
        for indicator_id, (todo, gone, _) in work.items()
        for kind, start in [(p.kind, p.start) for p in todo] + gone
    ]
    for table in COMPUTED_TABLES:
        key = sa.tuple_(table.c.indicator_id, table.c.period_type, table.c.period_start)
        for first in range(0, len(replaced), PERIODS_PER_DELETE):
            chosen = replaced[first : first + PERIODS_PER_DELETE]
            conn.execute(sa.delete(table).where(key.in_(chosen)))


def _append(conn: Connection, rows: dict[str, Rows], run_id: str | None, now: object) -> None:
    """Write a chunk's new rows: the data team's and the partners'."""
    written = [both for both in rows.values() if len(both[0])]
    if not written:
        return
    values = pd.concat([team for team, _ in written], ignore_index=True)
    published = pd.concat([partners for _, partners in written], ignore_index=True)
    values = values.assign(method=values["method"].fillna("none"))
    append_arrow(conn, indicators_values, _as_arrow(values, VALUE_COLUMNS, run_id, now))
    append_arrow(conn, indicators_published, _as_arrow(published, PUBLISHED_COLUMNS, run_id, now))


def _record_inputs(conn: Connection, work: Work, now: object) -> None:
    """The fingerprint of every recomputed period, so the next compute can skip it."""
    inputs = [
        {
            "indicator_id": indicator_id,
            "period_type": p.kind,
            "period_start": p.start,
            "fingerprint": by_period[p],
            "computed_at": now,
        }
        for indicator_id, (todo, _, by_period) in work.items()
        for p in todo
    ]
    if inputs:
        conn.execute(sa.insert(indicators_inputs), inputs)


def _as_arrow(
    rows: pd.DataFrame, types: dict[str, pa.DataType], run_id: str | None, now: object
) -> pa.Table:
    frame = rows.rename(columns=STATISTIC_NAMES).assign(run_id=run_id, computed_at=now)
    columns = {name: _column(frame[name], kind) for name, kind in types.items()}
    return pa.table(columns)


def _column(values: pd.Series, kind: pa.DataType) -> pa.Array:
    """One column as Arrow, missing values (NaN, NA, None) as nulls."""
    return pa.array(values, type=kind, from_pandas=True)


def _refresh_catalogue(conn: Connection, entries: dict[str, Indicator]) -> None:
    conn.execute(sa.delete(indicators_catalogue))
    conn.execute(
        sa.insert(indicators_catalogue),
        [
            {
                "indicator_id": i.id,
                "theme": i.theme,
                "title": i.title,
                "definition": i.definition,
                "caveats": i.caveats,
                "measures": ",".join(i.measures),
                "multiplier": i.multiplier,
                "periods": ",".join(i.periods),
                "breakdowns": ",".join(i.breakdowns),
                "polarity": i.polarity,
                "reference_groups": json.dumps(i.reference_groups, sort_keys=True),
                "numerator": i.numerator.model_dump_json(),
                "denominator": i.denominator.model_dump_json(),
                "updated_at": utcnow(),
            }
            for i in entries.values()
        ],
    )
