"""Late and missing deliveries: which months each source owes, and when to say so again.

Each source's month is due by its ``delivery_day`` of the following month
(``transforms/config/sources.py``). A month is expected from the source's first delivery in
``audit.file_loads`` (any outcome), or from ``HEI_DELIVERIES_EXPECTED_FROM`` when set, up to
the last month whose due day has passed. It counts as delivered once a file for it has
loaded: a rejected file, or one still arriving, leaves the month late, because nothing of
it is in the warehouse. The daily ``check_deliveries`` DAG alerts on the first day a month
is late and then weekly while it stays late (``audit.delivery_alerts`` remembers what was
sent); ``hei status`` lists every late month. The day is always passed in, never read from
the clock here, so the same answers come back in tests and reruns.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.config.sources import SOURCES, Source
from transforms.core.periods import month_after
from transforms.warehouse.tables import audit_delivery_alerts, audit_file_loads

LANDED = "landed"
"""The attempt of a late month whose file is in the landing zone but has no load yet."""

REMIND_EVERY_DAYS = 7
"""An unresolved late month is alerted again after this many days (not every day)."""

ALERT_LINES = 30
"""Late months named in one alert; the rest are counted (a chat message has a size limit)."""

OUTCOMES = {
    "rejected": "its delivery was rejected",
    "in_progress": "a file is still arriving",
    LANDED: "its file has landed and waits for the next ingest run",
}
"""What the latest attempt at a late month says, for statuses that did not load it (or that
a file for it is in the landing zone, never yet tried)."""


@dataclass(frozen=True)
class LateDelivery:
    source: str
    period: str
    due: date
    days_late: int
    attempt: str | None = None
    """The status of the latest file that did not load (``rejected``, ``in_progress``)."""

    @property
    def message(self) -> str:
        days = "1 day" if self.days_late == 1 else f"{self.days_late} days"
        found = OUTCOMES.get(self.attempt or "", "no file has arrived")
        return f"{self.source} {self.period}: {days} late (due {self.due:%Y-%m-%d}); {found}"


def due_date(period: str, delivery_day: int) -> date:
    """The day ``period``'s delivery is due: ``delivery_day`` of the month after it."""
    return date.fromisoformat(f"{month_after(period)}-{delivery_day:02d}")


def expected_months(first: str, today: date, delivery_day: int) -> list[str]:
    """Every month from ``first`` whose due day is before ``today``, oldest first."""
    months = []
    month = first
    while due_date(month, delivery_day) < today:
        months.append(month)
        month = month_after(month)
    return months


@dataclass(frozen=True)
class History:
    """What the audit says of one source: every month it sent a file for, the months that
    loaded, and the latest status of each month's files."""

    periods: frozenset[str]
    loaded: frozenset[str]
    latest: Mapping[str, str]


def late_months(
    source: Source,
    history: History,
    today: date,
    expected_from: str | None = None,
    landed: Collection[str] = (),
) -> list[LateDelivery]:
    """The months of ``source`` that are due and have not loaded, oldest first; ``landed``
    are those with a file in the landing zone."""
    first = expected_from or min(history.periods, default=None)
    if first is None:  # never delivered, and no start configured: nothing to expect yet
        return []
    late = []
    for month in expected_months(first, today, source.delivery_day):
        if month in history.loaded:
            continue
        due = due_date(month, source.delivery_day)
        attempt = history.latest.get(month) or (LANDED if month in landed else None)
        late.append(LateDelivery(source.name, month, due, (today - due).days, attempt))
    return late


def read_histories(conn: Connection) -> dict[str, History]:
    """Each source's :class:`History` from ``audit.file_loads``."""
    f = audit_file_loads.c
    rows = conn.execute(
        sa.select(f.source, f.period, f.status)
        .where(f.period.is_not(None))
        .order_by(f.source, f.period, f.finished_at, f.load_id)
    ).all()
    periods: dict[str, set[str]] = defaultdict(set)
    loaded: dict[str, set[str]] = defaultdict(set)
    latest: dict[str, dict[str, str]] = defaultdict(dict)
    for source, period, status in rows:
        periods[source].add(period)
        if status == "loaded":
            loaded[source].add(period)
        latest[source][period] = status  # ordered by time: the last one wins
    return {
        name: History(frozenset(periods[name]), frozenset(loaded[name]), latest[name])
        for name in periods
    }


def late_deliveries(
    conn: Connection,
    today: date,
    expected_from: str | None,
    *,
    landed: Mapping[str, Collection[str]],
    sources: Iterable[Source] = SOURCES.values(),
) -> list[LateDelivery]:
    """Every late month of every source, by source and month; ``landed``: each source's
    months with a file in the landing zone (``landing.landed_months``), required so that no
    caller tells of "no file" for a month whose file waits to be loaded."""
    histories = read_histories(conn)
    empty = History(frozenset(), frozenset(), {})
    return [
        late
        for source in sources
        for late in late_months(
            source,
            histories.get(source.name, empty),
            today,
            expected_from,
            landed.get(source.name, ()),
        )
    ]


def alerts_due(
    late: list[LateDelivery], last_alerted: Mapping[tuple[str, str], date], today: date
) -> list[LateDelivery]:
    """The late months to alert on today: never alerted, or last alerted a week or more ago."""
    return [
        d
        for d in late
        if (d.source, d.period) not in last_alerted
        or today - last_alerted[d.source, d.period] >= timedelta(days=REMIND_EVERY_DAYS)
    ]


def last_alerts(conn: Connection) -> dict[tuple[str, str], date]:
    """The day each source-month was last alerted on."""
    a = audit_delivery_alerts.c
    rows = conn.execute(
        sa.select(a.source, a.period, sa.func.max(a.alerted_on)).group_by(a.source, a.period)
    ).all()
    return {(source, period): day for source, period, day in rows}


def record_alerts(
    conn: Connection, alerted: list[LateDelivery], today: date, run_id: str | None
) -> None:
    if alerted:
        conn.execute(
            sa.insert(audit_delivery_alerts),
            [
                {
                    "source": d.source,
                    "period": d.period,
                    "alerted_on": today,
                    "days_late": d.days_late,
                    "run_id": run_id,
                }
                for d in alerted
            ],
        )


def alert_text(alerted: list[LateDelivery], today: date) -> tuple[str, list[str]]:
    """The alert's title and lines."""
    title = (
        f"health-equity-indicators: {len(alerted)} late deliver"
        f"{'y' if len(alerted) == 1 else 'ies'} on {today:%Y-%m-%d}"
    )
    lines = [d.message for d in alerted[:ALERT_LINES]]
    if len(alerted) > ALERT_LINES:
        lines.append(f"... and {len(alerted) - ALERT_LINES} more")
    return title, [*lines, f"(reminded every {REMIND_EVERY_DAYS} days until loaded; hei status)"]
