"""The data preview of an envelope, as a frame library shows data: typed columns.

The first rows are read as a typed frame (inline JSON rows through the envelope's schema, so
dates are dates and decimals numbers), and shown with a dtype row under the column names;
dates, datetimes and durations unquoted, decimals and numbers as numbers, nested values as
compact JSON, nulls marked, and no wrapping inside a cell (ids and timestamps stay on one
line; the table scrolls sideways instead).
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import TYPE_CHECKING, Any

import msgspec

from execctx_nb.display._html import clip, esc, fmt_count

if TYPE_CHECKING:
    import polars as pl

    from execctx_nb._records import StepEnvelope

__all__ = ["typed_head", "preview_table"]


def typed_head(env: StepEnvelope, limit: int) -> tuple[pl.DataFrame, int] | None:
    """The first ``limit`` rows as a typed frame and the total row count; None when the
    inline data is not frame-shaped (the caller shows it as plain values)."""
    import polars as pl

    from execctx_nb._dtypes import conform
    from execctx_nb._inline import rows_frame
    from execctx_nb.errors import ExecctxError

    data = env.data
    if data is None:
        return None
    if isinstance(data, pl.DataFrame):
        return data.head(limit), data.height
    if type(data).__module__.startswith("pyarrow"):
        head = pl.from_arrow(data.slice(0, limit))  # a slice is a view: nothing is copied
        return (head, data.num_rows) if isinstance(head, pl.DataFrame) else None
    rows = data if isinstance(data, list) else [data]
    try:
        frame = rows_frame(rows[:limit], env.step_id)
    except ExecctxError:
        return None
    return conform(frame, env.schema), len(rows)


def _dtype(dtype: Any) -> str:
    short = getattr(dtype, "_string_repr", None)  # what Polars prints under a column name
    return str(short() if callable(short) else dtype)


def _cell(value: Any) -> tuple[str, str]:
    """``(text, css class)`` of one value."""
    if value is None:
        return "null", "muted"
    if isinstance(value, bool):
        return ("true" if value else "false"), ""
    if isinstance(value, int | float | decimal.Decimal):
        return str(value), "num"
    if isinstance(value, dt.datetime):
        zone = f" {value.tzname()}" if value.tzinfo is not None else ""
        return value.replace(tzinfo=None).isoformat(sep=" ") + zone, ""
    if isinstance(value, dt.date | dt.time):
        return value.isoformat(), ""
    if isinstance(value, dt.timedelta):
        return str(value), "num"
    if isinstance(value, bytes):
        return f"b'{value[:16].hex()}{'…' if len(value) > 16 else ''}'", ""
    if isinstance(value, str):
        return clip(value, 60), ""
    try:
        return clip(msgspec.json.encode(value).decode(), 60), ""  # nested: compact JSON
    except (TypeError, msgspec.EncodeError):
        return clip(repr(value), 60), ""


def preview_table(head: pl.DataFrame, total: int) -> str:
    """The HTML of a typed preview (see the module docstring)."""
    names = "".join(f"<th>{esc(c)}</th>" for c in head.columns)
    dtypes = "".join(f"<td class='muted'>{esc(_dtype(t))}</td>" for t in head.dtypes)
    body = []
    for row in head.iter_rows():
        cells = []
        for value in row:
            text, cls = _cell(value)
            cells.append(f"<td class='{cls}'>{esc(text)}</td>" if cls else f"<td>{esc(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f"<details open><summary>data: first {head.height} of {fmt_count(total, 'row')}"
        "</summary><div style='overflow-x:auto'><table style='white-space:nowrap'>"
        f"<thead><tr>{names}</tr><tr>{dtypes}</tr></thead><tbody>{''.join(body)}</tbody>"
        "</table></div></details>"
    )
