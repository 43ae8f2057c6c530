"""Schemas as contracts: check whole frames against a JSON Schema, column by column.

:func:`validate` checks every row (not a sample) of a Polars DataFrame or LazyFrame, an
Arrow table or reader, anything the store takes as a frame (pandas, DuckDB, ...), or plain
rows, and returns a :class:`ValidationReport`. Frames are checked with Polars expressions
(``_compile.py`` says which keywords are native and which are checked once per distinct
value); a LazyFrame runs on the streaming engine and only violating rows are collected.
The verdict for each row is jsonschema's Draft 2020-12 verdict (with format checking) on the
row as the envelope encoder writes it.
"""

from __future__ import annotations

from execctx_nb.contracts._report import PathViolations, ValidationReport
from execctx_nb.contracts._validate import validate

__all__ = ["PathViolations", "ValidationReport", "validate"]
