"""The column walker: sampled Arrow arrays plus their :class:`Spec` to a :class:`Node` tree.

Statistics come from Arrow compute kernels (null counts are free, distinct counts and list
lengths are one kernel call each), so a frame costs a few calls per leaf column rather than a
Python step per value. Only distinct strings cross into Python, for format and enum checks.
Nullability comes from the data's null counts, never from a field's ``nullable`` flag.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

from execctx_nb.inference._formats import MAX_FORMAT_LEN
from execctx_nb.inference._spec import Spec
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

__all__ = ["ColumnWalker"]

_SCALAR = frozenset(
    {"boolean", "integer", "number", "decimal", "binary", "temporal", "enum", "string"}
)

#: A dictionary (categorical) column becomes an enum of its dictionary up to this size.
CATEGORY_MAX = 1000
#: Arrays up to this length count distinct values in Python (no kernel-call overhead).
SMALL_ARRAY = 4096
#: Distinct strings up to this many bytes are copied into Python without measuring first.
SMALL_TEXT = 1 << 20


class ColumnWalker:
    """Builds nodes from Arrow arrays; recursion depth is bounded by the spec's depth."""

    def __init__(self, rule: EnumRule) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        self.rule = rule
        self.pc = pc
        self._extension = pa.BaseExtensionType
        self._pa = pa

    def _distinct(self, arr: Any) -> int:
        """Distinct non-null values. A Python set wins over a kernel call on small samples."""
        if len(arr) <= SMALL_ARRAY:
            found = set(arr.to_pylist())
            return len(found) - (None in found)
        return int(self.pc.count_distinct(arr).as_py())

    def _lengths(self, lists: Any) -> tuple[int, int]:
        """Shortest and longest list of a (null-free) list array."""
        types = self._pa.types
        if len(lists) <= SMALL_ARRAY and (
            types.is_list(lists.type) or types.is_large_list(lists.type)
        ):
            offsets = lists.offsets.to_pylist()
            sizes = [b - a for a, b in itertools.pairwise(offsets)]
            return min(sizes), max(sizes)
        lo, hi = self.pc.min_max(self.pc.list_value_length(lists)).values()
        return int(lo.as_py()), int(hi.as_py())

    def node(self, arr: Any, spec: Spec) -> Node:
        """The node for Arrow array ``arr`` whose type ``spec`` describes."""
        node = Node()
        if isinstance(arr.type, self._extension):
            arr = arr.storage  # the spec already says what the extension means
        nulls = arr.null_count
        node.add_nulls(nulls)
        kind = spec.kind
        if kind in ("cut", "unknown"):
            node.cut = True
            return node
        if kind == "null":
            return node
        rule = self.rule
        if kind in _SCALAR:
            return self._scalar(node, arr, nulls, spec)
        valid = arr if nulls == 0 else arr.drop_null()
        n = len(valid)
        if kind == "struct":
            strategy: ObjectStrategy = node.get(ObjectStrategy)
            strategy.add_record()
            strategy.add_required(name for name, _ in spec.fields)
            for i, (name, fspec) in enumerate(spec.fields):
                strategy.properties[name] = self.node(valid.field(i), fspec)
            return node
        if kind == "list":
            assert spec.item is not None
            array: ArrayStrategy = node.get(ArrayStrategy)
            array.items = self.node(valid.flatten(), spec.item)
            if n:
                array.add_lengths(*self._lengths(valid))
            array.add_fixed(spec.fixed)
            return node
        if kind == "map":
            assert spec.item is not None
            obj: ObjectStrategy = node.get(ObjectStrategy)
            # ``MapArray.items`` ignores slicing: cut it to this array's offsets
            offsets = valid.offsets
            lo, hi = (offsets[0].as_py(), offsets[-1].as_py()) if n else (0, 0)
            items = valid.items.slice(lo, hi - lo)
            obj.add_map(self.node(items, spec.item), spec.key_pattern, rule)
            obj.add_required(())
            return node
        return self._categorical(node, arr, valid, spec)

    def _scalar(self, node: Node, arr: Any, nulls: int, spec: Spec) -> Node:
        """Leaf columns. Kernels count valid values only, so nulls need not be dropped."""
        kind, rule = spec.kind, self.rule
        n = len(arr) - nulls
        distinct: int
        if kind == "boolean":
            node.get(BooleanStrategy)
        elif kind == "integer":
            node.get(IntegerStrategy)
        elif kind == "number":
            node.get(NumberStrategy).add_decimal(None)
            if n:
                finite = self.pc.is_finite(arr)  # null where arr is null
                if finite.false_count:  # NaN/inf travel as JSON null
                    node.add_nulls(0, finite.false_count)
                    arr = arr.filter(finite)
        elif kind == "decimal":
            node.get(NumberStrategy).add_decimal(list(spec.decimal) if spec.decimal else None)
        elif kind == "binary":
            node.get(StringStrategy).add_declared(encoding="base64", rule=rule)
        elif kind == "temporal":
            node.get(StringStrategy).add_declared(fmt=spec.fmt, pattern=spec.pattern, rule=rule)
        elif kind == "enum":
            node.get(StringStrategy).add_declared(enum=spec.categories or (), rule=rule)
            arr = arr.dictionary_decode() if n else arr
        else:  # string
            return self._strings(node, arr, n, nulls)
        distinct = self._distinct(arr)
        node.add_cardinality(distinct)
        return node

    def _strings(self, node: Node, arr: Any, n: int, nulls: int) -> Node:
        """Distinct values stay in Arrow unless few enough to be an enum."""
        rule = self.rule
        strings: StringStrategy = node.get(StringStrategy)
        if len(arr) <= SMALL_ARRAY and arr.nbytes <= SMALL_TEXT:
            items = arr.to_pylist()  # small: cheaper than a kernel call
            found = set(items)
            found.discard(None)
            rare = len(found)  # counted only where an enum is possible
            if rule.may_allow(n, len(found)):
                counts = Counter(items)
                rare = sum(1 for v, c in counts.items() if v is not None and c < MIN_SEEN)
            node.add_cardinality(len(found))
            strings.add_distinct(n, list(found), rule, rare)
            return node
        pc = self.pc
        if (pc.max(pc.binary_length(arr)).as_py() or 0) > 4 * MAX_FORMAT_LEN:
            # Some value has more characters than any format or enum value may (UTF-8 takes
            # at most 4 bytes a character; lengths come from the offsets, nothing is read).
            # Hashing 200 x 10 MB values to count them took 0.5-1.3 s: they are counted by
            # (byte length, first and last KB), as the rows path does.
            node.add_cardinality(self._distinct_by_ends(arr))
            strings.add_opaque(rule)
            return node
        uniq = arr.unique()
        if nulls:
            uniq = uniq.drop_null()
        if self._pa.types.is_string_view(uniq.type):  # few kernels take views yet
            uniq = uniq.cast(self._pa.large_string())
        node.add_cardinality(len(uniq))
        if (
            uniq.nbytes > SMALL_TEXT
            and (self.pc.max(self.pc.utf8_length(uniq)).as_py() or 0) > MAX_FORMAT_LEN
        ):
            strings.add_opaque(rule)  # no format or enum value is this long
        else:
            # Python's regexes over the joined values beat per-call RE2 compilation here
            rare = len(uniq)  # past max_values no enum can be claimed: no need to count
            if rule.may_allow(n, len(uniq)):
                values = arr.drop_null() if nulls else arr
                if self._pa.types.is_string_view(values.type):
                    values = values.cast(self._pa.large_string())
                counts = self.pc.value_counts(values)
                seen = counts.field("counts")
                rare = int(self.pc.sum(self.pc.less(seen, MIN_SEEN)).as_py() or 0)
            strings.add_distinct(n, uniq.to_pylist(), rule, rare)
        return node

    def _distinct_by_ends(self, arr: Any) -> int:
        pa, pc = self._pa, self.pc
        raw = arr.cast(pa.large_binary())  # bytes: slicing cannot split a character's text
        length = pc.cast(pc.cast(pc.binary_length(raw), pa.large_string()), pa.large_binary())
        keys = pc.binary_join_element_wise(
            length,
            pc.binary_slice(raw, 0, 1024),
            pc.binary_slice(raw, -1024),
            pa.scalar(b"\x00", pa.large_binary()),
        )
        return int(pc.count_distinct(keys).as_py())

    def _categorical(self, node: Node, arr: Any, valid: Any, spec: Spec) -> Node:
        import pyarrow as pa

        if not pa.types.is_dictionary(arr.type):
            # a polars Categorical collected without its dictionary: treat as plain values
            return self.node(arr, spec.item or Spec("string"))
        values = valid.dictionary_decode() if len(valid) else valid.dictionary.slice(0, 0)
        item = spec.item or Spec("string")
        dictionary = arr.dictionary
        if item.kind == "string" and len(dictionary) <= CATEGORY_MAX:
            # the dictionary is the declared domain, so it is the enum (not the sample)
            domain = [v for v in dictionary.to_pylist() if v is not None]
            node.get(StringStrategy).add_declared(enum=domain, rule=self.rule)
            node.add_cardinality(self._distinct(values))
            return node
        inner = self.node(values, item)
        inner.add_nulls(node.nulls)  # ``values`` holds the valid entries only
        return inner
