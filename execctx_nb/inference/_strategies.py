"""Strategies: one small class per JSON type family, GenSON style.

A :class:`Node` stands for one position in the data (a column, a nested field, the items of
a list). It counts nulls and distinct values and holds one strategy per type family seen
there. Every strategy can be fed in two ways and then rendered:

- ``add_*`` from observed data (the row walker and the column walker call these);
- ``add_schema`` from a schema this package produced (how :func:`merge_schemas` works);
- ``to_schema`` renders its keywords; the node puts them together under one ``type``.

A node always spells mixed types as one ``type`` list (``["integer", "null", "string"]``)
with each family's keywords side by side: JSON Schema applies ``properties`` only to
objects, ``items`` only to arrays and ``format`` only to strings, so no ``anyOf`` is needed.
``enum`` would constrain every type, so it is only emitted when strings are the sole
non-null type.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from execctx_nb.inference._formats import LOCAL_PATTERNS, detect_format, looks_numeric

__all__ = [
    "ArrayStrategy",
    "BooleanStrategy",
    "EnumRule",
    "IntegerStrategy",
    "Node",
    "NumberStrategy",
    "ObjectStrategy",
    "StringStrategy",
]

X = "x-execctx-"
CARDINALITY = X + "cardinality"
NULLS = X + "nulls"
NONFINITE = X + "nonfinite"
CUT = X + "cut"
MIN_ITEMS = X + "min-items"
MAX_ITEMS = X + "max-items"
DECIMAL = X + "decimal"
DTYPE = X + "dtype"
# Keywords that constrain nothing: a schema made only of these (and annotations) is ``{}``.
_NOTES = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "title",
        "description",
        "examples",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
)


MIN_SEEN = 3
"""An enum value must have been seen this many times in the sample (see :class:`EnumRule`)."""


class EnumRule:
    """When a string field becomes an ``enum`` (see docs/inference.md, "Enums").

    A field gets an enum only when the sample says its domain is closed: at least
    ``min_count`` non-null strings, at most ``max_values`` distinct ones, no more than the
    square root of the count, none longer than ``max_len``, none numeric-looking, no format
    detected - and the sample must show the domain closed: every value seen at least
    :data:`MIN_SEEN` (3) times (values seen once or twice are, as in Good-Turing estimates,
    the sign of values not seen at all: a long tail), and at least ``1 / unseen`` (100)
    values. A rare category missing from the sample, free text that repeats, or a domain
    with values seen once then gets no enum (they made held-out rows fail:
    docs/inference.md, "Enums").
    """

    __slots__ = ("max_len", "max_values", "min_count", "unseen")

    def __init__(
        self, max_values: int = 16, min_count: int = 10, max_len: int = 64, unseen: float = 0.01
    ) -> None:
        self.max_values = max_values
        self.min_count = min_count
        self.max_len = max_len
        self.unseen = unseen

    def may_allow(self, count: int, n_distinct: int) -> bool:
        """The size conditions alone: when False, counting each value's repeats is moot."""
        return (
            count >= self.min_count
            and n_distinct <= self.max_values
            and n_distinct < count
            and n_distinct * n_distinct <= count
            and count * self.unseen >= 1
        )

    def allows(self, count: int, distinct: Iterable[str], n_distinct: int, rare: int) -> bool:
        """``rare``: how many of the distinct values were seen fewer than MIN_SEEN times."""
        if rare or not self.may_allow(count, n_distinct):
            return False
        return all(len(s) <= self.max_len and not looks_numeric(s) for s in distinct)


class Strategy:
    """Base: a type family at one node."""

    type_name: ClassVar[str]
    __slots__ = ()

    def add_schema(self, schema: dict[str, Any], rule: EnumRule) -> None:
        """Fold in the keywords of an emitted schema (used by merge)."""

    def to_schema(self) -> dict[str, Any]:
        return {}


class BooleanStrategy(Strategy):
    type_name = "boolean"
    __slots__ = ()


class IntegerStrategy(Strategy):
    type_name = "integer"
    __slots__ = ()


