"""Service activity of the registered population: one builder per person-level source.

Event counts are Poisson with rate = calibrated level x age shape x group rate ratio, so
age-standardised rate ratios equal the injected ratios; proportions (DNA, recovery,
vaccine uptake) are group probabilities independent of age. Events fall inside the month,
never before birth/registration nor after death.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pyarrow as pa

from . import ethnicity, params
from .columns import Batch, Column, choose_by, draw, icd10, take
from .context import Context
from .dates import add_days, age_at, uniform_dates
from .population import LSOA_CODES, PRACTICE_CODES, Snapshot
from .reference import load
from .sources import SourceSpec

_PROVIDERS = {"RRF": 0.85, "RM3": 0.05, "RBN": 0.05, "R0A": 0.05}
_EMERGENCY_METHODS = dict(
    zip(
        "21 22 23 24 25 2A 2B 2C 2D 28".split(),
        (0.45, 0.15, 0.03, 0.05, 0.02, 0.2, 0.04, 0.01, 0.03, 0.02),
        strict=True,
    )
)
# Diagnoses outside every ACSC prefix, so only ACSC-stream spells count as ACSC.
_ELECTIVE_DX = tuple("H259 M171 K409 C509 N40X Z511 K802 M161 D126 I839".split())
_EMERGENCY_DX = tuple(
    "R074 R104 S720 I489 K802 N179 A419 R55X S060 T814 F100 K566 I639 J960 R060 I219".split()
)
_MATERNITY_DX = tuple("O800 O829 O701 O420 O479 O998".split())
_CAUSES_OF_DEATH = tuple(
    "I219 I251 C349 J449 F03X G309 J189 C189 I64X C509 C61X I509 C259 U071 N189 K703".split()
)
_TREATMENT_FUNCTIONS = dict.fromkeys(
    "100 101 110 120 130 300 301 320 330 340 400 410 420 502".split(), 1.0
)
_GP_MODES = {
    "Face-to-Face": 0.62,
    "Telephone": 0.30,
    "Video": 0.02,
    "Home Visit": 0.02,
    "Unknown": 0.04,
}


def _ratio(name: str, group: np.ndarray) -> np.ndarray:
    return np.asarray(params.RATE_RATIOS[name])[group]


def _proportion(name: str, group: np.ndarray) -> np.ndarray:
    return np.asarray(params.PROPORTIONS[name])[group]


def _draw_events(rng: np.random.Generator, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poisson counts per (person, stream) expanded to one row per event: (person, stream)."""
    counts = rng.poisson(expected).ravel()
    cells = np.repeat(np.arange(counts.size), counts)
    return cells // expected.shape[1], cells % expected.shape[1]


