"""``merge_schemas``: combine schemas inferred per batch, per file or per worker.

Each schema is folded into one :class:`Node` tree through the strategies' ``add_schema``,
then rendered once. The result accepts every value any input schema accepts (types are
united, ``required`` is intersected, formats and enums survive only where all inputs agree),
and merging is commutative and associative, so parts can be merged in any grouping.
"""

from __future__ import annotations

from typing import Any

from execctx_nb.errors import SchemaInferenceError
from execctx_nb.inference._infer import DIALECT, ROWS, SAMPLED
from execctx_nb.inference._strategies import EnumRule, Node

__all__ = ["merge_schemas"]


def merge_schemas(*schemas: dict[str, Any], enum_max: int = 16) -> dict[str, Any]:
    """One schema accepting everything that any of ``schemas`` accepts.

    Annotations combine as documented: ``x-execctx-nulls``, ``-sampled`` and ``-rows`` add
    up, ``x-execctx-cardinality`` takes the largest part (a lower bound of the union).

    >>> from execctx_nb import infer_schema
    >>> a = infer_schema([{"id": 1, "name": "x"}])
    >>> b = infer_schema([{"id": 2.5}])
    >>> m = merge_schemas(a, b)
    >>> m["properties"]["id"]["type"], m["required"], m["x-execctx-rows"]
    ('number', ['id'], 2)
    """
    if not schemas:
        raise SchemaInferenceError(
            "Cannot merge: expected at least one schema, got none - at `merge_schemas()`"
        )
    rule = EnumRule(max_values=enum_max)
    root = Node()
    sampled = rows = 0
    for i, schema in enumerate(schemas):
        if not isinstance(schema, dict):
            raise SchemaInferenceError(
                f"Cannot merge: expected a schema dict, got `{type(schema).__name__}` - at "
                f"`merge_schemas(...)[{i}]`"
            )
        try:
            root.add_schema(schema, rule)
            sampled += int(schema.get(SAMPLED, 0))
            rows += int(schema.get(ROWS, 0))
        except (TypeError, ValueError, AttributeError) as exc:
            raise SchemaInferenceError(
                f"Cannot merge: expected a schema from infer_schema, got one that fails with "
                f"{type(exc).__name__}: {exc} - at `merge_schemas(...)[{i}]`"
            ) from exc
    return {"$schema": DIALECT, **root.to_schema(), SAMPLED: sampled, ROWS: rows}
