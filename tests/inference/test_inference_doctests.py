"""The examples in the inference docstrings run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["_diff", "_formats", "_hash", "_infer", "_merge", "_sample"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"execctx_nb.inference.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
