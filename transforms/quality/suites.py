"""The Great Expectations suites: expectations on a delivery as it will land.

The row rules (``transforms/ingest/rules.py``) judge each row; these judge what no single
row can show: a delivery's size against the source's recent months, record ids repeating
within the month, events piled on one date, a shift in the mix of status or method codes,
fewer of its people on the register, an organisation that delivered last month and not this
one, ethnicity completeness. Each check has a severity:

- ``reject`` (suite ``<source>.reject``): the delivery is refused and its whole load rolls
  back (audit reason ``failed_validation``);
- ``warn`` (suite ``<source>.warn``): the delivery loads, and a data-quality warning is
  stored in ``quality.warnings`` and alerted.

Both suites run on the delivery's frame of measures (``metrics.py``): a row per measure, with
its ``subject`` and ``detail`` and its value in the column named for its check, empty in the
others. Each check's expectation reads its own column (GX passes over empty cells), so no
expectation needs a row condition: filtering the frame per expectation made validation take
more than twice as long, and it is paid on every delivery. Suites are rebuilt for each
delivery because history sets their limits; a check that cannot run (the first delivery of a
source has no history) stays in the suite, described as skipped and passing, so the Data
Docs say why it did not judge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd

from transforms.quality import metrics as m
from transforms.quality.metrics import Profile

Severity = Literal["reject", "warn"]


@dataclass(frozen=True)
class Check:
    name: str
    severity: Severity
    rule: str  # what is expected, for the Data Docs and messages
    action: str  # what to do when it fails


CHECKS = (
    Check(
        m.VOLUME,
        "reject",
        "rows loaded between {low:,.0f} and {high:,.0f} ({ratio} the {note})",
        "A delivery much smaller or larger than the last ones is usually a truncated or "
        "doubled extract: check it with the supplier and resend it.",
    ),
    Check(
        m.UNIQUE_IDS,
        "reject",
        "each record id appears once in the month after de-duplication",
        "The de-duplication did not hold: tell the data engineers (this is a bug).",
    ),
    Check(
        m.DATE_SPREAD,
        "warn",
        "no single event date carries more than {high:.0%} of the rows",
        "Events piled on one date often mean a defaulted date in the extract: check the date "
        "column with the supplier, and resend the file if it is wrong.",
    ),
    Check(
        m.CODE_SHARES,
        "warn",
        "each code's share within max({points:g} points, {se:g} standard errors) of its {note}",
        "Check with the supplier whether the coding changed.",
    ),
    Check(
        m.REGISTER_SHARE,
        "warn",
        "at least {low:.1%} of rows are of people on last month's register ({note}, less "
        "{drop:g} points)",
        "Check the pseudonymisation key and the supplier's NHS numbers.",
    ),
    Check(
        m.ORGANISATIONS,
        "warn",
        "every organisation with {least}+ rows last month delivers rows this month ({note})",
        "Ask the supplier whether the organisation's data is missing from the extract.",
    ),
    Check(
        m.COMPLETENESS,
        "warn",
        "ethnicity known for at least {low:g}% of records, overall (ALL) and per organisation",
        "Raise ethnicity recording with the organisations below the threshold.",
    ),
)
BY_NAME = {c.name: c for c in CHECKS}


def describe(check: Check, profile: Profile) -> str:
    """The check's rule with this delivery's limits, or why it was skipped."""
    if check.name in profile.skipped:
        return f"Skipped: {profile.skipped[check.name]}. (Rule: {check.name}, {check.severity})"
    low, high = profile.limits.get(check.name, (None, None))
    ratio = profile.source.volume_ratio or (0, 0)
    rule = check.rule.format(
        ratio=f"{ratio[0]:.2g} to {ratio[1]:g} times",
        low=low or 0,
        high=high or 0,
        note=profile.notes.get(check.name, ""),
        points=m.CODE_SHARE_POINTS,
        se=m.CODE_SHARE_SE,
        drop=m.REGISTER_SHARE_DROP_POINTS,
        least=m.ORGANISATION_MIN_ROWS,
    )
    return f"{check.severity.upper()} unless {rule}"


def measures_frame(profile: Profile) -> pd.DataFrame:
    """The frame both suites validate: ``subject``, ``detail`` and a value column per check."""
    measures = profile.measures
    frame = {
        "subject": pd.Series([m.subject for m in measures], dtype=object),
        "detail": pd.Series([m.detail for m in measures], dtype=object),
    }
    for check in CHECKS:
        values = [m.value if m.check == check.name else None for m in measures]
        frame[check.name] = pd.Series(values, dtype=float)
    return pd.DataFrame(frame)


def suite_name(source: str, severity: Severity) -> str:
    return f"{source}.{severity}"


def delivery_suites(profile: Profile) -> dict[Severity, gx.ExpectationSuite]:
    """The reject and warn suites for this delivery, limits set from its history."""
    suites: dict[Severity, gx.ExpectationSuite] = {}
    for severity in ("reject", "warn"):
        expectations = []
        for check in CHECKS:
            if check.severity != severity:
                continue
            low, high = profile.limits.get(check.name, (None, None))
            if low is None and high is None:  # skipped: passes on its empty column
                low = high = 0
            expectations.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=check.name,
                    min_value=low,
                    max_value=high,
                    description=describe(check, profile),
                    meta={"check": check.name, "severity": severity},
                )
            )
        name = suite_name(profile.source.name, severity)
        suites[severity] = gx.ExpectationSuite(name=name, expectations=expectations)
    return suites
