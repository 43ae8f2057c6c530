"""Arrow and Polars inputs: types from dtypes, statistics from the sampled data."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from execctx_nb import infer_schema, schema_hash
from execctx_nb.errors import SchemaInferenceError
from tests.inference.contract import assert_contract, frame_rows


def infer(frame: Any, **kw: Any) -> dict[str, Any]:
    schema = infer_schema(frame, **kw)
    assert_contract(schema, frame_rows(frame))
    return schema


def prop(schema: dict[str, Any], *path: str) -> dict[str, Any]:
    for key in path:
        schema = schema["items"] if key == "[]" else schema["properties"][key]
    return schema


def all_types_table() -> pa.Table:
    n = 12
    utc = dt.UTC
    cols = {
        "i8": pa.array([i if i % 4 else None for i in range(n)], pa.int8()),
        "u64": pa.array(range(n), pa.uint64()),
        "f": pa.array([i / 3 for i in range(n)], pa.float32()),
        "b": pa.array([i % 2 == 0 for i in range(n)]),
        "s": pa.array(["ab"[i % 2] for i in range(n)], pa.large_string()),
        "sv": pa.array([f"v{i}" for i in range(n)], pa.string_view()),
        "ts": pa.array(
            [dt.datetime(2024, 1, 1, i, tzinfo=utc) for i in range(n)], pa.timestamp("us", "UTC")
        ),
        "naive": pa.array([dt.datetime(2024, 1, 1, i) for i in range(n)], pa.timestamp("ms")),
        "d": pa.array([dt.date(2024, 1, i + 1) for i in range(n)], pa.date32()),
        "t": pa.array([dt.time(i) for i in range(n)], pa.time64("us")),
        "dur": pa.array([dt.timedelta(seconds=i) for i in range(n)], pa.duration("s")),
        "dec": pa.array([decimal.Decimal(f"{i}.25") for i in range(n)], pa.decimal128(10, 2)),
        "bin": pa.array([bytes([i]) for i in range(n)], pa.binary()),
        "cat": pa.array(["x", "y", "z"] * 4).dictionary_encode(),
        "st": pa.array([{"a": i, "b": None if i % 3 else "q"} for i in range(n)]),
        "lst": pa.array([list(range(i % 4)) for i in range(n)], pa.list_(pa.int32())),
        "fix": pa.array([[i, i] for i in range(n)], pa.list_(pa.int64(), 2)),
        "mp": pa.array([[("k", i)] for i in range(n)], pa.map_(pa.string(), pa.int64())),
        "imap": pa.array([[(i, "v")] for i in range(n)], pa.map_(pa.int32(), pa.string())),
        "nul": pa.nulls(n),
    }
    return pa.table(cols)


def test_arrow_dtypes_map_to_json_schema() -> None:
    s = infer(all_types_table())
    assert prop(s, "i8")["type"] == ["integer", "null"] and prop(s, "u64")["type"] == "integer"
    assert prop(s, "f")["type"] == "number" and prop(s, "b")["type"] == "boolean"
    # 12 values cannot show a closed domain (the enum rule needs 100): no enum for "s"
    assert prop(s, "s")["type"] == "string" and "enum" not in prop(s, "s")
    assert prop(s, "sv")["type"] == "string"
    assert prop(s, "ts")["format"] == "date-time" and "pattern" in prop(s, "naive")
    assert prop(s, "d")["format"] == "date" and "pattern" in prop(s, "t")
    assert prop(s, "dur")["format"] == "duration"
    assert prop(s, "dec")["type"] == "number" and prop(s, "dec")["x-execctx-decimal"] == [10, 2]
    assert prop(s, "bin")["contentEncoding"] == "base64"
    assert prop(s, "cat")["enum"] == ["x", "y", "z"]
    assert prop(s, "st", "b")["type"] == ["null", "string"] and prop(s, "st")["required"] == [
        "a",
        "b",
    ]
    assert prop(s, "lst")["x-execctx-max-items"] == 3 and "maxItems" not in prop(s, "lst")
    assert (prop(s, "fix")["minItems"], prop(s, "fix")["maxItems"]) == (2, 2)
    assert prop(s, "mp")["additionalProperties"]["type"] == "integer"
    assert prop(s, "imap")["propertyNames"] == {"pattern": "^-?[0-9]+$"}
    assert prop(s, "nul") == {"type": "null", "x-execctx-nulls": 12}
    assert sorted(s["required"]) == sorted(all_types_table().column_names)


def test_polars_dtypes_map_directly() -> None:
    df = pl.DataFrame(
        {
            "e": pl.Series(["lo", "hi", "lo"], dtype=pl.Enum(["lo", "mid", "hi"])),
            "c": pl.Series(["a", None, "b"], dtype=pl.Categorical),
            "arr": pl.Series([[1, 2], [3, 4], [5, 6]], dtype=pl.Array(pl.Int16, 2)),
            "st": [{"x": 1, "y": [1.5]}, {"x": None, "y": []}, None],
            "tz": pl.Series([dt.datetime(2024, 1, 1)] * 3).dt.replace_time_zone("Europe/Paris"),
            "dec": pl.Series([decimal.Decimal("1.5")] * 3, dtype=pl.Decimal(8, 3)),
            "n": pl.Series([None, None, None], dtype=pl.Int64),
        }
    )
    s = infer(df)
    assert prop(s, "e")["enum"] == ["hi", "lo", "mid"]  # the declared domain, not the sample
    assert prop(s, "c")["enum"] == ["a", "b", None]
    assert (prop(s, "arr")["minItems"], prop(s, "arr")["maxItems"]) == (2, 2)
    assert prop(s, "st")["type"] == ["null", "object"]
    assert prop(s, "st", "x")["type"] == ["integer", "null"]
    assert prop(s, "tz")["format"] == "date-time"
    assert prop(s, "dec")["x-execctx-decimal"] == [8, 3]
    assert prop(s, "n")["type"] == ["integer", "null"]  # the dtype says integer


def test_nullability_comes_from_data_not_the_nullable_flag() -> None:
    schema = pa.schema(
        [
            pa.field("declared_nullable", pa.int64(), nullable=True),
            pa.field("declared_not_null", pa.int64(), nullable=False),
        ]
    )
    # Arrow does not enforce the flag: build a column with nulls under nullable=False
    t = pa.Table.from_arrays([pa.array([1, 2]), pa.array([None, 2])], schema=schema)
    s = infer(t)
    assert prop(s, "declared_nullable")["type"] == "integer"
    assert prop(s, "declared_not_null")["type"] == ["integer", "null"]


def test_struct_nulls_do_not_leak_into_children() -> None:
    arr = pa.array([{"a": 1}, None, {"a": 2}], pa.struct([("a", pa.int64())]))
    s = infer(pa.table({"s": arr}))
    assert prop(s, "s")["type"] == ["null", "object"] and prop(s, "s", "a")["type"] == "integer"


def test_sliced_and_chunked_inputs() -> None:
    t = pa.concat_tables([all_types_table(), all_types_table()]).slice(3, 15)
    infer(t)
    infer(t.to_batches()[0])


def test_frames_and_rows_agree_on_the_contract() -> None:
    rows = [
        {
            "id": i,
            "kind": "ab"[i % 2],
            "at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
            "tags": ["x"] * (i % 3),
            "user": {"n": f"u{i}", "age": None if i % 4 else i},
        }
        for i in range(40)
    ]
    hashes = {
        schema_hash(infer_schema(x))
        for x in (rows, pa.Table.from_pylist(rows), pl.DataFrame(rows), pl.LazyFrame(rows))
    }
    assert len(hashes) == 1


def test_series_arrays_and_chunked_arrays_describe_their_values() -> None:
    assert infer_schema(pl.Series([1, None]))["type"] == ["integer", "null"]
    assert infer_schema(pa.array(["a", "b"]))["type"] == "string"
    chunked = pa.chunked_array([[1.5], [None, 2.0]])
    assert infer_schema(chunked)["type"] == ["null", "number"]


def test_arrow_streams_and_pycapsule_objects() -> None:
    t = pa.Table.from_pylist([{"i": i, "s": "late" if i == 999 else None} for i in range(1000)])

    class Capsule:  # only the C stream interface, like a third-party frame
        def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
            return t.__arrow_c_stream__(requested_schema)

    reader = pa.RecordBatchReader.from_batches(t.schema, t.to_batches(max_chunksize=64))
    a = infer_schema(reader, sample_size=1000)
    b = infer_schema(Capsule(), sample_size=50)
    c = infer_schema(Capsule(), sample_size=50)
    assert prop(a, "s")["type"] == ["null", "string"] and a["x-execctx-rows"] == 1000
    assert b == c and b["x-execctx-sampled"] == 50 and b["x-execctx-rows"] == 1000


def test_sampling_spreads_over_frames() -> None:
    n = 50_000
    df = pl.DataFrame({"i": range(n)}).with_columns(
        late=pl.when(pl.col("i") == n - 1).then(pl.lit("x")).otherwise(None)
    )
    for frame in (df, df.to_arrow(), df.lazy()):
        s = infer_schema(frame)
        assert prop(s, "late")["type"] == ["null", "string"], type(frame)
        assert (s["x-execctx-sampled"], s["x-execctx-rows"]) == (200, n)


def test_lazy_parquet_sample_reads_blocks_and_counts_all_rows(tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    pq.write_table(
        pa.table({"i": range(30_000), "s": ["a", "b", "c"] * 10_000}), path, row_group_size=5_000
    )
    s = infer_schema(pl.scan_parquet(path), lazy_blocks=4)
    assert s["x-execctx-rows"] == 30_000 and s["x-execctx-sampled"] == 200
    assert prop(s, "s")["enum"] == ["a", "b", "c"]
    assert s == infer_schema(pl.scan_parquet(path), lazy_blocks=4)


def test_empty_frames() -> None:
    s = infer(pa.table({"a": pa.array([], pa.int64()), "l": pa.array([], pa.list_(pa.utf8()))}))
    assert prop(s, "a")["type"] == "integer" and s["x-execctx-rows"] == 0
    assert infer(pl.DataFrame())["type"] == "object"
    assert infer_schema(pl.LazyFrame({"a": []}))["x-execctx-sampled"] == 0


def test_deeply_nested_dtypes_are_cut() -> None:
    t: pa.DataType = pa.int64()
    for _ in range(150):
        t = pa.list_(t)
    value: Any = 1
    for _ in range(150):
        value = [value]
    s = infer(pa.table({"deep": pa.array([value], t)}), max_depth=4)
    # the row is level 1, "deep" level 2: levels 2-4 are walked, level 5 is cut
    assert prop(s, "deep", "[]", "[]", "[]") == {"x-execctx-cut": True}


def test_unreadable_lazy_sources_raise_schema_errors(tmp_path: Path) -> None:
    with pytest.raises(SchemaInferenceError, match="Cannot read the Polars input"):
        infer_schema(pl.scan_parquet(tmp_path / "missing.parquet"))


def test_extension_dictionary_and_view_types() -> None:
    t = pa.table(
        {
            "u": pa.array([b"\x00" * 16, b"\x01" * 16], pa.uuid()),
            "di": pa.array([1, 2]).dictionary_encode(),
            "lv": pa.array([[1], [2, 3]], pa.list_view(pa.int64())),
            "ll": pa.array([["a"], []], pa.large_list(pa.string())),
        }
    )
    s = infer(t)
    assert prop(s, "u")["format"] == "uuid"
    assert prop(s, "di")["type"] == "integer"
    assert prop(s, "lv")["x-execctx-max-items"] == 2 and prop(s, "ll")["items"]["type"] == "string"


def test_polars_unknown_dtypes_are_permissive_and_series_are_sampled() -> None:
    s = infer_schema(pl.DataFrame({"o": pl.Series([object(), object()], dtype=pl.Object)}))
    assert prop(s, "o") == {"x-execctx-cut": True}
    series = pl.Series(["x"] * 999 + ["2024-01-01"])
    out = infer_schema(series, sample_size=200)
    assert out["x-execctx-sampled"] == 200 and "format" not in out
    assert "enum" not in out  # the last value is in the sample, but seen only once there
    assert infer_schema(pl.Series(["x", "y"] * 500))["enum"] == ["x", "y"]


def test_sliced_nested_arrays_read_only_their_rows() -> None:
    n = 8
    t = pa.table(
        {
            "m": pa.array(
                [[("k", None if i < 4 else i)] for i in range(n)], pa.map_(pa.string(), pa.int64())
            ),
            "s": pa.array([{"a": None if i < 4 else i} for i in range(n)]),
            "l": pa.array([[None] if i < 4 else [i] for i in range(n)], pa.list_(pa.int64())),
        }
    ).slice(4, 4)
    s = infer(t)
    assert prop(s, "s", "a")["type"] == "integer"  # the nulls are outside the slice
    assert prop(s, "l", "[]")["type"] == "integer"
    assert prop(s, "l")["x-execctx-max-items"] == 1
    assert prop(s, "m")["additionalProperties"] == {"type": "integer", "x-execctx-cardinality": 4}


def test_pycapsule_streams_of_plain_arrays_describe_their_values() -> None:
    series = pl.Series("x", [1, None, 3])

    class ArrayStream:  # a non-struct C stream (a Series seen only through the protocol)
        def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
            return series.__arrow_c_stream__(requested_schema)

    s = infer_schema(ArrayStream())
    assert_contract(s, series.to_list())
    assert s["type"] == ["integer", "null"]
    assert (s["x-execctx-sampled"], s["x-execctx-rows"]) == (3, 3)
    assert s == infer_schema(series)


def test_polars_128_bit_integers() -> None:
    big = 2**100
    df = pl.DataFrame(
        {
            "i": pl.Series([big, None, -big], dtype=pl.Int128),
            "u": pl.Series([big, 1, None], dtype=pl.UInt128),
            "n": pl.Series([{"x": big}, None, {"x": 1}], dtype=pl.Struct({"x": pl.Int128})),
        }
    )
    s = infer_schema(df)
    assert_contract(s, df.to_dicts())
    assert prop(s, "i")["type"] == ["integer", "null"]
    assert prop(s, "u")["type"] == ["integer", "null"]
    assert prop(s, "n", "x")["type"] == "integer"
    assert infer_schema(df["i"])["type"] == ["integer", "null"]


def test_nulls_outside_the_sample_make_a_column_nullable() -> None:
    # A 1,000-row frame with one null at row 501 (not among the 200 rows sampled): eager
    # frames know each column's null count, so the schema accepts every row of the data.
    import jsonschema
    import pyarrow as pa

    values: list[int | None] = list(range(1000))
    values[501] = None
    rows = [{"a": v} for v in values]
    for obj in (pl.DataFrame({"a": values}), pa.table({"a": values})):
        schema = infer_schema(obj)
        assert schema["properties"]["a"]["type"] == ["integer", "null"]
        validator = jsonschema.Draft202012Validator(schema)
        assert all(validator.is_valid(row) for row in rows)
    for column in (pl.Series("a", values), pa.array(values)):
        assert infer_schema(column)["type"] == ["integer", "null"]
    assert (
        infer_schema(pl.DataFrame({"a": list(range(1000))}))["properties"]["a"]["type"] == "integer"
    )
