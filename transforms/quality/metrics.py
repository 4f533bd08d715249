"""What a delivery looks like as it will land, measured in SQL for Great Expectations.

Before its load commits, each delivery is summed up into a small frame of measures, one row
per check and subject (the delivery, a code, an organisation): how many rows it loads, how
many record ids repeat, its busiest event date, its mix of codes, the share of its people on
the register, the organisations that delivered last month, its ethnicity completeness. The
limits that depend on history (the source's recent months, from ``audit.file_loads`` and
staging) are worked out here too. Every query is grouped in the warehouse and touches only
the delivery's month and at most ``HISTORY_MONTHS`` earlier ones, so memory and time do not
grow with history. ``suites.py`` turns the measures into expectations.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.config.sources import REGISTER, Source
from transforms.core.periods import month_after
from transforms.warehouse.tables import STAGING, audit_file_loads, quality_ethnicity_completeness

HISTORY_MONTHS = 3  # a delivery is compared with up to this many earlier months of its source
MIN_ROWS = 100  # below this many rows (now or in history) shares and volumes are not judged
VOLUME = "volume"
UNIQUE_IDS = "unique_ids"
DATE_SPREAD = "date_spread"
CODE_SHARES = "code_shares"
REGISTER_SHARE = "register_share"
ORGANISATIONS = "organisations"
COMPLETENESS = "ethnicity_completeness"
# Code shares: a code's share may move this many percentage points from its share over the
# recent months, or 4 standard errors of a proportion of this delivery's size if more.
CODE_SHARE_POINTS = 10.0
CODE_SHARE_SE = 4.0
REGISTER_SHARE_DROP_POINTS = 10.0  # the share of people on the register may fall this much
ORGANISATION_MIN_ROWS = 20  # an organisation with fewer rows last month may skip a month


@dataclass(frozen=True)
class Measure:
    """One row of the frame Great Expectations validates."""

    check: str
    subject: str
    value: float
    detail: str


@dataclass
class Profile:
    """A delivery's measures, the limits history sets, and the checks that could not run."""

    source: Source
    period: str
    rows: int
    history: list[str] = field(default_factory=list)
    measures: list[Measure] = field(default_factory=list)
    limits: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # check -> what it compares with
    skipped: dict[str, str] = field(default_factory=dict)  # check -> why it did not run

    def add(self, check: str, subject: str, value: float, detail: str) -> None:
        self.measures.append(Measure(check, subject, float(value), detail))

    def of(self, check: str) -> list[Measure]:
        return [m for m in self.measures if m.check == check]


def profile(conn: Connection, source: Source, period: str, rows: int) -> Profile:
    """Measure the delivery just written to ``period`` (``rows`` loaded) against history."""
    found = Profile(source, period, rows)
    loads = audit_file_loads.c
    history = conn.execute(
        sa.select(loads.period, loads.rows_loaded)
        .where(loads.source == source.name, loads.status == "loaded", loads.period < period)
        .order_by(loads.period.desc())
        .limit(HISTORY_MONTHS)
    ).all()
    found.history = [h.period for h in history]
    _volume(found, {h.period: h.rows_loaded for h in history})
    _unique_ids(conn, found)
    _date_spread(conn, found)
    _code_shares(conn, found)
    _register_share(conn, found)
    _organisations(conn, found)
    _completeness(conn, found)
    return found


def _months(periods: list[str]) -> str:
    return ", ".join(sorted(periods))


def _volume(found: Profile, history: dict[str, int]) -> None:
    ratio = found.source.volume_ratio
    if ratio is None:
        found.skipped[VOLUME] = "volume is seasonal for this source"
        return
    if not history:
        found.skipped[VOLUME] = "first delivery of the source: no earlier month to compare with"
        return
    median = statistics.median(history.values())
    if median < MIN_ROWS:
        found.skipped[VOLUME] = f"recent months have fewer than {MIN_ROWS} rows"
        return
    found.limits[VOLUME] = (ratio[0] * median, ratio[1] * median)
    found.notes[VOLUME] = f"median of {_months(list(history))}: {median:,.0f} rows"
    found.add(VOLUME, "rows loaded", found.rows, f"{found.rows:,} rows loaded")


