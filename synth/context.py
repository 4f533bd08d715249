"""Per-month state handed to every source builder."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import params
from .columns import Counters
from .dates import Month
from .population import Snapshot


@dataclass
class Rates:
    """Base-rate levels, calibrated once (first month) so volumes hit `params.VOLUMES`."""

    scale: float
    levels: dict[str, float] = field(default_factory=dict)

    def per_person(
        self, name: str, weights: np.ndarray, basis: np.ndarray | None = None
    ) -> np.ndarray:
        """Expected events per person; `basis` is the expected total if it exceeds `weights`."""
        if name not in self.levels:
            total = (weights if basis is None else basis).sum()
            self.levels[name] = params.VOLUMES[name] * self.scale / max(total, 1e-9)
        return self.levels[name] * weights


@dataclass
class Context:
    """What every builder of a month needs to know."""

    month: Month
    progress: float  # 0 in the first month, 1 in the last: drives completeness trends
    snapshot: Snapshot
    rates: Rates
    counters: Counters
    invalid_rate: float  # share of rows given an invalid ethnic code
