"""The indicator catalogue (``transforms/config/indicators.yml``), loaded and checked.

Every indicator is data: what is counted, from which source, with which filters, by which
method. Loading validates each entry against the source catalogue (the columns and codes it
filters on must exist), so a mistyped catalogue entry fails when it is loaded, with the
indicator id and the field, rather than as an empty indicator months later.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from transforms.config.sources import SOURCES, Column

CATALOGUE = Path(str(files("transforms.config") / "indicators.yml"))  # package data
AGE_FILTERS = ("age_min", "age_max")
QUALITY_SOURCE = "quality.ethnicity_completeness"

Measure = Literal["proportion", "crude_rate", "dsr"]
PeriodKind = Literal[
    "month", "rolling_12m", "campaign_covid_autumn", "season_flu", "season_staff_flu"
]
Breakdown = Literal["all", "ethnicity_5", "ethnicity_16", "wres_group", "source_organisation"]
PERIOD_COUNTS = ("persons", "staff")
"""Counts taken over a whole period: distinct people, or staff in a snapshot, cannot be added
up month by month."""


class Count(BaseModel):
    """A numerator or denominator: what to count, in which source, with which filters."""

    model_config = ConfigDict(extra="forbid")

    source: str
    count: Literal["events", "persons", "person_years", "known", "records", "staff"]
    where: dict[str, Any] = Field(default_factory=dict)
    of_denominator: bool = False  # numerator people must also be in the denominator
    snapshot: Literal["campaign_start", "period_end"] | None = None
    date_in_period: str | None = None  # staff counted only if this date falls in the period

    def problems(self) -> list[str]:
        """What is wrong with this count against the source catalogue (empty if nothing)."""
        if self.source == QUALITY_SOURCE:
            return []
        if self.source not in SOURCES:
            return [f"unknown source {self.source!r}"]
        source = SOURCES[self.source]
        columns = {c.name: c for c in source.output_columns}
        found = []
        for name, wanted in self.where.items():
            if name in AGE_FILTERS:
                if "age" not in columns:
                    found.append(f"{name} needs an age column, which {self.source} lacks")
                continue
            column = columns.get(name)
            if column is None:
                found.append(f"{self.source} has no column {name!r}")
            elif column.codes:
                values = wanted if isinstance(wanted, list) else [wanted]
                unknown = [v for v in values if v not in column.codes]
                if unknown:
                    found.append(f"{name} values {unknown} are not in its code set")
        return found + self._staff_problems(source.snapshot and not source.person_level, columns)

    def _staff_problems(self, staff_source: bool, columns: dict[str, Column]) -> list[str]:
        """A staff count reads the snapshot of the period's last month of a staff source; the
        dated column it may filter on must be a date of that source."""
        if self.count != "staff":
            wrong = self.snapshot == "period_end" or self.date_in_period is not None
            return ["snapshot: period_end and date_in_period need count: staff"] if wrong else []
        found = [] if staff_source else [f"{self.source} is not a staff snapshot source"]
        if self.snapshot != "period_end":
            found.append("a staff count needs snapshot: period_end")
        dated = columns.get(self.date_in_period or "")
        if self.date_in_period is not None and (dated is None or dated.kind != "date"):
            found.append(f"{self.source} has no date column {self.date_in_period!r}")
        return found


class Indicator(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Z]{2,4}[0-9]{2}$")
    theme: int
    title: str
    definition: str = Field(min_length=1)
    caveats: str = ""
    measures: list[Measure]
    multiplier: int
    periods: list[PeriodKind]
    polarity: Literal["none", "high_is_good", "low_is_good"]
    numerator: Count
    denominator: Count
    breakdowns: list[Breakdown]
    reference_groups: dict[str, str]

    @model_validator(mode="after")
    def _counts_match_the_sources(self) -> Indicator:
        problems = [f"numerator: {p}" for p in self.numerator.problems()]
        problems += [f"denominator: {p}" for p in self.denominator.problems()]
        if "dsr" in self.measures and self.denominator.count != "person_years":
            problems.append("a DSR needs a person_years denominator")
        if self.numerator.of_denominator and self.denominator.snapshot != "campaign_start":
            problems.append("of_denominator needs a denominator with snapshot: campaign_start")
        if (self.numerator.count == "staff") != (self.denominator.count == "staff"):
            problems.append("a staff count needs a staff numerator and denominator")
        by_organisation = self.numerator.source == QUALITY_SOURCE or self.numerator.count == "staff"
        if "source_organisation" in self.breakdowns and not by_organisation:
            problems.append(
                "only staff and completeness indicators are broken down by organisation"
            )
        if "wres_group" in self.breakdowns and not {"all", "ethnicity_5"} <= set(self.breakdowns):
            problems.append(
                "the wres_group breakdown needs the all and ethnicity_5 rows it adds up to"
            )
        if problems:
            raise ValueError(f"{self.id}: " + "; ".join(problems))
        return self


def load(path: Path = CATALOGUE) -> dict[str, Indicator]:
    """All indicators by id, with the catalogue's defaults applied to each entry."""
    document = yaml.safe_load(path.read_text())
    defaults = document.get("defaults", {})
    indicators = [Indicator(**(defaults | entry)) for entry in document["indicators"]]
    ids = [i.id for i in indicators]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ValueError(f"{path.name}: indicator ids appear twice: {', '.join(duplicated)}")
    return {i.id: i for i in indicators}


@cache
def catalogue() -> dict[str, Indicator]:
    return load()
