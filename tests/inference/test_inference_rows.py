"""Plain rows (lists of dicts, documents, iterators) to schema: types, nulls, enums, formats."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import pytest

from execctx_nb import infer_schema
from execctx_nb.errors import CyclicDataError, SchemaInferenceError
from tests.inference.contract import assert_contract


def infer(rows: Any, **kw: Any) -> dict[str, Any]:
    schema = infer_schema(rows, **kw)
    assert_contract(schema, rows if isinstance(rows, list) else [rows])
    return schema


def prop(schema: dict[str, Any], *path: str) -> dict[str, Any]:
    for key in path:
        schema = schema["items"] if key == "[]" else schema["properties"][key]
    return schema


def test_a_field_that_holds_null_accepts_null() -> None:
    # The reference README marks such a field {type: string}, rejecting its own row.
    s = infer([{"name": "a"}, {"name": None}])
    assert prop(s, "name")["type"] == ["null", "string"]
    assert prop(s, "name")["x-execctx-nulls"] == 1


def test_required_lists_keys_present_in_every_row() -> None:
    s = infer([{"a": 1, "b": 2}, {"a": 3}, {"a": None, "c": [1]}])
    assert s["required"] == ["a"]
    assert sorted(s["properties"]) == ["a", "b", "c"]


def test_integer_and_float_merge_to_number_and_bool_is_not_integer() -> None:
    s = infer([{"x": 1, "flag": True}, {"x": 2.5, "flag": False}])
    assert prop(s, "x")["type"] == "number"
    assert prop(s, "flag")["type"] == "boolean"


def test_mixed_types_are_one_type_list_with_each_familys_keywords() -> None:
    rows = [{"v": 1}, {"v": "2024-01-01"}, {"v": {"k": 1}}, {"v": [1]}, {"v": None}, {"v": True}]
    v = prop(infer(rows), "v")
    assert v["type"] == ["array", "boolean", "integer", "null", "object", "string"]
    assert v["format"] == "date" and v["properties"] == {"k": v["properties"]["k"]}
    assert "anyOf" not in v and "enum" not in v


def test_cardinality_counts_distinct_non_null_values() -> None:
    s = infer([{"x": i % 3, "y": None} for i in range(30)])
    assert prop(s, "x")["x-execctx-cardinality"] == 3
    assert prop(s, "y") == {"type": "null", "x-execctx-nulls": 30}


class TestEnums:
    def test_small_repeated_domain_becomes_enum(self) -> None:
        s = infer([{"status": ["ok", "failed", "retry"][i % 3]} for i in range(120)])
        assert prop(s, "status")["enum"] == ["failed", "ok", "retry"]

    def test_nullable_enum_lists_null(self) -> None:
        s = infer([{"s": None if i % 5 == 0 else ["a", "b"][i % 2]} for i in range(150)])
        assert prop(s, "s")["enum"] == ["a", "b", None]

    def test_never_from_all_distinct_values(self) -> None:
        s = infer([{"name": f"user{i}"} for i in range(40)])
        assert "enum" not in prop(s, "name")

    def test_not_from_too_few_values(self) -> None:
        assert "enum" not in prop(infer([{"s": "a"}, {"s": "a"}, {"s": "b"}]), "s")

    def test_not_beyond_the_square_root_of_the_count(self) -> None:
        # sqrt(100) = 10 is the bound: 12 distinct values fail it, 10 pass
        rows = [{"s": f"c{i % 12}"} for i in range(100)]
        assert "enum" not in prop(infer(rows), "s")
        rows = [{"s": f"c{i % 10}"} for i in range(100)]
        assert len(prop(infer(rows), "s")["enum"]) == 10

    def test_not_for_numeric_looking_strings(self) -> None:
        rows = [{"code": ["001", "002", "003"][i % 3]} for i in range(60)]
        assert "enum" not in prop(infer(rows), "code")

    def test_not_when_a_format_was_found(self) -> None:
        rows = [{"d": ["2024-01-01", "2024-01-02"][i % 2]} for i in range(60)]
        d = prop(infer(rows), "d")
        assert d["format"] == "date" and "enum" not in d

    def test_not_from_a_sample_too_small_to_show_a_closed_domain(self) -> None:
        # 8 x "iana" + 4 x "apache": every value repeats, but 12 values cannot rule out a
        # third one ("nginx" shows up later); the same shape 10x larger can
        rows = [{"s": "iana"}] * 8 + [{"s": "apache"}] * 4
        assert "enum" not in prop(infer(rows), "s")
        assert prop(infer(rows * 10), "s")["enum"] == ["apache", "iana"]

    def test_not_when_values_were_seen_once_or_twice(self) -> None:
        # as in Good-Turing estimates, values seen once or twice are the sign of a tail
        common = [{"s": ["a", "b", "c"][i % 3]} for i in range(150)]
        assert "enum" not in prop(infer([*common, {"s": "rare"}]), "s")
        assert "enum" not in prop(infer(common + [{"s": "rare"}] * 2), "s")
        assert prop(infer(common + [{"s": "rare"}] * 3), "s")["enum"] == ["a", "b", "c", "rare"]

    def test_not_for_free_text_that_repeats(self) -> None:
        rows = [{"s": "Alabama"}] * 6 + [{"s": "alabama"}] * 3 + [{"s": "Alabamisch"}]
        assert "enum" not in prop(infer(rows * 4), "s")

    def test_enum_max_is_configurable(self) -> None:
        rows = [{"s": f"c{i % 5}"} for i in range(100)]
        assert "enum" not in prop(infer(rows, enum_max=4), "s")


@pytest.mark.parametrize(
    ("values", "fmt"),
    [
        (["2024-01-01T10:00:00Z", "2023-12-31T23:59:59.5+02:00"], "date-time"),
        (["2024-01-01", "2024-02-29"], "date"),
        (["10:00:00Z", "23:59:59.25+01:00"], "time"),
        ([str(uuid.UUID(int=i)) for i in range(1, 4)], "uuid"),
        (["a@example.com", "b.c@d.org"], "email"),
        (["10.0.0.1", "255.255.255.255"], "ipv4"),
        (["https://example.com/a?b=1", "urn:isbn:0451450523"], "uri"),
    ],
)
def test_formats_found_when_every_value_matches(values: list[str], fmt: str) -> None:
    assert prop(infer([{"v": v} for v in values]), "v")["format"] == fmt
    spoiled = [*values, "not one"]
    assert "format" not in prop(infer([{"v": v} for v in spoiled]), "v")


@pytest.mark.parametrize(
    "value", ["2024-02-30", "2024-01-01T25:00:00Z", "256.1.1.1", "01.2.3.4", "note:abc", "12:30"]
)
def test_near_misses_get_no_format(value: str) -> None:
    assert "format" not in prop(infer([{"v": value}]), "v")


def test_local_timestamps_get_a_pattern_not_date_time() -> None:
    # RFC 3339 date-time needs an offset; naive values would fail format checking
    s = infer([{"t": "2024-01-01T10:00:00"}, {"t": "2024-01-02 11:00"}])
    assert "format" not in prop(s, "t") and prop(s, "t")["pattern"].startswith("^")


def test_python_values_are_typed_as_the_wire_writes_them() -> None:
    aware = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    rows = [
        {
            "at": aware,
            "naive": dt.datetime(2024, 1, 1),
            "day": dt.date(2024, 1, 1),
            "clock": dt.time(1, 2),
            "took": dt.timedelta(seconds=3),
            "id": uuid.UUID(int=7),
            "price": decimal.Decimal("1.50"),
            "blob": b"\x00\x01",
            "pair": (1, 2),
            "tags": {"a"},
        }
    ]
    s = infer(rows)
    assert prop(s, "at")["format"] == "date-time"
    assert "pattern" in prop(s, "naive") and "pattern" in prop(s, "clock")
    assert prop(s, "day")["format"] == "date" and prop(s, "took")["format"] == "duration"
    assert prop(s, "id")["format"] == "uuid" and prop(s, "price")["type"] == "number"
    assert prop(s, "blob")["contentEncoding"] == "base64"
    assert prop(s, "pair")["type"] == "array" and prop(s, "tags")["type"] == "array"


def test_nan_and_inf_are_nullable_numbers() -> None:
    s = infer([{"x": float("nan")}, {"x": float("inf")}, {"x": 1.5}])
    x = prop(s, "x")
    assert x["type"] == ["null", "number"] and x["x-execctx-nonfinite"] == 2


def test_lists_record_observed_lengths_as_annotations() -> None:
    s = infer([{"l": []}, {"l": [1, 2, 3]}, {"l": [{"a": 1}]}])
    lst = prop(s, "l")
    assert (lst["x-execctx-min-items"], lst["x-execctx-max-items"]) == (0, 3)
    assert lst["items"]["type"] == ["integer", "object"]


def test_depth_limit_cuts_deeper_containers() -> None:
    doc: dict[str, Any] = {"leaf": 1}
    for _ in range(6):
        doc = {"n": doc, "x": 1}
    s = infer([doc], max_depth=3)
    cut = prop(s, "n", "n", "n")
    assert cut == {"x-execctx-cut": True}
    assert prop(s, "n", "n", "x")["type"] == "integer"


def test_single_document_and_scalars() -> None:
    assert infer({"a": [1, {"b": None}]})["properties"]["a"]["type"] == "array"
    assert infer_schema(3)["type"] == "integer"
    assert infer_schema([])["x-execctx-rows"] == 0


def test_iterators_are_sampled_deterministically_and_counted() -> None:
    def gen() -> Any:
        return ({"i": i, "tail": i >= 9_990} for i in range(10_000))

    a, b = infer_schema(gen(), sample_size=50), infer_schema(gen(), sample_size=50)
    assert a == b and a["x-execctx-rows"] == 10_000 and a["x-execctx-sampled"] == 50


def test_sampling_spreads_over_the_whole_list() -> None:
    rows: list[dict[str, Any]] = [{"a": 1} for _ in range(10_000)]
    rows[-1] = {"a": "late"}
    s = infer_schema(rows, sample_size=20)
    assert prop(s, "a")["type"] == ["integer", "string"]
    assert (s["x-execctx-sampled"], s["x-execctx-rows"]) == (20, 10_000)


def test_non_string_keys_are_written_as_strings() -> None:
    assert sorted(infer([{1: "a", "2": "b"}])["properties"]) == ["1", "2"]


def test_cyclic_objects_raise_a_clear_error() -> None:
    a: dict[str, Any] = {"x": 1}
    a["self"] = a
    with pytest.raises(CyclicDataError, match="contains itself"):
        infer_schema([a])
    lst: list[Any] = []
    lst.append(lst)
    with pytest.raises(CyclicDataError):
        infer_schema([{"l": lst}])


def test_shared_references_are_not_cycles() -> None:
    shared: dict[str, Any] = {"k": 1}
    deep: dict[str, Any] = {"s": shared}
    for _ in range(12):
        deep = {"d": deep, "s": shared}
    infer([deep, deep])


def test_unsupported_values_name_the_path() -> None:
    with pytest.raises(SchemaInferenceError, match=r"got `object` - at `/a/\[\]`"):
        infer_schema([{"a": [object()]}])


@pytest.mark.parametrize(
    "kw", [{"sample_size": 0}, {"max_depth": -1}, {"max_depth": 10_000}, {"enum_max": "3"}]
)
def test_invalid_options_are_named(kw: dict[str, Any]) -> None:
    with pytest.raises(SchemaInferenceError, match=next(iter(kw))):
        infer_schema([{"a": 1}], **kw)
