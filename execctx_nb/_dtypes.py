"""From JSON Schema to Polars and Arrow dtypes, and JSON rows back to the dtypes they had.

Inline step data travels as JSON rows: dates, datetimes, durations and bytes become strings,
decimals numbers. The envelope's schema says what each column was (``format: date``,
``date-time``, ``duration``, the local date-time and time patterns the inference writes,
``contentEncoding: base64``, ``x-execctx-decimal``), so :func:`conform` turns the decoded
columns back into those dtypes, nested structs and lists included.

Polars has no reader for these string forms inside a JSON document (``pl.read_json`` with a
schema refuses them), hence the casts below. A column whose values do not parse as their
schema says (an engine that wrote something else) is left as decoded: a read never fails on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from execctx_nb.inference._formats import LOCAL_PATTERNS

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

__all__ = ["conform", "schema_to_arrow", "schema_to_polars"]

# ISO 8601 durations as msgspec writes them ("P1DT7203.5S", "-PT3S", "P0D"), and with hours
# and minutes as other engines may.
_DURATION = r"^(-)?P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.(\d{1,6}))?S)?)?$"


def _types(node: dict[str, Any]) -> list[str]:
    """The non-null JSON types a node allows (["null"] for null alone); the schema is
    untrusted input (read back from Valkey), so anything malformed gives []."""
    t = node.get("type")
    types = [t] if isinstance(t, str) else list(t) if isinstance(t, list) else []
    types = [x for x in types if isinstance(x, str)]
    return [x for x in types if x != "null"] if types != ["null"] else ["null"]


def dtype_of(node: Any) -> pl.DataType | None:
    """The Polars dtype a schema node describes; None when it names no single dtype."""
    import polars as pl

    if not isinstance(node, dict) or node.get("x-execctx-cut"):
        return None
    types = _types(node)
    if len(types) != 1:
        return None
    kind = types[0]
    if kind == "null":
        return pl.Null()
    if kind == "boolean":
        return pl.Boolean()
    if kind == "integer":
        return pl.Int64()
    if kind == "number":
        dec = node.get("x-execctx-decimal")
        if (
            isinstance(dec, list)
            and len(dec) == 2
            and all(type(v) is int for v in dec)
            and 0 <= dec[1] <= dec[0] <= 38
            and dec[0] >= 1
        ):
            return pl.Decimal(dec[0], dec[1])
        return pl.Float64()
    if kind == "string":
        fmt, pattern = node.get("format"), node.get("pattern")
        if fmt == "date":
            return pl.Date()
        if fmt == "date-time":
            return pl.Datetime("us", "UTC")
        if fmt == "duration":
            return pl.Duration("us")
        if pattern == LOCAL_PATTERNS["local-date-time"]:
            return pl.Datetime("us")
        if pattern == LOCAL_PATTERNS["local-time"]:
            return pl.Time()
        if node.get("contentEncoding") == "base64":
            return pl.Binary()
        return pl.String()
    if kind == "array":
        inner = dtype_of(node.get("items"))
        return pl.List(inner) if inner is not None else None
    if kind == "object":
        props = node.get("properties")
        if not isinstance(props, dict) or not props or "additionalProperties" in node:
            return None  # a map (keys are data) or an open object: no struct describes it
        fields = []
        for name, child in props.items():
            dtype = dtype_of(child)
            if dtype is None:
                return None
            fields.append(pl.Field(name, dtype))
        return pl.Struct(fields)
    return None


def _row_properties(schema: Any) -> dict[str, Any]:
    if not isinstance(schema, dict) or "object" not in _types(schema):
        return {}
    props = schema.get("properties")
    return props if isinstance(props, dict) else {}


def schema_to_polars(schema: dict[str, Any]) -> pl.Schema:
    """The Polars schema of a frame whose rows ``schema`` describes.

    Columns follow the schema's ``properties``; a property with no single dtype (several
    JSON types, a map, a cut subtree) maps to ``String``.

    >>> schema_to_polars({"type": "object", "properties": {"d": {"type": "string",
    ...     "format": "date"}, "n": {"type": ["integer", "null"]}}})
    Schema([('d', Date), ('n', Int64)])
    """
    import polars as pl

    cols = {name: dtype_of(node) or pl.String() for name, node in _row_properties(schema).items()}
    return pl.Schema(cols)


def schema_to_arrow(schema: dict[str, Any]) -> pa.Schema:
    """The Arrow schema of a frame whose rows ``schema`` describes (as :func:`schema_to_polars`,
    converted the way ``to_arrow()`` converts a stored frame)."""
    import polars as pl

    arrow: pa.Schema = pl.DataFrame(schema=schema_to_polars(schema)).to_arrow().schema
    return arrow


def conform(frame: pl.DataFrame, schema: Any) -> pl.DataFrame:
    """``frame`` (decoded from JSON rows) with each column cast to the dtype ``schema`` gives.

    Columns the schema does not describe, or whose values do not parse, are left as they are.
    """
    props = _row_properties(schema)
    if not props:
        return frame
    out = frame
    for name in frame.columns:
        target = dtype_of(props.get(name))
        if target is None or frame.schema[name] == target:
            continue
        import polars as pl

        try:
            expr = _convert(pl.col(name), frame.schema[name], target)
            if expr is None:
                continue
            converted = out.select(expr.alias(name)).to_series()
        except (pl.exceptions.PolarsError, ValueError, TypeError):
            continue  # values that are not what the schema says: keep them as decoded
        if converted.null_count() != out[name].null_count():
            continue  # some values did not parse: keep them as decoded
        out = out.with_columns(converted)
    return out


def _convert(e: pl.Expr, have: Any, want: Any) -> pl.Expr | None:
    import polars as pl

    if have == want:
        return e
    if isinstance(have, pl.Null):
        return e.cast(want)
    if isinstance(want, pl.List) and isinstance(have, pl.List):
        inner = _convert(pl.element(), have.inner, want.inner)
        return None if inner is None else e.list.eval(inner)
    if isinstance(want, pl.Struct) and isinstance(have, pl.Struct):
        want_fields = {f.name: f.dtype for f in want.fields}
        parts = []
        for field in have.fields:  # the data's own field order, then fields it lacks
            target = want_fields.pop(field.name, None)
            part = _convert(e.struct.field(field.name), field.dtype, target or field.dtype)
            if part is None:
                return None
            parts.append(part.alias(field.name))
        parts.extend(pl.lit(None, dtype=t).alias(name) for name, t in want_fields.items())
        return pl.when(e.is_null()).then(None).otherwise(pl.struct(parts))
    if have == pl.String:
        if want == pl.Date:
            return e.str.to_date("%Y-%m-%d")
        if isinstance(want, pl.Datetime):
            return e.str.to_datetime(time_unit="us", time_zone=want.time_zone)
        if want == pl.Time:
            return e.str.to_time()
        if isinstance(want, pl.Duration):
            return _duration(e)
        if want == pl.Binary:
            return e.str.decode("base64")
        if isinstance(want, pl.Decimal):
            return e.cast(want)
        return None
    if isinstance(want, pl.Decimal) and have.is_numeric():
        # Through the shortest text of the float: 1.2 stays 1.20, not 1.19999...
        return e.cast(pl.String).cast(want)
    if want.is_numeric() and have.is_numeric():
        return e.cast(want)
    return None


def _duration(e: pl.Expr) -> pl.Expr:
    import polars as pl

    parts = e.str.extract_groups(_DURATION)
    us = (
        parts.struct.field("2").cast(pl.Int64).fill_null(0) * 86_400_000_000
        + parts.struct.field("3").cast(pl.Int64).fill_null(0) * 3_600_000_000
        + parts.struct.field("4").cast(pl.Int64).fill_null(0) * 60_000_000
        + parts.struct.field("5").cast(pl.Int64).fill_null(0) * 1_000_000
        + parts.struct.field("6").str.pad_end(6, "0").cast(pl.Int64).fill_null(0)
    )
    signed = pl.when(parts.struct.field("1") == "-").then(-us).otherwise(us)
    # A value that is not a duration becomes null here; conform sees the null count grow
    # and keeps the column as decoded.
    return pl.when(e.str.contains(_DURATION)).then(signed).cast(pl.Duration("us"))
