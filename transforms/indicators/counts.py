"""Numerators and denominators counted in the warehouse, from a catalogue ``Count``.

Every count becomes one set-based ``SELECT`` built with SQLAlchemy Core, so the same query runs
on DuckDB and PostgreSQL, and what comes back to Python is already aggregated: one row per
month (or reporting period) x best-known ethnic code x ESP2013 age band. Its size depends on
the number of months and codes, never on the number of activity rows, so memory does not grow
with history. Ethnic groups, rolling windows and statistics are then built in Python on that
small frame (``transforms.indicators.assembly``).

Choices that analysts need to know (also in the README):

* ethnicity is the person's best-known code (``core.person_ethnicity``); a person with no row
  there counts as ``99`` (not known);
* age is the age at the event where the source carries one; otherwise (GP appointments) the
  age in that month's register snapshot, and an event whose person is not in the snapshot has
  no age band (it counts in crude rates and proportions but not in a DSR);
* ``person_years`` counts register rows per monthly snapshot; the caller divides the sum over
  a period by its number of months (the mean of the monthly snapshots);
* ``staff`` counts the staff of the snapshot of the period's last month by their *own*
  recorded ethnic code (staff are not linked to patients), those with a ``date_in_period``
  only if that date falls in the period;
* on DuckDB, months are counted in batches of at most ``BATCH_ROWS`` staged rows (the
  source's and, when it is joined for age, the register's), so one query's hash tables do not
  grow with history; PostgreSQL's joins spill to disk, so it counts every month in one query;
* ``{acsc: <group>}`` matches the primary diagnosis, dots removed and the ICD-10 filler ``X``
  dropped, against the prefixes of that ACSC group (``transforms/core/reference``).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from functools import cache
from typing import Any, Literal

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement, Select

from transforms.config.catalogue import AGE_FILTERS, PERIOD_COUNTS, QUALITY_SOURCE, Count
from transforms.config.sources import REGISTER
from transforms.core.ethnicity import NOT_KNOWN_CODE
from transforms.core.periods import month_bounds
from transforms.core.reference_data import reference_file
from transforms.core.statistics import ESP2013
from transforms.warehouse.engine import fetch_frame, is_duckdb
from transforms.warehouse.tables import (
    STAGING,
    audit_file_loads,
    core_person_ethnicity,
    quality_ethnicity_completeness,
)

# Staged rows counted by one DuckDB query at most (unless one month alone has more). DuckDB
# may build a join's hash table on the activity side when its estimate is off, and two such
# tables in one query do not spill: 13 months of Wigan's GP appointments with their register
# (6.4M rows) ran out of a 512 MB cap. 2M rows keep that query within about a third of it.
# PostgreSQL's hash joins spill in batches, and each query scans the source again (its BRIN
# index does not narrow a scan by a few months), so it counts all months at once.
BATCH_ROWS = 2_000_000
COUNT_COLUMNS = ["month", "ethnic_code", "age_band", "n"]
_BAND_UPPER = {label: 5 * (i + 1) for i, label in enumerate(ESP2013)}  # '0-4' -> 5, ...


def _table(source: str) -> sa.Table:
    return STAGING[source]


def age_band(age: ColumnElement[Any]) -> ColumnElement[Any]:
    """The ESP2013 band label of an age in years (null when the age is null)."""
    bands = list(ESP2013)
    return sa.case(
        *((age < _BAND_UPPER[label], label) for label in bands[:-1]),
        (age.is_not(None), bands[-1]),
        else_=sa.null(),
    )


@cache
def acsc_prefixes(group: str) -> tuple[str, ...]:
    """ICD-10 prefixes of an ACSC group, normalised as diagnoses are (no dot, no filler X)."""
    path = reference_file("acsc_icd10_codes.csv")
    with path.open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["acsc_group"] == group]
    if not rows:
        raise ValueError(f"no ACSC group {group!r} in acsc_icd10_codes.csv")
    prefixes: set[str] = set()
    for row in rows:
        for token in filter(None, (t.strip() for t in row["icd10_codes"].split(";"))):
            if "-" in token:  # E100-E108: the fourth character runs over a range
                low, high = token.split("-")
                prefixes.update(f"{low[:3]}{d}" for d in range(int(low[3]), int(high[3]) + 1))
            else:
                prefixes.add(token.removesuffix("X"))
    return tuple(sorted(prefixes))


def _diagnosis(column: ColumnElement[Any]) -> ColumnElement[Any]:
    cleaned = sa.func.replace(sa.func.upper(sa.func.trim(column)), ".", "")
    return sa.case((cleaned.like("___X"), sa.func.substr(cleaned, 1, 3)), else_=cleaned)


def _condition(
    table: sa.Table, name: str, wanted: Any, age: ColumnElement[Any]
) -> ColumnElement[bool]:
    """One ``where`` entry of the catalogue as a SQL condition."""
    if name == "age_min":
        return age >= wanted
    if name == "age_max":
        return age <= wanted
    column = table.c[name]
    if isinstance(wanted, dict) and "acsc" in wanted:
        return _starts_with_any(_diagnosis(column), acsc_prefixes(wanted["acsc"]))
    if isinstance(wanted, bool):
        return column.is_(sa.true()) if wanted else column.is_(sa.false())
    values = wanted if isinstance(wanted, list) else [wanted]
    return column.in_(values)


def _starts_with_any(text: ColumnElement[Any], prefixes: Sequence[str]) -> ColumnElement[bool]:
    """``text`` begins with one of ``prefixes``: one ``IN`` list per prefix length rather
    than a ``LIKE`` per prefix, which made the warehouse clean each diagnosis once per
    prefix (70 times for the chronic conditions; the inpatient count took 1.1 s of the
    compute's 5 s of SQL)."""
    by_length = {n: sorted(p for p in prefixes if len(p) == n) for n in {len(p) for p in prefixes}}
    return sa.or_(*(sa.func.substr(text, 1, n).in_(by_length[n]) for n in sorted(by_length)))


def _needs_age(count: Count) -> bool:
    return any(name in AGE_FILTERS for name in count.where)


def _scan(
    counts: Sequence[Count], months: Sequence[str], with_age: bool, label: str | None = None
) -> Select:
    """One pass over a source counting each of ``counts`` (same source) per month x ethnic
    code (x age band): columns n0, n1, ... With ``label``, one row per code (x band) over all
    ``months`` (for distinct persons)."""
    source = _table(counts[0].source)
    people = core_person_ethnicity.alias("pe")
    joined = source.outerjoin(people, people.c.person_id == source.c.person_id)
    age: ColumnElement[Any] = sa.null()
    age_from = _age_from(counts, with_age)
    if age_from == "register":  # no age on the event: the age in that month's snapshot
        register = _table(REGISTER).alias("reg")
        joined = joined.outerjoin(
            register,
            sa.and_(
                register.c.person_id == source.c.person_id,
                register.c.period == source.c.period,
                register.c.period.in_(list(months)),  # so that only these months are read
            ),
        )
        age = register.c.age
    elif age_from == "source":
        age = source.c.age
    filters = [[_condition(source, n, w, age) for n, w in c.where.items()] for c in counts]
    conditions = [source.c.period.in_(list(months))]
    if all(filters):  # rows no count wants are dropped before grouping
        conditions.append(sa.or_(*(sa.and_(*f) for f in filters)))
    measures = [
        _measure(source, count, f if len(counts) > 1 else [])
        for count, f in zip(counts, filters, strict=True)
    ]
    if len(counts) == 1:
        conditions += filters[0]
    return _grouped(
        joined,
        source.c.period if label is None else None,
        sa.func.coalesce(people.c.ethnic_code, NOT_KNOWN_CODE),
        age_band(age) if with_age else None,
        measures,
        conditions,
    )


def _measure(source: sa.Table, count: Count, only: list[ColumnElement[bool]]) -> ColumnElement[Any]:
    """The count of rows (or distinct people) of ``count``, limited to ``only`` if given."""
    measured = (
        sa.func.count(sa.distinct(source.c.person_id))
        if count.count == "persons"
        else sa.func.count()
    )
    return measured.filter(sa.and_(*only)) if only else measured


def _grouped(
    joined: sa.FromClause,
    month: ColumnElement[Any] | None,
    code: ColumnElement[Any],
    band: ColumnElement[Any] | None,
    measures: list[ColumnElement[Any]],
    conditions: list[ColumnElement[bool]],
) -> Select:
    """``measures`` (n0, n1, ...) grouped by the columns given (constants are added after
    fetching, since PostgreSQL will not group by a bound parameter)."""
    named = {"month": month, "ethnic_code": code, "age_band": band}
    columns = [c.label(name) for name, c in named.items() if c is not None]
    return (
        sa.select(*columns, *(m.label(f"n{i}") for i, m in enumerate(measures)))
        .select_from(joined)
        .where(*conditions)
        .group_by(*columns)
    )


def _uptake_query(
    numerator: Count, denominator: Count, snapshot: str, months: Sequence[str], with_age: bool
) -> Select:
    """People in the ``snapshot`` register (as the denominator filters it) with an event of
    ``numerator`` in ``months``: numerators that must be a subset of their denominator."""
    register = _table(REGISTER)
    events = _table(numerator.source)
    people = core_person_ethnicity.alias("pe")
    had_event = (
        sa.select(sa.literal(1))
        .select_from(events)
        .where(
            events.c.person_id == register.c.person_id,
            events.c.period.in_(list(months)),
            *(_condition(events, n, w, events.c.get("age")) for n, w in numerator.where.items()),
        )
        .exists()
    )
    return _grouped(
        register.outerjoin(people, people.c.person_id == register.c.person_id),
        None,
        sa.func.coalesce(people.c.ethnic_code, NOT_KNOWN_CODE),
        age_band(register.c.age) if with_age else None,
        [sa.func.count()],
        [register.c.period == snapshot, had_event]
        + [_condition(register, n, w, register.c.age) for n, w in denominator.where.items()],
    )


def _staff_query(
    count: Count, months: Sequence[str], by: ColumnElement[Any] | None = None
) -> Select:
    """Staff in the snapshot of the last of ``months`` (as ``where`` filters them) by their own
    ethnic code (or ``by``), those with ``date_in_period`` only if it falls in the months (a
    null does not: the compute leaves out periods whose snapshot delivery lacked the column)."""
    staff = _table(count.source)
    conditions = [staff.c.period == months[-1]]
    conditions += [_condition(staff, n, w, sa.null()) for n, w in count.where.items()]
    if count.date_in_period is not None:
        dated = staff.c[count.date_in_period]
        conditions.append(dated.between(month_bounds(months[0])[0], month_bounds(months[-1])[1]))
    code = sa.func.coalesce(staff.c.ethnic_code, NOT_KNOWN_CODE) if by is None else by
    return _grouped(staff, None, code, None, [sa.func.count()], conditions)


def staff_by_organisation(conn: Connection, count: Count, months: Sequence[str]) -> pd.DataFrame:
    """A staff count over a period (see ``_staff_query``) per organisation: organisation, n."""
    by = _table(count.source).c.organisation_code
    frame = fetch_frame(conn, _staff_query(count, months, by=by))
    frame = frame.rename(columns={"ethnic_code": "organisation", "n0": "n"})
    return frame.astype({"organisation": "string", "n": "int64"})


def _fetch(conn: Connection, query: Select, month: str | None = None) -> list[pd.DataFrame]:
    """One frame of COUNT_COLUMNS per measure of the query (constants filled in)."""
    frame = fetch_frame(conn, query)
    if month is not None:
        frame["month"] = month
    if "age_band" not in frame:
        frame["age_band"] = "all"
    measures = [c for c in frame.columns if c not in COUNT_COLUMNS]
    types = {"month": "string", "ethnic_code": "string", "n": "int64"}
    return [
        frame[[*COUNT_COLUMNS[:-1], m]].rename(columns={m: "n"}).astype(types) for m in measures
    ]


def counts_by_month(
    conn: Connection, counts: Sequence[Count], months: Sequence[str], *, with_age: bool
) -> list[pd.DataFrame]:
    """Each of ``counts`` (one source) per month x best-known ethnic code (x age band when
    ``with_age``), from one scan of the source.

    Columns: month, ethnic_code, age_band ('all' without age; null when unknown), n.
    ``person_years`` gives the register rows of each monthly snapshot.
    """
    if any(c.source == QUALITY_SOURCE or c.count in PERIOD_COUNTS for c in counts):
        raise ValueError("quality, distinct-person and staff counts are not counted by month")
    if len({c.source for c in counts}) != 1:
        raise ValueError("counts_by_month counts one source at a time")
    batches = _batches(conn, counts, months, with_age)
    parts = [_fetch(conn, _scan(counts, batch, with_age)) for batch in batches]
    return [pd.concat(frames, ignore_index=True) for frames in zip(*parts, strict=True)]


def _batches(
    conn: Connection, counts: Sequence[Count], months: Sequence[str], with_age: bool
) -> list[list[str]]:
    """The months each query counts: on DuckDB batches of at most ``BATCH_ROWS`` staged rows
    (the source's and the register's when it is joined for age), on PostgreSQL all at once."""
    if not is_duckdb(conn):
        return [list(months)]
    joined = [counts[0].source]
    if _age_from(counts, with_age) == "register":
        joined.append(REGISTER)
    return month_batches(_staged_rows(conn, joined, months), BATCH_ROWS) or [[]]


def month_batches(rows: dict[str, int], budget: int) -> list[list[str]]:
    """Consecutive months (sorted) grouped so that no group holds more than ``budget`` rows,
    except a month that alone holds more."""
    batches: list[list[str]] = []
    held = 0
    for month in sorted(rows):
        if not batches or held + rows[month] > budget:
            batches.append([])
            held = 0
        batches[-1].append(month)
        held += rows[month]
    return batches


def _staged_rows(conn: Connection, sources: list[str], months: Sequence[str]) -> dict[str, int]:
    """Rows in staging per month of ``months`` over ``sources``, from the audit of their loads
    (every month asked for is present, with 0 if nothing is loaded)."""
    loads = audit_file_loads.c
    query = (
        sa.select(loads.period, sa.func.sum(loads.rows_loaded))
        .where(
            loads.status == "loaded",
            loads.source.in_(sources),
            loads.period.in_(list(months)),
        )
        .group_by(loads.period)
    )
    found = {period: int(n) for period, n in conn.execute(query).all()}
    return {month: found.get(month, 0) for month in months}


def _age_from(counts: Sequence[Count], with_age: bool) -> Literal["source", "register"] | None:
    """Where counting these reads age: ``source`` (their own table), ``register`` (the
    register's snapshot of the month, when the source has no age) or None (neither age bands
    nor an age filter are wanted)."""
    if not (with_age or any(_needs_age(c) for c in counts)):
        return None
    return "source" if "age" in _table(counts[0].source).c else "register"


def count_in_period(
    conn: Connection,
    numerator: Count,
    denominator: Count,
    months: Sequence[str],
    *,
    which: str,
    with_age: bool,
) -> pd.DataFrame:
    """Person and staff counts over a whole period (they cannot be added month by month).

    With ``snapshot: campaign_start`` the denominator is the register in the period's first
    month and ``of_denominator`` numerators are the people of that register with an event.
    """
    label = months[0]
    count = numerator if which == "numerator" else denominator
    if count.count == "staff":
        query = _staff_query(count, months)
    elif which == "denominator" and denominator.snapshot == "campaign_start":
        query = _scan([denominator], months[:1], with_age, label)
    elif numerator.of_denominator and denominator.snapshot == "campaign_start":
        query = _uptake_query(numerator, denominator, label, months, with_age)
    else:
        query = _scan([count], months, with_age, label)
    (frame,) = _fetch(conn, query, label)
    return frame


def completeness_by_month(conn: Connection, months: Sequence[str]) -> pd.DataFrame:
    """Recorded ethnicity completeness per source x organisation x month (for DQ01), with
    each source's ``ALL`` row (its total)."""
    table = quality_ethnicity_completeness
    query = (
        sa.select(
            table.c.period.label("month"),
            table.c.source,
            table.c.organisation,
            sa.func.sum(table.c.known).label("known"),
            sa.func.sum(table.c.records).label("records"),
        )
        .where(table.c.basis == "recorded", table.c.period.in_(list(months)))
        .group_by(table.c.period, table.c.source, table.c.organisation)
    )
    frame = fetch_frame(conn, query)
    return frame.astype({"known": "int64", "records": "int64"})
