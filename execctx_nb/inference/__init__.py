"""Schema inference: Arrow, Polars and plain rows to sound JSON Schema 2020-12.

- :func:`infer_schema` samples an input and returns a schema of one row;
- :func:`schema_hash` identifies a schema's contract (64 hex, stable across processes);
- :func:`merge_schemas` combines schemas inferred piecewise;
- :func:`schema_diff` lists what changed and whether it breaks readers (:class:`SchemaDiff`);
- :func:`schema_problem` says why a value (read back from anywhere) is not a schema.

The rules (sampling, enums, formats, annotations, hashing) are in ``docs/inference.md``.
"""

from __future__ import annotations

from execctx_nb.inference._check import schema_problem
from execctx_nb.inference._diff import SchemaDiff, schema_diff
from execctx_nb.inference._hash import canonical_bytes, schema_hash
from execctx_nb.inference._infer import DIALECT, infer_schema
from execctx_nb.inference._merge import merge_schemas

__all__ = [
    "DIALECT",
    "SchemaDiff",
    "canonical_bytes",
    "infer_schema",
    "merge_schemas",
    "schema_diff",
    "schema_hash",
    "schema_problem",
]