class NumberStrategy(Strategy):
    """Floats and decimals; ``decimal`` keeps a Decimal dtype's (precision, scale)."""

    type_name = "number"
    __slots__ = ("_fresh", "decimal")

    def __init__(self) -> None:
        self.decimal: list[int] | None = None
        self._fresh = True

    def add_decimal(self, decimal: list[int] | None) -> None:
        self.decimal = decimal if self._fresh or self.decimal == decimal else None
        self._fresh = False

    def add_schema(self, schema: dict[str, Any], rule: EnumRule) -> None:
        self.add_decimal(schema.get(DECIMAL))

    def to_schema(self) -> dict[str, Any]:
        return {DECIMAL: self.decimal} if self.decimal is not None else {}


class StringStrategy(Strategy):
    """Strings (and temporal or binary values written as strings).

    Keeps the distinct values only while an enum is still possible, the common format
    (``None`` once two sources disagree), a ``pattern`` for offset-free timestamps and a
    ``contentEncoding`` for binary data.
    """

    type_name = "string"
    __slots__ = ("_fresh", "encoding", "enum", "format", "pattern")

    def __init__(self) -> None:
        self.enum: set[str] | None = None
        self.format: str | None = None
        self.pattern: str | None = None
        self.encoding: str | None = None
        self._fresh = True

    def _fold(
        self,
        enum: set[str] | None,
        fmt: str | None,
        pattern: str | None,
        encoding: str | None,
        rule: EnumRule,
    ) -> None:
        if self._fresh:
            self.enum, self.format, self.pattern, self.encoding = enum, fmt, pattern, encoding
            self._fresh = False
            return
        if self.enum is not None and enum is not None and len(self.enum | enum) <= rule.max_values:
            self.enum |= enum
        else:
            self.enum = None
        self.format = self.format if self.format == fmt else None
        self.pattern = self.pattern if self.pattern == pattern else None
        self.encoding = self.encoding if self.encoding == encoding else None

    def add_distinct(self, count: int, distinct: list[str], rule: EnumRule, rare: int) -> None:
        """Observed non-null strings: their count, distinct values and how many of those
        were seen fewer than MIN_SEEN times."""
        self.add_observed(count, detect_format(distinct), distinct, rule, rare)

    def add_observed(
        self,
        count: int,
        name: str | None,
        distinct: list[str] | None,
        rule: EnumRule,
        rare: int,
    ) -> None:
        """Observed strings whose format (``name``) is known; ``distinct`` when enum-sized."""
        fmt = pattern = None
        if name in LOCAL_PATTERNS:
            pattern = LOCAL_PATTERNS[name]
        else:
            fmt = name
        enum = None
        if (
            name is None
            and distinct is not None
            and rule.allows(count, distinct, len(distinct), rare)
        ):
            enum = set(distinct)
        self._fold(enum, fmt, pattern, None, rule)

    def add_opaque(self, rule: EnumRule) -> None:
        """Strings too long to be a format or an enum value: only their type is known."""
        self._fold(None, None, None, None, rule)

    def add_declared(
        self,
        *,
        fmt: str | None = None,
        pattern: str | None = None,
        encoding: str | None = None,
        enum: Iterable[str] | None = None,
        rule: EnumRule,
    ) -> None:
        """A type that a dtype declares (temporal, binary, categorical, enum)."""
        self._fold(set(enum) if enum is not None else None, fmt, pattern, encoding, rule)

    def add_schema(self, schema: dict[str, Any], rule: EnumRule) -> None:
        enum = schema.get("enum")
        values = {v for v in enum if isinstance(v, str)} if isinstance(enum, list) else None
        self._fold(
            values, schema.get("format"), schema.get("pattern"), schema.get("contentEncoding"), rule
        )

    def to_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.format is not None:
            out["format"] = self.format
        if self.pattern is not None:
            out["pattern"] = self.pattern
        if self.encoding is not None:
            out["contentEncoding"] = self.encoding
        return out


