"""Whether JSON rows and the inferred schema give a frame's values back exactly.

A small frame stays inline as JSON rows (readable by engines in any language) when, read
back through its schema (:func:`execctx_nb._dtypes.conform`), every value is the one written.
The rule is about values, not layouts: integer widths, string layouts (``string_view``,
``large_string``), pandas metadata do not matter - a narrower dtype comes back
as its JSON Schema type's dtype (``Int32`` as ``Int64``). What JSON or the schema cannot
hold sends the frame to the cold tier (Parquet keeps every dtype):

- non-finite floats (JSON writes them as null), integers past int64 (``UInt64`` above
  2^63 - 1, ``Int128``), decimals of more than 15 digits (read back through float64);
- sub-microsecond times, datetimes and durations (JSON text stops at microseconds);
- datetime zones other than UTC (the text keeps the offset, not the zone's name);
- categoricals and enums (their dictionary is part of the data: ``to_pandas`` gives a
  categorical back), Arrow maps (keys are data: no struct describes them), unions,
  extension types, objects;
- columns whose schema names no dtype (dtype Null, an empty struct: their schema is ``{}``
  or a bare object);
- empty frames (no rows: nothing says the columns' order and dtypes in JSON).
"""

from __future__ import annotations

from typing import Any

__all__ = ["json_exact"]

_INT64_MAX = 2**63 - 1
# Names of UTC (DuckDB says "Etc/UTC"): read back as "UTC", the same instants and zone.
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu"})


def json_exact(data: Any) -> bool:
    """True when ``data`` (a Polars DataFrame or an Arrow Table) can travel as JSON rows."""
    import polars as pl

    if type(data).__module__.startswith("pyarrow"):
        if data.num_rows == 0 or not all(_arrow_ok(f.type) for f in data.schema):
            return False
        try:
            frame = pl.from_arrow(data)
        except Exception:  # a type Polars cannot take: Parquet keeps it
            return False
        assert isinstance(frame, pl.DataFrame)
        data = frame
    if data.height == 0:
        return False
    return all(_exact(column) for column in data.get_columns())


def _arrow_ok(t: Any) -> bool:
    import pyarrow as pa

    types = pa.types
    if types.is_map(t) or types.is_union(t) or isinstance(t, pa.ExtensionType):
        return False
    if types.is_struct(t):
        return all(_arrow_ok(t.field(i).type) for i in range(t.num_fields))
    if (
        types.is_list(t)
        or types.is_large_list(t)
        or types.is_fixed_size_list(t)
        or types.is_list_view(t)
        or types.is_large_list_view(t)
    ):
        return _arrow_ok(t.value_type)
    if types.is_dictionary(t):
        return _arrow_ok(t.value_type)
    return True


def _exact(s: Any) -> bool:
    import polars as pl

    dtype = s.dtype
    if isinstance(dtype, (pl.List, pl.Array)):
        inner = s.explode() if isinstance(dtype, pl.List) else s.arr.explode()
        return _exact(inner)
    if isinstance(dtype, pl.Struct):
        fields = dtype.fields
        return bool(fields) and all(_exact(s.struct.field(f.name)) for f in fields)
    if dtype == pl.Null:
        return False  # its schema is {} (any value): nothing says the dtype back
    if dtype in (pl.Float32, pl.Float64):
        return bool(s.drop_nulls().is_finite().all())
    if dtype == pl.UInt64:
        top = s.max()
        return top is None or int(top) <= _INT64_MAX
    if dtype.is_integer():
        return dtype != pl.Int128 and str(dtype) != "UInt128"
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None and dtype.time_zone not in _UTC_NAMES:
            return False
        return dtype.time_unit != "ns" or _whole_micros(s.dt.nanosecond())
    if isinstance(dtype, pl.Duration):
        return dtype.time_unit != "ns" or _whole_micros(s.dt.total_nanoseconds())
    if dtype == pl.Time:
        return _whole_micros(s.dt.nanosecond())
    if isinstance(dtype, pl.Decimal):
        # JSON numbers are read back as float64, exact to 15 significant digits
        return (dtype.precision or 38) <= 15
    # Known to be exact as JSON + schema; anything else (Object, Categorical, Enum,
    # extension types, dtypes newer than this list) is kept exact by Parquet.
    return dtype in (pl.Boolean, pl.String, pl.Date, pl.Binary)


def _whole_micros(ns: Any) -> bool:
    rest = ns.drop_nulls() % 1000
    return bool((rest == 0).all())
