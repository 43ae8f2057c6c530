"""AsyncExecutionContextStore: the twin of the sync store, on the same keys, with the same errors."""

from __future__ import annotations

import asyncio
import inspect
import re
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import valkey
from polars.testing import assert_frame_equal
from servers import ControlledServer, free_port

import execctx_nb as ec
from execctx_nb._store._async import (
    AsyncExecutionContextStore,
    create_async_valkey_execution_context_store,
)
from execctx_nb.errors import (
    ColdTierError,
    IdempotencyConflictError,
    LeaseError,
    StoreUnavailableError,
)

HASH = "d" * 64


def envelope(step: str, data: object, *, attempt: int = 0) -> ec.StepEnvelope:
    return ec.StepEnvelope(
        execution_id="run-1", step_id=step, attempt=attempt, data=data, schema={}, schema_hash=HASH
    )


def test_async_and_sync_stores_share_one_layout(
    valkey_url: str, tenant: str, tmp_path: Path
) -> None:
    scope = ec.ExecutionScope(tenant, "run-1")
    frame = pl.DataFrame({"c": pl.Series(["a", "b"], dtype=pl.Categorical)})

    async def scenario() -> list[ec.StepEnvelope]:
        async with create_async_valkey_execution_context_store(
            valkey_url, cold_store=tmp_path
        ) as store:
            await store.put_step(scope, envelope("a", [{"x": 1}]))
            await store.put_step(scope, envelope("a", [{"x": 1}]))  # same write
            with pytest.raises(IdempotencyConflictError):
                await store.put_step(scope, envelope("a", [{"x": 2}]))
            await store.put_steps(
                scope, [envelope("b", frame), envelope("a", [{"x": 3}], attempt=1)]
            )
            assert await store.list_steps(scope) == ["a", "b"]
            assert await store.list_executions(tenant) == ["run-1"]
            older = await store.get_step(scope, "a", attempt=0)
            assert older is not None and older.data == [{"x": 1}]
            await store.set_flow_vars(tenant, "f", {"k": [1]})
            assert await store.get_flow_vars(tenant, "f") == {"k": [1]}
            assert store.health is ec.HealthState.HEALTHY
            assert await store.check_health() is ec.HealthState.HEALTHY
            return await store.get_execution(scope)

    from_async = asyncio.run(scenario())
    with ec.create_valkey_execution_context_store(valkey_url, cold_store=tmp_path) as sync:
        from_sync = sync.get_execution(scope)
    assert [e.step_id for e in from_async] == [e.step_id for e in from_sync] == ["a", "b"]
    assert from_async[0] == from_sync[0] and from_async[0].attempt == 1
    assert_frame_equal(from_async[1].to_polars(), frame)
    assert_frame_equal(from_sync[1].to_polars(), frame)


