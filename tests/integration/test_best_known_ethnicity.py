"""Best-known ethnicity per person, rule by rule, on staging rows written directly.

The rule (``core.person_ethnicity``): a known code on the GP register first (the latest
snapshot that has one); else the most recent known code in secondary care, ties on the day
broken by inpatients, then A&E, then outpatients, then by the code; else Z if the register's
latest snapshot says Z; else 99.
"""

from __future__ import annotations

from datetime import date
from itertools import count

import pyarrow as pa
import pytest
import sqlalchemy as sa

from tests.support import postgres
from transforms.core.ethnicity import NOT_KNOWN_CODE, NOT_STATED_CODE, classify
from transforms.quality.completeness import SECONDARY_CARE, rebuild_person_ethnicity
from transforms.warehouse import engine as warehouse
from transforms.warehouse.ddl import apply_ddl
from transforms.warehouse.tables import STAGING, core_person_ethnicity

ROW = count(1)


def _status(code: str) -> str:
    """The status the row rules give the code (``classify``)."""
    return classify(pa.array([code]))[1][0].as_py()


def _register(person: str, period: str, code: str) -> tuple[str, dict]:
    row = dict(person_id=person, period=period, ethnic_code=code, ethnic_status=_status(code))
    return "gp_register", row


def _seen(source: str, person: str, day: date, code: str) -> tuple[str, dict]:
    row = dict(
        person_id=person,
        period=day.strftime("%Y-%m"),
        ethnic_code=code,
        ethnic_status=_status(code),
    )
    return source, row | {SECONDARY_CARE[source]: day}


STAGED = [
    # GP first: the latest snapshot with a known code, whatever came after it.
    _register("gp_latest_known", "2024-01", "A"),
    _register("gp_latest_known", "2024-02", "J"),
    _register("gp_latest_known", "2024-03", NOT_KNOWN_CODE),
    _seen("ae_attendances", "gp_latest_known", date(2024, 3, 20), "M"),
    # Z on the register does not hide an earlier known code.
    _register("known_then_declined", "2024-01", "H"),
    _register("known_then_declined", "2024-02", NOT_STATED_CODE),
    # No known code on the register: the most recent in secondary care; on the same day,
    # inpatients before A&E before outpatients.
    _register("secondary_same_day", "2024-03", NOT_STATED_CODE),
    _seen("inpatient_spells", "secondary_same_day", date(2024, 2, 1), "R"),
    _seen("outpatient_appointments", "secondary_same_day", date(2024, 3, 5), "N"),
    _seen("ae_attendances", "secondary_same_day", date(2024, 3, 5), "H"),
    _seen("ae_attendances", "secondary_same_day", date(2024, 3, 4), "S"),
    _seen("ae_attendances", "inpatients_first", date(2024, 4, 30), "H"),
    _seen("inpatient_spells", "inpatients_first", date(2024, 4, 30), "R"),
    # One source, one day, two codes: the lesser code.
    _seen("outpatient_appointments", "two_codes_one_day", date(2024, 1, 9), "L"),
    _seen("outpatient_appointments", "two_codes_one_day", date(2024, 1, 9), "K"),
    _seen("outpatient_appointments", "two_codes_one_day", date(2024, 1, 8), "A"),
    # Unknown codes in secondary care are not evidence: the register's latest Z stands...
    _register("declined_on_register", "2024-01", NOT_KNOWN_CODE),
    _register("declined_on_register", "2024-02", NOT_STATED_CODE),
    _seen("ae_attendances", "declined_on_register", date(2024, 2, 3), NOT_KNOWN_CODE),
    # ...and a later 99 on the register makes it not known.
    _register("not_known", "2024-01", NOT_STATED_CODE),
    _register("not_known", "2024-02", NOT_KNOWN_CODE),
    # Someone seen only with unknown codes in secondary care has no row.
    _seen("inpatient_spells", "never_known", date(2024, 1, 2), NOT_STATED_CODE),
]
EXPECTED = {
    "gp_latest_known": ("J", "gp_register", date(2024, 2, 29)),
    "known_then_declined": ("H", "gp_register", date(2024, 1, 31)),
    "secondary_same_day": ("H", "ae_attendances", date(2024, 3, 5)),
    "inpatients_first": ("R", "inpatient_spells", date(2024, 4, 30)),
    "two_codes_one_day": ("K", "outpatient_appointments", date(2024, 1, 9)),
    "declined_on_register": (NOT_STATED_CODE, "gp_register", date(2024, 2, 29)),
    "not_known": (NOT_KNOWN_CODE, "gp_register", date(2024, 2, 29)),
}


def _write(conn: sa.Connection, rows: list[tuple[str, dict]]) -> None:
    for source, row in rows:
        lineage = {"load_id": "test", "row_number": next(ROW)}
        conn.execute(sa.insert(STAGING[source]), [row | lineage])


def _best_known(url: str, rows: list[tuple[str, dict]]) -> dict[str, tuple]:
    engine = warehouse.make_engine(url)
    apply_ddl(engine)
    with engine.begin() as conn:
        _write(conn, rows)
        rebuild_person_ethnicity(conn)
        best = conn.execute(
            sa.select(
                core_person_ethnicity.c.person_id,
                core_person_ethnicity.c.ethnic_code,
                core_person_ethnicity.c.source,
                core_person_ethnicity.c.recorded_on,
            )
        ).all()
    engine.dispose()
    return {person: tuple(rest) for person, *rest in best}


@pytest.mark.parametrize("order", ["as listed", "reversed"])
def test_best_known_ethnicity_follows_the_rule_in_any_load_order(
    warehouse_url: str, order: str
) -> None:
    rows = STAGED if order == "as listed" else STAGED[::-1]
    assert _best_known(warehouse_url, rows) == EXPECTED


@pytest.mark.postgres
def test_a_collation_that_reads_digits_as_numbers_changes_no_ones_ethnicity() -> None:
    """Such a collation compares "2024-01" + "99" above "2024-02" + "Z": the keys that pick
    the latest row must compare bytewise whatever the database's default."""
    numeric = "template template0 locale_provider icu icu_locale 'en-US-u-kn-true'"
    with postgres.scratch_database("hei_test_numeric_", numeric) as url:
        assert _best_known(url, STAGED) == EXPECTED


@pytest.mark.postgres
def test_linking_memory_for_postgresql_lasts_one_transaction(postgres_url: str) -> None:
    engine = warehouse.make_engine(postgres_url)
    show = sa.text("show work_mem")
    with engine.begin() as conn:
        before = conn.execute(show).scalar_one()
        warehouse.allow_grouping_memory(conn)
        assert conn.execute(show).scalar_one() == warehouse.GROUPING_MEMORY
    with engine.connect() as conn:
        assert conn.execute(show).scalar_one() == before != warehouse.GROUPING_MEMORY
    engine.dispose()
