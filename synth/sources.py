"""The data contract as one table: columns, required fields, roles and file format per source.

The writer and the fault injector are driven entirely by this table, so a source's
layout is stated once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

# Values that are not in a field's code list (invalid_code faults).
_SEX = ("3", "5", "8")
_INVALID_CODES: dict[str, tuple[str, ...]] = {
    "sex": _SEX,
    "appointment_status": ("Attnd", "Pending", "XX"),
    "admission_method": ("14", "99", "2E"),
    "department_type": ("04", "05", "ED"),
    "attendance_status": ("1", "8", "9"),
    "first_attendance": ("0", "5", "X"),
    "programme": ("MMR", "Shingles", "HPV"),
    "pay_band": ("Band 10", "Band 0", "Grade A"),
    "staff_group": ("Clin", "Support", "Other group"),
}
_PERSON = ("age", "sex", "ethnic_category", "lsoa_code")


@dataclass(frozen=True)
class SourceSpec:
    name: str
    columns: tuple[str, ...]
    required: tuple[str, ...]
    id_column: str  # what a duplicate_id fault repeats
    id_prefix: str = ""  # event identifiers; empty when the id is the NHS number or staff id
    event_date: str | None = None  # the main date: target of invalid_date / date_out_of_range
    file_format: str = "csv"  # csv | parquet
    encoding: str = "utf-8"  # utf-8 | utf-8-sig | cp1252
    day_first: bool = False  # DD/MM/YYYY instead of YYYY-MM-DD
    bools: tuple[str, str] = ("Y", "N")
    gzip_odd_months: bool = False
    eol: str = "\n"
    second_release: tuple[str, ...] = ()  # columns the contract's second release added
    coded: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "coded", tuple(c for c in self.columns if c in _INVALID_CODES))

    def first_release(self) -> SourceSpec:
        """The layout of deliveries made before the contract's second release."""
        if not self.second_release:
            return self
        return replace(self, columns=tuple(c for c in self.columns if c not in self.second_release))

    @property
    def charset(self) -> str:
        return "cp1252" if self.encoding == "cp1252" else "ascii"

    @property
    def date_format(self) -> str:
        return "DD/MM/YYYY" if self.day_first else "YYYY-MM-DD"

    def compression(self, month_number: int) -> str | None:
        return "gzip" if self.gzip_odd_months and month_number % 2 else None

    def extension(self, month_number: int) -> str:
        if self.file_format == "parquet":
            return "parquet"
        return "csv.gz" if self.compression(month_number) else "csv"

    def fault_kinds(self) -> tuple[str, ...]:
        """Row faults that make sense for this source's columns and format."""
        applicable = {
            "malformed_line": self.file_format == "csv",
            "invalid_date": self.event_date is not None,
            "date_out_of_range": self.event_date is not None,
            "invalid_age": "age" in self.columns,
            "invalid_nhs_number": "nhs_number" in self.columns,
            "duplicate_id": True,
            "invalid_code": bool(self.coded),
            "missing_value": True,
        }
        return tuple(kind for kind, ok in applicable.items() if ok)

    def blankable(self) -> tuple[str, ...]:
        """Required fields missing_value may blank; not sex, where blank means 'not known'."""
        return tuple(c for c in self.required if c != "sex")


def invalid_codes(column: str) -> tuple[str, ...]:
    return _INVALID_CODES[column]


