"""Whether a value read back as a JSON Schema has the shape of one (no I/O, no recursion)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

__all__ = ["MAX_SCHEMA_DEPTH", "MAX_SCHEMA_NODES", "schema_problem"]


def _fmt(value: Any) -> str:
    try:
        text = msgspec.json.encode(value).decode()
    except (TypeError, ValueError, OverflowError, RecursionError, msgspec.EncodeError):
        text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


MAX_SCHEMA_DEPTH = 64
"""Deepest schema the displays draw (inference writes at most 8 levels)."""
MAX_SCHEMA_NODES = 20_000
"""Most subschemas the displays draw; a larger schema shows as invalid, in bounded time."""

_SUBSCHEMA_LISTS = ("prefixItems", "anyOf", "oneOf", "allOf")
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
_SUBSCHEMAS = ("items", "additionalProperties", "not", "contains", "if", "then", "else")


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` cannot be drawn as a JSON Schema tree (a JSON pointer and the fault).

    A schema read back from Valkey is input: any JSON may stand in its place. This checks the
    shape of every keyword the displays read, the depth and the size, without recursion.

    >>> schema_problem({"properties": {"a": 5}})
    '/properties/a: expected a schema (an object or a boolean), got int'
    >>> schema_problem({"type": "object"}) is None
    True
    """
    stack: list[tuple[Any, str, int]] = [(schema, "", 0)]
    seen = 0
    while stack:
        node, at, depth = stack.pop()
        seen += 1
        if seen > MAX_SCHEMA_NODES:
            return f"{at or '/'}: more than {MAX_SCHEMA_NODES} subschemas"
        if isinstance(node, bool):
            continue
        if not isinstance(node, Mapping):
            return f"{at or '/'}: expected a schema (an object or a boolean), got {type(node).__name__}"
        if depth > MAX_SCHEMA_DEPTH:
            return f"{at}: nested more than {MAX_SCHEMA_DEPTH} levels deep"
        problem = _keyword_problem(node, at)
        if problem is not None:
            return problem
        for key in _SUBSCHEMAS:
            if key in node:
                stack.append((node[key], f"{at}/{key}", depth + 1))
        for key in _SUBSCHEMA_LISTS:
            if key in node:
                if not isinstance(node[key], list):
                    return f"{at}/{key}: expected a list of schemas, got {type(node[key]).__name__}"
                stack.extend((sub, f"{at}/{key}/{i}", depth + 1) for i, sub in enumerate(node[key]))
        for key in _SUBSCHEMA_MAPS:
            if key in node:
                if not isinstance(node[key], Mapping):
                    return (
                        f"{at}/{key}: expected an object of schemas, got {type(node[key]).__name__}"
                    )
                stack.extend(
                    (sub, f"{at}/{key}/{name}", depth + 1) for name, sub in node[key].items()
                )
    return None


def _keyword_problem(node: Mapping[str, Any], at: str) -> str | None:
    kind = node.get("type")
    if "type" in node and not (
        isinstance(kind, str) or (isinstance(kind, list) and all(isinstance(t, str) for t in kind))
    ):
        return f"{at}/type: expected a type name or a list of them, got {_fmt(kind)}"
    required = node.get("required")
    if "required" in node and not (
        isinstance(required, list) and all(isinstance(r, str) for r in required)
    ):
        return f"{at}/required: expected a list of property names, got {_fmt(required)}"
    if "enum" in node and not isinstance(node["enum"], list):
        return f"{at}/enum: expected a list of values, got {_fmt(node['enum'])}"
    if "format" in node and not isinstance(node["format"], str):
        return f"{at}/format: expected a string, got {_fmt(node['format'])}"
    return None
