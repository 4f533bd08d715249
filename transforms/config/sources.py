"""The landing-zone sources, declared as data.

Each :class:`Source` says what a delivery must contain: columns, their types, which are
required, the allowed codes, the event date and how far it may stray from the delivery month,
and which column identifies a record. This catalogue is the data contract; the README
("Pointing it at real extracts") gives the conventions every file follows. Reading, row
rules, the staging DDL and the DAGs are all generated from these declarations, so adding a
source or accepting a renamed column is an edit here, not new code. The catalogue is Python
rather than YAML so that DAG files can build their DAGs without reading a file at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ColumnKind = Literal["str", "int", "date", "bool", "code"]

SEX_CODES = ("0", "1", "2", "9")


@dataclass(frozen=True)
class Column:
    """One column of a delivery.

    ``required`` means the column must be present in the file and, unless ``allow_blank``,
    every row must carry a value. An optional column may be left out of a delivery (columns
    added by a later release of the contract are optional, so older extracts still load): it
    is then null in staging, and the load's ``absent_columns`` in ``audit.file_loads`` names
    it, so a null can be told from a value the delivery did not carry. ``codes`` lists the
    allowed values of a ``code`` column (matched case-insensitively and stored in the canonical
    spelling given here).
    """

    name: str
    kind: ColumnKind = "str"
    required: bool = False
    allow_blank: bool = False
    codes: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    min_value: int | None = None
    max_value: int | None = None
    pattern: str | None = None


@dataclass(frozen=True)
class Source:
    """A landing-zone source and the rules its deliveries must follow.

    ``record_id`` names the column that identifies a record (``person_id`` for snapshots of
    people); repeats within a delivery are quarantined, and so are records already loaded
    for another month unless the source is a ``snapshot`` (where every month repeats
    everyone). ``event_date`` is checked against the delivery month, allowing ``lag_days`` of
    late-recorded activity before it. ``date_order`` pairs must not run backwards
    (a discharge before its admission). ``organisation`` is the column completeness is
    reported by; ``completeness_threshold`` the % of known ethnicity below which a run
    raises a data-quality warning.

    What Great Expectations checks on the delivery as it will land (``transforms/quality/
    suites.py``; the thresholds are named constants there): ``volume_ratio`` is the range a
    delivery's loaded rows must fall in, as a multiple of the median of the source's recent
    months, or None where volume is seasonal and is not judged; ``seasonal_codes`` are code
    columns whose mix is expected to swing between months and is not compared with history;
    ``max_day_share`` is the largest share of a delivery's rows that may carry one event
    date (None: not judged, for sources whose events come in batches on one day).

    ``delivery_day`` is the day of the following month by which a month's delivery is due
    (the 15th: October's file by 15 November). The data contract sets no timing, so these
    are the partnership's expectations of each supplier (README, "Late and missing
    deliveries"); ``transforms.ops.deliveries`` alerts from the day after. At most 28, so the
    day exists in every month.
    """

    name: str
    title: str
    columns: tuple[Column, ...]
    record_id: str
    person_level: bool = True
    organisation: str | None = None
    event_date: str | None = None
    lag_days: int = 31
    snapshot: bool = False
    date_order: tuple[tuple[str, str], ...] = ()
    completeness_threshold: float = 90.0
    description: str = ""
    volume_ratio: tuple[float, float] | None = (1 / 3, 3.0)
    seasonal_codes: tuple[str, ...] = ()
    max_day_share: float | None = 0.5
    delivery_day: int = 15

    def __post_init__(self) -> None:
        if not 1 <= self.delivery_day <= 28:
            raise ValueError(f"{self.name}: delivery_day must be 1-28, not {self.delivery_day}")

    @property
    def table(self) -> str:
        return f"stg_{self.name}"

    @property
    def qualified_table(self) -> str:
        return f"staging.{self.table}"

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def has_ethnicity(self) -> bool:
        return any(c.name == "ethnic_category" for c in self.columns)

    @property
    def share_columns(self) -> tuple[str, ...]:
        """Code columns whose mix of codes is compared with the source's recent months."""
        return tuple(c.name for c in self.columns if c.codes and c.name not in self.seasonal_codes)

    @property
    def output_columns(self) -> tuple[Column, ...]:
        """Columns written to staging: ``person_id`` replaces ``nhs_number``, and sources
        with ethnicity gain the normalised code and its status (see transforms.core.ethnicity)."""
        derived = (Column("ethnic_code"), Column("ethnic_status")) if self.has_ethnicity else ()
        return tuple(c for c in self.columns if c.name != "nhs_number") + derived


PERSON_ID = Column("person_id", "str", required=True, aliases=("pseudo_id",))
NHS_NUMBER = Column("nhs_number", "str", aliases=("nhs_no", "nhsnumber"))
AGE = Column("age", "int", required=True, min_value=0, max_value=120)
SEX = Column("sex", "code", required=True, allow_blank=True, codes=SEX_CODES)
ETHNIC_CATEGORY = Column("ethnic_category", "str", aliases=("ethnicity", "ethnic_group"))
PRACTICE = Column("practice_code", "str", required=True, pattern=r"^[A-Z][0-9]{5}$")
PROVIDER = Column("provider_code", "str", pattern=r"^[A-Z0-9]{3,5}$")
ORGANISATION = Column("organisation_code", "str", required=True, pattern=r"^[A-Z0-9]{3,5}$")
LSOA = Column("lsoa_code", "str")
ICD10 = r"^[A-Z][0-9]{2}(?:\.?[0-9A-Z]{1,2})?$"
PERSON = (PERSON_ID, NHS_NUMBER)
DEMOGRAPHICS = (AGE, SEX, ETHNIC_CATEGORY)
PAY_BANDS = tuple(f"Band {n}" for n in range(1, 10)) + ("VSM", "Medical", "Other")
EMERGENCY_METHODS = ("21", "22", "23", "24", "25", "2A", "2B", "2C", "2D", "28")
ADMISSION_METHODS = ("11", "12", "13", *EMERGENCY_METHODS, "31", "32", "81", "82", "83")


def flag(name: str, required: bool = False) -> Column:
    return Column(name, "bool", required=required)


REGISTER = "gp_register"
"""The register: the population every person-level source is linked to and rates are of."""

SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            name=REGISTER,
            title="GP registered population (snapshot on the last day of the month)",
            columns=(
                *PERSON,
                PRACTICE,
                *DEMOGRAPHICS,
                Column("ethnicity_snomed", "str"),
                LSOA,
                Column("registration_date", "date"),
            ),
            record_id="person_id",
            organisation="practice_code",
            snapshot=True,
            description="Denominators: one row per registered person.",
            delivery_day=10,  # extracted from the GP systems once the month has closed
        ),
        Source(
            name="gp_appointments",
            title="GP appointments (GPAD-like)",
            columns=(
                Column("appointment_id", "str", required=True),
                *PERSON,
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
            organisation="practice_code",
            event_date="appointment_date",
            delivery_day=15,  # a monthly practice-system extract
        ),
        Source(
            name="ae_attendances",
            title="Emergency care attendances (ECDS-like)",
            columns=(
                Column("attendance_id", "str", required=True),
                *PERSON,
                Column("arrival_date", "date", required=True),
                *DEMOGRAPHICS,
                LSOA,
                Column("department_type", "code", codes=("01", "02", "03")),
                PROVIDER,
            ),
            record_id="attendance_id",
            organisation="provider_code",
            event_date="arrival_date",
            delivery_day=21,  # SUS-like: after the national monthly submission deadline
        ),
        Source(
            name="inpatient_spells",
            title="Admitted patient care spells (SUS APC-like)",
            columns=(
                Column("spell_id", "str", required=True),
                *PERSON,
                Column("admission_date", "date", required=True),
                Column("discharge_date", "date"),
                Column("admission_method", "code", required=True, codes=ADMISSION_METHODS),
                Column("primary_diagnosis", "str", required=True, pattern=ICD10),
                *DEMOGRAPHICS,
                LSOA,
                PROVIDER,
            ),
            record_id="spell_id",
            organisation="provider_code",
            event_date="admission_date",
            date_order=(("admission_date", "discharge_date"),),
            delivery_day=21,  # SUS-like: after the national monthly submission deadline
        ),
        Source(
            name="outpatient_appointments",
            title="Outpatient appointments (SUS OP-like)",
            columns=(
                Column("appointment_id", "str", required=True),
                *PERSON,
                Column("appointment_date", "date", required=True),
                Column("first_attendance", "code", required=True, codes=("1", "2", "3", "4")),
                Column(
                    "attendance_status",
                    "code",
                    required=True,
                    codes=("5", "6", "7", "2", "3", "4", "0"),
                ),
                Column("treatment_function_code", "str"),
                *DEMOGRAPHICS,
                LSOA,
                PROVIDER,
            ),
            record_id="appointment_id",
            organisation="provider_code",
            event_date="appointment_date",
            delivery_day=21,  # SUS-like: after the national monthly submission deadline
        ),
        Source(
            name="talking_therapies",
            title="NHS Talking Therapies referrals (IAPT-like)",
            columns=(
                Column("referral_id", "str", required=True),
                *PERSON,
                Column("referral_date", "date", required=True),
                Column("end_date", "date"),
                *DEMOGRAPHICS,
                flag("completed_treatment"),
                flag("caseness_at_start"),
                flag("caseness_at_end"),
            ),
            record_id="referral_id",
            event_date="referral_date",
            date_order=(("referral_date", "end_date"),),
            delivery_day=28,  # the national dataset's monthly submission window is the longest
        ),
        Source(
            name="vaccinations",
            title="Immunisation events (NIMS-like)",
            columns=(
                Column("event_id", "str", required=True),
                *PERSON,
                Column("vaccination_date", "date", required=True),
                Column("programme", "code", required=True, codes=("COVID-19", "Influenza")),
                Column("dose_number", "int", min_value=1, max_value=20),
                *DEMOGRAPHICS,
                flag("is_health_care_worker"),
                Column("staff_organisation_code", "str", pattern=r"^[A-Z0-9]{3,5}$"),
            ),
            record_id="event_id",
            event_date="vaccination_date",
            # Campaigns: autumn months bring many times the volume of summer ones, and the
            # mix of programmes follows the COVID-19 and flu seasons.
            volume_ratio=None,
            seasonal_codes=("programme",),
            delivery_day=10,  # the national immunisation record is near real time
        ),
        Source(
            name="deaths",
            title="Registered deaths (civil registration-like)",
            columns=(
                *PERSON,
                Column("date_of_death", "date", required=True),
                *DEMOGRAPHICS,
                Column("underlying_cause", "str", required=True, pattern=ICD10),
                LSOA,
            ),
            record_id="person_id",
            event_date="date_of_death",
            delivery_day=15,  # most deaths are registered within five days
        ),
        Source(
            name="workforce",
            title="Staff snapshot (ESR-like, for WRES)",
            columns=(
                Column("staff_id", "str", required=True),
                ORGANISATION,
                Column("pay_band", "code", required=True, codes=PAY_BANDS),
                Column("staff_group", "code", required=True, codes=("Clinical", "Non-clinical")),
                ETHNIC_CATEGORY,
                flag("is_board_member"),
                flag("is_voting_board_member"),
                flag("is_executive"),
                flag("in_disciplinary_process"),
                flag("accessed_non_mandatory_training"),
                # The contract's second release: optional, absent from earlier deliveries.
                Column("covid_vaccination_date", "date"),
                Column("flu_vaccination_date", "date"),
            ),
            record_id="staff_id",
            person_level=False,
            organisation="organisation_code",
            snapshot=True,
            description="One row per staff member in post on the month's last day. The "
            "vaccination dates (latest dose recorded by occupational health) came with the "
            "contract's second release: a delivery without them loads with nulls there, and "
            "its audit.file_loads row names them in absent_columns.",
            delivery_day=15,  # the staff record is extracted after the month's payroll
        ),
        Source(
            name="recruitment",
            title="Shortlisting outcomes (for WRES indicator 2)",
            columns=(
                Column("applicant_id", "str", required=True),
                Column("vacancy_id", "str", required=True),
                ORGANISATION,
                Column("shortlisted_date", "date", required=True),
                ETHNIC_CATEGORY,
                flag("appointed", required=True),
            ),
            record_id="applicant_id",
            person_level=False,
            organisation="organisation_code",
            event_date="shortlisted_date",
            max_day_share=None,  # a vacancy's applicants are shortlisted on one day
            delivery_day=15,  # the recruitment system's monthly extract
        ),
    )
}


def get_source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        known = ", ".join(sorted(SOURCES))
        raise KeyError(f"unknown source {name!r}; configured sources: {known}") from None