SOURCES: dict[str, SourceSpec] = {
    spec.name: spec
    for spec in (
        SourceSpec(
            "gp_register",
            (
                "nhs_number",
                "practice_code",
                "age",
                "sex",
                "ethnic_category",
                "ethnicity_snomed",
                "lsoa_code",
                "registration_date",
            ),
            required=("nhs_number", "practice_code", "age", "sex"),
            id_column="nhs_number",
        ),
        SourceSpec(
            "gp_appointments",
            (
                "appointment_id",
                "nhs_number",
                "practice_code",
                "appointment_date",
                "appointment_status",
                "appointment_mode",
                "hcp_type",
                "ethnic_category",
            ),
            required=(
                "appointment_id",
                "nhs_number",
                "practice_code",
                "appointment_date",
                "appointment_status",
            ),
            id_column="appointment_id",
            id_prefix="APT",
            event_date="appointment_date",
            gzip_odd_months=True,
        ),
        SourceSpec(
            "ae_attendances",
            (
                "attendance_id",
                "nhs_number",
                "arrival_date",
                *_PERSON,
                "department_type",
                "provider_code",
            ),
            required=("attendance_id", "nhs_number", "arrival_date", "age", "sex"),
            id_column="attendance_id",
            id_prefix="AEA",
            event_date="arrival_date",
            encoding="cp1252",
            day_first=True,
            eol="\r\n",
        ),
        SourceSpec(
            "inpatient_spells",
            (
                "spell_id",
                "nhs_number",
                "admission_date",
                "discharge_date",
                "admission_method",
                "primary_diagnosis",
                *_PERSON,
                "provider_code",
            ),
            required=(
                "spell_id",
                "nhs_number",
                "admission_date",
                "admission_method",
                "primary_diagnosis",
                "age",
                "sex",
            ),
            id_column="spell_id",
            id_prefix="SPL",
            event_date="admission_date",
            file_format="parquet",
        ),
        SourceSpec(
            "outpatient_appointments",
            (
                "appointment_id",
                "nhs_number",
                "appointment_date",
                "first_attendance",
                "attendance_status",
                "treatment_function_code",
                *_PERSON,
                "provider_code",
            ),
            required=(
                "appointment_id",
                "nhs_number",
                "appointment_date",
                "first_attendance",
                "attendance_status",
                "age",
                "sex",
            ),
            id_column="appointment_id",
            id_prefix="OPA",
            event_date="appointment_date",
            encoding="utf-8-sig",
        ),
        SourceSpec(
            "talking_therapies",
            (
                "referral_id",
                "nhs_number",
                "referral_date",
                "end_date",
                "age",
                "sex",
                "ethnic_category",
                "completed_treatment",
                "caseness_at_start",
                "caseness_at_end",
            ),
            required=("referral_id", "nhs_number", "referral_date", "age", "sex"),
            id_column="referral_id",
            id_prefix="TTR",
            event_date="referral_date",
            bools=("true", "false"),
        ),
        SourceSpec(
            "vaccinations",
            (
                "event_id",
                "nhs_number",
                "vaccination_date",
                "programme",
                "dose_number",
                "age",
                "sex",
                "ethnic_category",
                "is_health_care_worker",
                "staff_organisation_code",
            ),
            required=("event_id", "nhs_number", "vaccination_date", "programme", "age", "sex"),
            id_column="event_id",
            id_prefix="VXE",
            event_date="vaccination_date",
        ),
        SourceSpec(
            "deaths",
            (
                "nhs_number",
                "date_of_death",
                "age",
                "sex",
                "underlying_cause",
                "ethnic_category",
                "lsoa_code",
            ),
            required=("nhs_number", "date_of_death", "age", "sex", "underlying_cause"),
            id_column="nhs_number",
            event_date="date_of_death",
            encoding="cp1252",
            day_first=True,
        ),
        SourceSpec(
            "workforce",
            (
                "staff_id",
                "organisation_code",
                "pay_band",
                "staff_group",
                "ethnic_category",
                "is_board_member",
                "is_voting_board_member",
                "is_executive",
                "in_disciplinary_process",
                "accessed_non_mandatory_training",
                "covid_vaccination_date",
                "flu_vaccination_date",
            ),
            required=("staff_id", "organisation_code", "pay_band", "staff_group"),
            id_column="staff_id",
            encoding="utf-8-sig",
            bools=("1", "0"),
            second_release=("covid_vaccination_date", "flu_vaccination_date"),
        ),
        SourceSpec(
            "recruitment",
            (
                "applicant_id",
                "vacancy_id",
                "organisation_code",
                "shortlisted_date",
                "ethnic_category",
                "appointed",
            ),
            required=(
                "applicant_id",
                "vacancy_id",
                "organisation_code",
                "shortlisted_date",
                "appointed",
            ),
            id_column="applicant_id",
            id_prefix="APL",
            event_date="shortlisted_date",
        ),
    )
}
