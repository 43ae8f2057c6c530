"""Polars dtype walker: ``polars.DataType`` to :class:`Spec`, directly (no pandas detour)."""

from __future__ import annotations

from typing import Any

from execctx_nb.inference._formats import LOCAL_PATTERNS
from execctx_nb.inference._spec import CUT, Spec

__all__ = ["exportable_dtype", "spec_from_polars"]


def spec_from_polars(dtype: Any, depth: int, max_depth: int) -> Spec:
    """The :class:`Spec` of Polars dtype ``dtype`` found at nesting level ``depth``."""
    import polars as pl

    if dtype == pl.Null:
        return Spec("null")
    if dtype == pl.Boolean:
        return Spec("boolean")
    if dtype.is_integer():
        return Spec("integer")
    if dtype.is_float():
        return Spec("number")
    if isinstance(dtype, pl.Decimal):
        return Spec("decimal", decimal=(dtype.precision or 38, dtype.scale or 0))
    if dtype == pl.String:
        return Spec("string")
    if dtype == pl.Binary:
        return Spec("binary")
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            return Spec("temporal", fmt="date-time", dtype=str(dtype))
        return Spec("temporal", pattern=LOCAL_PATTERNS["local-date-time"], dtype=str(dtype))
    if dtype == pl.Date:
        return Spec("temporal", fmt="date", dtype=str(dtype))
    if dtype == pl.Time:
        return Spec("temporal", pattern=LOCAL_PATTERNS["local-time"], dtype=str(dtype))
    if isinstance(dtype, pl.Duration):
        return Spec("temporal", fmt="duration", dtype=str(dtype))
    if isinstance(dtype, pl.Enum):
        return Spec("enum", categories=tuple(dtype.categories.to_list()))
    if isinstance(dtype, pl.Categorical):
        return Spec("categorical", item=Spec("string"))
    if isinstance(dtype, (pl.Struct, pl.List, pl.Array)) and depth > max_depth:
        return CUT
    if isinstance(dtype, pl.Struct):
        return Spec(
            "struct",
            fields=tuple(
                (f.name, spec_from_polars(f.dtype, depth + 1, max_depth)) for f in dtype.fields
            ),
        )
    if isinstance(dtype, pl.Array):
        return Spec(
            "list", item=spec_from_polars(dtype.inner, depth + 1, max_depth), fixed=dtype.size
        )
    if isinstance(dtype, pl.List):
        return Spec("list", item=spec_from_polars(dtype.inner, depth + 1, max_depth))
    return Spec("unknown", dtype=str(dtype))


def exportable_dtype(dtype: Any) -> Any:
    """``dtype`` with 128-bit integers (at any depth) as strings, or ``None`` if it has none.

    pyarrow cannot import Polars' 128-bit integer columns, so they cross to Arrow as their
    decimal text. The spec still comes from the original dtype (``integer``) and the walker
    only counts distinct values, which text preserves exactly.
    """
    import polars as pl

    if dtype in (pl.Int128, pl.UInt128):
        return pl.String
    if isinstance(dtype, pl.Struct):
        fields = [(f.name, exportable_dtype(f.dtype)) for f in dtype.fields]
        if all(new is None for _, new in fields):
            return None
        return pl.Struct(
            {
                f.name: new if new is not None else f.dtype
                for f, (_, new) in zip(dtype.fields, fields, strict=True)
            }
        )
    if isinstance(dtype, (pl.List, pl.Array)):
        inner = exportable_dtype(dtype.inner)
        if inner is None:
            return None
        return pl.Array(inner, dtype.size) if isinstance(dtype, pl.Array) else pl.List(inner)
    return None
