"""The injected truth: every number the pipeline is expected to recover lives here.

Group-indexed tuples follow `reference.GROUPS` order:
White, Mixed, Asian or Asian British, Black or Black British, Other ethnic group.
White is the reference group (ratio 1.0).
"""

from __future__ import annotations

import numpy as np

from .reference import GROUPS

# Multipliers on age-specific rates, so a directly age-standardised rate ratio equals them.
RATE_RATIOS: dict[str, tuple[float, ...]] = {
    "gp_appointments_attended": (1.0, 0.90, 1.10, 0.85, 0.90),
    "ae_attendances": (1.0, 1.15, 0.95, 1.25, 1.05),
    "elective_admissions": (1.0, 0.85, 0.90, 0.80, 0.85),
    "emergency_admissions": (1.0, 1.10, 1.05, 1.30, 0.95),
    "emergency_acsc_admissions": (1.0, 1.20, 1.40, 1.50, 1.10),
    "outpatient_first_attendances": (1.0, 0.90, 0.95, 0.85, 0.90),
    "talking_therapies_referrals": (1.0, 0.85, 0.60, 0.55, 0.70),
    "deaths": (1.0, 0.95, 1.10, 1.05, 0.80),
}

# Group-specific probabilities, independent of age.
PROPORTIONS: dict[str, tuple[float, ...]] = {
    "gp_appointments_dna": (0.04, 0.06, 0.07, 0.075, 0.06),
    "outpatient_dna": (0.06, 0.09, 0.10, 0.12, 0.09),
    "talking_therapies_recovery": (0.50, 0.46, 0.44, 0.42, 0.45),
    "covid_uptake_adults": (0.33, 0.20, 0.22, 0.13, 0.21),
    "flu_uptake_65plus": (0.78, 0.62, 0.63, 0.50, 0.62),
}

# Share of known (A-S) ethnicity per source: (first month, last month), interpolated linearly.
COMPLETENESS: dict[str, tuple[float, float]] = {
    "gp_register": (0.85, 0.92),
    "gp_appointments": (0.88, 0.93),
    "ae_attendances": (0.75, 0.85),
    "inpatient_spells": (0.88, 0.94),
    "outpatient_appointments": (0.82, 0.90),
    "talking_therapies": (0.93, 0.97),
    "vaccinations": (0.85, 0.91),
    "deaths": (0.90, 0.94),
    "workforce": (0.95, 0.98),
    "recruitment": (0.92, 0.96),
}

# Share of known GP register records coded by a SNOMED concept rather than a letter.
SNOMED_SHARE = 0.4

# Expected monthly volumes at scale 1 used to calibrate base rates on the first month.
VOLUMES: dict[str, float] = {
    "gp_appointments": 165_000,
    "ae_attendances": 8_000,
    "elective_admissions": 2_500,
    "emergency_admissions": 3_000,
    "maternity_admissions": 350,
    "other_admissions": 150,
    "outpatient_appointments": 35_000,
    "talking_therapies_referrals": 800,
    "deaths": 280,
    "births": 275,
    "registrations": 3_300,
    "recruitment": 600,
}
POPULATION = 330_000
MONTHLY_DEREGISTRATION = 0.01  # balanced by VOLUMES["registrations"]
STAFF = {"RRF": 5_000, "RXV": 2_000, "RW4": 1_000}
ORGANISATIONS = tuple(STAFF)

# Relative age-specific rate shapes: (ages, values) knots, linearly interpolated.
AGE_SHAPES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "gp_appointments": ((0, 4, 10, 20, 40, 60, 75, 90), (2.0, 1.0, 0.6, 0.8, 1.0, 1.5, 2.3, 2.8)),
    "ae_attendances": ((0, 4, 15, 25, 50, 70, 85, 100), (2.0, 1.2, 1.0, 1.1, 0.8, 1.2, 2.5, 3.0)),
    "elective_admissions": ((0, 18, 40, 60, 75, 85, 100), (0.2, 0.4, 0.8, 1.8, 2.5, 1.8, 1.0)),
    "emergency_admissions": ((0, 4, 18, 50, 70, 85, 100), (1.5, 0.5, 0.6, 0.8, 2.0, 4.5, 5.0)),
    "maternity_admissions": ((15, 16, 20, 30, 35, 40, 45, 46), (0, 0.3, 0.8, 1, 0.8, 0.3, 0.05, 0)),
    "other_admissions": ((0, 100), (1.0, 1.0)),
    "outpatient_appointments": ((0, 18, 40, 60, 75, 90, 100), (0.6, 0.6, 0.9, 1.6, 2.0, 1.5, 1.0)),
    "talking_therapies_referrals": (
        (17, 18, 30, 45, 65, 80, 100),
        (0, 1.0, 1.2, 1.0, 0.5, 0.2, 0.1),
    ),
    "deaths": (
        (0, 1, 15, 30, 40, 50, 60, 70, 80, 90, 100, 110),
        (0.08, 0.004, 0.003, 0.01, 0.025, 0.06, 0.15, 0.38, 1.0, 2.6, 6.0, 9.0),
    ),
    "deregistration": ((0, 18, 25, 35, 50, 70, 100), (0.8, 1.5, 2.0, 1.2, 0.6, 0.4, 0.4)),
}

# Emergency spells with an ACSC primary diagnosis, for the White reference group.
ACSC_SHARE_OF_EMERGENCY = 0.18

# GP appointments other than Attended/DNA, relative to the attended rate.
GP_CANCELLED_PER_ATTENDED = 0.08
GP_UNKNOWN_PER_ATTENDED = 0.01

# Outpatient follow-ups per first attendance; status mix outside attended/DNA.
OUTPATIENT_FOLLOW_UPS_PER_FIRST = 1.9
OUTPATIENT_CANCELLED = {"2": 0.06, "4": 0.07, "0": 0.01}
OUTPATIENT_SEEN = {"5": 0.93, "6": 0.05, "7": 0.02}

