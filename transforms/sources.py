"""The landing-zone sources, declared as data.

Each :class:`Source` says what a delivery must contain (``../DATA_CONTRACT``): columns, their
types, which are required, the allowed codes, the event date and how far it may stray from
the delivery month, and which column identifies a record. Reading, row rules, the staging
DDL and the DAGs are all generated from these declarations, so adding a source or accepting
a renamed column is an edit here, not new code. The catalogue is Python rather than YAML so
that DAG files can build their DAGs without reading a file at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["str", "int", "date", "bool", "code"]

SEX_CODES = ("0", "1", "2", "9")


@dataclass(frozen=True)
class Column:
    """One column of a delivery.

    ``required`` means the column must be present in the file and, unless ``allow_blank``,
    every row must carry a value. ``codes`` lists the allowed values of a ``code`` column
    (matched case-insensitively and stored in the canonical spelling given here).
    """

    name: str
    kind: Kind = "str"
    required: bool = False
    allow_blank: bool = False
    codes: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    min_value: int | None = None
    max_value: int | None = None
    pattern: str | None = None

    @property
    def sql_type(self) -> str:
        return {"int": "integer", "date": "date", "bool": "boolean"}.get(self.kind, "varchar")


@dataclass(frozen=True)
class Source:
    """A landing-zone source and the rules its deliveries must follow.

    ``record_id`` names the column that identifies a record within a delivery (``person_id``
    for snapshots of people); duplicates of it are quarantined. ``event_date`` is checked
    against the delivery month, allowing ``lag_days`` of late-recorded activity before it.
    """

    name: str
    title: str
    columns: tuple[Column, ...]
    record_id: str
    person_level: bool = True
    event_date: str | None = None
    lag_days: int = 31
    snapshot: bool = False
    description: str = ""

    @property
    def table(self) -> str:
        return f"stg_{self.name}"

    @property
    def qualified_table(self) -> str:
        return f"staging.{self.table}"

    @property
    def asset_uri(self) -> str:
        return f"warehouse://staging/{self.table}"

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def output_columns(self) -> tuple[Column, ...]:
        """Columns written to staging: ``person_id`` replaces ``nhs_number``."""
        return tuple(c for c in self.columns if c.name != "nhs_number")


PERSON_ID = Column("person_id", "str", required=True, aliases=("patient_id", "pseudo_id"))
NHS_NUMBER = Column("nhs_number", "str", aliases=("nhs_no", "nhsnumber"))
AGE = Column("age", "int", required=True, min_value=0, max_value=120)
SEX = Column("sex", "code", required=True, allow_blank=True, codes=SEX_CODES)
ETHNIC_CATEGORY = Column("ethnic_category", "str", aliases=("ethnicity", "ethnic_group"))
PRACTICE = Column("practice_code", "str", required=True, pattern=r"^[A-Z][0-9]{5}$")
LSOA = Column("lsoa_code", "str")

SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            name="gp_register",
            title="GP registered population (snapshot on the last day of the month)",
            columns=(
                PERSON_ID,
                NHS_NUMBER,
                PRACTICE,
                AGE,
                SEX,
                ETHNIC_CATEGORY,
                Column("ethnicity_snomed", "str", pattern=r"^[0-9]{6,18}$"),
                LSOA,
                Column("registration_date", "date"),
            ),
            record_id="person_id",
            snapshot=True,
            description="Denominators: one row per registered person.",
        ),
        Source(
            name="gp_appointments",
            title="GP appointments (GPAD-like)",
            columns=(
                Column("appointment_id", "str", required=True),
                PERSON_ID,
                NHS_NUMBER,
                PRACTICE,
                Column("appointment_date", "date", required=True),
                Column(
                    "appointment_status",
                    "code",
                    required=True,
                    codes=("Attended", "DNA", "Cancelled", "Unknown"),
                ),
                Column(
                    "appointment_mode",
                    "code",
                    allow_blank=True,
                    codes=("Face-to-Face", "Telephone", "Video", "Home Visit", "Unknown"),
                ),
                Column("hcp_type", "code", allow_blank=True, codes=("GP", "Other Practice staff")),
                ETHNIC_CATEGORY,
            ),
            record_id="appointment_id",
            event_date="appointment_date",
        ),
    )
}


def get_source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        known = ", ".join(sorted(SOURCES))
        raise KeyError(f"unknown source {name!r}; configured sources: {known}") from None
