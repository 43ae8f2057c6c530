"""Listings from the index, on one node and on a cluster: a tenant's size, not the keyspace's."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import valkey
from twins import APIS, store_for

import execctx_nb as ec
from execctx_nb import keys

# The contract table runs on one node and on a real 3-primary cluster.
pytestmark = pytest.mark.both_topologies


@pytest.fixture(params=APIS)
def store(request: pytest.FixtureRequest, valkey_url: str, tmp_path: Path) -> Iterator[Any]:
    with store_for(request.param, valkey_url, cold_store=tmp_path) as s:
        yield s


def _env(execution: str, step: str) -> ec.StepEnvelope:
    return ec.StepEnvelope(execution_id=execution, step_id=step, data=[{"x": 1}])


def test_writes_keep_the_index_and_listings_read_it(
    store: Any, valkey_client: valkey.Valkey, tenant: str
) -> None:
    for n, execution in enumerate(["run-a", "run-b", "run-c"]):
        scope = ec.ExecutionScope(tenant, execution)
        store.put_steps(scope, [_env(execution, f"s{i}") for i in range(n + 1)])
        time.sleep(0.002)  # distinct first-write times
    assert store.list_executions(tenant) == ["run-a", "run-b", "run-c"]
    recent = store.recent_executions(tenant)
    assert [e for e, _ in recent] == ["run-c", "run-b", "run-a"]  # newest first
    assert recent[0][1] > recent[-1][1] > recent[-1][1].replace(year=2000)
    assert store.recent_executions(tenant, limit=1) == recent[:1]
    scope = ec.ExecutionScope(tenant, "run-c")
    assert store.list_steps(scope) == ["s0", "s1", "s2"]
    index = valkey_client.zrange(keys.steps_index_key(tenant, "run-c"), 0, -1)
    assert sorted(index) == [b"s0", b"s1", b"s2"]
    store.put_step(scope, ec.StepEnvelope(execution_id="run-c", step_id="s0", attempt=1, data=[]))
    assert store.list_steps(scope) == ["s0", "s1", "s2"]  # a new attempt, no new entry
    assert store.delete_execution(scope) == 6  # 3 steps x (step key + attempts hash)
    assert store.list_executions(tenant) == ["run-a", "run-b"]
    assert valkey_client.exists(keys.steps_index_key(tenant, "run-c")) == 0


def test_an_engine_that_writes_only_step_keys_is_read_and_reindexed(
    store: Any, valkey_client: valkey.Valkey, tenant: str
) -> None:
    # A reference-engine stand-in: plain SETs of the protocol's step keys, nothing else.
    for execution, steps in {"ext-1": ["a", "b"], "ext-2": ["c"]}.items():
        for step in steps:
            wire = _env(execution, step).to_json()
            valkey_client.set(keys.step_key(tenant, execution, step), wire)
    assert store.list_executions(tenant) == ["ext-1", "ext-2"]  # no index yet: scanned
    assert [e.step_id for e in store.get_execution(ec.ExecutionScope(tenant, "ext-1"))] == [
        "a",
        "b",
    ]
    assert store.reindex(tenant) == 3
    assert store.reindex(tenant) == 3  # idempotent
    assert valkey_client.zcard(keys.executions_index_key(tenant)) == 2
    assert store.list_steps(ec.ExecutionScope(tenant, "ext-1")) == ["a", "b"]
    assert json.loads(valkey_client.get(keys.step_key(tenant, "ext-2", "c")))["stepId"] == "c"


def test_listing_never_scans_the_keyspace(
    store: Any, valkey_url: str, valkey_client: valkey.Valkey, tenant: str
) -> None:
    # Keys of another tenant must not be walked: the listing reads two sorted sets.
    other = f"{tenant}other"
    pipe = valkey_client.pipeline(transaction=False)
    for i in range(2000):
        pipe.set(keys.step_key(other, f"e{i}", "s"), "{}")
    pipe.execute()
    store.put_step(ec.ExecutionScope(tenant, "run-1"), _env("run-1", "s"))
    if isinstance(valkey_client, valkey.Valkey):
        before = valkey_client.info("commandstats").get("cmdstat_scan", {}).get("calls", 0)
        assert store.list_executions(tenant) == ["run-1"]
        assert store.list_steps(ec.ExecutionScope(tenant, "run-1")) == ["s"]
        after = valkey_client.info("commandstats").get("cmdstat_scan", {}).get("calls", 0)
        assert after == before
    else:
        assert store.list_executions(tenant) == ["run-1"]


def test_a_planted_index_member_is_left_out(
    store: Any, valkey_client: valkey.Valkey, tenant: str
) -> None:
    scope = ec.ExecutionScope(tenant, "run-1")
    store.put_step(scope, _env("run-1", "good"))
    valkey_client.zadd(keys.steps_index_key(tenant, "run-1"), {"../../evil": 1, "a:b": 2})
    valkey_client.zadd(keys.executions_index_key(tenant), {"x y": 1e300})
    assert store.list_steps(scope) == ["good"]
    assert [e.step_id for e in store.get_execution(scope)] == ["good"]
    assert store.list_executions(tenant) == ["run-1"]
