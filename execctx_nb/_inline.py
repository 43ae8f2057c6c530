"""Inline step data (JSON rows) to Polars frames, from Python values or straight from raw JSON.

Data read back is input: its depth is bounded before Polars walks it (a 2 KB envelope nested
985 deep took Polars' row constructor a minute, and its JSON reader 46 s), and the row that
breaks a column is named.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any

from execctx_nb.errors import EnvelopeDecodeError

if TYPE_CHECKING:
    import polars as pl

__all__ = ["MAX_DATA_DEPTH", "raw_rows_frame", "rows_frame"]

MAX_DATA_DEPTH = 32
"""Deepest nesting of inline step data that :meth:`StepEnvelope.to_polars` converts."""


def rows_frame(data: Any, step_id: str) -> pl.DataFrame:
    """A frame of decoded JSON data: a list of objects is rows, anything else one column."""
    import polars as pl

    if data is None:
        return pl.DataFrame()
    rows = data if isinstance(data, list) else [data]
    deep = _too_deep(rows)
    if deep is not None:
        raise EnvelopeDecodeError(
            f"Step {step_id!r} data is nested more than {MAX_DATA_DEPTH} levels deep -"
            f" at `{deep}`; no frame holds it: read `envelope.data` as Python values"
        )
    try:
        if not all(isinstance(row, dict) for row in rows):
            return pl.DataFrame({"value": rows}, strict=False)
        return pl.DataFrame(rows, infer_schema_length=None, strict=False)
    except (pl.exceptions.PolarsError, TypeError, ValueError, OverflowError) as exc:
        where = _first_mixed(rows) or "data"
        raise EnvelopeDecodeError(
            f"Step {step_id!r} data does not fit one frame: {type(exc).__name__}: {exc}"
            f" - at `{where}` (values of one column must share a shape: all objects, all"
            " lists or all scalars); read `envelope.data` as Python values"
        ) from exc


def raw_rows_frame(raw: bytes | memoryview) -> pl.DataFrame | None:
    """The frame of well-formed raw JSON rows read by Polars' JSON reader (5x faster than
    building Python dicts first), or None when the general path must decide: not a list of
    objects, nested too deep, or rows the reader refuses (the general path names why)."""
    import polars as pl

    view = memoryview(raw)
    if bytes(view[:2]) != b"[{" or _raw_too_deep(bytes(view)):
        return None
    try:
        frame = pl.read_json(io.BytesIO(view), infer_schema_length=None)
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException:  # PolarsError, or a panic in the reader: the general path decides
        return None
    # ``[{}]`` reads as no rows where the row constructor keeps one row of no columns.
    return frame if frame.width else None


# Strings go first (their text may hold brackets); then each pass of _PAIR removes exactly
# the innermost bracket pairs (a left-to-right scan does not revisit the pair it just
# emptied), so the number of passes is the depth. Regex and translate run in C: a Python
# walk over every value would cost more than the reader it protects.
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
_PAIR = re.compile(rb"\[\]|\{\}")
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def _raw_too_deep(raw: bytes) -> bool:
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKET)
    depth = 0
    while brackets:
        depth += 1
        if depth > MAX_DATA_DEPTH + 1:  # +1: the list holding the rows
            return True
        brackets = _PAIR.sub(b"", brackets)
    return False


def _too_deep(rows: list[Any]) -> str | None:
    """The path of a value nested deeper than MAX_DATA_DEPTH, or None (an iterative walk)."""
    stack: list[tuple[Any, int, Any]] = [(row, 1, (None, i)) for i, row in enumerate(rows)]
    while stack:
        value, depth, trail = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DATA_DEPTH:
                return _trail_path(trail)
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((v, depth + 1, (trail, k)) for k, v in items)
    return None


def _trail_path(trail: Any) -> str:
    parts = []
    while trail is not None:
        trail, key = trail
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return "data" + "".join(reversed(parts))


def _shape(value: Any) -> str | None:
    if value is None:
        return None
    return "object" if isinstance(value, dict) else "list" if isinstance(value, list) else "scalar"


def _first_mixed(rows: list[Any]) -> str | None:
    """``data[i].key`` of the first value whose shape differs from its column's earlier ones."""
    seen: dict[str, str] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            continue
        for key, value in row.items():
            shape = _shape(value)
            if shape is None:
                continue
            if seen.setdefault(key, shape) != shape:
                return f"data[{i}].{key}"
    return None
