"""The event stream against a real Valkey: publish, subscribe (sync and async), tail, trim."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest
import rfc8785
import valkey
import valkey.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st
from twins import APIS, FAST_RECLAIM, async_subscriber, close_all, run_loop_until

from execctx_nb import (
    AsyncExecutionEventSubscriber,
    EventMeta,
    ExecutionEventPublisher,
    ExecutionEventSubscriber,
    ExecutionScope,
    idempotency_key,
    keys,
    tail,
)
from execctx_nb._connection import make_async_client, make_client
from execctx_nb._events._retention import TRIM_STEP, trim_events
from execctx_nb._idempotency import event_idempotency_key
from execctx_nb.errors import (
    EnvelopeDecodeError,
    EventStreamError,
    InvalidKeyError,
    StoreUnavailableError,
)
from execctx_nb.events import (
    Event,
    ExecutionLog,
    ExecutionStatus,
    StepCommitted,
    StepFailed,
    decode_event,
)
from tests.servers import free_port

# The contract table runs on one node and on a real 3-primary cluster.
pytestmark = pytest.mark.both_topologies


def _step(i: int, execution: str = "run-1") -> StepCommitted:
    return StepCommitted(execution_id=execution, step_id=f"s{i}", row_count=i)


@pytest.fixture
def publisher(valkey_url: str) -> Any:
    pub = ExecutionEventPublisher(make_client(valkey_url, retries=0))
    yield pub
    pub.client.close()


@pytest.fixture(params=APIS)
def api(request: pytest.FixtureRequest) -> Iterator[str]:
    """Subscriber tests run against the sync subscriber, then its async twin."""
    yield str(request.param)
    close_all()


def _subscriber(api: str, url: str, **kw: Any) -> Any:
    options: dict[str, Any] = {"group": "g", "consumer": "c1", **FAST_RECLAIM, **kw}
    if api == "async":
        return async_subscriber(url, **options)
    return ExecutionEventSubscriber(make_client(url), **options)


# The shared loop runner (tests/twins.py), with this module's 100 ms BLOCK.
_run = functools.partial(run_loop_until, block_ms=100)


def _pending(client: valkey.Valkey, tenant: str, group: str = "g") -> int:
    return int(client.xpending(keys.events_key(tenant), group)["pending"])


# -- idempotency keys -------------------------------------------------------------------------
def test_default_key_of_step_events_is_the_protocol_idempotency_key() -> None:
    committed = StepCommitted(execution_id="run-1", step_id="clean", attempt=3)
    failed = StepFailed(execution_id="run-1", step_id="clean", attempt=3, error="x")
    assert event_idempotency_key(committed) == idempotency_key(
        "run-1", "clean", 3, kind="step.committed"
    )
    assert event_idempotency_key(failed) == idempotency_key("run-1", "clean", 3, kind="step.failed")
    with pytest.raises(InvalidKeyError, match="2\\*\\*53"):
        event_idempotency_key(StepCommitted(execution_id="run-1", step_id="clean", attempt=2**60))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(), st.integers(-(2**53) + 1, 2**53 - 1), st.none()), max_size=6))
def test_fast_canonical_json_matches_rfc8785(parts: list[Any]) -> None:
    assert msgspec.json.encode(parts) == rfc8785.dumps(parts)


def test_status_and_log_keys_tell_events_of_one_attempt_apart() -> None:
    running = ExecutionStatus(execution_id="r", status="running")
    done = ExecutionStatus(execution_id="r", status="succeeded")
    assert event_idempotency_key(running) != event_idempotency_key(done)
    assert event_idempotency_key(running) == event_idempotency_key(
        ExecutionStatus(execution_id="r", status="running")
    )
    log1 = ExecutionLog(execution_id="r", message="loading")
    log2 = ExecutionLog(
        execution_id="r",
        message="loading",
        ts=log1.ts.replace(microsecond=(log1.ts.microsecond + 1) % 10**6),
    )
    assert event_idempotency_key(log1) != event_idempotency_key(log2)
    assert event_idempotency_key(log1) == event_idempotency_key(decode_event(log1.to_json()))
    assert event_idempotency_key(log1) != event_idempotency_key(
        ExecutionLog(execution_id="r", message="other", ts=log1.ts)
    )


def test_wire_format_test_vectors() -> None:
    # The vectors of docs/wire-format.md ("Default idempotency key of an event").
    ts = dt.datetime(2026, 11, 25, 13, 19, 0, 123456, tzinfo=dt.UTC)
    vectors = {
        "fa4ac7f8537fdfe126867aea8358482bea7f445caf349f6b4886d137169da55f": StepCommitted(
            execution_id="run-1", step_id="clean", attempt=2, ts=ts
        ),
        "08fc63051222aa2c4819a98f39ea389757077a32d656553065130f8d8202d496": StepFailed(
            execution_id="run-1", step_id="load", ts=ts, error="timeout after 30 s"
        ),
        "f0f6d0df6d7841a8be16e658be01e682f60334f87c01bf868182fe4cd04d7674": ExecutionStatus(
            execution_id="run-1", ts=ts, status="succeeded", flow_id="nightly"
        ),
        "6796955ede4f3e68bd72fc013e12f402ad0f90989347724b713537f8ba1b59a9": ExecutionLog(
            execution_id="run-1", ts=ts, message="loaded 2 rows", step_id="clean"
        ),
    }
    for expected, event in vectors.items():
        assert event_idempotency_key(event) == expected, event.kind
    parts = [
        "run-1",
        "clean",
        0,
        "execution.log",
        "2026-11-25T13:19:00.123456Z",
        "info",
        "loaded 2 rows",
    ]
    assert hashlib.sha256(rfc8785.dumps(parts)).hexdigest() == event_idempotency_key(
        vectors["6796955ede4f3e68bd72fc013e12f402ad0f90989347724b713537f8ba1b59a9"]
    )


# -- publishing ---------------------------------------------------------------------------------
def test_publish_writes_the_three_entry_fields(
    publisher: ExecutionEventPublisher, valkey_client: valkey.Valkey, tenant: str
) -> None:
    event = _step(1)
    stream_id = publisher.publish(tenant, event)
    [(raw_id, fields)] = valkey_client.xrange(keys.events_key(tenant))
    assert raw_id.decode() == stream_id
    assert list(fields) == [b"kind", b"idem", b"event"]
    assert fields[b"kind"] == b"step.committed"
    assert fields[b"idem"].decode() == event_idempotency_key(event)
    assert decode_event(fields[b"event"]) == event


def test_publish_accepts_wire_dicts_scopes_and_explicit_keys(
    publisher: ExecutionEventPublisher, valkey_client: valkey.Valkey, tenant: str
) -> None:
    scope = ExecutionScope(tenant, "run-9")
    publisher.publish(
        scope, {"kind": "execution.status", "status": "running"}, idempotency_key="my-key-1"
    )
    [(_, fields)] = valkey_client.xrange(keys.events_key(tenant))
    assert fields[b"idem"] == b"my-key-1"
    assert json.loads(fields[b"event"])["executionId"] == "run-9"
    with pytest.raises(InvalidKeyError, match="does not match the scope") as info:
        publisher.publish(scope, _step(1, "run-1"))
    assert "at `event.executionId`" in str(info.value)
    with pytest.raises(InvalidKeyError, match="idempotency key") as info:
        publisher.publish(tenant, _step(1), idempotency_key="has space")
    assert "at `idempotency_key`" in str(info.value)  # the argument the caller used
    with pytest.raises(InvalidKeyError, match=r"at `idempotency_keys\[1\]`"):
        publisher.publish_many(tenant, [_step(1), _step(2)], idempotency_keys=[None, "has space"])
    with pytest.raises(InvalidKeyError, match=r"at `events\[1\]\.executionId`"):
        publisher.publish_many(scope, [_step(1, "run-9"), _step(2, "run-1")])
    with pytest.raises(EnvelopeDecodeError):
        publisher.publish(tenant, {"kind": "step.committed", "executionId": "r"})  # no stepId


def test_publish_many_keeps_order_and_returns_ids(
    publisher: ExecutionEventPublisher, valkey_client: valkey.Valkey, tenant: str
) -> None:
    events = [_step(i) for i in range(2500)]  # more than one round trip (chunks of 1,000)
    ids = publisher.publish_many(tenant, events)
    assert len(ids) == len(set(ids)) == 2500
    stored = valkey_client.xrange(keys.events_key(tenant))
    assert [i.decode() for i, _ in stored] == ids
    assert [decode_event(f[b"event"]) for _, f in stored] == events


def test_publish_to_a_dead_server_says_nothing_was_sent() -> None:
    pub = ExecutionEventPublisher(
        make_client(f"redis://127.0.0.1:{free_port()}", retries=0, timeout=0.5)
    )
    with pytest.raises(StoreUnavailableError, match="nothing of this batch was sent"):
        pub.publish("org", _step(1))


# -- subscribing --------------------------------------------------------------------------------
def test_each_key_is_handled_once_and_duplicates_are_acked(
    publisher: ExecutionEventPublisher,
    valkey_url: str,
    valkey_client: valkey.Valkey,
    tenant: str,
    api: str,
) -> None:
    events = [_step(i) for i in range(30)]
    publisher.publish_many(tenant, events + events[:10])  # ten published twice
    seen: list[EventMeta] = []
    sub = _subscriber(api, valkey_url)
    _run(
        sub,
        tenant,
        lambda e, m: seen.append(m),
        lambda: sub.stats.handled + sub.stats.duplicates == 40,
    )
    assert sorted(m.idempotency_key for m in seen) == sorted(
        event_idempotency_key(e) for e in events
    )
    assert sub.stats.duplicates == 10
    assert _pending(valkey_client, tenant) == 0
    publisher.publish_many(tenant, events[:5])  # republished much later: still dropped
    _run(sub, tenant, lambda e, m: seen.append(m), lambda: sub.stats.duplicates == 15)
    assert len(seen) == 30
    done = valkey_client.get(keys.dedup_key(tenant, "g", seen[0].idempotency_key))
    assert done == f"d:{seen[0].stream_id}".encode()
    assert (
        0 < valkey_client.ttl(keys.dedup_key(tenant, "g", seen[0].idempotency_key)) <= 7 * 24 * 3600
    )


def test_a_failed_handler_is_retried_with_a_higher_delivery_count(
    publisher: ExecutionEventPublisher,
    valkey_url: str,
    valkey_client: valkey.Valkey,
    tenant: str,
    api: str,
) -> None:
    publisher.publish(tenant, _step(1))
    calls: list[EventMeta] = []

    def flaky(event: Event, meta: EventMeta) -> None:
        calls.append(meta)
        if len(calls) == 1:
            raise RuntimeError("transient")

    sub = _subscriber(api, valkey_url)
    _run(sub, tenant, flaky, lambda: sub.stats.handled == 1)
    assert [m.delivery_count for m in calls] == [1, 2]
    assert calls[1].redelivered and not calls[0].redelivered
    assert sub.stats.failed == 1
    assert _pending(valkey_client, tenant) == 0


def test_poison_and_malformed_entries_go_to_the_dead_letter_stream(
    publisher: ExecutionEventPublisher,
    valkey_url: str,
    valkey_client: valkey.Valkey,
    tenant: str,
    api: str,
) -> None:
    stream = keys.events_key(tenant)
    poison = publisher.publish(tenant, _step(1))
    bad = valkey_client.xadd(
        stream, {"kind": "step.committed", "idem": "k1", "event": "{not json"}
    ).decode()
    good = _step(2)
    publisher.publish(tenant, good)
    handled: list[str] = []

    def handler(event: Event, meta: EventMeta) -> None:
        if meta.stream_id == poison:
            raise ValueError("cannot handle this one")
        handled.append(meta.stream_id)

    sub = _subscriber(api, valkey_url, max_deliveries=2)
    _run(sub, tenant, handler, lambda: sub.stats.dead_lettered == 2)
    letters = {f[b"origId"].decode(): f for _, f in valkey_client.xrange(keys.dlq_key(tenant))}
    assert set(letters) == {poison, bad}
    assert b"ValueError: cannot handle this one" in letters[poison][b"error"]
    assert letters[poison][b"deliveries"] == b"2"
    assert letters[poison][b"group"] == b"g" and letters[poison][b"consumer"] == b"c1"
    assert b"Malformed JSON" in letters[bad][b"error"]
    assert json.loads(letters[bad][b"fields"])["event"] == "{not json"
    assert len(handled) == 1  # the loop went on past both
    assert _pending(valkey_client, tenant) == 0


def test_entries_of_a_dead_consumer_are_reclaimed(
    publisher: ExecutionEventPublisher,
    valkey_url: str,
    valkey_client: valkey.Valkey,
    tenant: str,
    api: str,
) -> None:
    stream = keys.events_key(tenant)
    publisher.publish_many(tenant, [_step(i) for i in range(250)])
    valkey_client.xgroup_create(stream, "g", "0")
    valkey_client.xreadgroup("g", "dead", {stream: ">"}, count=250)  # read, never acked
    metas: list[EventMeta] = []
    sub = _subscriber(api, valkey_url)
    run_loop_until(
        sub, tenant, lambda e, m: metas.append(m), lambda: sub.stats.handled == 250, count=20
    )
    assert {m.delivery_count for m in metas} == {2}
    assert sub.stats.reclaimed == 250  # XAUTOCLAIM followed its cursor over several calls
    assert _pending(valkey_client, tenant) == 0


def test_an_event_leased_by_another_consumer_is_left_pending(
    publisher: ExecutionEventPublisher,
    valkey_url: str,
    valkey_client: valkey.Valkey,
    tenant: str,
    api: str,
) -> None:
    event = _step(1)
    publisher.publish(tenant, event)
    dedup = keys.dedup_key(tenant, "g", event_idempotency_key(event))
    valkey_client.set(dedup, "i:other:abc", px=2000)  # another consumer is running its handler
    seen: list[str] = []
    sub = _subscriber(api, valkey_url)
    _run(sub, tenant, lambda e, m: seen.append(m.stream_id), lambda: sub.stats.busy >= 1)
    assert seen == [] and _pending(valkey_client, tenant) == 1
    metas: list[EventMeta] = []
    # The lease (2 s) outlives min_idle_ms (300 ms): the entry is reclaimed and found busy
    # several times, which must not use up its deliveries (no dead letter).
    _run(sub, tenant, lambda e, m: metas.append(m), lambda: len(metas) == 1)
    assert metas[0].delivery_count <= 2 and sub.stats.busy >= 3
    assert _pending(valkey_client, tenant) == 0 and valkey_client.xlen(keys.dlq_key(tenant)) == 0


def test_a_scope_hands_over_only_its_execution(
    publisher: ExecutionEventPublisher, valkey_url: str, tenant: str, api: str
) -> None:
    publisher.publish_many(tenant, [_step(1, "run-a"), _step(2, "run-b"), _step(3, "run-a")])
    seen: list[str] = []
    sub = _subscriber(api, valkey_url)
    _run(
        sub,
        ExecutionScope(tenant, "run-a"),
        lambda e, m: seen.append(e.execution_id),
        lambda: sub.stats.handled + sub.stats.skipped == 3,
    )
    assert seen == ["run-a", "run-a"] and sub.stats.skipped == 1


def test_a_deleted_group_is_recreated_and_reported(
    publisher: ExecutionEventPublisher,
    valkey_url: str,
    valkey_client: valkey.Valkey,
    tenant: str,
    api: str,
) -> None:
    sub = _subscriber(api, valkey_url)
    seen: list[str] = []
    publisher.publish(tenant, _step(1))
    _run(sub, tenant, lambda e, m: seen.append(m.stream_id), lambda: len(seen) == 1)
    assert not sub.health.lost_state
    valkey_client.xgroup_destroy(keys.events_key(tenant), "g")
    publisher.publish(tenant, _step(2))
    _run(sub, tenant, lambda e, m: seen.append(m.stream_id), lambda: len(seen) == 2)
    assert sub.health.lost_state and sub.stats.groups_recreated == 1
    assert sub.health.state == "stopped"


def test_an_interrupted_batch_records_what_finished_and_releases_the_rest(
    publisher: ExecutionEventPublisher, valkey_url: str, valkey_client: valkey.Valkey, tenant: str
) -> None:
    events = [_step(i) for i in range(5)]
    publisher.publish_many(tenant, events)
    calls: list[str] = []

    def handler(event: Event, meta: EventMeta) -> None:
        if len(calls) == 2:
            raise KeyboardInterrupt  # e.g. a second Ctrl-C while handling
        calls.append(meta.idempotency_key)

    with pytest.raises(KeyboardInterrupt):
        _subscriber("sync", valkey_url).run_loop(tenant, handler, block_ms=100)
    marks = [
        valkey_client.get(keys.dedup_key(tenant, "g", event_idempotency_key(e))) for e in events
    ]
    assert [m is not None and m.startswith(b"d:") for m in marks] == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert marks[2:] == [None, None, None]  # leases released: another consumer may go on at once
    assert _pending(valkey_client, tenant) == 3


def test_run_loop_returns_soon_after_stop(valkey_url: str, tenant: str, api: str) -> None:
    sub = _subscriber(api, valkey_url)
    stop = threading.Event()
    runner = threading.Thread(
        target=sub.run_loop,
        args=(tenant, lambda e, m: None),
        kwargs={"stop": stop, "block_ms": 300},
    )
    runner.start()
    time.sleep(0.3)
    started = time.monotonic()
    stop.set()
    runner.join(5)
    assert not runner.is_alive() and time.monotonic() - started < 3  # block_ms, not a timeout


def test_server_refusals_are_translated(
    publisher: ExecutionEventPublisher,
    valkey_url: str,
    valkey_client: valkey.Valkey,
    tenant: str,
    api: str,
) -> None:
    valkey_client.set(keys.events_key(tenant), "not a stream")
    with pytest.raises(EventStreamError, match="refused XADD") as info:
        publisher.publish(tenant, _step(1))
    assert isinstance(info.value.__cause__, valkey.exceptions.ResponseError)
    with pytest.raises(EventStreamError, match="refused a command"):
        _subscriber(api, valkey_url).run_loop(tenant, lambda e, m: None, block_ms=50)
    with pytest.raises(EventStreamError, match="refused a command"):
        next(tail(tenant, client=valkey_client, from_id="0", block_ms=50))
    with pytest.raises(EventStreamError, match="refused to trim"):
        trim_events(valkey_client, tenant, maxlen=0)


def test_one_loop_at_a_time_per_subscriber(valkey_url: str, tenant: str, api: str) -> None:
    sub = _subscriber(api, valkey_url)
    stop = threading.Event()
    runner = threading.Thread(
        target=sub.run_loop, args=(tenant, lambda e, m: None), kwargs={"stop": stop, "block_ms": 50}
    )
    runner.start()
    try:
        # Wait for the loop to be up (a fixed sleep could let the call below win the race on a
        # loaded machine, and then it would run forever with a stop nobody sets).
        end = time.monotonic() + 10
        while sub.health.state != "ok":
            assert time.monotonic() < end, "the first loop never came up"
            time.sleep(0.01)
        with pytest.raises(RuntimeError, match="already running"):
            sub.run_loop(tenant, lambda e, m: None, stop=threading.Event(), block_ms=50)
    finally:
        stop.set()
        runner.join(5)
    stop.clear()
    threading.Timer(0.2, stop.set).start()
    sub.run_loop(tenant, lambda e, m: None, stop=stop, block_ms=50)  # free again


def test_bad_arguments_are_named(valkey_url: str, api: str) -> None:
    with pytest.raises(InvalidKeyError, match="consumer group"):
        _subscriber(api, valkey_url, group="a b")
    with pytest.raises(ValueError, match="max_deliveries"):
        _subscriber(api, valkey_url, max_deliveries=0)
    with pytest.raises(ValueError, match="count"):
        _subscriber(api, valkey_url).run_loop("org", lambda e, m: None, count=0)
    for bad in ("bogus", "12-x", "-1", ""):
        with pytest.raises(
            ValueError, match=r"Invalid from_id .*expected '\$', '0' or a stream id"
        ):
            next(tail("org", url=valkey_url, from_id=bad, block_ms=10))


# -- async twin ---------------------------------------------------------------------------------
def test_async_subscriber_handles_each_key_once(
    publisher: ExecutionEventPublisher, valkey_url: str, valkey_client: valkey.Valkey, tenant: str
) -> None:
    events = [_step(i) for i in range(20)]
    publisher.publish_many(tenant, events + events[:5])
    seen: list[EventMeta] = []

    async def main() -> None:
        calls = 0

        async def handler(event: Event, meta: EventMeta) -> None:
            nonlocal calls
            calls += 1
            if calls == 3:
                raise RuntimeError("once")
            await asyncio.sleep(0)
            seen.append(meta)

        sub = AsyncExecutionEventSubscriber(
            make_async_client(valkey_url),
            group="g",
            consumer="a1",
            min_idle_ms=300,
            lease_ms=300,
            claim_interval_s=0.1,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(sub.run_loop(tenant, handler, stop=stop, block_ms=100))
        end = time.monotonic() + 10
        while sub.stats.handled < 20 and time.monotonic() < end:
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)
        assert sub.stats.duplicates == 5 and sub.stats.failed == 1
        assert sub.health.state == "stopped"
        await sub.client.aclose()
        await sub.aclose()

    asyncio.run(main())
    assert sorted(m.idempotency_key for m in seen) == sorted(
        event_idempotency_key(e) for e in events
    )
    assert _pending(valkey_client, tenant) == 0


# -- tail ---------------------------------------------------------------------------------------
def test_tail_yields_new_events_and_never_joins_a_group(
    publisher: ExecutionEventPublisher, valkey_url: str, valkey_client: valkey.Valkey, tenant: str
) -> None:
    stream = keys.events_key(tenant)
    publisher.publish(tenant, _step(0))  # before the tail: not yielded with from_id="$"
    stop = threading.Event()
    got: list[tuple[str, Event]] = []
    # "$" is resolved before tail() returns: whatever is published after the call is seen.
    entries = tail(
        tenant,
        client=valkey_client,
        block_ms=100,
        stop=stop,
        kinds={"step.committed", "step.failed"},
        execution_id="run-1",
    )

    def consume() -> None:
        for item in entries:
            got.append(item)
            if len(got) == 2:
                stop.set()

    runner = threading.Thread(target=consume)
    runner.start()
    valkey_client.xadd(stream, {"kind": "junk"})  # skipped with a warning
    publisher.publish(tenant, ExecutionStatus(execution_id="run-1", status="running"))  # other kind
    publisher.publish(tenant, _step(1, "run-2"))  # other execution
    first = publisher.publish(tenant, _step(1))
    second = publisher.publish(tenant, StepFailed(execution_id="run-1", step_id="s2", error="x"))
    runner.join(5)
    assert not runner.is_alive()
    assert [i for i, _ in got] == [first, second]
    assert valkey_client.xinfo_groups(stream) == []


def test_tail_from_zero_replays_the_stream(
    publisher: ExecutionEventPublisher, valkey_client: valkey.Valkey, tenant: str
) -> None:
    ids = publisher.publish_many(tenant, [_step(i) for i in range(5)])
    stop = threading.Event()
    got = []
    for stream_id, _ in tail(tenant, client=valkey_client, from_id="0", block_ms=50, stop=stop):
        got.append(stream_id)
        if len(got) == 5:
            stop.set()
    assert got == ids


# -- retention ----------------------------------------------------------------------------------
def test_trim_never_removes_entries_a_group_still_needs(
    publisher: ExecutionEventPublisher, valkey_client: valkey.Valkey, tenant: str
) -> None:
    stream = keys.events_key(tenant)
    ids = publisher.publish_many(tenant, [_step(i) for i in range(10)])
    valkey_client.xgroup_create(stream, "g", "0")
    valkey_client.xgroup_create(stream, "late", ids[5])  # has not read 6..9 yet
    valkey_client.xreadgroup("g", "c", {stream: ">"}, count=4)  # 0..3 pending
    valkey_client.xack(stream, "g", ids[0], ids[1])
    result = trim_events(valkey_client, tenant, maxlen=0)
    assert result.removed == 2 and result.minid == ids[2] and result.held_back_by == "g"
    valkey_client.xreadgroup("g", "c", {stream: ">"})
    valkey_client.xack(stream, "g", *ids)
    result = publisher.trim(tenant, maxlen=0)
    assert result.removed == 4 and result.held_back_by == "late"  # 6..9 not yet read by it
    assert [i.decode() for i, _ in valkey_client.xrange(stream)] == ids[6:]
    assert trim_events(valkey_client, tenant, minid=ids[8]).removed == 0  # "late" holds them
    with pytest.raises(ValueError, match="exactly one"):
        trim_events(valkey_client, tenant)


def test_trim_without_groups_follows_the_request(
    publisher: ExecutionEventPublisher, valkey_client: valkey.Valkey, tenant: str
) -> None:
    ids = publisher.publish_many(tenant, [_step(i) for i in range(10)])
    assert trim_events(valkey_client, tenant, maxlen=3).removed == 7
    assert trim_events(valkey_client, tenant, minid=ids[8]).removed == 1
    assert valkey_client.xlen(keys.events_key(tenant)) == 2
    assert trim_events(valkey_client, "never-used", maxlen=0).removed == 0


def _commands_run_during(
    valkey_url: str, client: valkey.Valkey, action: Callable[[], Any]
) -> list[str]:
    """Every command the server ran (script internals included) while ``action`` ran."""
    marker = f"end-{time.monotonic_ns()}"
    seen: list[str] = []
    monitor_client = valkey.Valkey.from_url(valkey_url, socket_timeout=30)
    with monitor_client.monitor() as monitor:
        client.echo("start")  # the monitor is attached once its first line arrives
        for line in monitor.listen():
            if line["command"] == "ECHO start":
                break
        action()
        client.echo(marker)
        for line in monitor.listen():
            if line["command"] == f"ECHO {marker}":
                break
            seen.append(line["command"])
    monitor_client.close()
    return seen


def test_trim_of_a_big_stream_reads_a_bounded_number_of_entries_per_step(
    node_url: str, tenant: str
) -> None:
    # maxlen=150k used to read 150k entries with XREVRANGE inside one script (server blocked).
    # One node: MONITOR watches one server's commands.
    valkey_url = node_url
    valkey_client = valkey.Valkey.from_url(node_url, socket_timeout=30)
    stream = keys.events_key(tenant)
    ids = [f"{i + 1}-0" for i in range(200_000)]
    pipe = valkey_client.pipeline(transaction=False)
    for index, stream_id in enumerate(ids):
        pipe.xadd(stream, {"event": b"{}"}, id=stream_id)
        if index % 10_000 == 9_999:
            pipe.execute()
    pipe.execute()
    valkey_client.xgroup_create(stream, "g", "0")
    valkey_client.xreadgroup("g", "c", {stream: ">"}, count=60_000)
    valkey_client.xack(stream, "g", *ids[:40_000], *ids[40_010:60_000])  # 40_000..40_009 pending

    results = []
    started = time.monotonic()
    commands = _commands_run_during(
        valkey_url,
        valkey_client,
        lambda: results.append(trim_events(valkey_client, tenant, maxlen=150_000)),
    )
    print(
        f"held-back trim of 200k entries: {time.monotonic() - started:.3f} s, {len(commands)} commands"
    )
    assert results == [(40_000, ids[40_000], "g")]  # stops at the oldest pending entry
    assert valkey_client.xpending(stream, "g")["pending"] == 10
    assert [i.decode() for i, _ in valkey_client.xrange(stream, count=1)] == [ids[40_000]]
    reads = [c for c in commands if c.startswith(("XRANGE", "XREVRANGE"))]
    assert reads and all(int(c.split()[-1]) <= TRIM_STEP + 1 for c in reads), reads[:3]

    valkey_client.xack(stream, "g", *ids[40_000:40_010])
    started = time.monotonic()
    commands = _commands_run_during(
        valkey_url,
        valkey_client,
        lambda: results.append(trim_events(valkey_client, tenant, maxlen=150_000)),
    )
    print(f"trim to maxlen=150k: {time.monotonic() - started:.3f} s, {len(commands)} commands")
    assert results[1] == (10_000, ids[50_000], "")
    assert valkey_client.xlen(stream) == 150_000
    assert [i.decode() for i, _ in valkey_client.xrange(stream, count=1)] == [ids[50_000]]
    assert [i.decode() for i, _ in valkey_client.xrevrange(stream, count=1)] == [ids[-1]]
    reads = [c for c in commands if c.startswith(("XRANGE", "XREVRANGE"))]
    assert reads and all(int(c.split()[-1]) <= TRIM_STEP + 1 for c in reads), reads[:3]
    # unread entries (past the group's last-delivered id) are not trimmed either
    assert trim_events(valkey_client, tenant, maxlen=0) == (10_000, "60000-1", "g")
    valkey_client.close()


def test_async_client_type_is_accepted_by_the_twin(valkey_url: str) -> None:
    sub = AsyncExecutionEventSubscriber(valkey.asyncio.Valkey.from_url(valkey_url), group="g")
    assert repr(sub).startswith("AsyncExecutionEventSubscriber(group='g'")
    asyncio.run(sub.client.aclose())


@pytest.mark.parametrize("msetex", [True, False], ids=["native", "no-msetex"])
def test_the_loop_uses_native_commands_or_the_scripts_with_the_same_outcome(
    api: str, tenant: str, msetex: bool
) -> None:
    # Valkey 9.1 takes MULTI/MSETEX/XACK/XREADGROUP; a server without MSETEX (renamed away
    # here, as on Valkey < 9.1) falls back to the Lua scripts. Each key handled once either way.
    from servers import ControlledServer

    config = {} if msetex else {"rename-command": 'MSETEX ""'}
    with ControlledServer(config=config) as server:
        client = valkey.Valkey.from_url(server.url)
        pub = ExecutionEventPublisher(make_client(server.url, retries=0))
        events = [_step(i) for i in range(250)]
        pub.publish_many(tenant, events + events[:40])  # forty published twice
        seen: list[EventMeta] = []
        sub = _subscriber(api, server.url)
        try:
            _run(
                sub,
                tenant,
                lambda e, m: seen.append(m),
                lambda: sub.stats.handled + sub.stats.duplicates == 290,
            )
            # A failing handler releases its lease (the script path) and is retried.
            failures = {"left": 1}

            def flaky(event: Any, meta: EventMeta) -> None:
                if failures["left"]:
                    failures["left"] -= 1
                    raise RuntimeError("boom")
                seen.append(meta)

            pub.publish(tenant, _step(999))
            _run(sub, tenant, flaky, lambda: len(seen) == 251, timeout=15)
        finally:
            if api == "sync":
                sub.close()
                sub.client.close()
            close_all()
        assert len({m.idempotency_key for m in seen}) == len(seen) == 251
        assert sub.stats.duplicates == 40 and sub.stats.failed == 1
        assert _pending(client, tenant) == 0
        stats = client.info("commandstats")
        assert ("cmdstat_msetex" in stats) is msetex
        assert ("cmdstat_exec" in stats) is msetex  # done marks + acks in MULTI/EXEC
        pub.client.close()
        client.close()


def test_one_batch_mixing_bad_keys_extra_fields_and_duplicates(
    publisher: ExecutionEventPublisher,
    valkey_url: str,
    valkey_client: valkey.Valkey,
    tenant: str,
    api: str,
) -> None:
    # New entries are read and leased in one script call: leases taken for entries that turn
    # out malformed are given back, and a later valid copy of the same key is still handled.
    stream = keys.events_key(tenant)
    good = _step(1)
    wire = good.to_json()
    idem = event_idempotency_key(good)
    ids = [
        valkey_client.xadd(stream, {"kind": "step.committed", "idem": idem, "event": "{not json"}),
        valkey_client.xadd(
            stream, {"kind": "step.committed", "idem": idem, "event": wire, "x": "1"}
        ),
        valkey_client.xadd(stream, {"kind": "step.committed", "idem": "a:b", "event": wire}),
        valkey_client.xadd(stream, {"kind": "step.failed", "idem": "k-kind", "event": wire}),
        valkey_client.xadd(stream, {"kind": "step.committed", "idem": "", "event": wire}),
        valkey_client.xadd(stream, {"kind": "step.committed", "idem": idem, "event": wire}),
    ]
    ids = [i.decode() for i in ids]
    seen: list[EventMeta] = []
    sub = _subscriber(api, valkey_url, lease_ms=60_000)
    _run(sub, tenant, lambda e, m: seen.append(m), lambda: sub.stats.dead_lettered == 4)
    assert [m.stream_id for m in seen] == [ids[1]] and sub.stats.duplicates == 1
    letters = {
        f[b"origId"].decode(): f[b"error"].decode()
        for _, f in valkey_client.xrange(keys.dlq_key(tenant))
    }
    assert set(letters) == {ids[0], ids[2], ids[3], ids[4]}
    assert "Malformed JSON" in letters[ids[0]] and "character ':'" in letters[ids[2]]
    assert "does not match" in letters[ids[3]] and "non-empty" in letters[ids[4]]
    assert valkey_client.get(keys.dedup_key(tenant, "g", idem)) == f"d:{ids[1]}".encode()
    # The leases of malformed entries were released at once (not left for lease_ms = 60 s).
    assert valkey_client.get(keys.dedup_prefix(tenant, "g") + "a:b") is None
    assert valkey_client.get(keys.dedup_key(tenant, "g", "k-kind")) is None
    assert _pending(valkey_client, tenant) == 0
