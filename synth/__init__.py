"""Synthetic NHS landing data for Wigan with a known answer.

Why: the pipeline turns messy monthly extracts into race-equality indicators; to test it
end to end we need data whose true indicators are known. `generate` writes one file per
source and month in the contract's formats (UTF-8/BOM/Windows-1252 CSV, gzip, parquet) and
`truth.json` with everything injected:

- a registered population (Census 2021 ethnic mix, younger minority groups, churn);
- event rates = calibrated base x age shape x group multiplier, so directly age-standardised
  rate ratios equal `params.RATE_RATIOS` (White = 1);
- group-specific probabilities (not age dependent) for DNA, recovery and vaccine uptake;
- workforce gaps (BME share, senior bands, boards, disciplinary, training, appointment);
- ethnicity recording per source: completeness improving over time, varied spelling, SNOMED
  concepts in the GP register, invalid codes (counted, not rejected);
- row faults with one documented reason each, listed row by row.

Modules: reference (packaged code lists), params (the injected truth), dates, population,
ethnicity, columns, context, activity (person-level sources), workforce, sources (the
contract table), faults, writer, generator (month loop).
"""

from .generator import generate

__all__ = ["generate"]
