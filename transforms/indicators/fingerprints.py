"""Fingerprints of what a compute reads, so that a compute with nothing new writes nothing.

Each part of the compute (``indicators``: the catalogue; ``wres``) keeps the fingerprint of
the inputs it last computed from in ``indicators.compute_inputs``, written in the same
transaction as its values. The same comparison tells ``hei run`` whether the
``compute_indicators`` DAG has anything to do.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from functools import cache
from types import ModuleType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.core.periods import utcnow
from transforms.core.reference_data import reference_file
from transforms.warehouse.tables import indicators_compute_inputs

REFERENCE_FILES = ("acsc_icd10_codes.csv", "ethnic_category_codes.csv", "esp2013.csv")
"""The reference tables the values depend on (codes, groups, the standard population)."""


def digest(inputs: Any) -> str:
    """sha256 of JSON-serialisable inputs, independent of dict order."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


@cache
def reference_digest() -> str:
    """sha256 of the reference tables behind the values."""
    found = hashlib.sha256()
    for name in REFERENCE_FILES:
        found.update(reference_file(name).read_bytes())
    return found.hexdigest()


@cache
def code_digest(modules: tuple[ModuleType, ...]) -> str:
    """sha256 of the source of the modules values follow from: an upgrade that changes them
    recomputes those values, with no version number to remember to bump. (It reads the
    ``.py`` files, which wheels and the image carry.)"""
    return digest([inspect.getsource(module) for module in modules])


def stored(conn: Connection, part: str) -> str | None:
    """The fingerprint the part was last computed from (None before its first compute)."""
    held = indicators_compute_inputs.c
    query = sa.select(held.fingerprint).where(held.part == part)
    return conn.execute(query).scalars().first()


def record(conn: Connection, part: str, fingerprint: str) -> None:
    """Keep the fingerprint of the part's compute (inside the compute's transaction)."""
    held = indicators_compute_inputs.c
    conn.execute(sa.delete(indicators_compute_inputs).where(held.part == part))
    conn.execute(
        sa.insert(indicators_compute_inputs).values(
            part=part, fingerprint=fingerprint, computed_at=utcnow()
        )
    )
