"""AsyncExecutionContextStore: the twin of the sync store, on the same keys, with the same errors."""

from __future__ import annotations

import asyncio
import inspect
import re
import time
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from servers import ControlledServer

import execctx_nb as ec
from execctx_nb._store._async import (
    AsyncExecutionContextStore,
    create_async_valkey_execution_context_store,
)
from execctx_nb.errors import (
    IdempotencyConflictError,
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


def test_every_async_method_is_a_documented_twin_of_a_sync_one() -> None:
    def public(cls: type) -> set[str]:
        return {n for n, _ in inspect.getmembers(cls, inspect.isfunction) if not n.startswith("_")}

    assert public(AsyncExecutionContextStore) - {"aclose"} == public(ec.ExecutionContextStore) - {
        "close"
    }


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


def test_both_apis_document_every_method_alike() -> None:
    # One source: help() on either store shows the same sections (Raises included), and no
    # docstring sends the reader to "the sync store".
    for name, method in inspect.getmembers(ec.ExecutionContextStore, inspect.isfunction):
        if name.startswith("_") and name not in ("__init__",):
            continue
        twin = getattr(AsyncExecutionContextStore, "aclose" if name == "close" else name)
        sync_doc, async_doc = inspect.getdoc(method) or "", inspect.getdoc(twin) or ""
        assert ("Raises" in sync_doc) == ("Raises" in async_doc), name
        assert "sync store" not in async_doc and "see the" not in async_doc.lower(), name
    assert "Raises" in (inspect.getdoc(AsyncExecutionContextStore.put_step) or "")
