"""The registered population: who exists, where they live and how the register churns.

People keep one row (and one NHS number) for life; the register of a month is the set of
active rows. Minority groups are drawn from younger age pyramids, as in the Census.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import params
from .columns import ColumnStore
from .dates import DAY, NEVER, Month, age_at, uniform_dates
from .reference import LETTERS, load

MAX_AGE = 104
N_LSOA, N_PRACTICE = 220, 60
LSOA_CODES = tuple(f"E0100{6201 + i}" for i in range(N_LSOA))
PRACTICE_CODES = tuple(f"P92{i + 1:03d}" for i in range(N_PRACTICE))

# England-like 5-year band shares (0-4 ... 85-89, then 90+).
# fmt: off
_BAND_SHARE = (5.4, 6.0, 6.0, 5.6, 6.0, 6.6, 6.9, 6.7, 6.3, 6.4, 6.9, 6.7, 5.9, 5.0, 5.0, 3.6,
               2.5, 1.5, 0.9)
# How much younger than the base pyramid each letter's population is (0 = base).
_YOUTH = dict(zip(LETTERS, (0.0, -0.5, 0.8, 3.0, 3.0, 3.0, 3.0, 1.5, 1.5, 1.5, 1.5, 0.5, 2.0, 2.0,
                            1.2, 1.5), strict=True))
# fmt: on
_CONCENTRATED_LSOAS = 30  # minority groups live more often in the first (town-centre) LSOAs


def nhs_check_digit(base9: np.ndarray) -> np.ndarray:
    """Modulus 11 check digit for 9-digit bases; 10 means the base cannot be used."""
    total = np.zeros_like(base9)
    for weight in range(2, 11):  # weight 2 for the last digit ... 10 for the first
        total += (base9 // 10 ** (weight - 2) % 10) * weight
    remainder = total % 11
    return np.where(remainder == 0, 0, 11 - remainder)


def nhs_numbers(rng: np.random.Generator, prefix: int = 999) -> np.ndarray:
    """All valid numbers beginning ``prefix`` (999: the synthetic test range), in a seeded
    random order."""
    base = np.arange(prefix * 1_000_000, (prefix + 1) * 1_000_000, dtype=np.int64)
    check = nhs_check_digit(base)
    valid = check < 10
    return rng.permutation(base[valid] * 10 + check[valid])


def _age_weights() -> np.ndarray:
    """(letter, age) joint weights: census share x letter-specific pyramid."""
    base = np.repeat(np.array(_BAND_SHARE[:-1]) / 5, 5)
    tail = 0.8 ** np.arange(MAX_AGE + 1 - len(base))
    pyramid = np.concatenate([base, _BAND_SHARE[-1] * tail / tail.sum()])
    ages = np.arange(MAX_AGE + 1)
    youth = np.array([_YOUTH[letter] for letter in LETTERS])
    per_letter = pyramid * np.exp(-youth[:, None] * ages / 100)
    per_letter /= per_letter.sum(axis=1, keepdims=True)
    return load().census_share[:, None] * per_letter


@dataclass
class People(ColumnStore):
    """Everyone ever registered; grows by appending arrivals, leavers are only deactivated
    so that a person's row (and NHS number) never changes."""

    nhs: np.ndarray
    letter: np.ndarray  # true ethnicity, index into LETTERS
    sex: np.ndarray
    dob: np.ndarray
    lsoa: np.ndarray
    practice: np.ndarray
    registered_on: np.ndarray
    died_on: np.ndarray
    active: np.ndarray
    known_u: np.ndarray  # GP ethnicity known once this falls under the completeness
    style_v: np.ndarray  # GP recording: SNOMED vs letter spelling, or kind of unknown
    snomed: np.ndarray
    covid_season: np.ndarray  # last campaign year vaccinated (-1 never)
    flu_season: np.ndarray


@dataclass
class Snapshot:
    """The register on the last day of a month, with per-person values events need."""

    people: People
    ids: np.ndarray
    month: Month
    age: np.ndarray = field(init=False)  # at month end
    age_start: np.ndarray = field(init=False)  # at month start, for eligibility
    group: np.ndarray = field(init=False)
    earliest: np.ndarray = field(init=False)  # first day an event can fall on
    latest: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        dob = self.people.dob[self.ids]
        self.age = age_at(dob, self.month.last)
        self.age_start = np.maximum(age_at(dob, self.month.first), 0)
        self.group = load().group_of[self.people.letter[self.ids]]
        self.earliest = np.maximum(
            np.maximum(dob, self.people.registered_on[self.ids]), self.month.first
        )
        self.refresh_latest()

    def refresh_latest(self) -> None:
        """Re-read dates of death so no event falls after a death drawn this month."""
        self.latest = np.minimum(self.people.died_on[self.ids], self.month.last)

    def get(self, name: str, pos: np.ndarray) -> np.ndarray:
        return getattr(self.people, name)[self.ids[pos]]