# Vaccination campaigns: share of a season's uptake given in each calendar month.
COVID_MONTH_SHARE = {9: 0.45, 10: 0.35, 11: 0.15, 12: 0.05}
FLU_MONTH_SHARE = {10: 0.38, 11: 0.30, 12: 0.14, 1: 0.09, 2: 0.06, 3: 0.03}
FLU_UPTAKE_CHILDREN = 0.40  # ages 2-17, White; scaled by the group's 65+ uptake ratio
FLU_UPTAKE_ADULTS_UNDER_65 = 0.11
OFF_SEASON_MONTHLY = {"COVID-19": 0.0005, "Influenza": 0.0003}  # per eligible adult

# Workforce (probabilities per snapshot / per shortlisted applicant).
# Staff ethnic mix by letter A..S (~12% BME).
STAFF_CODE_WEIGHTS = dict(
    zip(
        "ABCDEFGHJKLMNPRS",
        (80, 1.2, 6.8, 0.4, 0.3, 0.4, 0.3, 3, 1.3, 0.3, 1.3, 0.5, 2.4, 0.5, 0.4, 0.9),
        strict=True,
    )
)
APPLICANT_BME_SHARE = 0.28
DISCIPLINARY = {"White": 0.006, "BME": 0.009}
TRAINING = {"White": 0.60, "BME": 0.54}
APPOINTED = {"White": 0.24, "BME": 0.16}
PAY_BANDS = (*(f"Band {i}" for i in range(1, 10)), "VSM", "Medical", "Other")
PAY_BAND_WEIGHTS = {
    "White": (0.5, 14, 12, 8, 19, 17, 12, 6.0, 0.6, 0.4, 9, 1.5),
    "BME": (0.3, 12, 9, 6, 23, 17, 8, 3.0, 0.25, 0.15, 20, 1.3),
}
CLINICAL_SHARE_BY_BAND = (0.2, 0.5, 0.45, 0.4, 0.75, 0.75, 0.7, 0.45, 0.3, 0.2, 1.0, 0.3)
BOARD_SIZE, BOARD_EXECUTIVES, BOARD_VOTING_EXECUTIVES = 12, 7, 5
BOARD_BME_WEIGHT = 0.35  # relative chance of a BME senior being on the board
STAFF_MONTHLY_TURNOVER = 0.01

# Staff vaccination (workforce columns of the contract's second release): the chance that a
# staff member has the season's dose, for clinical staff of an organisation with factor 1,
# by group; doses fall uniformly in the campaign, from 1 September for the months given.
STAFF_UPTAKE: dict[str, tuple[float, ...]] = {
    "covid_vaccination_date": (0.72, 0.63, 0.60, 0.50, 0.62),
    "flu_vaccination_date": (0.70, 0.61, 0.58, 0.47, 0.60),
}
STAFF_CAMPAIGN_MONTHS = {"covid_vaccination_date": 4, "flu_vaccination_date": 6}  # to Dec, Feb
STAFF_UPTAKE_ORGANISATION = {"RRF": 1.0, "RXV": 0.9, "RW4": 1.04}
STAFF_UPTAKE_NON_CLINICAL = 0.8  # factor on the clinical uptake
STAFF_DOSE_SEASONS = 2  # occupational health's latest dose: this season's or the last one's
SECOND_RELEASE_MONTH = 2  # index of the first month delivered with the second release's columns


def shape(name: str, ages: np.ndarray) -> np.ndarray:
    """Relative age-specific rate for `ages` (flat beyond the last knot)."""
    knot_ages, values = AGE_SHAPES[name]
    return np.interp(ages, knot_ages, values)


def completeness(source: str, progress: float) -> float:
    first, last = COMPLETENESS[source]
    return first + (last - first) * progress


def by_group(values: tuple[float, ...]) -> dict[str, float]:
    return dict(zip(GROUPS, values, strict=True))


def staff_uptake(column: str) -> np.ndarray:
    """A season's uptake indexed [organisation, clinical (0/1), group], in ``ORGANISATIONS``
    and ``GROUPS`` order."""
    organisation = np.array([STAFF_UPTAKE_ORGANISATION[o] for o in ORGANISATIONS])
    staff_group = np.array([STAFF_UPTAKE_NON_CLINICAL, 1.0])
    return np.multiply.outer(np.multiply.outer(organisation, staff_group), STAFF_UPTAKE[column])


def staff_vaccination_truth() -> dict:
    """Per column: its campaign, and the uptake by staff group, organisation and group."""
    return {
        column: {
            "campaign": {"from": "09-01", "months": STAFF_CAMPAIGN_MONTHS[column]},
            "uptake": {
                staff_group: {
                    code: by_group(tuple(np.round(staff_uptake(column)[o, clinical], 4).tolist()))
                    for o, code in enumerate(ORGANISATIONS)
                }
                for staff_group, clinical in (("Clinical", 1), ("Non-clinical", 0))
            },
        }
        for column in STAFF_UPTAKE
    }


def workforce_truth() -> dict[str, float]:
    bme = sum(w for code, w in STAFF_CODE_WEIGHTS.items() if code not in "ABC")
    return {
        "bme_share": round(bme / sum(STAFF_CODE_WEIGHTS.values()), 4),
        "disciplinary_relative_likelihood": round(DISCIPLINARY["BME"] / DISCIPLINARY["White"], 4),
        "training_relative_likelihood": round(TRAINING["BME"] / TRAINING["White"], 4),
        "appointment_relative_likelihood_white_vs_bme": round(
            APPOINTED["White"] / APPOINTED["BME"], 4
        ),
    }
