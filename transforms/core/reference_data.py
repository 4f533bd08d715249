"""The reference tables shipped inside the package (``transforms/core/reference/``).

Read through ``importlib.resources`` so that a wheel install finds them as an editable one
does; their sources and licences are in the README beside them.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable


def reference_file(name: str) -> Traversable:
    """One reference file, e.g. ``esp2013.csv``."""
    return files("transforms.core") / "reference" / name
