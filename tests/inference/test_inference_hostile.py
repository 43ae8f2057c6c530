"""Hostile inputs give a schema or a clear error, quickly (timings live in the benchmark)."""

from __future__ import annotations

from typing import Any

import polars as pl
import pyarrow as pa
import pytest

from execctx_nb import infer_schema
from tests.inference.contract import assert_contract, frame_rows

DEPTH = 10_000


def nested_dicts(depth: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        doc = {"n": doc}
    return doc


def nested_lists(depth: int) -> list[Any]:
    doc: list[Any] = [1]
    for _ in range(depth):
        doc = [doc]
    return doc


@pytest.mark.parametrize(
    "doc", [nested_dicts(DEPTH), {"l": nested_lists(DEPTH)}], ids=["dicts", "lists"]
)
def test_ten_thousand_levels_are_cut_without_recursion_error(doc: Any) -> None:
    s = infer_schema([doc, doc])
    assert_contract(s, [doc], encode=False)  # the encoder itself cannot go 10,000 deep
    assert "x-execctx-cut" in str(s)


def test_ten_megabyte_strings() -> None:
    big = "x" * 10_000_000
    rows = [{"s": big, "n": i} for i in range(3)]
    s = infer_schema(rows)
    assert s["properties"]["s"] == {"type": "string", "x-execctx-cardinality": 1}
    assert infer_schema(pa.Table.from_pylist(rows))["properties"]["s"]["type"] == "string"
    assert infer_schema(pl.DataFrame(rows).lazy())["properties"]["s"]["type"] == "string"


def test_two_thousand_keys() -> None:
    rows = [{f"k{j}": (j if i else None) for j in range(2_000)} for i in range(20)]
    s = infer_schema(rows)
    assert len(s["properties"]) == 2_000 and len(s["required"]) == 2_000
    assert_contract(s, rows)
    t = pa.Table.from_pylist(rows)
    assert_contract(infer_schema(t), frame_rows(t))


def test_all_null_and_non_finite_columns() -> None:
    df = pl.DataFrame(
        {"a": [None] * 30, "f": [float("nan"), float("inf"), None] * 10},
        schema={"a": pl.Null, "f": pl.Float64},
    )
    s = infer_schema(df)
    assert s["properties"]["a"] == {"type": "null", "x-execctx-nulls": 30}
    assert s["properties"]["f"]["type"] == ["null", "number"]
    assert s["properties"]["f"]["x-execctx-nulls"] == 30
    assert_contract(s, frame_rows(df))


def test_mixed_types_in_one_column_of_rows() -> None:
    values: list[Any] = [1, "a", 2.5, None, True, [1, "x"], {"k": [None]}, b"\x00"]
    rows = [{"v": v} for v in values * 10]
    assert_contract(infer_schema(rows), rows)


def test_wide_and_long_lists() -> None:
    rows = [{"l": list(range(100_000))}, {"l": []}]
    s = infer_schema(rows)
    assert s["properties"]["l"]["x-execctx-max-items"] == 100_000
