"""Staff of the three provider organisations and their shortlisted job applicants (WRES data).

BME staff are fewer in senior bands and on boards; in each snapshot BME staff are more
likely to be in a disciplinary process and less likely to have had non-mandatory training,
and shortlisted White applicants are more likely to be appointed, all by fixed ratios.
Staff have each season's COVID-19 and flu dose with a chance set by organisation, staff group
and ethnic group (``params.STAFF_UPTAKE``); a snapshot shows the latest dose by its date.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import ethnicity, params
from .columns import Batch, ColumnStore, identifiers, take
from .context import Context
from .dates import DAY, uniform_dates
from .reference import LETTERS, load
from .sources import SourceSpec

_SENIOR = [params.PAY_BANDS.index(b) for b in ("Band 8", "Band 9", "VSM")]


def _letter_weights(bme_share: float | None = None) -> np.ndarray:
    """Staff ethnic mix; optionally re-weighted to a given BME share (for applicants)."""
    weights = np.array([params.STAFF_CODE_WEIGHTS[letter] for letter in LETTERS])
    bme = load().group_of > 0
    if bme_share is not None:
        weights = np.where(
            bme,
            bme_share * weights / weights[bme].sum(),
            (1 - bme_share) * weights / weights[~bme].sum(),
        )
    return weights / weights.sum()


@dataclass
class Staff(ColumnStore):
    number: np.ndarray
    organisation: np.ndarray
    band: np.ndarray
    clinical: np.ndarray
    letter: np.ndarray
    board: np.ndarray
    voting: np.ndarray
    executive: np.ndarray

    @property
    def bme(self) -> np.ndarray:
        return load().group_of[self.letter] > 0


class Workforce:
    """Staff register with monthly turnover; boards are fixed for the whole period."""

    def __init__(self, rng: np.random.Generator, scale: float) -> None:
        sizes = np.array([round(n * scale) for n in params.STAFF.values()])
        self._org_p = sizes / max(sizes.sum(), 1)
        self._hired = 0
        self.staff = self._hire(rng, np.repeat(np.arange(len(sizes)), sizes))
        for org in range(len(sizes)):
            self._appoint_board(rng, org)
        self._seed = int(rng.integers(2**63))  # of the vaccination draws

    def _hire(self, rng: np.random.Generator, organisation: np.ndarray) -> Staff:
        n = len(organisation)
        letter = rng.choice(len(LETTERS), n, p=_letter_weights())
        bme = load().group_of[letter] > 0
        band = np.zeros(n, np.int64)
        for is_bme, key in ((False, "White"), (True, "BME")):
            p = np.array(params.PAY_BAND_WEIGHTS[key], dtype=float)
            band[bme == is_bme] = rng.choice(len(p), int((bme == is_bme).sum()), p=p / p.sum())
        no = np.zeros(n, bool)
        self._hired += n
        return Staff(
            number=np.arange(self._hired - n, self._hired) + 1,
            organisation=organisation,
            band=band,
            clinical=rng.random(n) < np.asarray(params.CLINICAL_SHARE_BY_BAND)[band],
            letter=letter,
            board=no,
            voting=no.copy(),
            executive=no.copy(),
        )

    def _appoint_board(self, rng: np.random.Generator, org: int) -> None:
        """Board drawn from senior staff, BME seniors less likely to be chosen."""
        staff = self.staff
        candidates = np.flatnonzero((staff.organisation == org) & np.isin(staff.band, _SENIOR))
        weights = np.where(staff.bme[candidates], params.BOARD_BME_WEIGHT, 1.0)
        size = min(params.BOARD_SIZE, len(candidates))
        board = (
            rng.choice(candidates, size, replace=False, p=weights / weights.sum())
            if size
            else candidates
        )
        staff.board[board] = True
        staff.executive[board[: params.BOARD_EXECUTIVES]] = True
        staff.voting[board[: params.BOARD_VOTING_EXECUTIVES]] = True
        staff.voting[board[params.BOARD_EXECUTIVES :]] = True

    def _turnover(self, rng: np.random.Generator) -> None:
        leaves = (
            rng.random(len(self.staff.number)) < params.STAFF_MONTHLY_TURNOVER
        ) & ~self.staff.board
        self.staff.keep(~leaves)
        joiners = rng.poisson(params.STAFF_MONTHLY_TURNOVER * len(self.staff.number))
        self.staff.append(self._hire(rng, rng.choice(len(self._org_p), joiners, p=self._org_p)))

    def _latest_dose(self, column: str, on: np.datetime64) -> np.ndarray:
        """Each staff member's latest dose by ``on`` in this season or the ones before
        (``params.STAFF_DOSE_SEASONS``), NaT if none.

        Whether a staff member has a season's dose, and its day, are drawn from a stream keyed
        by the season, in staff-number order: every snapshot agrees, joiners included.
        """
        staff = self.staff
        uptake = params.staff_uptake(column)[
            staff.organisation, staff.clinical.astype(np.int64), load().group_of[staff.letter]
        ]
        latest = np.full(len(staff.number), np.datetime64("NaT"), "datetime64[D]")
        season = int((on.astype("datetime64[M]") - 8).astype("datetime64[Y]").astype(int)) + 1970
        for year in range(season, season - params.STAFF_DOSE_SEASONS, -1):
            key = (self._seed, year, list(params.STAFF_UPTAKE).index(column))
            draws = np.random.default_rng(key).random((self._hired + 1, 2))[staff.number]
            opens = np.datetime64(f"{year}-09-01")
            closes = np.datetime64(f"{year}-09") + params.STAFF_CAMPAIGN_MONTHS[column]
            days = (closes.astype("datetime64[D]") - opens) / DAY
            dose = opens + (draws[:, 1] * days).astype(np.int64) * DAY
            given = np.isnat(latest) & (draws[:, 0] < uptake) & (dose <= on)
            latest[given] = dose[given]
        return latest

    def snapshot(self, ctx: Context, rng: np.random.Generator, spec: SourceSpec) -> Batch:
        """Staff in post on the last day of the month."""
        if ctx.month.index > 0:
            self._turnover(rng)
        staff = self.staff
        n, bme = len(staff.number), staff.bme
        known = params.completeness(spec.name, ctx.progress)
        ethnic, kind = ethnicity.recorded(rng, staff.letter, known, spec.charset, ctx.invalid_rate)
        columns = {
            "staff_id": identifiers("STF", staff.number),
            "organisation_code": take(params.ORGANISATIONS, staff.organisation),
            "pay_band": take(params.PAY_BANDS, staff.band),
            "staff_group": take(("Non-clinical", "Clinical"), staff.clinical.astype(np.int64)),
            "ethnic_category": ethnic,
            "is_board_member": staff.board,
            "is_voting_board_member": staff.voting,
            "is_executive": staff.executive,
            "in_disciplinary_process": rng.random(n) < _by_bme(params.DISCIPLINARY, bme),
            "accessed_non_mandatory_training": rng.random(n) < _by_bme(params.TRAINING, bme),
        }
        for column in params.STAFF_UPTAKE:
            if column in spec.columns:  # not in deliveries before the second release
                columns[column] = self._latest_dose(column, ctx.month.last)
        return Batch({c: columns[c] for c in spec.columns}, kind)

    def recruitment(self, ctx: Context, rng: np.random.Generator, spec: SourceSpec) -> Batch:
        """Shortlisted applicants of the month, a few per vacancy."""
        n = rng.poisson(params.VOLUMES["recruitment"] * ctx.rates.scale)
        letter = rng.choice(len(LETTERS), n, p=_letter_weights(params.APPLICANT_BME_SHARE))
        bme = load().group_of[letter] > 0
        date = np.sort(uniform_dates(rng, np.full(n, ctx.month.first), np.full(n, ctx.month.last)))
        vacancies = max(1, n // 4)
        vacancy = rng.integers(0, vacancies, n)
        organisation = rng.choice(len(params.ORGANISATIONS), vacancies, p=self._org_p)[vacancy]
        known = params.completeness(spec.name, ctx.progress)
        ethnic, kind = ethnicity.recorded(rng, letter, known, spec.charset, ctx.invalid_rate)
        columns = {
            "applicant_id": ctx.counters.take(spec.id_prefix, n),
            "vacancy_id": ctx.counters.take("VAC", vacancies).take(vacancy),
            "organisation_code": take(params.ORGANISATIONS, organisation),
            "shortlisted_date": date,
            "ethnic_category": ethnic,
            "appointed": rng.random(n) < _by_bme(params.APPOINTED, bme),
        }
        return Batch({c: columns[c] for c in spec.columns}, kind)


def _by_bme(table: dict[str, float], bme: np.ndarray) -> np.ndarray:
    return np.where(bme, table["BME"], table["White"])