class ObjectStrategy(Strategy):
    """Records (``properties`` + ``required``) and maps (``additionalProperties``)."""

    type_name = "object"
    __slots__ = ("_fresh", "_open", "_rule", "key_pattern", "properties", "required", "values")

    def __init__(self) -> None:
        self.properties: dict[str, Node] = {}
        self.required: set[str] = set()
        self.values: Node | None = None  # map values
        self.key_pattern: str | None = None
        self._fresh = True
        self._open = False  # some source had no additionalProperties: stay open
        self._rule = EnumRule()

    def add_required(self, required: Iterable[str]) -> None:
        """Keys present in every object of one source; the result is their intersection."""
        self.required = set(required) if self._fresh else self.required & set(required)
        self._fresh = False

    def add_map(self, values: Node, key_pattern: str | None, rule: EnumRule) -> None:
        """A source that is a map: its values' node and a pattern its keys follow."""
        self._rule = rule
        if self.values is None:
            self.values, self.key_pattern = values, key_pattern
        else:
            self.values.merge(values, rule)
            if self.key_pattern != key_pattern:
                self.key_pattern = None

    def add_record(self) -> None:
        """A source that is a record: any further keys stay allowed."""
        self._open = True

    def child(self, key: str) -> Node:
        node = self.properties.get(key)
        if node is None:
            node = self.properties[key] = Node()
        return node

    def add_schema(self, schema: dict[str, Any], rule: EnumRule) -> None:
        for key, sub in (schema.get("properties") or {}).items():
            self.child(key).add_schema(sub, rule)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            values = Node()
            values.add_schema(extra, rule)
            names = schema.get("propertyNames")
            self.add_map(values, names.get("pattern") if isinstance(names, dict) else None, rule)
        else:
            self.add_record()
        self.add_required(schema.get("required", ()))

    def _property(self, key: str) -> dict[str, Any]:
        node = self.properties[key]
        if self.values is None or not self._open:
            return node.to_schema()
        # a map met a record: any map key may be this property, so it takes map values too
        both = Node()
        both.add_schema(node.to_schema(), self._rule)
        both.merge(self.values, self._rule)
        return both.to_schema()

    def to_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.properties:
            # Column order (a frame's, or the order keys were first seen in rows): what a
            # reader of the schema expects. `required` stays sorted, and the schema hash
            # canonicalises key order, so neither depends on it.
            out["properties"] = {k: self._property(k) for k in self.properties}
        if self.required:
            out["required"] = sorted(self.required)
        if self.values is not None and not self._open:
            out["additionalProperties"] = self.values.to_schema()
            if self.key_pattern is not None:
                out["propertyNames"] = {"pattern": self.key_pattern}
        return out


class ArrayStrategy(Strategy):
    """Lists: one ``items`` node; fixed sizes from dtypes; observed lengths as annotations."""

    type_name = "array"
    __slots__ = ("_fresh", "fixed", "items", "lengths")

    def __init__(self) -> None:
        self.items = Node()
        self.fixed: tuple[int, int] | None = None
        self.lengths: tuple[int, int] | None = None
        self._fresh = True

    def add_lengths(self, lo: int, hi: int) -> None:
        """Observed list lengths (an annotation: they change as data grows)."""
        if self.lengths is None:
            self.lengths = (lo, hi)
        else:
            self.lengths = (min(self.lengths[0], lo), max(self.lengths[1], hi))

    def add_fixed(self, size: int | None) -> None:
        """A fixed length that a dtype declares (``None``: variable length)."""
        self._add_fixed((size, size) if size is not None else None)

    def _add_fixed(self, fixed: tuple[int, int] | None) -> None:
        if self._fresh:
            self.fixed = fixed
        elif self.fixed is not None and fixed is not None:
            self.fixed = (min(self.fixed[0], fixed[0]), max(self.fixed[1], fixed[1]))
        else:
            self.fixed = None
        self._fresh = False

    def add_schema(self, schema: dict[str, Any], rule: EnumRule) -> None:
        items = schema.get("items")
        if isinstance(items, dict):
            self.items.add_schema(items, rule)
        else:
            self.items.cut = True
        if MIN_ITEMS in schema and MAX_ITEMS in schema:
            self.add_lengths(schema[MIN_ITEMS], schema[MAX_ITEMS])
        lo, hi = schema.get("minItems"), schema.get("maxItems")
        self._add_fixed((lo, hi) if lo is not None and hi is not None else None)

    def to_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"items": self.items.to_schema()}
        if self.fixed is not None:
            out["minItems"], out["maxItems"] = self.fixed
        if self.lengths is not None:
            out[MIN_ITEMS], out[MAX_ITEMS] = self.lengths
        return out