def _unique_ids(conn: Connection, found: Profile) -> None:
    source = found.source
    staged = STAGING[source.name]
    rid = staged.c[source.record_id]
    # Rows less distinct ids, summed over the repeated ids only: PostgreSQL sorts the month
    # for count(distinct), and groups it by hash for this (half the time).
    repeated = (
        sa.select(sa.func.count().label("copies"))
        .where(staged.c.period == found.period)
        .group_by(rid)
        .having(sa.func.count() > 1)
        .subquery("repeated")
    )
    repeats = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(repeated.c.copies - 1), 0))
    ).scalar_one()
    found.limits[UNIQUE_IDS] = (None, 0)
    found.add(UNIQUE_IDS, source.record_id, repeats, f"{repeats:,} repeated {source.record_id}")


def _date_spread(conn: Connection, found: Profile) -> None:
    source = found.source
    if source.event_date is None:
        found.skipped[DATE_SPREAD] = "the source has no event date"
        return
    if source.max_day_share is None:
        found.skipped[DATE_SPREAD] = "not judged for this source: its events come in batches"
        return
    if found.rows < MIN_ROWS:
        found.skipped[DATE_SPREAD] = f"fewer than {MIN_ROWS} rows"
        return
    staged = STAGING[source.name]
    event, rows = staged.c[source.event_date], sa.func.count().label("n")
    day, count = conn.execute(
        sa.select(event, rows)
        .where(staged.c.period == found.period)
        .group_by(event)
        .order_by(rows.desc(), event)
        .limit(1)
    ).one()
    share = count / found.rows
    found.limits[DATE_SPREAD] = (None, source.max_day_share)
    found.add(
        DATE_SPREAD,
        str(day),
        share,
        f"{count:,} of {found.rows:,} rows ({share:.1%}) dated {day}",
    )


def _code_counts(conn: Connection, found: Profile) -> dict[str, tuple[Counter, Counter]]:
    """Code column -> (rows of the month by code, rows of its history months by code).

    One scan of the months, grouped by all the code columns at once (a few hundred
    combinations at most) and summed per column here. One query per column and month set
    read the history again for each column; grouping sets read it once but PostgreSQL runs
    them on one core, where a plain grouping runs in parallel.
    """
    source = found.source
    staged = STAGING[source.name]
    months = (
        sa.select(
            (staged.c.period == found.period).label("now"),
            *(staged.c[name] for name in source.share_columns),
        )
        .where(staged.c.period.in_([found.period, *found.history]))
        .subquery("months")
    )
    grouping = [months.c.now, *(months.c[name] for name in source.share_columns)]
    counts = {name: (Counter(), Counter()) for name in source.share_columns}
    for now, *codes, n in conn.execute(sa.select(*grouping, sa.func.count()).group_by(*grouping)):
        for name, code in zip(source.share_columns, codes, strict=True):
            counts[name][0 if now else 1]["(blank)" if code is None else str(code)] += n
    return counts


def _code_shares(conn: Connection, found: Profile) -> None:
    source = found.source
    if not source.share_columns:
        found.skipped[CODE_SHARES] = "the source has no code column compared with history"
        return
    if not found.history:
        found.skipped[CODE_SHARES] = "first delivery of the source: no earlier month"
        return
    if found.rows < MIN_ROWS:
        found.skipped[CODE_SHARES] = f"fewer than {MIN_ROWS} rows"
        return
    judged = False
    for column, (now, before) in _code_counts(conn, found).items():
        total_now, total_before = sum(now.values()), sum(before.values())
        if total_before < MIN_ROWS:
            continue
        judged = True
        for code in sorted(set(now) | set(before)):
            share = now.get(code, 0) / total_now
            recent = before.get(code, 0) / total_before
            allowed = max(
                CODE_SHARE_POINTS / 100,
                CODE_SHARE_SE * math.sqrt(recent * (1 - recent) / total_now),
            )
            found.add(
                CODE_SHARES,
                f"{column} = {code}",
                abs(share - recent) / allowed,
                f"{column} = {code}: {share:.1%} of rows (recent months {recent:.1%}; "
                f"allowed {allowed:.1%} either way)",
            )
    if not judged:
        found.skipped[CODE_SHARES] = f"recent months have fewer than {MIN_ROWS} rows"
        return
    found.limits[CODE_SHARES] = (None, 1.0)
    found.notes[CODE_SHARES] = f"shares in {_months(found.history)}"


