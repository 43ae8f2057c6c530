"""The cold tier: large or dtype-rich step data as Parquet, read back transparently and exactly."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from polars.testing import assert_frame_equal
from polars.testing.parametric import dataframes
from twins import APIS, store_for

import execctx_nb as ec
from execctx_nb import keys
from execctx_nb._store import _cold
from execctx_nb.errors import ColdTierError, IdempotencyConflictError

HASH = "b" * 64

# The contract table runs on one node and on a real 3-primary cluster.
pytestmark = pytest.mark.both_topologies


def envelope(step: str, data: object, *, attempt: int = 0) -> ec.StepEnvelope:
    return ec.StepEnvelope(
        execution_id="run-1", step_id=step, attempt=attempt, data=data, schema={}, schema_hash=HASH
    )


def cold_path(scope: ec.ExecutionScope, env: ec.StepEnvelope) -> str:
    """The object path of a stored cold envelope (content-addressed by its sha256)."""
    assert env.data_ref is not None
    return keys.cold_step_data_path(
        scope.tenant_id, env.execution_id, env.step_id, env.attempt, env.data_ref.sha256
    )


@pytest.fixture(params=APIS)
def store(request: pytest.FixtureRequest, valkey_url: str, tmp_path: Path) -> Iterator[Any]:
    """The sync store, then its async twin (driven through tests/twins.py): one table, both APIs."""
    with store_for(
        request.param, valkey_url, cold_store=tmp_path / "cold", inline_limit_bytes=4096
    ) as s:
        yield s


@pytest.fixture
def scope(tenant: str) -> ec.ExecutionScope:
    return ec.ExecutionScope(tenant, "run-1")


def rich_polars() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "i8": pl.Series([1, None, 3], dtype=pl.Int8),
            "u64": pl.Series([1, 2, 2**63], dtype=pl.UInt64),
            "cat": pl.Series(["a", "b", "a"], dtype=pl.Categorical),
            "enum": pl.Series(["x", "y", "x"], dtype=pl.Enum(["x", "y", "z"])),
            "ts_tz": pl.Series([dt.datetime(2024, 3, 31, 1, 30)] * 3).dt.replace_time_zone(
                "Europe/Berlin"
            ),
            "ts_ns": pl.Series([dt.datetime(2024, 1, 1)] * 3, dtype=pl.Datetime("ns", "UTC")),
            "dec": pl.Series(
                [decimal.Decimal("1.23"), None, decimal.Decimal("-9.99")], dtype=pl.Decimal(10, 2)
            ),
            "lst": [[1, 2], [], None],
            "arr": pl.Series([[1, 2], [3, 4], [5, 6]], dtype=pl.Array(pl.Int16, 2)),
            "nested": [{"a": 1, "b": {"c": "x", "d": [1.5]}}, None, {"a": 2, "b": None}],
            "dur": pl.Series([dt.timedelta(days=1)] * 3),
            "date": [dt.date(2024, 1, 1)] * 3,
            "time": [dt.time(1, 2, 3)] * 3,
            "bin": [b"x", b"", None],
            "f32": pl.Series([1.5, float("nan"), None], dtype=pl.Float32),
            "null": pl.Series([None] * 3, dtype=pl.Null),
        }
    )


def rich_arrow() -> pa.Table:
    return pa.table(
        {
            "dec": pa.array([decimal.Decimal("1.500"), None], pa.decimal128(20, 3)),
            "dict": pa.array(["a", "b"]).dictionary_encode(),
            "ts": pa.array(
                [dt.datetime(2024, 1, 1), None], pa.timestamp("ms", tz="America/New_York")
            ),
            "s": pa.array(["x", "y"], pa.string()),
            "nested": pa.array([[{"a": 1}], None], pa.list_(pa.struct([("a", pa.int32())]))),
            "map": pa.array([[("k", 1)], []], pa.map_(pa.string(), pa.int64())),
            "large": pa.array([[1], [2, 3]], pa.large_list(pa.int8())),
            "strict": pa.array([1, 2], pa.int64()),
        },
        schema=None,
    ).cast(
        pa.schema(
            [
                ("dec", pa.decimal128(20, 3)),
                ("dict", pa.dictionary(pa.int32(), pa.string())),
                ("ts", pa.timestamp("ms", tz="America/New_York")),
                ("s", pa.string()),
                ("nested", pa.list_(pa.struct([("a", pa.int32())]))),
                ("map", pa.map_(pa.string(), pa.int64())),
                ("large", pa.large_list(pa.int8())),
                pa.field("strict", pa.int64(), nullable=False),
            ],
            metadata={b"owner": b"engine"},
        )
    )


def test_polars_dtypes_round_trip_exactly(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope
) -> None:
    frame = rich_polars()
    stored = store.put_step(scope, envelope("rich", frame))
    assert stored.data_ref is not None and stored.data is frame
    got = store.get_step(scope, "rich")
    assert got is not None and isinstance(got.data, pl.DataFrame)
    assert got.data.schema == frame.schema
    assert_frame_equal(got.to_polars(), frame)


def test_arrow_types_and_metadata_round_trip_exactly(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope
) -> None:
    table = rich_arrow()
    store.put_step(scope, envelope("rich", table))
    got = store.get_step(scope, "rich")
    assert got is not None and isinstance(got.data, pa.Table)
    assert got.data.schema.equals(table.schema, check_metadata=True)
    assert got.to_arrow().equals(table)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(frame=dataframes(max_cols=4, max_size=12, excluded_dtypes=[pl.Object]))
def test_any_polars_frame_round_trips_inline_or_cold(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope, frame: pl.DataFrame
) -> None:
    # Each example writes the next attempt, so examples never conflict with one another.
    attempt = len(store.client.hkeys(keys.step_attempts_key(scope.tenant_id, "run-1", "gen")))
    env = ec.StepEnvelope.from_frame(frame, execution_id="run-1", step_id="gen", attempt=attempt)
    stored = store.put_step(scope, env)
    got = store.get_step(scope, "gen", attempt=attempt)
    assert got is not None
    back = got.to_polars()
    if stored.data_ref is not None:
        assert_frame_equal(back, frame)  # Parquet keeps every dtype
    else:
        # JSON rows come back with the dtypes of their schema's types (Int8 as Int64, an
        # Array as a List): the values are the ones written.
        assert dict(back.schema) == dict(ec.schema_to_polars(env.schema or {}))
        assert_frame_equal(back, frame.cast(dict(back.schema)))


def test_small_plain_frames_stay_inline_and_keep_dtypes(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope
) -> None:
    frame = pl.DataFrame(
        {"i": [1, None, 3], "f": [0.5, 1.0, None], "s": ["a", "b", None], "b": [True, None, False]}
    )
    stored = store.put_step(scope, envelope("small", frame))
    assert stored.data_ref is None
    got = store.get_step(scope, "small")
    assert got is not None and isinstance(got.data, list)  # wire JSON rows, readable by any engine
    assert_frame_equal(got.to_polars(), frame)
    table = frame.to_arrow()
    store.put_step(scope, envelope("small-arrow", table))
    back = store.get_step(scope, "small-arrow")
    assert back is not None and back.data_ref is None and back.to_arrow().equals(table)


@pytest.mark.parametrize(
    "frame",
    [
        pl.DataFrame({"f": [1.0, float("nan")]}),  # NaN encodes as null
        pl.DataFrame({"n": [None, None]}, schema={"n": pl.Null}),  # its schema is {}
        pl.DataFrame({"c": ["a", "b"]}, schema={"c": pl.Categorical}),  # the dictionary
        pl.DataFrame(schema={"i": pl.Int64}),  # no rows: no columns in JSON
    ],
)
def test_frames_json_cannot_keep_go_cold(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope, frame: pl.DataFrame
) -> None:
    stored = store.put_step(scope, envelope("x", frame))
    assert stored.data_ref is not None
    got = store.get_step(scope, "x")
    assert got is not None
    assert_frame_equal(got.to_polars(), frame)


def test_large_rows_go_cold_and_read_back(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope
) -> None:
    rows = [{"i": i, "text": "x" * 50} for i in range(500)]
    stored = store.put_step(scope, envelope("rows", rows))
    assert stored.data_ref is not None and stored.data_ref.row_count == 500
    got = store.get_step(scope, "rows")
    assert got is not None and got.to_polars().to_dicts() == rows
    assert [e.step_id for e in store.get_execution(scope)] == ["rows"]


def test_cold_object_lives_at_the_layout_path(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope, tmp_path: Path
) -> None:
    stored = store.put_step(scope, envelope("s", rich_polars(), attempt=2))
    assert stored.data_ref is not None
    digest = stored.data_ref.sha256  # content-addressed: the object is named by its sha256
    path = tmp_path / "cold" / keys.cold_step_data_path(scope.tenant_id, "run-1", "s", 2, digest)
    assert stored.data_ref.uri == path.as_uri()
    assert path.stat().st_size == stored.data_ref.bytes
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_failed_cold_write_stores_no_envelope(
    valkey_url: str, scope: ec.ExecutionScope, tmp_path: Path
) -> None:
    (tmp_path / "t").write_text("a file where the tenant directory should go")
    with ec.create_valkey_execution_context_store(valkey_url, cold_store=tmp_path) as store:
        with pytest.raises(ColdTierError, match="Could not write"):
            store.put_step(scope, envelope("s", rich_polars()))
        assert store.get_step(scope, "s") is None  # data first, envelope second


def test_conflicting_cold_write_keeps_the_first_object(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope
) -> None:
    first = rich_polars()
    store.put_step(scope, envelope("s", first))
    store.put_step(scope, envelope("s", first))  # same write: fine
    with pytest.raises(IdempotencyConflictError):
        store.put_step(scope, envelope("s", first.with_columns(pl.col("i8") * 2)))
    got = store.get_step(scope, "s")
    assert got is not None
    assert_frame_equal(got.to_polars(), first)


def test_tampered_or_missing_object_is_reported(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope, tmp_path: Path
) -> None:
    stored = store.put_step(scope, envelope("s", rich_polars()))
    path = tmp_path / "cold" / cold_path(scope, stored)
    tampered = path.read_bytes()[:-1] + b"!"
    path.write_bytes(tampered)
    with pytest.raises(ColdTierError, match="does not match the reference") as info:
        store.get_step(scope, "s")
    # The message never echoes what the object really is (it would help forge a reference).
    assert "sha256 differs" in str(info.value)
    assert hashlib.sha256(tampered).hexdigest() not in str(info.value)
    path.unlink()
    with pytest.raises(ColdTierError, match="is missing"):
        store.get_step(scope, "s")


def test_a_reference_to_anything_but_its_own_object_is_refused_on_write(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope
) -> None:
    ref = ec.DataRef(uri="s3://elsewhere/x.parquet", bytes=1, sha256=HASH)
    with pytest.raises(ColdTierError, match="not the object of its own tenant") as info:
        store.put_step(scope, ec.StepEnvelope(execution_id="run-1", step_id="s", data_ref=ref))
    assert keys.step_key(scope.tenant_id, "run-1", "s") in str(info.value)
    assert store.get_step(scope, "s") is None  # nothing was written


def test_delete_execution_removes_cold_objects(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope, tmp_path: Path
) -> None:
    store.put_step(scope, envelope("s", rich_polars()))
    prefix = tmp_path / "cold" / keys.cold_execution_prefix(scope.tenant_id, "run-1")
    assert any(prefix.rglob("*.parquet"))
    store.delete_execution(scope)
    assert not any(prefix.rglob("*.parquet"))


def test_archive_keeps_cold_references_readable(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope
) -> None:
    frame = rich_polars()
    store.put_step(scope, envelope("s", frame))
    store.archive_execution(scope, "flow", evict=True)
    assert store.get_step(scope, "s") is None
    restored = store.restore_execution(scope.tenant_id, "flow", "run-1")
    assert_frame_equal(restored[0].to_polars(), frame)


def test_transfers_are_silent_outside_notebooks(
    store: ec.ExecutionContextStore,
    scope: ec.ExecutionScope,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(_cold, "PROGRESS_MIN_BYTES", 1)
    store.put_step(scope, envelope("s", rich_polars()))
    store.get_step(scope, "s")
    assert capfd.readouterr().err == ""


def test_progress_bar_in_a_notebook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_cold, "PROGRESS_MIN_BYTES", 1)
    monkeypatch.setattr(_cold, "_CHUNK", 64)
    monkeypatch.setattr(_cold, "_in_notebook", lambda: True)
    tier = _cold.ColdTier(tmp_path)
    tier.put_bytes("a/b.bin", b"z" * 1000)
    assert tier.get_bytes("a/b.bin") == b"z" * 1000
    assert (
        "upload a/b.bin" in capfd.readouterr().err
    )  # tqdm.auto falls back to text outside Jupyter


def test_long_encodes_and_decodes_show_progress_where_watched(
    store: ec.ExecutionContextStore,
    scope: ec.ExecutionScope,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from execctx_nb._store import _progress

    monkeypatch.setattr(_progress, "DELAY", 0.0)  # every step counts as long
    monkeypatch.setattr(_cold, "_in_notebook", lambda: True)
    store.put_step(scope, envelope("slow", rich_polars()))
    store.get_step(scope, "slow")
    err = capfd.readouterr().err
    assert "encode slow" in err and "decode slow" in err


def test_any_obstore_store_works_as_the_cold_tier(
    valkey_url: str, scope: ec.ExecutionScope
) -> None:
    import obstore.store

    memory = obstore.store.MemoryStore()  # the bytes path (no local file to map)
    frame, table = rich_polars(), rich_arrow()
    with ec.create_valkey_execution_context_store(
        valkey_url, cold_store=memory, inline_limit_bytes=64
    ) as store:
        store.put_steps(scope, [envelope("p", frame), envelope("a", table)])
        got_p, got_a = store.get_steps(scope, ["p", "a"])
        assert got_p is not None and got_a is not None
        assert_frame_equal(got_p.to_polars(), frame)
        assert got_a.to_arrow().equals(table) and got_a.to_arrow().schema.equals(
            table.schema, check_metadata=True
        )
        path = cold_path(scope, got_p)
        payload = bytes(obstore.get(memory, path).bytes())
        obstore.put(memory, path, payload[:100] + b"x" + payload[101:])
        with pytest.raises(ColdTierError, match="does not match the reference"):
            store.get_step(scope, "p")
        obstore.delete(memory, path)
        with pytest.raises(ColdTierError, match="is missing"):
            store.get_step(scope, "p")


def test_repeating_a_write_repairs_a_lost_object(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope, tmp_path: Path
) -> None:
    frame = rich_polars()
    stored = store.put_step(scope, envelope("s", frame))
    path = tmp_path / "cold" / cold_path(scope, stored)
    path.unlink()
    store.put_step(scope, envelope("s", frame))  # the same write: idempotent, and uploads again
    got = store.get_step(scope, "s")
    assert got is not None
    assert_frame_equal(got.to_polars(), frame)
