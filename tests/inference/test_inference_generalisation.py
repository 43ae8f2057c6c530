"""Schemas that generalise: inferred from a training part, checked on held-out rows of the
same generated dataset, side by side with genson (tests/inference/corpus.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest
from genson import SchemaBuilder
from jsonschema import Draft202012Validator

from execctx_nb import infer_schema, merge_schemas, schema_hash

sys.path.insert(0, str(Path(__file__).parent))
from corpus import DATASETS, leaves_constrained, split

CHECKER = Draft202012Validator.FORMAT_CHECKER


def rejected(schema: dict, rows: list) -> float:
    validator = Draft202012Validator(schema, format_checker=CHECKER)
    return sum(not validator.is_valid(r) for r in rows) / len(rows)


def genson(rows: list) -> dict:
    builder = SchemaBuilder()
    for row in rows:
        builder.add_object(row)
    return builder.to_schema()


@pytest.mark.parametrize("name", list(DATASETS))
def test_held_out_rows_are_rejected_no_more_than_by_genson(name: str) -> None:
    train, held_out = split(name)
    ours, theirs = infer_schema(train), genson(train)
    assert rejected(ours, held_out) <= rejected(theirs, held_out), name
    assert rejected(ours, train) == 0  # the data fits its own schema


def test_leaves_stay_more_constrained_than_genson_over_the_corpus() -> None:
    ours = theirs = 0
    for name in DATASETS:
        train, _ = split(name)
        ours += leaves_constrained(infer_schema(train))[0]
        theirs += leaves_constrained(genson(train))[0]
    assert ours > theirs


def test_a_closed_domain_still_gets_its_enum() -> None:
    train, _ = split("closed domain")
    assert infer_schema(train)["properties"]["status"]["enum"] == [
        "failed",
        "ok",
        "retry",
        "skipped",
    ]


def test_maps_keyed_by_codes_are_maps() -> None:
    train, held_out = split("maps keyed by codes")
    node = infer_schema(train)["properties"]["skin_variations"]
    assert "properties" not in node and "required" not in node
    assert node["additionalProperties"]["properties"]["image"]["type"] == "string"
    assert node["propertyNames"]["pattern"].startswith("^[0-9A-Fa-f]")
    assert rejected(infer_schema(train), held_out) == 0
    # merge-safe: a map merged with a record of the same position accepts both
    record = infer_schema([{"skin_variations": {"1F3FB-1F3FC": {"image": "x"}}}])
    merged = merge_schemas(infer_schema(train), record)
    assert rejected(merged, [*held_out, {"skin_variations": {"1F3FB-1F3FC": {"image": "x"}}}]) == 0


def test_a_null_past_the_sample_makes_a_frame_column_nullable() -> None:
    frame = pl.DataFrame({"n": [None if i == 501 else i for i in range(1000)]})
    assert infer_schema(frame)["properties"]["n"]["type"] == ["integer", "null"]


@pytest.mark.parametrize("name", list(DATASETS))
def test_reordering_the_rows_keeps_the_hash(name: str) -> None:
    train, _ = split(name)
    assert schema_hash(infer_schema(train[::-1])) == schema_hash(infer_schema(train)), name


def test_frames_and_rows_agree_on_all_null_columns() -> None:
    rows = [{"a": 1, "b": None}, {"a": 2, "b": None}]
    assert schema_hash(infer_schema(rows)) == schema_hash(infer_schema(pl.DataFrame(rows)))