class Population:
    """Initial register plus monthly births, moves in and out; deaths are drawn by activity."""

    def __init__(self, rng: np.random.Generator, scale: float, first: Month) -> None:
        self._pool = nhs_numbers(rng)
        self._next_prefix = 998
        self._used = 0
        self._joint = _age_weights()
        self._lsoa_p = self._lsoa_weights(rng)
        self._scale = scale
        n = round(params.POPULATION * scale)
        letter, age = self._sample(rng, self._joint, n)
        dob = first.first - (1 + ((age + rng.random(n)) * 365.25).astype(np.int64)) * DAY
        tenure = (rng.exponential(9 * 365.25, n)).astype(np.int64) * DAY
        registered = np.clip(first.first - DAY - tenure, dob, first.first - DAY)
        self.people = self._new(rng, letter, dob, registered)

    @staticmethod
    def _lsoa_weights(rng: np.random.Generator) -> np.ndarray:
        weights = rng.gamma(4.0, 1.0, N_LSOA)
        minority = weights.copy()
        minority[:_CONCENTRATED_LSOAS] *= 4
        return np.stack([weights / weights.sum(), minority / minority.sum()])

    @staticmethod
    def _sample(
        rng: np.random.Generator, joint: np.ndarray, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        flat = joint.ravel() / joint.sum()
        cell = rng.choice(flat.size, size=n, p=flat)
        return cell // joint.shape[1], cell % joint.shape[1]

    def _take_nhs(self, n: int) -> np.ndarray:
        """The next ``n`` unused numbers. The 999 test range holds about 909,000; a larger
        population (Greater Manchester, ten times Wigan) goes on into 998, 997 and so on, which
        are not issued to patients either (they begin 4 or 6, or 3). Each range has
        its own seeded order, so smaller scales draw exactly the numbers they always did."""
        while self._used + n > len(self._pool):
            if self._next_prefix < 900:
                raise ValueError("scale too large: the 900-999 NHS number ranges are exhausted")
            more = nhs_numbers(np.random.default_rng(self._next_prefix), self._next_prefix)
            self._pool = np.concatenate([self._pool, more])
            self._next_prefix -= 1
        self._used += n
        return self._pool[self._used - n : self._used]

    def _new(
        self, rng: np.random.Generator, letter: np.ndarray, dob: np.ndarray, registered: np.ndarray
    ) -> People:
        n = len(letter)
        age = age_at(dob, registered)
        male = rng.random(n) < np.interp(age, [0, 50, 95], [0.512, 0.49, 0.33])
        sex = np.where(male, 1, 2).astype(np.int8)
        unknown = rng.random(n) < 0.001
        sex[unknown] = rng.choice(np.array([0, 9], np.int8), unknown.sum())
        minority = load().group_of[letter] > 0
        lsoa = np.where(
            minority,
            rng.choice(N_LSOA, n, p=self._lsoa_p[1]),
            rng.choice(N_LSOA, n, p=self._lsoa_p[0]),
        )
        practice = np.clip(
            np.round(lsoa * N_PRACTICE / N_LSOA + rng.normal(0, 2, n)), 0, N_PRACTICE - 1
        )
        snomed_lists = load().snomed_by_letter
        pick = rng.random(n)
        snomed = np.array([0], np.int64).repeat(n)
        for i, concepts in enumerate(snomed_lists):
            rows = letter == i
            snomed[rows] = concepts[(pick[rows] * len(concepts)).astype(np.int64)]
        return People(
            nhs=self._take_nhs(n),
            letter=letter.astype(np.int8),
            sex=sex,
            dob=dob,
            lsoa=lsoa.astype(np.int16),
            practice=practice.astype(np.int16),
            registered_on=registered,
            died_on=np.full(n, NEVER),
            active=np.ones(n, bool),
            known_u=rng.random(n),
            style_v=rng.random(n),
            snomed=snomed,
            covid_season=np.full(n, -1, np.int16),
            flu_season=np.full(n, -1, np.int16),
        )

    def advance(self, rng: np.random.Generator, month: Month) -> Snapshot:
        """Apply one month of churn (except in the first month) and return the register."""
        if month.index > 0:
            self._remove_dead_and_leavers(rng, month)
            self._arrive(rng, month)
        return Snapshot(self.people, np.flatnonzero(self.people.active), month)

    def _remove_dead_and_leavers(self, rng: np.random.Generator, month: Month) -> None:
        people = self.people
        people.active &= people.died_on == NEVER
        ids = np.flatnonzero(people.active)
        propensity = params.shape("deregistration", age_at(people.dob[ids], month.first))
        hazard = params.MONTHLY_DEREGISTRATION * propensity / propensity.mean()
        leave = rng.random(len(ids)) < hazard
        people.active[ids[leave]] = False

    def _arrive(self, rng: np.random.Generator, month: Month) -> None:
        births = rng.poisson(params.VOLUMES["births"] * self._scale)
        letter, _ = self._sample(rng, self._joint[:, :1], births)
        dob = uniform_dates(rng, np.full(births, month.first), np.full(births, month.last))
        registered = np.minimum(dob + rng.integers(0, 15, births) * DAY, month.last)
        self.people.append(self._new(rng, letter, dob, registered))

        movers = rng.poisson(params.VOLUMES["registrations"] * self._scale)
        ages = np.arange(MAX_AGE + 1)
        letter, age = self._sample(rng, self._joint * params.shape("deregistration", ages), movers)
        registered = uniform_dates(rng, np.full(movers, month.first), np.full(movers, month.last))
        dob = registered - ((age + rng.random(movers)) * 365.25).astype(np.int64) * DAY
        self.people.append(self._new(rng, letter, dob, registered))
