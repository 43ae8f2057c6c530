"""ExecutionContextStore on a real Valkey: layout, idempotency, leases, flow vars, archive."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import valkey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twins import APIS, store_for
from valkey.cluster import ValkeyCluster

import execctx_nb as ec
from execctx_nb import keys
from execctx_nb.errors import (
    ColdTierError,
    EnvelopeDecodeError,
    IdempotencyConflictError,
    InvalidKeyError,
    InvalidTenantError,
    LeaseError,
)

SCHEMA = {"type": "array", "items": {"type": "object"}}
HASH = "a" * 64

# The contract table runs on one node and on a real 3-primary cluster.
pytestmark = pytest.mark.both_topologies


def envelope(
    step: str,
    data: object,
    *,
    attempt: int = 0,
    execution: str = "run-1",
    produced_at: dt.datetime | None = None,
) -> ec.StepEnvelope:
    """An envelope with its schema given, so these tests do not depend on inference."""
    return ec.StepEnvelope(
        execution_id=execution,
        step_id=step,
        attempt=attempt,
        data=data,
        schema=SCHEMA,
        schema_hash=HASH,
        metadata=ec.StepMetadata(produced_at=produced_at or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
    )


@pytest.fixture(params=APIS)
def store(request: pytest.FixtureRequest, valkey_url: str, tmp_path: Path) -> Iterator[Any]:
    """The sync store, then its async twin (driven through tests/twins.py): one table, both APIs."""
    with store_for(request.param, valkey_url, cold_store=tmp_path / "cold") as s:
        yield s


@pytest.fixture
def scope(tenant: str) -> ec.ExecutionScope:
    return ec.ExecutionScope(tenant, "run-1")


def test_put_then_get_returns_the_stored_envelope(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope
) -> None:
    stored = store.put_step(scope, envelope("clean", [{"a": 1}, {"a": 2}]))
    got = store.get_step(scope, "clean")
    assert got == stored
    assert got is not None and got.to_polars()["a"].to_list() == [1, 2]
    assert stored.metadata.row_count == 2 and stored.metadata.bytes == len(b'[{"a":1},{"a":2}]')


def test_latest_envelope_is_plain_json_at_the_step_key(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope, valkey_client: valkey.Valkey
) -> None:
    store.put_step(scope, envelope("clean", [{"a": 1}]))
    raw = valkey_client.get(keys.step_key(scope.tenant_id, "run-1", "clean"))
    wire = msgspec.json.decode(raw)
    assert (
        wire["executionId"] == "run-1" and wire["stepId"] == "clean" and wire["data"] == [{"a": 1}]
    )
    attempts = valkey_client.hgetall(keys.step_attempts_key(scope.tenant_id, "run-1", "clean"))
    assert attempts == {b"0": raw}


def test_get_absent_step_is_none(store: ec.ExecutionContextStore, scope: ec.ExecutionScope) -> None:
    assert store.get_step(scope, "nope") is None
    assert store.get_step(scope, "nope", attempt=3) is None
    assert store.get_execution(scope) == []
    assert store.list_steps(scope) == []


def test_latest_attempt_wins_whatever_the_write_order(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope
) -> None:
    store.put_step(scope, envelope("s", [{"v": 2}], attempt=2))
    store.put_step(scope, envelope("s", [{"v": 1}], attempt=1))  # late retry of an older attempt
    latest = store.get_step(scope, "s")
    assert latest is not None and latest.attempt == 2
    one = store.get_step(scope, "s", attempt=1)
    assert one is not None and one.data == [{"v": 1}]
    store.put_step(scope, envelope("s", [{"v": 3}], attempt=3))
    again = store.get_step(scope, "s")
    assert again is not None and again.attempt == 3


def test_same_write_twice_stores_one_envelope(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope, valkey_client: valkey.Valkey
) -> None:
    first = store.put_step(scope, envelope("s", [{"a": 1}]))
    second = store.put_step(scope, envelope("s", [{"a": 1}]))
    assert first == second
    assert valkey_client.hlen(keys.step_attempts_key(scope.tenant_id, "run-1", "s")) == 1


def test_rerun_with_new_timestamps_is_the_same_write(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope
) -> None:
    first = store.put_step(scope, envelope("s", [{"a": 1}]))
    later = dt.datetime(2027, 5, 5, tzinfo=dt.UTC)
    again = store.put_step(scope, envelope("s", [{"a": 1}], produced_at=later))
    # The stored (first) envelope is kept and returned.
    assert again.metadata.produced_at == first.metadata.produced_at


def test_different_payload_for_same_attempt_is_a_conflict(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope
) -> None:
    store.put_step(scope, envelope("s", [{"a": 1}]))
    with pytest.raises(
        IdempotencyConflictError, match=r"attempt 0 .*different payload.*next attempt"
    ):
        store.put_step(scope, envelope("s", [{"a": 999}]))
    got = store.get_step(scope, "s")
    assert got is not None and got.data == [{"a": 1}]  # not overwritten
    store.put_step(scope, envelope("s", [{"a": 999}], attempt=1))  # the way to write it


def test_conflict_in_a_batch_still_writes_the_others(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope
) -> None:
    store.put_step(scope, envelope("a", [{"x": 1}]))
    with pytest.raises(IdempotencyConflictError):
        store.put_steps(scope, [envelope("a", [{"x": 2}]), envelope("b", [{"x": 3}])])
    assert store.list_steps(scope) == ["a", "b"]


def test_list_steps_and_get_execution_are_sorted(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope
) -> None:
    for step in ["zeta", "alpha", "mid"]:
        store.put_step(scope, envelope(step, [{"s": step}]))
    assert store.list_steps(scope) == ["alpha", "mid", "zeta"]
    assert [e.step_id for e in store.get_execution(scope)] == ["alpha", "mid", "zeta"]
    assert [e.data for e in store.get_execution(scope)] == [
        [{"s": "alpha"}],
        [{"s": "mid"}],
        [{"s": "zeta"}],
    ]


def test_list_executions_sees_only_its_tenant(store: ec.ExecutionContextStore, tenant: str) -> None:
    other = tenant + "x"  # shares the prefix of the tenant id: must not leak into it
    for execution in ["r2", "r1"]:
        store.put_step(
            ec.ExecutionScope(tenant, execution), envelope("s", [{"a": 1}], execution=execution)
        )
    store.put_step(ec.ExecutionScope(other, "r9"), envelope("s", [{"a": 1}], execution="r9"))
    assert store.list_executions(tenant) == ["r1", "r2"]
    assert store.list_executions(other) == ["r9"]
    with pytest.raises(InvalidTenantError):
        store.list_executions("bad tenant")


def test_tenants_with_identical_ids_do_not_cross_talk(
    store: ec.ExecutionContextStore, tenant: str
) -> None:
    a, b = ec.ExecutionScope(tenant + "a", "run-1"), ec.ExecutionScope(tenant + "b", "run-1")
    store.put_step(a, envelope("s", [{"who": "a"}]))
    store.put_step(b, envelope("s", [{"who": "b"}]))
    store.set_flow_vars(a.tenant_id, "f", {"who": "a"})
    store.set_flow_vars(b.tenant_id, "f", {"who": "b"})
    got_a, got_b = store.get_step(a, "s"), store.get_step(b, "s")
    assert got_a is not None and got_a.data == [{"who": "a"}]
    assert got_b is not None and got_b.data == [{"who": "b"}]
    assert store.get_flow_vars(a.tenant_id, "f") == {"who": "a"}
    lease = store.acquire_lease(a, "worker", 5000)
    assert lease is not None and store.acquire_lease(b, "worker", 5000) is not None
    store.delete_execution(a)
    assert store.get_step(a, "s") is None
    assert store.get_step(b, "s") is not None


def test_delete_execution_removes_steps_attempts_and_lease(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope, valkey_client: valkey.Valkey
) -> None:
    store.put_step(scope, envelope("s", [{"a": 1}]))
    store.put_step(scope, envelope("s", [{"a": 2}], attempt=1))
    store.acquire_lease(scope, "w", 10_000)
    other = ec.ExecutionScope(scope.tenant_id, "run-10")  # shares the prefix "run-1"
    store.put_step(other, envelope("s", [{"a": 1}], execution="run-10"))
    assert store.delete_execution(scope) == 3
    assert valkey_client.keys(keys.execution_pattern(scope.tenant_id, "run-1")) == []
    assert store.list_steps(other) == ["s"]


def test_scope_and_envelope_must_agree(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope
) -> None:
    with pytest.raises(InvalidKeyError, match="does not match the scope"):
        store.put_step(scope, envelope("s", [], execution="run-2"))


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (b"{not json", "Malformed JSON"),
        (b'{"executionId": "run-1"}', "Invalid step envelope"),
        (b'{"executionId":"run-1","stepId":"other"}', "names execution 'run-1' step 'other'"),
    ],
)
def test_malformed_value_names_the_key(
    store: ec.ExecutionContextStore,
    scope: ec.ExecutionScope,
    valkey_client: valkey.Valkey,
    value: bytes,
    match: str,
) -> None:
    key = keys.step_key(scope.tenant_id, "run-1", "s")
    valkey_client.set(key, value)
    with pytest.raises(EnvelopeDecodeError, match=match) as info:
        store.get_step(scope, "s")
    assert key in str(info.value)
    with pytest.raises(EnvelopeDecodeError):
        store.get_execution(scope)


def test_wrong_value_type_is_a_decode_error_naming_the_key(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope, valkey_client: valkey.Valkey
) -> None:
    key = keys.step_key(scope.tenant_id, "run-1", "s")
    valkey_client.hset(key, "x", "y")
    with pytest.raises(EnvelopeDecodeError, match="Malformed value at key") as info:
        store.get_step(scope, "s")
    assert key in str(info.value)
    assert store.health is ec.HealthState.HEALTHY  # the server is fine; the data is not


def test_flow_vars_round_trip_json_values(
    store: ec.ExecutionContextStore, tenant: str, valkey_client: valkey.Valkey
) -> None:
    assert store.get_flow_vars(tenant, "flow") == {}
    store.set_flow_vars(tenant, "flow", {"b": [1, 2], "a": {"x": None}, "n": 1.5, "s": "1"})
    store.set_flow_vars(tenant, "flow", {"n": 2})
    assert store.get_flow_vars(tenant, "flow") == {"a": {"x": None}, "b": [1, 2], "n": 2, "s": "1"}
    assert store.delete_flow_vars(tenant, "flow", ["n"]) == 1
    assert "n" not in store.get_flow_vars(tenant, "flow")
    with pytest.raises(InvalidKeyError, match="expected a JSON value"):
        store.set_flow_vars(tenant, "flow", {"x": object()})
    valkey_client.hset(keys.flow_vars_key(tenant, "flow"), "bad", "{oops")
    with pytest.raises(EnvelopeDecodeError, match="field 'bad'"):
        store.get_flow_vars(tenant, "flow")


def test_lease_is_exclusive_and_fenced(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope
) -> None:
    # Held for 5 s while the checks below run (a short TTL here could expire between two calls
    # on a loaded machine); the renewal then shortens it to 150 ms.
    lease = store.acquire_lease(scope, "w1", 5000)
    assert lease is not None
    assert store.acquire_lease(scope, "w2", 5000) is None
    renewed = store.renew_lease(lease, 150)
    assert renewed.ttl_ms == 150 and renewed.token == lease.token
    time.sleep(0.3)  # expires (the wait only has to be long enough, never short enough)
    taken = store.acquire_lease(scope, "w2", 5000)
    assert taken is not None
    # The stale holder can neither renew nor release the new owner's lease.
    with pytest.raises(LeaseError, match="was lost"):
        store.renew_lease(lease)
    assert store.release_lease(lease) is False
    assert store.acquire_lease(scope, "w1", 5000) is None
    assert store.release_lease(taken) is True
    assert store.acquire_lease(scope, "w1", 5000) is not None


def test_lease_rejects_bad_arguments(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope
) -> None:
    with pytest.raises(InvalidKeyError, match="ttl_ms"):
        store.acquire_lease(scope, "w", 0)
    with pytest.raises(InvalidKeyError, match="owner"):
        store.acquire_lease(scope, "", 10)


def test_archive_and_restore_every_attempt(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope, tmp_path: Path
) -> None:
    store.put_step(scope, envelope("a", [{"v": 0}]))
    store.put_step(scope, envelope("a", [{"v": 1}], attempt=1))
    store.put_step(scope, envelope("b", [{"v": 2}]))
    before = store.get_execution(scope)
    uri = store.archive_execution(scope, "flow-1", evict=True)
    path = tmp_path / "cold" / keys.cold_archive_path(scope.tenant_id, "flow-1", "run-1")
    assert uri == path.as_uri() and path.exists()
    assert store.list_steps(scope) == []
    restored = store.restore_execution(scope.tenant_id, "flow-1", "run-1")
    assert restored == before
    old = store.get_step(scope, "a", attempt=0)
    assert old is not None and old.data == [{"v": 0}]


def test_restore_without_an_archive_says_which_archive_and_what_to_do(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope
) -> None:
    with pytest.raises(ColdTierError) as info:
        store.restore_execution(scope.tenant_id, "flow-x", "run-9")
    message = str(info.value)
    assert "No archive of execution `run-9` (flow `flow-x`)" in message
    assert keys.cold_archive_path(scope.tenant_id, "flow-x", "run-9") in message
    assert "archive_execution" in message and "envelope references" not in message


def test_health_is_healthy_after_calls(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope
) -> None:
    store.get_step(scope, "s")
    assert store.health is ec.HealthState.HEALTHY
    assert store.check_health() is ec.HealthState.HEALTHY
    assert str(ec.HealthState.READ_ONLY) == "read_only"


def test_closed_store_refuses_calls(
    valkey_url: str, scope: ec.ExecutionScope, tmp_path: Path
) -> None:
    store = ec.create_valkey_execution_context_store(valkey_url, cold_store=tmp_path)
    store.close()
    with pytest.raises(ec.errors.StoreError, match="closed"):
        store.get_step(scope, "s")


def test_connect_lends_handles_on_one_store_per_url_and_settings(
    valkey_url: str, tmp_path: Path, scope: ec.ExecutionScope
) -> None:
    a = ec.connect(valkey_url, cold_store=str(tmp_path))
    b = ec.connect(valkey_url, cold_store=str(tmp_path))
    assert a is not b and a.client is b.client  # two handles, one set of connections
    assert a.url == valkey_url and isinstance(a.client, valkey.Valkey | ValkeyCluster)
    other = ec.connect(valkey_url, cold_store=str(tmp_path / "other"))
    assert other.client is not a.client  # other settings, another store
    other.close()
    a.close()  # closes only this handle
    assert a.closed and not b.closed
    with pytest.raises(ec.errors.StoreError, match="closed"):
        a.get_step(scope, "s")
    assert b.get_step(scope, "s") is None
    assert ec.disconnect(valkey_url, cold_store=str(tmp_path)) is True
    assert b.closed  # closed for good, for every handle
    assert ec.disconnect(valkey_url, cold_store=str(tmp_path)) is False
    fresh = ec.connect(valkey_url, cold_store=str(tmp_path))
    assert fresh.client is not a.client and fresh.get_step(scope, "s") is None
    ec.disconnect(valkey_url, cold_store=str(tmp_path / "other"))
    ec.disconnect(valkey_url, cold_store=str(tmp_path))


def test_url_resolution_prefers_the_environment(
    monkeypatch: pytest.MonkeyPatch, valkey_url: str
) -> None:
    from execctx_nb._connection import resolve_url

    monkeypatch.setenv("VALKEY_URL", valkey_url)
    assert resolve_url() == valkey_url
    assert resolve_url("redis://elsewhere:1") == "redis://elsewhere:1"


def test_from_frame_fills_schema_hash_and_metadata(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope
) -> None:
    import polars as pl

    from execctx_nb.inference import infer_schema, schema_hash

    frame = pl.DataFrame({"id": [1, 2, 3], "name": ["a", None, "c"]})
    before = dt.datetime.now(dt.UTC)
    env = ec.StepEnvelope.from_frame(
        frame,
        execution_id="run-1",
        step_id="load",
        attempt=1,
        lineage=["extract", ec.LineageEntry(step_id="seed", execution_id="run-0")],
    )
    assert env.schema == infer_schema(frame)
    assert env.schema_hash == schema_hash(env.schema)
    assert env.metadata.row_count == 3 and env.metadata.bytes == frame.estimated_size()
    assert env.metadata.produced_at is not None and env.metadata.produced_at >= before
    assert [e.step_id for e in env.lineage] == ["extract", "seed"]
    stored = store.put_step(scope, env)
    got = store.get_step(scope, "load")
    assert got is not None and got.schema_hash == stored.schema_hash == env.schema_hash
    assert got.lineage == env.lineage
    assert got.to_polars().equals(frame)


def test_put_step_infers_a_missing_schema(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope
) -> None:
    from execctx_nb.inference import infer_schema, schema_hash

    rows = [{"a": 1, "b": "x"}, {"a": None, "b": "y"}]
    stored = store.put_step(scope, ec.StepEnvelope(execution_id="run-1", step_id="s", data=rows))
    assert stored.schema == infer_schema(rows)
    assert stored.schema_hash == schema_hash(stored.schema)
    got = store.get_step(scope, "s")
    assert got is not None and got.schema == stored.schema


def test_get_steps_fetches_many_in_order(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope
) -> None:
    store.put_steps(scope, [envelope("a", [{"v": 1}]), envelope("b", [{"v": 2}])])
    got = store.get_steps(scope, ["b", "missing", "a"])
    assert [None if e is None else e.data for e in got] == [[{"v": 2}], None, [{"v": 1}]]
    assert store.get_steps(scope, []) == []


def test_unencodable_data_is_named(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope
) -> None:
    with pytest.raises(
        ec.errors.EnvelopeEncodeError,
        match=r"Cannot encode step 's' attempt 0: expected JSON rows.* - at `envelope\.data`",
    ):
        store.put_step(scope, envelope("s", [{"a": object()}]))
    import polars as pl

    objects = pl.DataFrame(
        {"a": pl.Series([object()], dtype=pl.Object)}
    )  # goes cold; Parquet refuses
    with pytest.raises(ec.errors.EnvelopeEncodeError, match="cannot be written as Parquet"):
        store.put_step(scope, envelope("s", objects))
    assert store.get_step(scope, "s") is None


def test_malformed_url_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        ec.errors.StoreError, match=r"Invalid Valkey URL 'http://x'.*expected redis://"
    ):
        ec.create_valkey_execution_context_store("http://x", cold_store=tmp_path)


def test_unicode_ids_round_trip(store: ec.ExecutionContextStore, tenant: str) -> None:
    scope = ec.ExecutionScope(tenant, "läuft-ü")
    store.put_step(scope, envelope("schritt-ß", [{"a": 1}], execution="läuft-ü"))
    assert store.list_steps(scope) == ["schritt-ß"]
    assert store.list_executions(tenant) == ["läuft-ü"]
    assert [e.step_id for e in store.get_execution(scope)] == ["schritt-ß"]


def _json_containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    _json_containers,
    max_leaves=8,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.dictionaries(st.text(min_size=1, max_size=6), _JSON, max_size=4), max_size=5),
    other=_JSON,
)
def test_json_rows_round_trip_and_rewrites_are_idempotent(
    store: ec.ExecutionContextStore,
    scope: ec.ExecutionScope,
    rows: list[dict[str, object]],
    other: object,
) -> None:
    step = f"h{uuid.uuid4().hex[:10]}"
    stored = store.put_step(scope, envelope(step, rows))
    got = store.get_step(scope, step)
    assert (
        got is not None and got.data == rows and got == msgspec.structs.replace(stored, data=rows)
    )
    assert store.put_step(scope, envelope(step, rows)) == stored  # the same write
    changed = [*rows, {"extra": other}]
    with pytest.raises(IdempotencyConflictError):
        store.put_step(scope, envelope(step, changed))


def test_batches_survive_a_flushed_script_cache(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope, valkey_client: valkey.Valkey
) -> None:
    valkey_client.script_flush()  # as after a server restart: NOSCRIPT on the next EVALSHA
    store.put_steps(scope, [envelope("a", [{"v": 1}]), envelope("b", [{"v": 2}])])
    valkey_client.script_flush()
    store.put_step(scope, envelope("c", [{"v": 3}]))
    assert store.list_steps(scope) == ["a", "b", "c"]


def test_get_steps_names_a_key_of_the_wrong_type(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope, valkey_client: valkey.Valkey
) -> None:
    # get_steps reads with MGET, which answers nil (not WRONGTYPE) for a hash: still an error.
    store.put_step(scope, envelope("a", [{"v": 1}]))
    bad = keys.step_key(scope.tenant_id, scope.execution_id, "bad")
    valkey_client.hset(bad, "x", "y")
    with pytest.raises(EnvelopeDecodeError, match="Malformed value at key") as info:
        store.get_steps(scope, ["a", "missing", "bad"])
    assert bad in str(info.value)
    assert [e is None for e in store.get_steps(scope, ["a", "missing"])] == [False, True]


def test_a_batch_larger_than_one_script_call(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope, valkey_client: valkey.Valkey
) -> None:
    from execctx_nb._store._write import PUT_BATCH_ENVELOPES

    n = PUT_BATCH_ENVELOPES + 10  # two script calls, pipelined
    batch = [envelope(f"s{i:04d}", [{"v": i}]) for i in range(n)]
    valkey_client.script_flush()  # NOSCRIPT on both calls: loaded once, the batch resent
    stored = store.put_steps(scope, batch)
    assert [e.step_id for e in stored] == [e.step_id for e in batch]
    assert store.put_steps(scope, batch) == stored  # every write again is the same write
    got = store.get_steps(scope, [e.step_id for e in batch])
    assert [e.data if e else None for e in got] == [[{"v": i}] for i in range(n)]
    # A conflict in the second call is reported; the other envelopes of that call are written.
    changed = [envelope(f"s{n - 1:04d}", [{"v": -1}]), envelope("z", [{"v": 0}])]
    with pytest.raises(IdempotencyConflictError, match=f"s{n - 1:04d}"):
        store.put_steps(scope, [*batch[:PUT_BATCH_ENVELOPES], *changed])
    assert store.get_step(scope, "z") is not None


def test_latest_attempt_rule_holds_within_one_batch(
    store: ec.ExecutionContextStore, scope: ec.ExecutionScope
) -> None:
    store.put_steps(
        scope,
        [
            envelope("s", [{"v": 2}], attempt=2),
            envelope("s", [{"v": 0}], attempt=0),
            envelope("s", [{"v": 1}], attempt=1),
        ],
    )
    got = store.get_step(scope, "s")
    assert got is not None and got.attempt == 2 and got.data == [{"v": 2}]
    older = store.get_step(scope, "s", attempt=1)
    assert older is not None and older.data == [{"v": 1}]


def test_batch_decoding_restores_the_garbage_collector_and_names_the_bad_key() -> None:
    import gc

    from execctx_nb._store._common import decode_envelopes

    good = envelope("a", [{"v": 1}]).to_json()
    assert gc.isenabled()
    got = decode_envelopes([good, None, good], ["k1", "k2", "k3"])
    assert [e is None for e in got] == [False, True, False] and gc.isenabled()
    with pytest.raises(EnvelopeDecodeError, match="'k2'"):
        decode_envelopes([good, b"{oops", good], ["k1", "k2", "k3"])
    assert gc.isenabled()  # re-enabled after a failure too
    gc.disable()
    try:
        decode_envelopes([good, good], ["k1", "k2"])
        assert not gc.isenabled()  # a collector the caller disabled stays disabled
    finally:
        gc.enable()


def test_deleting_a_big_execution_unlinks_in_bounded_batches(
    store: Any, scope: ec.ExecutionScope, valkey_client: valkey.Valkey
) -> None:
    from execctx_nb._store._common import EVICT_BATCH

    n = EVICT_BATCH + 20  # each step has two keys: more than two UNLINK batches
    store.put_steps(scope, [envelope(f"s{i:04d}", [{"v": i}]) for i in range(n)])
    assert store.delete_execution(scope) == 2 * n
    assert store.list_steps(scope) == []


def test_any_cluster_node_gives_a_cluster_client_and_moved_is_explained(
    cluster_url: str, tmp_path: Path
) -> None:
    from execctx_nb._connection._health import translate

    with ec.create_valkey_execution_context_store(cluster_url, cold_store=tmp_path) as store:
        assert isinstance(store.client, ValkeyCluster)  # detected from one node's URL
    raw = valkey.Valkey.from_url(cluster_url)  # a single-node client, as another tool has
    moved = None
    for i in range(50):  # some of these keys live on another node
        try:
            raw.get(f"k{i}")
        except valkey.exceptions.ResponseError as exc:
            moved = exc
            break
    raw.close()
    assert moved is not None
    error, state = translate(moved, op="GET", where="k", url=cluster_url, timeout=1, elapsed=0)
    assert isinstance(error, ec.StoreUnavailableError) and state is ec.HealthState.UNAVAILABLE
    assert "MOVED" in str(error) and "Valkey Cluster" in str(error)