_FAMILIES: dict[str, type[Strategy]] = {
    cls.type_name: cls
    for cls in (
        BooleanStrategy,
        IntegerStrategy,
        NumberStrategy,
        StringStrategy,
        ObjectStrategy,
        ArrayStrategy,
    )
}


class Node:
    """One position in the data: null and distinct counts plus a strategy per family."""

    __slots__ = ("cardinality", "cut", "has_null", "nonfinite", "nulls", "strategies")

    def __init__(self) -> None:
        self.nulls = 0
        self.nonfinite = 0
        self.has_null = False
        self.cardinality: int | None = None
        self.cut = False
        self.strategies: dict[str, Strategy] = {}

    def get(self, cls: type[Any]) -> Any:
        """The node's strategy of ``cls``, created on first use."""
        found = self.strategies.get(cls.type_name)
        if found is None:
            found = self.strategies[cls.type_name] = cls()
        return found

    def add_nulls(self, nulls: int, nonfinite: int = 0) -> None:
        self.nulls += nulls + nonfinite
        self.nonfinite += nonfinite
        self.has_null = self.has_null or self.nulls > 0

    def add_cardinality(self, distinct: int) -> None:
        self.cardinality = distinct if self.cardinality is None else max(self.cardinality, distinct)

    def add_schema(self, schema: dict[str, Any], rule: EnumRule) -> None:
        """Fold in a schema this package emitted; unknown keywords widen to permissive."""
        if not isinstance(schema, dict):
            self.cut = True
            return
        types = schema.get("type")
        if schema.get(CUT) or (
            types is None and any(not k.startswith(X) and k not in _NOTES for k in schema)
        ):
            self.cut = True  # permissive, or keywords we do not model: stay permissive
            types = []
        elif types is None:
            types = []  # ``{}``: nothing was observed here
        elif isinstance(types, str):
            types = [types]
        for name in types:
            if name == "null":
                self.has_null = True
            elif name in _FAMILIES:
                self.get(_FAMILIES[name]).add_schema(schema, rule)
        self.nulls += int(schema.get(NULLS, 0))
        self.nonfinite += int(schema.get(NONFINITE, 0))
        if CARDINALITY in schema:
            self.add_cardinality(int(schema[CARDINALITY]))

    def merge(self, other: Node, rule: EnumRule) -> None:
        """Fold another node of the same position in (map values of two sources)."""
        self.add_schema(other.to_schema(), rule)

    def to_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.cut:
            out[CUT] = True
        else:
            names = set(self.strategies)
            if "number" in names:
                names.discard("integer")  # every integer is a number
            if self.has_null:
                names.add("null")
            ordered = sorted(names)
            if len(ordered) == 1:
                out["type"] = ordered[0]
            elif ordered:
                out["type"] = ordered
            for name in ordered:
                if name != "null" and name in names:
                    out.update(self.strategies[name].to_schema())
            string = self.strategies.get("string")
            if (
                isinstance(string, StringStrategy)
                and string.enum is not None
                and (names <= {"string", "null"})
            ):
                enum: list[Any] = sorted(string.enum)
                out["enum"] = [*enum, None] if self.has_null else enum
        if self.cardinality is not None:
            out[CARDINALITY] = self.cardinality
        if self.nulls:
            out[NULLS] = self.nulls
        if self.nonfinite:
            out[NONFINITE] = self.nonfinite
        return out
