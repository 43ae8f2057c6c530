"""Rich notebook displays: step envelopes, schemas, executions and schema diffs.

Records get ``_repr_html_`` / ``_repr_pretty_`` hooks that import this package lazily, so
``import execctx_nb`` stays cheap. The views are plain classes wrapping the data; all output
is deterministic (no ids, no addresses, sorted where order is not meaningful).

>>> from execctx_nb.display import SchemaView
>>> print(SchemaView({"type": "integer"}, title="n"))
n  integer
"""

from __future__ import annotations

from execctx_nb.display._diff import SchemaDiffView
from execctx_nb.display._envelope import ExecutionView, envelope_html, envelope_text
from execctx_nb.display._history import StepHistoryView
from execctx_nb.display._lineage_view import LineageView, lineage_svg
from execctx_nb.display._schema import SchemaView

__all__ = [
    "ExecutionView",
    "LineageView",
    "SchemaDiffView",
    "SchemaView",
    "StepHistoryView",
    "envelope_html",
    "envelope_text",
    "lineage_svg",
]
