"""Month-by-month orchestration: build each source, corrupt it, write it, record the truth.

Only one source-month is held in memory at a time; the population and workforce are the
only state carried between months. Every random stream is keyed by (seed, month, source,
purpose), so outputs are byte-identical for the same arguments.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import activity, params, writer
from .columns import Batch, Counters
from .context import Context, Rates
from .dates import Month, month_range
from .ethnicity import tally
from .faults import CLEAN, inject
from .population import Population, Snapshot
from .reference import GROUPS, LETTERS, load
from .sources import SOURCES, SourceSpec
from .workforce import Workforce

Builder = Callable[[Context, np.random.Generator, SourceSpec], Batch]
_SETUP, _MONTHLY = 0, 1
_CHURN = len(SOURCES)  # stream id of population churn, after the source ids
_BUILD, _FAULTS = 0, 1

NOTES = (
    "Synthetic Wigan: a registered population drawn from the Wigan Census 2021 ethnic mix "
    "(NHS 2001 letters; Chinese counted in 'Other ethnic group'), minority groups younger, with "
    "monthly births, deaths and ~1% registrations/deregistrations. Event counts are Poisson "
    "with rate = calibrated level x age shape x group multiplier, so directly age-standardised "
    "rate ratios equal `rate_ratios` (White = 1). Emergency ACSC spells are a group-specific "
    "share of emergency spells so both ratios hold. Proportions are group probabilities, "
    "independent of age: GP DNA = DNA/(Attended+DNA); outpatient DNA = status 3/(3,5,6,7); "
    "talking therapies recovery = caseness_at_end false among completed referrals with "
    "caseness at start; COVID-19 uptake = vaccinated during Sep-Dec among adults (18+ at "
    "month start); influenza uptake = vaccinated during Oct-Mar among 65+. Workforce ratios "
    "are BME/White for disciplinary and training, White/BME for appointment from shortlisting. "
    "Staff vaccination: each season (from 1 September, for the campaign's months) a staff "
    "member has the dose with probability `staff_vaccination` uptake (by staff group, "
    "organisation and true group), dated uniformly in the campaign; a snapshot's date is the "
    "latest dose by its last day, this season's or last season's. Workforce files of "
    "`periods_without_columns` (before the contract's second release) have no vaccination "
    "columns. "
    "Recorded known ethnic codes equal the true code; completeness improves linearly per "
    "source, independent of ethnicity. Row faults and invalid ethnic codes are injected at "
    "the `faults` rate and listed per file."
)


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, *keys])


def _population_truth(snapshot: Snapshot) -> dict:
    letters = np.bincount(snapshot.people.letter[snapshot.ids], minlength=len(LETTERS))
    groups = np.bincount(load().group_of, weights=letters, minlength=len(GROUPS))
    return {
        "total": int(letters.sum()),
        "by_group_5": {g: int(c) for g, c in zip(GROUPS, groups, strict=True)},
        "by_code": {letter: int(c) for letter, c in zip(LETTERS, letters, strict=True)},
    }


def _write_source(
    out: Path,
    spec: SourceSpec,
    month: Month,
    batch: Batch,
    rng: np.random.Generator,
    fault_rate: float,
) -> tuple[str, dict]:
    """Render, corrupt and write one file; returns its path and truth entry."""
    columns = writer.render(batch.columns, spec)
    faults = inject(rng, columns, spec, month, fault_rate)
    relative = writer.write(out, spec, month, columns, faults.extra_field)
    row_faults = faults.counts()
    loaded = faults.reason == CLEAN
    return relative, {
        "source": spec.name,
        "period": month.label,
        "format": spec.file_format,
        "encoding": spec.encoding,
        "date_format": spec.date_format,
        "compression": spec.compression(month.number),
        "rows": len(batch),
        "row_faults": row_faults,
        "expected_rows_loaded": len(batch) - sum(row_faults.values()),
        "fault_rows": faults.rows(),
        "ethnicity": tally(batch.ethnicity_kind[loaded]),
    }


def _builders(workforce: Workforce) -> dict[str, Builder]:
    """In build order: deaths come right after the register so later events can respect them."""
    return {
        "gp_register": activity.gp_register,
        "deaths": activity.deaths,
        "gp_appointments": activity.gp_appointments,
        "ae_attendances": activity.ae_attendances,
        "inpatient_spells": activity.inpatient_spells,
        "outpatient_appointments": activity.outpatient_appointments,
        "talking_therapies": activity.talking_therapies,
        "vaccinations": activity.vaccinations,
        "workforce": workforce.snapshot,
        "recruitment": workforce.recruitment,
    }


def _truth_header(months: list[Month], scale: float, seed: int, faults: float) -> dict:
    start, end = months[0].label, months[-1].label
    before_release = [m.label for m in months if m.index < params.SECOND_RELEASE_MONTH]
    return {
        "generator": {"seed": seed, "scale": scale, "start": start, "end": end, "faults": faults},
        "files": {},
        "population": {"by_period": {}},
        "rate_ratios": {name: params.by_group(v) for name, v in params.RATE_RATIOS.items()},
        "proportions": {name: params.by_group(v) for name, v in params.PROPORTIONS.items()},
        "workforce": params.workforce_truth(),
        "staff_vaccination": params.staff_vaccination_truth()
        | {"periods_without_columns": before_release},
        "notes": NOTES,
    }


def generate(
    out: Path, start: str, end: str, scale: float = 1.0, seed: int = 42, faults: float = 0.002
) -> dict:
    """Write landing files for every source and month from `start` to `end` (inclusive,
    'YYYY-MM') under `out`, plus `out/truth.json`; returns the truth dict."""
    out = Path(out)
    months = month_range(start, end)
    truth = _truth_header(months, scale, seed, faults)
    population = Population(_rng(seed, _SETUP, 0), scale, months[0])
    builders = _builders(Workforce(_rng(seed, _SETUP, 1), scale))
    rates, counters = Rates(scale), Counters()
    stream = {name: i for i, name in enumerate(SOURCES)}
    first_release = {name: spec.first_release() for name, spec in SOURCES.items()}
    for month in months:
        specs = SOURCES if month.index >= params.SECOND_RELEASE_MONTH else first_release
        snapshot = population.advance(_rng(seed, _MONTHLY, month.index, _CHURN), month)
        truth["population"]["by_period"][month.label] = _population_truth(snapshot)
        progress = month.index / max(len(months) - 1, 1)
        ctx = Context(month, progress, snapshot, rates, counters, faults)
        for name, build in builders.items():
            keys = (seed, _MONTHLY, month.index, stream[name])
            batch = build(ctx, _rng(*keys, _BUILD), specs[name])
            path, entry = _write_source(
                out, specs[name], month, batch, _rng(*keys, _FAULTS), faults
            )
            truth["files"][path] = entry
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    return truth
