"""Fingerprints of the compute's inputs: what makes a compute run again."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from transforms.indicators import fingerprints


def module_from(path: Path, text: str) -> ModuleType:
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_code_digest_follows_the_source_text_not_the_module(tmp_path):
    method = module_from(tmp_path / "method_a.py", "RATE = 1000\n")
    same_text = module_from(tmp_path / "method_b.py", "RATE = 1000\n")
    edited = module_from(tmp_path / "method_c.py", "RATE = 100000\n")
    assert fingerprints.code_digest((method,)) == fingerprints.code_digest((same_text,))
    assert fingerprints.code_digest((method,)) != fingerprints.code_digest((edited,))
    assert fingerprints.code_digest((method, edited)) != fingerprints.code_digest((edited, method))


def test_a_digest_does_not_depend_on_the_order_of_keys():
    assert fingerprints.digest({"a": 1, "b": [2, 3]}) == fingerprints.digest({"b": [2, 3], "a": 1})
    assert fingerprints.digest({"a": 1}) != fingerprints.digest({"a": 2})
