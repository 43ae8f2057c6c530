"""Records: wire round-trips (hypothesis), decode errors that name the path, frames back."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from execctx_nb import (
    EnvelopeDecodeError,
    ExecutionScope,
    InvalidKeyError,
    InvalidTenantError,
    LineageEntry,
    StepEnvelope,
    StepMetadata,
    events,
)
from execctx_nb.errors import EnvelopeEncodeError

ids = st.from_regex(r"\A[a-zA-Z0-9_.-]{1,20}\Z").filter(lambda v: v not in {".", ".."})
hashes = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
times = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.text(max_size=20),
    st.floats(allow_nan=False, allow_infinity=False),
)


def _json_containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)


json_values = st.recursive(
    json_scalars,
    _json_containers,
    max_leaves=20,
)
metadata = st.builds(
    StepMetadata,
    row_count=st.none() | st.integers(0, 10**9),
    bytes=st.none() | st.integers(0, 10**12),
    elapsed_ms=st.none() | st.floats(0, 1e9),
    produced_at=st.none() | times,
)
lineage = st.builds(
    LineageEntry,
    step_id=ids,
    execution_id=st.none() | ids,
    attempt=st.none() | st.integers(0, 100),
    schema_hash=st.none() | hashes,
)
envelopes = st.builds(
    StepEnvelope,
    execution_id=ids,
    step_id=ids,
    attempt=st.integers(0, 1000),
    data=json_values,
    schema=st.none() | st.dictionaries(st.text(max_size=8), json_values, max_size=3),
    schema_hash=st.none() | hashes,
    schema_version=st.integers(0, 10),
    lineage=st.lists(lineage, max_size=3).map(tuple),
    metadata=metadata,
    status=st.sampled_from(["success", "failed"]),
    error=st.none() | st.text(max_size=30),
)
event_records = st.one_of(
    st.builds(
        events.StepCommitted,
        execution_id=ids,
        step_id=ids,
        attempt=st.integers(0, 9),
        ts=times,
        schema_hash=st.none() | hashes,
        row_count=st.none() | st.integers(0, 10**6),
    ),
    st.builds(
        events.StepFailed,
        execution_id=ids,
        step_id=ids,
        ts=times,
        error=st.text(max_size=30),
        retryable=st.booleans(),
    ),
    st.builds(
        events.ExecutionStatus,
        execution_id=ids,
        ts=times,
        status=st.sampled_from(["queued", "running", "succeeded", "failed", "cancelled"]),
        flow_id=st.none() | ids,
    ),
    st.builds(
        events.ExecutionLog,
        execution_id=ids,
        ts=times,
        message=st.text(max_size=30),
        level=st.sampled_from(["debug", "info", "warning", "error"]),
        step_id=st.none() | ids,
    ),
)


@given(envelopes)
def test_envelope_round_trips(env: StepEnvelope) -> None:
    wire = env.to_json()
    back = StepEnvelope.from_json(wire)
    assert back == env
    assert back.to_json() == wire  # wire -> record -> wire is byte-identical
    assert set(json.loads(wire)) >= {
        "executionId",
        "stepId",
        "attempt",
        "data",
        "schema",
        "schemaHash",
        "schemaVersion",
        "lineage",
        "metadata",
        "status",
    }


@given(event_records)
def test_events_round_trip_as_a_tagged_union(event: events.Event) -> None:
    wire = event.to_json()
    back = events.decode_event(wire)
    assert type(back) is type(event)
    assert back == event
    assert json.loads(wire)["kind"] == event.kind
    assert events.encode_event(back) == wire
    assert events.event_from_dict(json.loads(wire)) == event


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        (b"{", "Malformed JSON"),
        (b"[]", "Expected `object`, got `array`"),
        (b'{"stepId":"s"}', "missing required field `executionId`"),
        (b'{"executionId":"e","stepId":"s","attempt":-1}', "at `$.attempt`"),
        (b'{"executionId":"e","stepId":"s","attempt":9007199254740992}', "at `$.attempt`"),
        (
            b'{"executionId":"e","stepId":"s","metadata":{"rowCount":"x"}}',
            "at `$.metadata.rowCount`",
        ),
        (b'{"executionId":"e","stepId":"s","lineage":[{"stepId":1}]}', "at `$.lineage[0].stepId`"),
        (b'{"executionId":"e","stepId":"s","schemaHash":"abc"}', "at `$.schemaHash`"),
        (b'{"executionId":"e","stepId":"s","status":"done"}', "at `$.status`"),
        (b'{"executionId":"e:1","stepId":"s"}', "envelope.executionId"),
    ],
)
def test_bad_envelopes_name_the_path(doc: bytes, fragment: str) -> None:
    with pytest.raises(EnvelopeDecodeError) as info:
        StepEnvelope.from_json(doc, where="t:o:exec:e:steps:s")
    assert fragment in str(info.value)
    assert "t:o:exec:e:steps:s" in str(info.value)


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        (b'{"kind":"nope","executionId":"e"}', "at `$.kind`"),
        (b'{"executionId":"e"}', "missing required field `kind`"),
        (
            b'{"kind":"step.failed","executionId":"e","stepId":"s"}',
            "missing required field `error`",
        ),
        (b'{"kind":"execution.status","executionId":"e","status":"?"}', "at `$.status`"),
    ],
)
def test_bad_events_name_the_path(doc: bytes, fragment: str) -> None:
    with pytest.raises(EnvelopeDecodeError, match="execution event") as info:
        events.decode_event(doc)
    assert fragment in str(info.value)


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    doc = b'{"executionId":"e","stepId":"s","futureField":1}'
    assert StepEnvelope.from_json(doc).step_id == "s"


def test_scope_validates_both_parts() -> None:
    with pytest.raises(InvalidTenantError, match=r"scope\.tenant_id"):
        ExecutionScope("bad tenant", "run")
    with pytest.raises(InvalidKeyError, match=r"scope\.execution_id"):
        ExecutionScope("org", "run/../x")


ROWS: list[dict[str, Any]] = [
    {"id": 1, "name": "a", "tags": ["x"], "nested": {"v": 1.5}},
    {"id": 2, "name": None, "tags": [], "nested": {"v": None}},
]


@pytest.mark.parametrize(
    "data",
    [ROWS, pa.Table.from_pylist(ROWS), pl.DataFrame(ROWS)],
    ids=["rows", "arrow", "polars"],
)
def test_frames_come_back(data: Any) -> None:
    env = StepEnvelope(execution_id="e", step_id="s", data=data)
    frame = env.to_polars()
    assert frame.to_dicts() == ROWS
    assert env.to_arrow().to_pylist() == ROWS
    # Frames travel as JSON rows on the wire, and read back as the same rows.
    assert StepEnvelope.from_json(env.to_json()).to_polars().to_dicts() == ROWS


def test_rows_with_late_keys_keep_every_column() -> None:
    rows = [{"a": i} for i in range(150)] + [{"a": 0, "late": "x"}]
    frame = StepEnvelope(execution_id="e", step_id="s", data=rows).to_polars()
    assert frame.columns == ["a", "late"]
    assert frame["late"].to_list()[-1] == "x"


def test_cold_data_without_the_store_says_what_to_do() -> None:
    from execctx_nb import DataRef

    ref = DataRef(uri="file:///tmp/x.parquet", bytes=1, sha256="0" * 64)
    env = StepEnvelope(execution_id="e", step_id="s", data_ref=ref)
    with pytest.raises(EnvelopeDecodeError, match=r"cold tier.*store\.get_step"):
        env.to_polars()


def test_arrow_maps_travel_as_objects_matching_their_schema() -> None:
    import jsonschema

    from execctx_nb import infer_schema

    table = pa.table(
        {"m": pa.array([[("a", 1)], [("b", 2), ("c", 3)]], pa.map_(pa.string(), pa.int64()))}
    )
    env = StepEnvelope(execution_id="e", step_id="s", data=table)
    rows = json.loads(env.to_json())["data"]
    assert rows == [{"m": {"a": 1}}, {"m": {"b": 2, "c": 3}}]
    schema = infer_schema(table)
    for row in rows:  # the schema describes one row
        jsonschema.validate(row, schema)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ([{"a": decimal.Decimal("NaN")}], "Decimal"),
        ([{"a": decimal.Decimal("-Infinity")}], "Decimal"),
        ([{"a": object()}], "object"),
        ([{"a": {1, (2, object())}}], "object"),
    ],
)
def test_data_json_cannot_hold_raises_envelope_encode_error(data: Any, says: str) -> None:
    env = StepEnvelope(execution_id="run-1", step_id="clean", data=data)
    with pytest.raises(EnvelopeEncodeError, match=r"at `envelope\.data`") as info:
        env.to_json()
    assert says in str(info.value) and "'clean'" in str(info.value)


def test_data_nested_past_the_encoder_limit_raises_envelope_encode_error() -> None:
    deep: Any = None
    for _ in range(10_000):
        deep = [deep]
    env = StepEnvelope(execution_id="run-1", step_id="clean", data=deep)
    with pytest.raises(EnvelopeEncodeError, match="nested too deeply"):
        env.to_json()


def test_strings_that_look_non_finite_still_encode() -> None:
    env = StepEnvelope(
        execution_id="run-1",
        step_id="clean",
        data=[{"a": "NaN", "b": "-Infinity", "c": float("nan")}],
    )
    assert StepEnvelope.from_json(env.to_json()).data == [{"a": "NaN", "b": "-Infinity", "c": None}]


def _deep_envelope(levels: int) -> bytes:
    return b'{"executionId":"r","stepId":"s","data":' + b"[" * levels + b"]" * levels + b"}"


@pytest.mark.parametrize(
    "decode",
    [
        lambda b: StepEnvelope.from_json(b, where="t:x:exec:r:step:s"),
        lambda b: events.decode_event(
            b'{"kind":"execution.log","executionId":"r","fields":'
            + b"[" * 100_000
            + b"]" * 100_000
            + b"}",
            where="t:x:exec:r:step:s",
        ),
    ],
)
def test_hostile_nesting_raises_decode_error_not_recursion_error(decode: Any) -> None:
    with pytest.raises(EnvelopeDecodeError, match=r"at key .t:x:exec:r:step:s.*nested too deeply"):
        decode(_deep_envelope(100_000))


def test_text_with_lone_surrogates_raises_decode_error() -> None:
    with pytest.raises(EnvelopeDecodeError, match=r"at key 'k'.*surrogate"):
        StepEnvelope.from_json('{"executionId":"r\ud800"}', where="k")
    with pytest.raises(EnvelopeDecodeError, match="surrogate"):
        events.decode_event('{"kind":"\udfff"}')


def test_frames_arrow_cannot_hold_raise_a_named_error() -> None:
    frame = pl.DataFrame({"a": pl.Series([2**100, None], dtype=pl.Int128)})
    env = StepEnvelope.from_frame(frame, execution_id="run-1", step_id="clean")
    back = StepEnvelope.from_json(env.to_json())
    assert back.to_polars()["a"].to_list() == [2**100, None]
    for e in (env, back):
        with pytest.raises(
            EnvelopeEncodeError, match=r"'clean'.* - at `envelope\.data`; .*to_polars"
        ):
            e.to_arrow()


def test_records_built_in_python_refuse_a_bad_attempt() -> None:
    with pytest.raises(InvalidKeyError, match=r"envelope\.attempt"):
        StepEnvelope(execution_id="e", step_id="s", attempt=-1)
    with pytest.raises(InvalidKeyError, match=r"event\.attempt"):
        events.StepCommitted(execution_id="e", step_id="s", attempt=-1)


# -- envelopes read back: data and schema stay raw JSON until first used ---------------------
FRAME_CASES: list[list[dict[str, Any]]] = [
    [{"a": 1}, {"a": 2.5}],
    [{"a": 1}, {"a": None}],
    [{"a": {"x": 1}}, {"a": {"y": "s"}}],
    [{"a": [{"x": 1}]}, {"a": [{"x": 2, "z": True}]}],
    [{"a": 2**63}],
    [{"a": 'é ]}[{ " \\ "'}],
    [{}],
    [{}, {"a": 1}],
    [{"b": 1, "a": 2}, {"a": 3, "b": 4}],
    [{"a": True}, {"a": 1}],
    [{"a": "1"}, {"a": 1}],
    [{"a": []}, {"a": [1]}],
    [{"a": [[1, 2], [3]]}],
    [{"a": [1, "x"]}],
    [{"a": {}}],
    [{"": 1, "a ": 2}],
]


@pytest.mark.parametrize("rows", FRAME_CASES, ids=[str(i) for i in range(len(FRAME_CASES))])
def test_rows_read_from_raw_json_give_the_same_frame_as_python_rows(
    rows: list[dict[str, Any]],
) -> None:
    eager = StepEnvelope(execution_id="e", step_id="s", data=rows)
    stored = StepEnvelope.from_json(eager.to_json())
    fast, slow = stored.to_polars(), eager.to_polars()
    assert fast.schema == slow.schema and fast.equals(slow)
    assert stored.data == rows  # the raw path left data raw; it still decodes on use


@pytest.mark.parametrize("levels", [31, 32, 33, 40])
def test_raw_rows_are_refused_at_the_same_depth_as_python_rows(levels: int) -> None:
    leaf: Any = 1
    for _ in range(levels - 1):
        leaf = {"k": leaf}
    rows = [{"col": leaf}, {"col": leaf}]  # each row is one more level
    eager = StepEnvelope(execution_id="e", step_id="s", data=rows)
    stored = StepEnvelope.from_json(eager.to_json())
    if levels > 32:  # the row is level 1, its column holds levels - 1 more
        for env in (eager, stored):
            with pytest.raises(EnvelopeDecodeError, match=r"more than 32 levels deep - at `data\["):
                env.to_polars()
    else:
        assert stored.to_polars().equals(eager.to_polars())


def test_an_envelope_read_back_equals_the_one_written_and_re_encodes_to_the_same_bytes() -> None:
    import pickle

    env = StepEnvelope.from_frame(ROWS, execution_id="e", step_id="s", lineage=["up"])
    wire = env.to_json()
    back = StepEnvelope.from_json(wire)
    assert back == env and env == back
    assert (back != env) is False and (env != back) is False
    assert back.to_json() == wire
    assert repr(back) == repr(env) and repr(back).startswith("StepEnvelope(")
    assert pickle.loads(pickle.dumps(back)) == env
    assert back.data == ROWS and back.schema == env.schema
    assert isinstance(back, StepEnvelope) and type(back.eager()) is StepEnvelope
    other = StepEnvelope.from_json(wire.replace(b'"name":"a"', b'"name":"b"'))
    assert other != env


@pytest.mark.parametrize(
    ("schema", "got"), [(b"[1]", "array"), (b'"x"', "str"), (b"5", "int"), (b"true", "bool")]
)
def test_a_schema_that_is_not_an_object_is_refused_when_read(schema: bytes, got: str) -> None:
    doc = b'{"executionId":"e","stepId":"s","schema":' + schema + b"}"
    with pytest.raises(EnvelopeDecodeError, match=rf"got `{got}` - at `\$\.schema`"):
        StepEnvelope.from_json(doc, where="t:x:exec:e:step:s")


def test_malformed_data_is_refused_when_read_not_when_used() -> None:
    doc = b'{"executionId":"e","stepId":"s","data":[{"a":1},]}'
    with pytest.raises(EnvelopeDecodeError, match="Malformed JSON"):
        StepEnvelope.from_json(doc)