def _on_register(conn: Connection, source: Source, period: str) -> tuple[int, int] | None:
    """Rows of the month, and how many of their people were in last month's register
    snapshot; None if that snapshot is not loaded.

    Each row looks its person up in the snapshot (a semi-join: the register's person index on
    PostgreSQL), so a small source's month costs its own rows, not a register month's. Reading
    the snapshot's distinct people instead took 0.4–2 s a month, four times a delivery, and
    grew with the register's history on PostgreSQL (README, Figures).
    """
    snapshot = month_after(period, -1)
    loads = audit_file_loads.c
    loaded = sa.exists().where(
        loads.source == REGISTER, loads.period == snapshot, loads.status == "loaded"
    )
    if not conn.execute(sa.select(loaded)).scalar_one():
        return None
    register, staged = STAGING[REGISTER].c, STAGING[source.name].c
    on_register = sa.exists().where(
        register.person_id == staged.person_id, register.period == snapshot
    )
    rows = sa.select(sa.func.count()).where(staged.period == period)
    # Two counts, not one with a filter: only an EXISTS in WHERE is planned as a join.
    total, found = conn.execute(
        sa.select(rows.scalar_subquery(), rows.where(on_register).scalar_subquery())
    ).one()
    return int(total), int(found)


def _register_share(conn: Connection, found: Profile) -> None:
    source = found.source
    if not source.person_level or source.name == REGISTER:
        found.skipped[REGISTER_SHARE] = "not a source of registered people's activity"
        return
    if found.rows < MIN_ROWS:
        found.skipped[REGISTER_SHARE] = f"fewer than {MIN_ROWS} rows"
        return
    now = _on_register(conn, source, found.period)
    if now is None:
        found.skipped[REGISTER_SHARE] = "last month's register snapshot is not loaded"
        return
    earlier = [c for p in found.history if (c := _on_register(conn, source, p)) is not None]
    total_before = sum(c[0] for c in earlier)
    if total_before < MIN_ROWS:
        found.skipped[REGISTER_SHARE] = "no earlier month with its register snapshot to compare"
        return
    recent = sum(c[1] for c in earlier) / total_before
    share = now[1] / now[0]
    found.limits[REGISTER_SHARE] = (recent - REGISTER_SHARE_DROP_POINTS / 100, None)
    found.notes[REGISTER_SHARE] = f"recent months {recent:.1%}"
    found.add(
        REGISTER_SHARE,
        "people on the register",
        share,
        f"{now[1]:,} of {now[0]:,} rows ({share:.1%}) are of people in the register snapshot "
        f"of {month_after(found.period, -1)}",
    )


def _organisations(conn: Connection, found: Profile) -> None:
    source = found.source
    if source.organisation is None:
        found.skipped[ORGANISATIONS] = "the source has no organisation column"
        return
    if not found.history:
        found.skipped[ORGANISATIONS] = "first delivery of the source: no earlier month"
        return
    last = found.history[0]
    staged = STAGING[source.name]
    org = staged.c[source.organisation]

    def per_organisation(period: str, *where: sa.ColumnElement[bool]) -> sa.Subquery:
        return (
            sa.select(org.label("org"), sa.func.count().label("n"))
            .where(staged.c.period == period, *where)
            .group_by(org)
            .subquery()
        )

    before, now = per_organisation(last, org.is_not(None)), per_organisation(found.period)
    rows = conn.execute(
        sa.select(before.c.org, before.c.n, sa.func.coalesce(now.c.n, 0))
        .select_from(before.outerjoin(now, now.c.org == before.c.org))
        .where(before.c.n >= ORGANISATION_MIN_ROWS)
        .order_by(before.c.org)
    ).all()
    found.limits[ORGANISATIONS] = (1, None)
    found.notes[ORGANISATIONS] = f"organisations with {ORGANISATION_MIN_ROWS}+ rows in {last}"
    for code, before, now in rows:
        found.add(ORGANISATIONS, code, now, f"{code}: {before:,} rows in {last}, {now:,} now")


def _completeness(conn: Connection, found: Profile) -> None:
    """The recorded completeness rows ``completeness.record_delivery`` stored for the month
    (the one computation of completeness; warnings come from this check)."""
    source = found.source
    if not source.has_ethnicity:
        found.skipped[COMPLETENESS] = "the source has no ethnicity"
        return
    recorded = quality_ethnicity_completeness.c
    rows = conn.execute(
        sa.select(recorded.organisation, recorded.pct_known, recorded.known, recorded.records)
        .where(
            recorded.source == source.name,
            recorded.period == found.period,
            recorded.basis == "recorded",
        )
        .order_by(recorded.organisation)
    ).all()
    found.limits[COMPLETENESS] = (source.completeness_threshold, None)
    for organisation, pct, known, records in rows:
        found.add(
            COMPLETENESS,
            organisation,
            pct,
            f"{organisation}: {float(pct):.1f}% known ({known:,} of {records:,})",
        )
