"""The WRES indicators in the warehouse: every reportable financial year, recomputed with the
indicator catalogue, into ``indicators.wres`` (exact) and ``indicators.wres_published``
(what ``mart.wres`` shows partners).

Each compute rewrites every year, reading the March workforce snapshots and the year's
shortlisting from staging (a few thousand staff and applicants a year), but only when its
inputs changed since the last: the loads of either source, the reference codes, or the code of
the method and its disclosure rules (``transforms.indicators.fingerprints``). An unchanged
compute costs two small queries, not seconds. The computation itself is
``transforms.indicators.wres``.
"""

from __future__ import annotations

import logging
from datetime import date
from types import ModuleType

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.core import disclosure, disclosure_audit, ethnicity, statistics, wres_audit
from transforms.core.periods import Period, utcnow
from transforms.indicators import assembly, fingerprints
from transforms.indicators import wres as standard
from transforms.warehouse.bulk import append_arrow, arrow_types
from transforms.warehouse.engine import fetch_frame
from transforms.warehouse.tables import (
    STAGING,
    audit_file_loads,
    indicators_wres,
    indicators_wres_published,
)

log = logging.getLogger(__name__)

PART = "wres"  # its row of indicators.compute_inputs
STAFF, APPLICANTS = "workforce", "recruitment"
SOURCES_READ = (STAFF, APPLICANTS)
"""The sources WRES is computed from: staff snapshots and shortlisting."""

STAFF_COLUMNS = (
    "organisation_code",
    "pay_band",
    "staff_group",
    "ethnic_code",
    "is_board_member",
    "is_voting_board_member",
    "is_executive",
    "in_disciplinary_process",
    "accessed_non_mandatory_training",
    "period",
)
APPLICANT_COLUMNS = ("organisation_code", "shortlisted_date", "ethnic_code", "appointed")


METHOD_MODULES: tuple[ModuleType, ...] = (
    standard,
    assembly,
    disclosure,
    disclosure_audit,
    wres_audit,
    statistics,
    ethnicity,
)
"""The code the WRES values and their protection follow from: any change to it recomputes."""


def pending(conn: Connection) -> bool:
    """Whether a compute would rewrite the WRES tables: their inputs changed."""
    return fingerprints.stored(conn, PART) != _fingerprint(conn)


def compute(conn: Connection, *, force: bool = False) -> list[date]:
    """Recompute every reportable financial year if the inputs changed (or ``force``);
    returns the ends (31 March) of the years recomputed, none if nothing changed."""
    fingerprint = _fingerprint(conn)
    if fingerprints.stored(conn, PART) == fingerprint and not force:
        log.info("WRES: inputs unchanged since the last compute")
        return []
    years = standard.financial_years(_loaded(conn, STAFF), _loaded(conn, APPLICANTS))
    for table in (indicators_wres, indicators_wres_published):
        conn.execute(sa.delete(table))
    now = utcnow()
    exact = [standard.wres(_staff(conn, year), _applicants(conn, year), year.end) for year in years]
    for year, rows in zip(years, exact, strict=True):
        log.info("WRES %s: %d rows", year.label, len(rows))
    if exact:
        every_year = pd.concat(exact, ignore_index=True)
        append_arrow(conn, indicators_wres, _as_arrow(every_year, indicators_wres, now))
        published = standard.protect_wres(every_year)  # years together: WRES3 spans two
        append_arrow(
            conn, indicators_wres_published, _as_arrow(published, indicators_wres_published, now)
        )
    fingerprints.record(conn, PART, fingerprint)
    return [year.end for year in years]


def _loaded(conn: Connection, source: str) -> list[str]:
    loads = audit_file_loads.c
    query = (
        sa.select(loads.period)
        .where(loads.source == source, loads.status == "loaded", loads.period.is_not(None))
        .distinct()
    )
    return sorted(conn.execute(query).scalars())


def _fingerprint(conn: Connection) -> str:
    """The loads of both sources, the reference tables and the method's code, as one hash."""
    loads = audit_file_loads.c
    query = (
        sa.select(loads.source, loads.period, loads.load_id)
        .where(loads.source.in_(SOURCES_READ), loads.status == "loaded")
        .order_by(loads.source, loads.period, loads.load_id)
    )
    inputs = {
        "loads": [list(row) for row in conn.execute(query)],
        "reference": fingerprints.reference_digest(),
        "code": fingerprints.code_digest(METHOD_MODULES),
    }
    return fingerprints.digest(inputs)


def _staff(conn: Connection, year: Period) -> pd.DataFrame:
    """The year's March snapshot and the previous March's (WRES3 is a two-year figure)."""
    table = STAGING[STAFF]
    march = year.months[-1]
    previous = f"{int(march[:4]) - 1}-03"
    query = sa.select(*(table.c[name] for name in STAFF_COLUMNS)).where(
        table.c.period.in_([march, previous])
    )
    return fetch_frame(conn, query)


def _applicants(conn: Connection, year: Period) -> pd.DataFrame:
    table = STAGING[APPLICANTS]
    query = sa.select(*(table.c[name] for name in APPLICANT_COLUMNS)).where(
        table.c.period.in_(list(year.months))
    )
    return fetch_frame(conn, query)


def _as_arrow(rows: pd.DataFrame, table: sa.Table, now: object) -> pa.Table:
    frame = rows.assign(computed_at=now)
    return pa.table(
        {
            name: pa.array(frame[name], type=kind, from_pandas=True)
            for name, kind in arrow_types(table).items()
        }
    )


RETURN_COLUMNS = {
    "indicator_id": "Indicator",
    "measure": "Measure",
    "population": "Counted among",
    "group_label": "Group",
    "comparison": "Comparison",
    "band": "Band",
    "staff_group": "Staff group",
    "numerator": "Numerator",
    "denominator": "Denominator",
    "value": "Result",
    "lower_95": "Lower 95% CI",
    "upper_95": "Upper 95% CI",
    "note": "Note",
}
"""The columns of an organisation's WRES return, as ``hei wres`` writes them."""


def returns(conn: Connection, period_end: date) -> dict[str, pd.DataFrame]:
    """Each organisation's WRES return for the year ending ``period_end``: its exact rows
    (the organisation's own figures, for its equality lead to check against its own return),
    one row per indicator, group and band, in the return's column names."""
    table = indicators_wres
    query = sa.select(*(table.c[name] for name in RETURN_COLUMNS), table.c.organisation_code)
    rows = fetch_frame(conn, query.where(table.c.period_end == period_end))
    order = [*RETURN_COLUMNS][:7]
    rows = rows.sort_values(order, na_position="first", kind="stable")
    return {
        str(organisation): part.drop(columns="organisation_code").rename(columns=RETURN_COLUMNS)
        for organisation, part in rows.groupby("organisation_code", sort=True)
    }
