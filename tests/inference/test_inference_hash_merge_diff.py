"""schema_hash, merge_schemas and schema_diff."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from execctx_nb import SchemaDiff, infer_schema, merge_schemas, schema_diff, schema_hash
from execctx_nb.errors import SchemaInferenceError
from execctx_nb.inference import canonical_bytes
from tests.inference.contract import assert_contract

ROWS = [
    {
        "id": i,
        "kind": "abc"[i % 3],
        "score": None if i % 4 == 0 else i / 2,
        "user": {"name": f"u{i}", "tags": ["x"] * (i % 2)},
    }
    for i in range(30)
]


class TestHash:
    def test_sixty_four_lowercase_hex(self) -> None:
        h = schema_hash(infer_schema(ROWS))
        assert len(h) == 64 and h == h.lower() and int(h, 16) >= 0

    def test_ignores_key_order_in_rows_and_row_order(self) -> None:
        reordered = [dict(reversed(list(r.items()))) for r in reversed(ROWS)]
        assert schema_hash(infer_schema(reordered)) == schema_hash(infer_schema(ROWS))

    def test_ignores_annotations_but_not_the_contract(self) -> None:
        s = infer_schema(ROWS)
        more = infer_schema(ROWS + ROWS[:5])  # more rows, other counts, same contract
        assert more["x-execctx-rows"] != s["x-execctx-rows"]
        assert schema_hash(more) == schema_hash(s)
        changed = infer_schema([*ROWS, {**ROWS[0], "id": "x"}])
        assert schema_hash(changed) != schema_hash(s)

    def test_sorts_set_like_arrays_and_keeps_prefix_items(self) -> None:
        a = {"type": ["string", "null"], "enum": ["b", None, "a"], "required": ["y", "x"]}
        b = {"required": ["x", "y"], "enum": [None, "a", "b"], "type": ["null", "string"]}
        assert schema_hash(a) == schema_hash(b)
        p = {"prefixItems": [{"type": "string"}, {"type": "integer"}]}
        q = {"prefixItems": [{"type": "integer"}, {"type": "string"}]}
        assert schema_hash(p) != schema_hash(q)

    def test_rfc8785_canonical_numbers_and_property_named_like_annotations(self) -> None:
        assert canonical_bytes({"maxItems": 1.0}) == b'{"maxItems":1}'
        kept = {"properties": {"x-execctx-id": {"type": "string"}}}
        assert b"x-execctx-id" in canonical_bytes(kept)
        assert schema_hash({"é": 1, "z": 2}) == schema_hash({"z": 2, "é": 1})

    def test_stable_across_processes(self) -> None:
        schema = infer_schema(ROWS)
        code = (
            "import json,sys; from execctx_nb import schema_hash; "
            "print(schema_hash(json.loads(sys.stdin.read())))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(schema),
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": "123"},
        )
        assert out.stdout.strip() == schema_hash(schema)

    def test_inference_itself_is_stable_across_processes(self) -> None:
        # Inference collects values in sets; string hashing is salted per process, so
        # only a fresh interpreter per seed shows whether that order leaks into the output.
        code = (
            "import json; import pyarrow as pa; "
            "from execctx_nb import infer_schema, schema_hash; "
            "rows = [{'a': 'pqrstuvw'[i % 8], 'b': [1, 'x', None, {'q': i}][i % 4], "
            "'c': {'z': 'k', 'y': None}} for i in range(200)]; "
            "s = infer_schema(rows); "
            "t = infer_schema(pa.Table.from_pylist([{'a': r['a'], 'c': r['c']} for r in rows])); "
            "print(json.dumps([s, t, schema_hash(s), schema_hash(t)]))"
        )
        outs = {
            subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                check=True,
                env={"PYTHONHASHSEED": seed},
            ).stdout
            for seed in ("1", "2", "3")
        }
        assert len(outs) == 1
        s, t, hs, ht = json.loads(outs.pop())
        assert s["properties"]["a"]["enum"] == list("pqrstuvw") and hs == schema_hash(s)
        assert ht == schema_hash(t)

    def test_non_json_values_raise_a_named_error(self) -> None:
        with pytest.raises(SchemaInferenceError, match="schema_hash"):
            schema_hash({"const": float("nan")})
        with pytest.raises(SchemaInferenceError, match="expected a dict"):
            schema_hash([])  # type: ignore[arg-type]


class TestMerge:
    def test_parts_merge_into_a_schema_that_accepts_every_part(self) -> None:
        parts = [ROWS[:10], [{"id": "s", "extra": True}], ROWS[10:]]
        merged = merge_schemas(*(infer_schema(p) for p in parts))
        assert_contract(merged, [r for p in parts for r in p])
        assert merged["required"] == ["id"]
        assert merged["properties"]["id"]["type"] == ["integer", "string"]
        assert merged["x-execctx-rows"] == 31 and merged["x-execctx-sampled"] == 31

    def test_commutative_and_associative(self) -> None:
        a, b, c = (infer_schema(p) for p in (ROWS[:7], ROWS[7:20], [{"id": None, "q": [1]}]))
        h = schema_hash(merge_schemas(a, b, c))
        assert schema_hash(merge_schemas(c, b, a)) == h
        assert merge_schemas(merge_schemas(a, b), c) == merge_schemas(a, merge_schemas(b, c))

    def test_enums_union_while_small_and_drop_when_any_part_has_none(self) -> None:
        a = infer_schema([{"k": "ab"[i % 2]} for i in range(120)])
        b = infer_schema([{"k": "bc"[i % 2]} for i in range(120)])
        assert merge_schemas(a, b)["properties"]["k"]["enum"] == ["a", "b", "c"]
        free = infer_schema([{"k": f"v{i}"} for i in range(20)])
        assert "enum" not in merge_schemas(a, free)["properties"]["k"]

    def test_formats_survive_only_when_all_parts_agree(self) -> None:
        a = infer_schema([{"d": "2024-01-01"}])
        b = infer_schema([{"d": "2024-01-01T00:00:00Z"}])
        assert merge_schemas(a, a)["properties"]["d"]["format"] == "date"
        assert "format" not in merge_schemas(a, b)["properties"]["d"]

    def test_counts_add_up_and_cardinality_is_a_lower_bound(self) -> None:
        a = infer_schema([{"x": None}, {"x": 1}])
        b = infer_schema([{"x": None}, {"x": 2}, {"x": 3}])
        x = merge_schemas(a, b)["properties"]["x"]
        assert x["x-execctx-nulls"] == 2 and x["x-execctx-cardinality"] == 2

    def test_cut_and_maps_stay_permissive(self) -> None:
        deep = infer_schema([{"a": {"b": {"c": 1}}}], max_depth=2)
        other = infer_schema([{"a": {"b": 5}}])
        merged = merge_schemas(deep, other)
        b = merged["properties"]["a"]["properties"]["b"]
        assert b["x-execctx-cut"] is True and "type" not in b
        import pyarrow as pa

        maps = pa.table({"m": pa.array([[("k", 1)]], pa.map_(pa.string(), pa.int64()))})
        as_map = infer_schema(maps)
        assert "additionalProperties" in as_map["properties"]["m"]
        as_record = merge_schemas(as_map, infer_schema([{"m": {"k": "v"}}]))
        assert "additionalProperties" not in as_record["properties"]["m"]
        assert_contract(as_record, [{"m": {"k": 1}}, {"m": {"k": "v"}}])

    def test_rejects_non_schemas(self) -> None:
        with pytest.raises(SchemaInferenceError, match="at least one"):
            merge_schemas()
        with pytest.raises(SchemaInferenceError, match=r"\[1\]"):
            merge_schemas({}, "nope")  # type: ignore[arg-type]


def diff(old_rows: list[Any], new_rows: list[Any]) -> SchemaDiff:
    return schema_diff(infer_schema(old_rows), infer_schema(new_rows))


class TestDiff:
    def test_no_change(self) -> None:
        d = diff(ROWS, list(reversed(ROWS)))
        assert not d and not d.breaking and str(d) == "no schema change"

    def test_added_fields_do_not_break(self) -> None:
        d = diff([{"a": 1}], [{"a": 1, "b": {"c": 1}}])
        assert d.added == ("/b",) and not d.breaking and "+ /b" in str(d)

    def test_removed_retyped_nullable_optional_break(self) -> None:
        d = diff(
            [{"a": 1, "b": "x", "c": 1, "d": 1}, {"a": 2, "b": "y", "c": 2, "d": 2}],
            [{"b": 1, "c": None, "d": 1}, {"b": 2, "c": 3}],
        )
        assert d.removed == ("/a",) and d.retyped == ("/b",)
        assert d.newly_nullable == ("/c",) and d.newly_optional == ("/d",) and d.breaking
        text = str(d)
        assert text.startswith("breaking") and "~ /b: string -> integer" in text

    def test_widening_breaks_narrowing_does_not(self) -> None:
        assert diff([{"n": 1}], [{"n": 1.5}]).breaking
        narrowed = diff([{"n": 1.5}], [{"n": 1}])
        assert narrowed.retyped == ("/n",) and not narrowed.breaking

    def test_nested_paths_and_list_items(self) -> None:
        d = diff([{"u": {"tags": [1]}}], [{"u": {"tags": ["x"]}}])
        assert d.retyped == ("/u/tags/[]",)

    def test_enum_and_format_relaxed_are_breaking(self) -> None:
        old = infer_schema([{"s": "ab"[i % 2]} for i in range(120)])
        new = infer_schema([{"s": "abc"[i % 3]} for i in range(120)])
        d = schema_diff(old, new)
        assert d.retyped == ("/s",) and d.breaking and "enum gained ['c']" in str(d)
        d2 = diff([{"d": "2024-01-01"}], [{"d": "soon"}])
        assert d2.breaking and "format" in str(d2)

    def test_is_a_frozen_record(self) -> None:
        d = diff([{"a": 1}], [{}])
        with pytest.raises(AttributeError):
            d.breaking = False  # type: ignore[misc]