def _in_month(
    ctx: Context, rng: np.random.Generator, pos: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Event dates for people at `pos`, and the order that sorts events by date."""
    date = uniform_dates(rng, ctx.snapshot.earliest[pos], ctx.snapshot.latest[pos])
    return date, np.argsort(date, kind="stable")


def _assemble(
    ctx: Context,
    rng: np.random.Generator,
    spec: SourceSpec,
    pos: np.ndarray,
    when: np.ndarray | np.datetime64,
    extra: Mapping[str, Column],
    kind: np.ndarray | None = None,
) -> Batch:
    """Add the person-level columns (and identifiers) a source needs to its own columns.

    Ethnicity is recorded here per row unless the caller already did (`kind` given).
    """
    snap = ctx.snapshot
    if kind is None:
        known = params.completeness(spec.name, ctx.progress)
        letter = snap.get("letter", pos)
        ethnic, kind = ethnicity.recorded(rng, letter, known, spec.charset, ctx.invalid_rate)
        extra = {**extra, "ethnic_category": ethnic}
    person: dict[str, Callable[[], Column]] = {
        "nhs_number": lambda: snap.get("nhs", pos),
        "age": lambda: age_at(snap.get("dob", pos), when),
        "sex": lambda: snap.get("sex", pos),
        "lsoa_code": lambda: take(LSOA_CODES, snap.get("lsoa", pos)),
        "practice_code": lambda: take(PRACTICE_CODES, snap.get("practice", pos)),
    }
    if spec.id_prefix:
        person[spec.id_column] = lambda: ctx.counters.take(spec.id_prefix, len(pos))
    return Batch({c: extra[c] if c in extra else person[c]() for c in spec.columns}, kind)


def gp_register(ctx: Context, rng: np.random.Generator, spec: SourceSpec) -> Batch:
    snap = ctx.snapshot
    everyone = np.arange(len(snap.ids))
    pos = np.lexsort((snap.get("nhs", everyone), snap.get("practice", everyone)))
    category, snomed, kind = ethnicity.register_recorded(
        rng,
        snap.get("letter", pos),
        snap.get("known_u", pos),
        snap.get("style_v", pos),
        snap.get("snomed", pos),
        params.completeness(spec.name, ctx.progress),
        params.SNOMED_SHARE,
        ctx.invalid_rate,
    )
    extra = {
        "ethnic_category": category,
        "ethnicity_snomed": snomed,
        "registration_date": snap.get("registered_on", pos),
    }
    return _assemble(ctx, rng, spec, pos, ctx.month.last, extra, kind)


def deaths(ctx: Context, rng: np.random.Generator, spec: SourceSpec) -> Batch:
    """Deaths of the month; must run before other activity so no event follows a death."""
    snap = ctx.snapshot
    weights = params.shape("deaths", snap.age) * _ratio("deaths", snap.group)
    dies = rng.random(len(weights)) < np.minimum(ctx.rates.per_person("deaths", weights), 0.5)
    pos = np.flatnonzero(dies)
    date = uniform_dates(rng, snap.earliest[pos], np.full(len(pos), ctx.month.last))
    order = np.argsort(date, kind="stable")
    pos, date = pos[order], date[order]
    snap.people.died_on[snap.ids[pos]] = date
    snap.refresh_latest()
    cause = icd10(_CAUSES_OF_DEATH, rng.integers(0, len(_CAUSES_OF_DEATH), len(pos)), rng)
    return _assemble(ctx, rng, spec, pos, date, {"date_of_death": date, "underlying_cause": cause})


def gp_appointments(ctx: Context, rng: np.random.Generator, spec: SourceSpec) -> Batch:
    snap = ctx.snapshot
    dna = _proportion("gp_appointments_dna", snap.group)
    attended = params.shape("gp_appointments", snap.age) * _ratio(
        "gp_appointments_attended", snap.group
    )
    per_attended = np.column_stack(
        [
            np.ones_like(dna),
            dna / (1 - dna),
            np.full_like(dna, params.GP_CANCELLED_PER_ATTENDED),
            np.full_like(dna, params.GP_UNKNOWN_PER_ATTENDED),
        ]
    )
    level = ctx.rates.per_person("gp_appointments", attended, attended * per_attended.sum(axis=1))
    pos, status = _draw_events(rng, level[:, None] * per_attended)
    date, order = _in_month(ctx, rng, pos)
    pos, status, date = pos[order], status[order], date[order]
    n = len(pos)
    extra = {
        "appointment_date": date,
        "appointment_status": take(("Attended", "DNA", "Cancelled", "Unknown"), status),
        "appointment_mode": draw(rng, _GP_MODES, n),
        "hcp_type": draw(rng, {"GP": 0.45, "Other Practice staff": 0.55}, n),
    }
    return _assemble(ctx, rng, spec, pos, date, extra)


def ae_attendances(ctx: Context, rng: np.random.Generator, spec: SourceSpec) -> Batch:
    snap = ctx.snapshot
    weights = params.shape("ae_attendances", snap.age) * _ratio("ae_attendances", snap.group)
    pos, _ = _draw_events(rng, ctx.rates.per_person("ae_attendances", weights)[:, None])
    date, order = _in_month(ctx, rng, pos)
    pos, date = pos[order], date[order]
    extra = {
        "arrival_date": date,
        "department_type": draw(rng, {"01": 0.75, "02": 0.02, "03": 0.23}, len(pos)),
        "provider_code": draw(rng, _PROVIDERS, len(pos)),
    }
    return _assemble(ctx, rng, spec, pos, date, extra)


# Inpatient streams: (admission methods, diagnoses, day-case share, mean extra nights).
_SPELL_STREAMS = (
    ({"11": 0.7, "12": 0.25, "13": 0.05}, _ELECTIVE_DX, 0.6, 2.0),
    (_EMERGENCY_METHODS, _EMERGENCY_DX, 0.2, 5.0),
    (_EMERGENCY_METHODS, None, 0.2, 5.0),  # ACSC diagnoses from the reference list
    ({"31": 0.85, "32": 0.15}, _MATERNITY_DX, 0.3, 1.0),
    ({"81": 0.5, "82": 0.3, "83": 0.2}, _EMERGENCY_DX, 0.1, 8.0),
)


def _spell_rates(ctx: Context) -> np.ndarray:
    """Expected spells per person for each of the `_SPELL_STREAMS`."""
    snap, rates = ctx.snapshot, ctx.rates
    elective = params.shape("elective_admissions", snap.age) * _ratio(
        "elective_admissions", snap.group
    )
    emergency_ratio = _ratio("emergency_admissions", snap.group)
    emergency = rates.per_person(
        "emergency_admissions", params.shape("emergency_admissions", snap.age) * emergency_ratio
    )
    acsc = (
        params.ACSC_SHARE_OF_EMERGENCY
        * _ratio("emergency_acsc_admissions", snap.group)
        / emergency_ratio
    )
    female = snap.get("sex", np.arange(len(snap.ids))) == 2
    maternity = params.shape("maternity_admissions", snap.age) * female
    other = params.shape("other_admissions", snap.age)
    return np.column_stack(
        [
            rates.per_person("elective_admissions", elective),
            emergency * (1 - acsc),
            emergency * acsc,
            rates.per_person("maternity_admissions", maternity),
            rates.per_person("other_admissions", other),
        ]
    )


def inpatient_spells(ctx: Context, rng: np.random.Generator, spec: SourceSpec) -> Batch:
    pos, stream = _draw_events(rng, _spell_rates(ctx))
    date, order = _in_month(ctx, rng, pos)
    pos, stream, date = pos[order], stream[order], date[order]
    acsc = load().acsc_codes
    methods, method = choose_by(rng, [s[0] for s in _SPELL_STREAMS], stream)
    codes, code = choose_by(rng, [dict.fromkeys(s[1] or acsc, 1.0) for s in _SPELL_STREAMS], stream)
    day_case = rng.random(len(pos)) < np.array([s[2] for s in _SPELL_STREAMS])[stream]
    nights = np.where(
        day_case, 0, 1 + rng.poisson(np.array([s[3] for s in _SPELL_STREAMS])[stream])
    )
    discharge = np.minimum(
        add_days(date, nights), ctx.snapshot.people.died_on[ctx.snapshot.ids[pos]]
    )
    extra = {
        "admission_date": date,
        "discharge_date": pa.array(discharge, mask=discharge > ctx.month.last),
        "admission_method": take(methods, method),
        "primary_diagnosis": icd10(codes, code, rng),
        "provider_code": draw(rng, _PROVIDERS, len(pos)),
    }
    return _assemble(ctx, rng, spec, pos, date, extra)


def outpatient_appointments(ctx: Context, rng: np.random.Generator, spec: SourceSpec) -> Batch:
    snap = ctx.snapshot
    first = params.shape("outpatient_appointments", snap.age) * _ratio(
        "outpatient_first_attendances", snap.group
    )
    streams = np.array([1.0, params.OUTPATIENT_FOLLOW_UPS_PER_FIRST])
    level = ctx.rates.per_person("outpatient_appointments", first, first * streams.sum())
    pos, follow_up = _draw_events(rng, level[:, None] * streams)
    date, order = _in_month(ctx, rng, pos)
    pos, follow_up, date = pos[order], follow_up[order], date[order]
    n = len(pos)
    cancelled = rng.random(n) < sum(params.OUTPATIENT_CANCELLED.values())
    dna = ~cancelled & (rng.random(n) < _proportion("outpatient_dna", snap.group[pos]))
    outcome = np.where(cancelled, 0, np.where(dna, 1, 2))
    statuses, status = choose_by(
        rng, [params.OUTPATIENT_CANCELLED, {"3": 1.0}, params.OUTPATIENT_SEEN], outcome
    )
    kinds, first_kind = choose_by(rng, [{"1": 0.85, "3": 0.15}, {"2": 0.85, "4": 0.15}], follow_up)
    extra = {
        "appointment_date": date,
        "first_attendance": take(kinds, first_kind),
        "attendance_status": take(statuses, status),
        "treatment_function_code": draw(rng, _TREATMENT_FUNCTIONS, n),
        "provider_code": draw(rng, _PROVIDERS, n),
    }
    return _assemble(ctx, rng, spec, pos, date, extra)


def talking_therapies(ctx: Context, rng: np.random.Generator, spec: SourceSpec) -> Batch:
    """Referrals of adults with their outcome as known at extraction (end date may be later)."""
    snap = ctx.snapshot
    weights = (
        params.shape("talking_therapies_referrals", snap.age)
        * _ratio("talking_therapies_referrals", snap.group)
        * (snap.age_start >= 18)
    )
    pos, _ = _draw_events(
        rng, ctx.rates.per_person("talking_therapies_referrals", weights)[:, None]
    )
    date, order = _in_month(ctx, rng, pos)
    pos, date = pos[order], date[order]
    n = len(pos)
    completed = rng.random(n) < 0.5
    dropped = ~completed & (rng.random(n) < 0.5)
    case_start = rng.random(n) < 0.88
    recovered = rng.random(n) < _proportion("talking_therapies_recovery", snap.group[pos])
    case_end = np.where(
        completed, np.where(case_start, ~recovered, rng.random(n) < 0.1), rng.random(n) < 0.7
    )
    days = np.where(completed, rng.integers(42, 181, n), rng.integers(7, 121, n))
    end = np.minimum(add_days(date, days), snap.people.died_on[snap.ids[pos]])
    ongoing = ~(completed | dropped)
    extra = {
        "referral_date": date,
        "end_date": pa.array(end, mask=ongoing),
        "completed_treatment": completed,
        "caseness_at_start": case_start,
        "caseness_at_end": pa.array(case_end, mask=ongoing),
    }
    return _assemble(ctx, rng, spec, pos, date, extra)


def _share_before(month: int, shares: Mapping[int, float]) -> float:
    """Share of a season's uptake given in the season's months before `month`."""
    order = list(shares)
    return sum(shares[m] for m in order[: order.index(month)])


def _vaccinate(
    ctx: Context,
    rng: np.random.Generator,
    programme: str,
    shares: Mapping[int, float],
    uptake: np.ndarray,
    adult: np.ndarray,
    season: int,
    done: np.ndarray,
) -> np.ndarray:
    """Positions vaccinated this month; marks in-season vaccinations in `done` (per person).

    The monthly hazard among the not-yet-vaccinated makes season uptake equal `uptake`.
    When the generated period starts mid-season, the earlier months' vaccinations are
    marked without events so the remaining months keep their normal volume.
    """
    ids = ctx.snapshot.ids
    if ctx.month.number not in shares:
        return np.flatnonzero(adult & (rng.random(len(ids)) < params.OFF_SEASON_MONTHLY[programme]))
    before = _share_before(ctx.month.number, shares)
    if ctx.month.index == 0:
        done[ids[rng.random(len(ids)) < uptake * before]] = season
    hazard = uptake * shares[ctx.month.number] / (1 - uptake * before)
    pos = np.flatnonzero((done[ids] != season) & (rng.random(len(ids)) < hazard))
    done[ids[pos]] = season
    return pos


def _flu_uptake(snap: Snapshot) -> np.ndarray:
    over_65 = _proportion("flu_uptake_65plus", snap.group)
    relative = over_65 / params.PROPORTIONS["flu_uptake_65plus"][0]
    age = snap.age_start
    return np.select(
        [age >= 65, age >= 18, age >= 2],
        [
            over_65,
            params.FLU_UPTAKE_ADULTS_UNDER_65 * relative,
            params.FLU_UPTAKE_CHILDREN * relative,
        ],
        0.0,
    )


def vaccinations(ctx: Context, rng: np.random.Generator, spec: SourceSpec) -> Batch:
    snap, month = ctx.snapshot, ctx.month
    year = int(month.label[:4])
    adult = snap.age_start >= 18
    covid = _vaccinate(
        ctx,
        rng,
        "COVID-19",
        params.COVID_MONTH_SHARE,
        _proportion("covid_uptake_adults", snap.group) * adult,
        adult,
        year,
        snap.people.covid_season,
    )
    flu = _vaccinate(
        ctx,
        rng,
        "Influenza",
        params.FLU_MONTH_SHARE,
        _flu_uptake(snap),
        adult,
        year if month.number >= 10 else year - 1,
        snap.people.flu_season,
    )
    pos = np.concatenate([covid, flu])
    programme = np.repeat([0, 1], [len(covid), len(flu)])
    date, order = _in_month(ctx, rng, pos)
    pos, programme, date = pos[order], programme[order], date[order]
    n = len(pos)
    covid_dose = rng.choice(np.arange(3, 10), n, p=[0.05, 0.1, 0.2, 0.25, 0.2, 0.15, 0.05])
    age = snap.age_start[pos]
    worker = (age >= 20) & (age <= 66) & (rng.random(n) < 0.05)
    extra = {
        "vaccination_date": date,
        "programme": take(("COVID-19", "Influenza"), programme),
        "dose_number": np.where(programme == 0, covid_dose, 1),
        "is_health_care_worker": worker,
        "staff_organisation_code": take(
            params.ORGANISATIONS, rng.integers(0, len(params.ORGANISATIONS), n), ~worker
        ),
    }
    return _assemble(ctx, rng, spec, pos, date, extra)