def test_async_restore_without_an_archive_names_it(
    valkey_url: str, tenant: str, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with create_async_valkey_execution_context_store(
            valkey_url, cold_store=tmp_path
        ) as store:
            with pytest.raises(
                ColdTierError, match=r"No archive of execution `run-9` \(flow `f`\)"
            ):
                await store.restore_execution(tenant, "f", "run-9")

    asyncio.run(scenario())


def test_async_leases_archive_and_delete(valkey_url: str, tenant: str, tmp_path: Path) -> None:
    scope = ec.ExecutionScope(tenant, "run-1")

    async def scenario() -> None:
        async with create_async_valkey_execution_context_store(
            valkey_url, cold_store=tmp_path
        ) as store:
            lease = await store.acquire_lease(scope, "w1", 5000)  # no expiry during the checks
            assert lease is not None and await store.acquire_lease(scope, "w2", 100) is None
            await store.renew_lease(lease, 100)  # now it expires
            await asyncio.sleep(0.25)
            other = await store.acquire_lease(scope, "w2", 5000)
            assert other is not None
            with pytest.raises(LeaseError):
                await store.renew_lease(lease)
            assert await store.release_lease(lease) is False
            assert await store.release_lease(other) is True
            await store.put_step(scope, envelope("s", [{"v": 1}]))
            await store.archive_execution(scope, "flow", evict=True)
            assert await store.get_step(scope, "s") is None
            restored = await store.restore_execution(tenant, "flow", "run-1")
            assert [e.data for e in restored] == [[{"v": 1}]]
            assert await store.delete_flow_vars(tenant, "flow") == 0
            assert await store.delete_execution(scope) == 2

    asyncio.run(scenario())


def test_every_async_method_is_a_twin_of_a_sync_one() -> None:
    def public(cls: type) -> set[str]:
        return {n for n, _ in inspect.getmembers(cls, inspect.isfunction) if not n.startswith("_")}

    assert public(AsyncExecutionContextStore) - {"aclose"} == public(ec.ExecutionContextStore) - {
        "close"
    }


def test_async_dead_server_raises_mapped_errors(
    valkey_url: str, tenant: str, tmp_path: Path
) -> None:
    scope = ec.ExecutionScope(tenant, "run-1")
    with ec.create_valkey_execution_context_store(valkey_url, cold_store=tmp_path) as live:
        live.put_step(scope, envelope("a", [{"x": 1}]))
        live.archive_execution(scope, "flow")  # so restore gets as far as Valkey
    lease = ec.Lease(tenant_id=tenant, execution_id="run-1", owner="w", token="w:1", ttl_ms=100)
    calls: dict[str, Callable[[AsyncExecutionContextStore], Coroutine[Any, Any, Any]]] = {
        "put_step": lambda s: s.put_step(scope, envelope("a", [{"x": 1}])),
        "put_steps": lambda s: s.put_steps(scope, [envelope("a", []), envelope("b", [])]),
        "get_step": lambda s: s.get_step(scope, "a"),
        "list_steps": lambda s: s.list_steps(scope),
        "get_execution": lambda s: s.get_execution(scope),
        "get_steps": lambda s: s.get_steps(scope, ["s00001", "s00002"]),
        "list_executions": lambda s: s.list_executions(tenant),
        "delete_execution": lambda s: s.delete_execution(scope),
        "get_flow_vars": lambda s: s.get_flow_vars(tenant, "f"),
        "set_flow_vars": lambda s: s.set_flow_vars(tenant, "f", {"a": 1}),
        "delete_flow_vars": lambda s: s.delete_flow_vars(tenant, "f", ["a"]),
        "acquire_lease": lambda s: s.acquire_lease(scope, "w", 100),
        "renew_lease": lambda s: s.renew_lease(lease),
        "release_lease": lambda s: s.release_lease(lease),
        "archive_execution": lambda s: s.archive_execution(scope, "flow"),
        "restore_execution": lambda s: s.restore_execution(tenant, "flow", "run-1"),
        "check_health": lambda s: s.check_health(),
    }
    public = {
        n
        for n, _ in inspect.getmembers(AsyncExecutionContextStore, inspect.isfunction)
        if not n.startswith("_")
    }
    assert set(calls) == public - {"aclose", "borrow"}, "a public method is missing from this test"
    dead = f"redis://127.0.0.1:{free_port()}"

    async def scenario() -> None:
        async with create_async_valkey_execution_context_store(
            dead, cold_store=tmp_path, timeout=0.3
        ) as store:
            for name, call in calls.items():
                start = time.monotonic()
                with pytest.raises(StoreUnavailableError) as info:
                    await call(store)
                assert isinstance(info.value.__cause__, valkey.exceptions.ValkeyError | OSError), (
                    name
                )
                assert time.monotonic() - start <= 0.3 + 0.6, name
                assert store.health is ec.HealthState.UNAVAILABLE

    asyncio.run(scenario())


def test_async_frozen_server_is_bounded_and_recovers(tenant: str, tmp_path: Path) -> None:
    scope = ec.ExecutionScope(tenant, "run-1")

    async def scenario(server: ControlledServer) -> None:
        async with create_async_valkey_execution_context_store(
            server.url, cold_store=tmp_path, timeout=0.5
        ) as store:
            await store.put_step(scope, envelope("a", [{"x": 1}]))
            server.freeze()
            try:
                start = time.monotonic()
                with pytest.raises(StoreUnavailableError, match="did not answer") as info:
                    await store.put_step(scope, envelope("b", [{"x": 2}]))
                took = time.monotonic() - start
                assert took <= 0.5 + 0.6
                stated = re.search(r"gave up after (\d+\.\d+) s \(bound 0\.5 s", str(info.value))
                assert stated is not None, str(info.value)  # real time spent, and the bound
                assert abs(float(stated[1]) - took) <= 0.1, (stated[0], took)
            finally:
                server.thaw()
            await store.put_step(scope, envelope("b", [{"x": 2}]))
            assert await store.list_steps(scope) == ["a", "b"]

    with ControlledServer() as server:
        asyncio.run(scenario(server))


def test_async_batches_and_wrong_types_behave_as_in_the_sync_store(
    valkey_url: str, tenant: str, tmp_path: Path
) -> None:
    from execctx_nb import keys
    from execctx_nb._store._write import PUT_BATCH_ENVELOPES
    from execctx_nb.errors import EnvelopeDecodeError

    scope = ec.ExecutionScope(tenant, "run-1")
    n = PUT_BATCH_ENVELOPES + 5  # two script calls, pipelined
    batch = [envelope(f"s{i:04d}", [{"v": i}]) for i in range(n)]
    bad = keys.step_key(tenant, "run-1", "bad")
    with valkey.Valkey.from_url(valkey_url) as raw:
        raw.script_flush()  # NOSCRIPT first: loaded once and the batch resent
        raw.hset(bad, "x", "y")

    async def scenario() -> None:
        async with create_async_valkey_execution_context_store(
            valkey_url, cold_store=tmp_path
        ) as store:
            stored = await store.put_steps(scope, batch)
            assert await store.put_steps(scope, batch) == stored
            got = await store.get_steps(scope, [e.step_id for e in batch] + ["missing"])
            assert [e.data if e else None for e in got] == [[{"v": i}] for i in range(n)] + [None]
            with pytest.raises(IdempotencyConflictError, match=f"s{n - 1:04d}"):
                await store.put_steps(scope, [*batch[:-1], envelope(f"s{n - 1:04d}", [{"v": -1}])])
            with pytest.raises(EnvelopeDecodeError, match="Malformed value at key") as info:
                await store.get_steps(scope, ["s0000", "bad"])
            assert bad in str(info.value)

    asyncio.run(scenario())
