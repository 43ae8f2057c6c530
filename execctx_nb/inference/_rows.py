"""The value walker: plain Python/JSON rows to a :class:`Node` tree.

The walk is column-wise: all values found at one position (a key of every row, the items of
every list) are gathered into one list and classified in bulk, so a position costs a few
C-level passes (``set``, ``type``) instead of a Python call per value. Recursion happens
once per nesting level and never deeper than ``max_depth``; a container found deeper is
cut, and only then checked (iteratively) for cycles, since a cycle is exactly what makes
nesting endless.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import math
import numbers
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any

from execctx_nb.errors import CyclicDataError, SchemaInferenceError
from execctx_nb.inference._formats import LOCAL_PATTERNS, MAX_FORMAT_LEN
from execctx_nb.inference._maps import map_keys
from execctx_nb.inference._strategies import (
    MIN_SEEN,
    ArrayStrategy,
    BooleanStrategy,
    EnumRule,
    IntegerStrategy,
    Node,
    NumberStrategy,
    ObjectStrategy,
    StringStrategy,
)

__all__ = ["RowWalker"]

# What each Python type becomes on the JSON wire (msgspec's encoding, as the envelope uses).
_KINDS: dict[type, str] = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "float",
    str: "string",
    dict: "object",
    list: "array",
    tuple: "array",
    _dt.datetime: "datetime",
    _dt.date: "date",
    _dt.time: "time",
    _dt.timedelta: "duration",
    uuid.UUID: "uuid",
    decimal.Decimal: "decimal",
    bytes: "binary",
    bytearray: "binary",
    memoryview: "binary",
    set: "array",
    frozenset: "array",
}


def _kind_of(t: type) -> str | None:
    """Kind of a subclass or a foreign scalar (numpy numbers and the like)."""
    for base, kind in _KINDS.items():
        if base is not type(None) and issubclass(t, base):
            return kind
    if issubclass(t, Mapping):
        return "object"
    if issubclass(t, numbers.Integral):
        return "integer"
    if issubclass(t, numbers.Real):
        return "float"
    return None


# Kinds as JSON writes them: every number a number, temporal values and bytes strings.
_JSON_OF_KIND = {"integer": "number", "float": "number", "decimal": "number", "binary": "string",
                 "datetime": "string", "date": "string", "time": "string",
                 "duration": "string", "uuid": "string"}  # fmt: skip


def json_type(value: Any) -> str | None:
    """The JSON type a value is written as (None for null; a foreign type by its name)."""
    kind = _KINDS.get(type(value)) or _kind_of(type(value))
    if kind is None:
        return type(value).__name__
    return None if kind == "null" else _JSON_OF_KIND.get(kind, kind)


def _children(obj: Any) -> Any:
    return obj.values() if isinstance(obj, Mapping) else obj


class RowWalker:
    """Builds a :class:`Node` tree from values; one walker per inference call."""

    def __init__(self, max_depth: int, rule: EnumRule) -> None:
        self.max_depth = max_depth
        self.rule = rule
        self._acyclic: set[int] = set()  # containers already proven free of cycles

    def node(self, values: list[Any], depth: int, path: str = "") -> Node:
        """The node for ``values``, all found at ``path`` (nesting level ``depth``)."""
        by_type: dict[type, list[Any]] = {}
        for v in values:
            t = type(v)
            bucket = by_type.get(t)
            if bucket is None:
                bucket = by_type[t] = []
            bucket.append(v)
        groups: dict[str, list[Any]] = {}
        for t, bucket in by_type.items():
            kind = _KINDS.get(t) or _kind_of(t)
            if kind is None:
                raise SchemaInferenceError(
                    f"Cannot infer a JSON type: expected JSON values (dict, list, str, int, "
                    f"float, bool, None, date/time, bytes), got `{t.__name__}` - at "
                    f"`{path or '/'}`; convert it to one of those first"
                )
            if kind in groups:
                groups[kind].extend(bucket)
            else:
                groups[kind] = bucket
        node = Node()
        distinct = 0
        for kind, group in groups.items():
            distinct += self._add(node, kind, group, depth, path)
        if distinct or any(k not in ("null", "object", "array") for k in groups):
            node.add_cardinality(distinct)
        return node

    def _add(self, node: Node, kind: str, vals: list[Any], depth: int, path: str) -> int:
        """Fold one kind of values into ``node``; returns their distinct count (scalars)."""
        rule = self.rule
        if kind == "null":
            node.add_nulls(len(vals))
            return 0
        if kind in {"object", "array"}:
            if depth > self.max_depth:
                self._check_acyclic(vals, path)
                node.cut = True
                return 0
            if kind == "object":
                self._objects(node, vals, depth, path)
            else:
                self._arrays(node, vals, depth, path)
            return 0
        if kind == "boolean":
            node.get(BooleanStrategy)
        elif kind == "integer":
            node.get(IntegerStrategy)
        elif kind == "float":
            finite = [v for v in vals if math.isfinite(v)]
            node.add_nulls(0, len(vals) - len(finite))  # NaN/inf travel as JSON null
            node.get(NumberStrategy).add_decimal(None)
            vals = finite
        elif kind == "decimal":
            node.get(NumberStrategy).add_decimal(None)
        elif kind == "string":
            if max(map(len, vals)) > MAX_FORMAT_LEN:
                # too long for a format or an enum; hashing megabytes per value to count
                # them exactly is not worth it: tell long values apart by length and ends
                node.get(StringStrategy).add_opaque(rule)
                return len(
                    {(len(v), v[:256], v[-256:]) if len(v) > MAX_FORMAT_LEN else v for v in vals}
                )
            uniq = set(vals)
            rare = len(uniq)  # counted only where an enum is possible (a Counter costs 2x)
            if rule.may_allow(len(vals), len(uniq)):
                rare = sum(1 for c in Counter(vals).values() if c < MIN_SEEN)
            node.get(StringStrategy).add_distinct(len(vals), list(uniq), rule, rare)
            return len(uniq)
        else:
            self._declared_string(node, kind, vals)
        try:
            return len(set(vals))
        except TypeError:  # unhashable foreign scalars (rare): count by repr
            return len({repr(v) for v in vals})

    def _declared_string(self, node: Node, kind: str, vals: list[Any]) -> None:
        string = node.get(StringStrategy)
        rule = self.rule
        if kind in {"datetime", "time"}:
            aware = all(v.utcoffset() is not None for v in vals)
            naive = all(v.utcoffset() is None for v in vals)
            name = "date-time" if kind == "datetime" else "time"
            if aware:
                string.add_declared(fmt=name, rule=rule)
            elif naive:
                string.add_declared(pattern=LOCAL_PATTERNS["local-" + name], rule=rule)
            else:
                string.add_declared(rule=rule)
        elif kind == "binary":
            string.add_declared(encoding="base64", rule=rule)
        else:  # date, duration, uuid
            string.add_declared(fmt=kind, rule=rule)

    def _objects(self, node: Node, objs: list[Any], depth: int, path: str) -> None:
        cols: dict[Any, list[Any]] = {}
        for obj in objs:
            for k, v in obj.items():
                col = cols.get(k)
                if col is None:
                    col = cols[k] = []
                col.append(v)
        if any(type(k) is not str for k in cols):
            merged: dict[Any, list[Any]] = {}
            for k, col in cols.items():  # the wire writes non-string keys as strings
                merged.setdefault(k if isinstance(k, str) else str(k), []).extend(col)
            cols = merged
        strategy: ObjectStrategy = node.get(ObjectStrategy)
        keyed = map_keys(cols, len(objs), json_type)
        if keyed is not None:  # keys are data: one schema for every value (docs: "Maps")
            values = [v for col in cols.values() for v in col]
            strategy.add_map(self.node(values, depth + 1, f"{path}/{{}}"), keyed or None, self.rule)
            strategy.add_required(())
            return
        strategy.add_record()
        strategy.add_required(k for k, col in cols.items() if len(col) == len(objs))
        for k, col in cols.items():
            strategy.properties[k] = self.node(col, depth + 1, f"{path}/{k}")

    def _arrays(self, node: Node, arrays: list[Any], depth: int, path: str) -> None:
        lengths = [len(a) for a in arrays]
        items = [x for a in arrays for x in a]
        strategy: ArrayStrategy = node.get(ArrayStrategy)
        strategy.items = self.node(items, depth + 1, f"{path}/[]")
        strategy.add_lengths(min(lengths), max(lengths))
        strategy.add_fixed(None)

    def _check_acyclic(self, roots: list[Any], path: str) -> None:
        """Iterative depth-first search: a container on the current stack seen again is a cycle."""
        done = self._acyclic
        for root in roots:
            if id(root) in done:
                continue
            stack = [(root, iter(_children(root)))]
            on_stack = {id(root)}
            while stack:
                obj, it = stack[-1]
                for child in it:
                    if isinstance(child, (Mapping, list, tuple)):
                        cid = id(child)
                        if cid in on_stack:
                            raise CyclicDataError(
                                f"Cyclic data: expected a tree of JSON values, got a "
                                f"`{type(child).__name__}` that contains itself - below "
                                f"`{path or '/'}`; break the reference cycle before inferring"
                            )
                        if cid not in done:
                            on_stack.add(cid)
                            stack.append((child, iter(_children(child))))
                            break
                else:
                    stack.pop()
                    on_stack.discard(id(obj))
                    done.add(id(obj))
