"""Hypothesis: nested JSON data gives sound schemas with order-independent hashes."""

from __future__ import annotations

import os
import random
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from execctx_nb import infer_schema, merge_schemas, schema_hash
from tests.inference.contract import assert_contract

KEYS = st.sampled_from(["a", "b", "c", "id", "name", "tags", "é", "x-y"])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(
        [
            "2024-01-01",
            "2024-01-01T00:00:00Z",
            "a@b.io",
            "10.0.0.1",
            "https://x.io/p",
            "00000000-0000-0000-0000-000000000001",
            "12",
            "ok",
            "failed",
        ]
    )
    | st.text(max_size=8)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=20,
)
ROWS = st.lists(st.dictionaries(KEYS, JSON, max_size=6), max_size=25)
# EXECCTX_HYPOTHESIS_EXAMPLES=1000 for a longer hunt; 60 keeps the suite fast
FAST = settings(
    max_examples=int(os.environ.get("EXECCTX_HYPOTHESIS_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def shuffled(rows: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = [dict(sorted(r.items(), key=lambda kv: rng.random())) for r in rows]
    rng.shuffle(out)
    return out


@FAST
@given(ROWS, st.integers(1, 6))
def test_every_row_validates_at_any_depth(rows: list[dict[str, Any]], depth: int) -> None:
    assert_contract(infer_schema(rows, max_depth=depth), rows)


@FAST
@given(ROWS, st.integers(0, 2**32))
def test_hash_ignores_key_and_row_order(rows: list[dict[str, Any]], seed: int) -> None:
    assert schema_hash(infer_schema(rows)) == schema_hash(infer_schema(shuffled(rows, seed)))


@FAST
@given(ROWS, st.integers(0, 25))
def test_piecewise_inference_merges_soundly(rows: list[dict[str, Any]], cut: int) -> None:
    left, right = infer_schema(rows[:cut]), infer_schema(rows[cut:])
    merged = merge_schemas(left, right)
    assert_contract(merged, rows)
    assert schema_hash(merged) == schema_hash(merge_schemas(right, left))


RECORD = st.fixed_dictionaries(
    {
        "i": st.none() | st.integers(-1000, 1000),
        "f": st.none() | st.floats(allow_nan=True),
        "s": st.none() | st.sampled_from(["a", "b", "2024-01-01", "x@y.io"]),
        "l": st.none() | st.lists(st.integers(0, 9), max_size=3),
        "st": st.none() | st.fixed_dictionaries({"k": st.none() | st.text(max_size=3)}),
        "m": st.none()
        | st.dictionaries(st.sampled_from(["p", "q"]), st.none() | st.booleans(), max_size=2),
    }
)


@FAST
@given(st.lists(RECORD, max_size=30), st.integers(0, 2**32))
def test_arrow_tables_are_sound_and_order_free(rows: list[dict[str, Any]], seed: int) -> None:
    schema = pa.schema(
        [
            ("i", pa.int64()),
            ("f", pa.float64()),
            ("s", pa.string()),
            ("l", pa.list_(pa.int64())),
            ("st", pa.struct([("k", pa.string())])),
            ("m", pa.map_(pa.string(), pa.bool_())),
        ]
    )
    table = pa.Table.from_pylist(
        [{**r, "m": None if r["m"] is None else list(r["m"].items())} for r in rows], schema=schema
    )
    s = infer_schema(table)
    assert_contract(s, rows)
    cut = seed % (len(rows) + 1)
    assert_contract(infer_schema(table.slice(cut)), rows[cut:])  # slices read only their rows
    other = pa.Table.from_pylist(shuffled(rows, seed), schema=schema)
    assert schema_hash(infer_schema(other)) == schema_hash(s)
