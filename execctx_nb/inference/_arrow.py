"""Arrow dtype walker: ``pyarrow.DataType`` to :class:`Spec`, stopping at ``max_depth``."""

from __future__ import annotations

from typing import Any

from execctx_nb.inference._formats import LOCAL_PATTERNS
from execctx_nb.inference._spec import CUT, INT_KEY_PATTERN, Spec

__all__ = ["spec_from_arrow"]


_SIMPLE: dict[int, Spec] = {}


def _simple_specs() -> dict[int, Spec]:
    """Type id -> spec for parameterless types (one dict lookup instead of a chain of tests)."""
    import pyarrow as pa

    if not _SIMPLE:
        kinds = {
            "integer": (
                pa.int8(),
                pa.int16(),
                pa.int32(),
                pa.int64(),
                pa.uint8(),
                pa.uint16(),
                pa.uint32(),
                pa.uint64(),
            ),
            "number": (pa.float16(), pa.float32(), pa.float64()),
            "string": (pa.string(), pa.large_string(), pa.string_view()),
            "binary": (pa.binary(), pa.large_binary(), pa.binary_view()),
            "boolean": (pa.bool_(),),
            "null": (pa.null(),),
        }
        for kind, types in kinds.items():
            for t in types:
                _SIMPLE[t.id] = Spec(kind)
    return _SIMPLE


def spec_from_arrow(t: Any, depth: int, max_depth: int) -> Spec:
    """The :class:`Spec` of Arrow type ``t`` found at nesting level ``depth``."""
    import pyarrow as pa

    simple = (_SIMPLE or _simple_specs()).get(t.id)
    if simple is not None:
        return simple

    types = pa.types
    if isinstance(t, pa.BaseExtensionType):
        if t.extension_name == "arrow.uuid":
            return Spec("temporal", fmt="uuid", dtype=str(t))
        t = t.storage_type
    if types.is_null(t):
        return Spec("null")
    if types.is_boolean(t):
        return Spec("boolean")
    if types.is_integer(t):
        return Spec("integer")
    if types.is_floating(t):
        return Spec("number")
    if types.is_decimal(t):
        return Spec("decimal", decimal=(t.precision, t.scale))
    if types.is_string(t) or types.is_large_string(t) or types.is_string_view(t):
        return Spec("string")
    if (
        types.is_binary(t)
        or types.is_large_binary(t)
        or types.is_fixed_size_binary(t)
        or types.is_binary_view(t)
    ):
        return Spec("binary")
    if types.is_timestamp(t):
        if t.tz is not None:
            return Spec("temporal", fmt="date-time", dtype=str(t))
        return Spec("temporal", pattern=LOCAL_PATTERNS["local-date-time"], dtype=str(t))
    if types.is_date(t):
        return Spec("temporal", fmt="date", dtype=str(t))
    if types.is_time(t):
        return Spec("temporal", pattern=LOCAL_PATTERNS["local-time"], dtype=str(t))
    if types.is_duration(t):
        return Spec("temporal", fmt="duration", dtype=str(t))
    if types.is_dictionary(t):
        return Spec("categorical", item=spec_from_arrow(t.value_type, depth, max_depth))
    nested = (
        types.is_struct(t)
        or types.is_map(t)
        or types.is_list(t)
        or types.is_large_list(t)
        or types.is_fixed_size_list(t)
        or types.is_list_view(t)
        or types.is_large_list_view(t)
    )
    if nested and depth > max_depth:
        return CUT
    if types.is_struct(t):
        return Spec(
            "struct",
            fields=tuple(
                (t.field(i).name, spec_from_arrow(t.field(i).type, depth + 1, max_depth))
                for i in range(t.num_fields)
            ),
        )
    if types.is_map(t):
        key = spec_from_arrow(t.key_type, depth + 1, max_depth)
        return Spec(
            "map",
            item=spec_from_arrow(t.item_type, depth + 1, max_depth),
            key_pattern=INT_KEY_PATTERN if key.kind == "integer" else None,
        )
    if nested:
        fixed = t.list_size if types.is_fixed_size_list(t) else None
        return Spec("list", item=spec_from_arrow(t.value_type, depth + 1, max_depth), fixed=fixed)
    return Spec("unknown", dtype=str(t))
