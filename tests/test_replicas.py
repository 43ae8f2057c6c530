"""Replica-confirmed writes (min_replicas) against real primaries and replicas."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import valkey
from servers import ControlledServer

import execctx_nb as ec
from execctx_nb.errors import NotDurableError
from execctx_nb.events import StepCommitted


def _replicate(replica: ControlledServer, primary: ControlledServer) -> None:
    with valkey.Valkey.from_url(replica.url) as c:
        c.execute_command("REPLICAOF", "127.0.0.1", primary.port)
    end = time.monotonic() + 15
    while time.monotonic() < end:
        with valkey.Valkey.from_url(primary.url) as c:
            replica_info = c.info("replication").get("slave0")
            if isinstance(replica_info, dict) and replica_info.get("state") == "online":
                return
        time.sleep(0.05)
    raise TimeoutError("the replica did not connect")


def test_writes_wait_for_replicas_and_say_when_they_are_not_durable(
    tenant: str, tmp_path: Path
) -> None:
    scope = ec.ExecutionScope(tenant, "run-1")
    with ControlledServer() as primary, ControlledServer() as replica:
        _replicate(replica, primary)
        with ec.create_valkey_execution_context_store(
            primary.url, cold_store=tmp_path, min_replicas=1
        ) as store:
            store.put_steps(
                scope,
                [
                    ec.StepEnvelope(execution_id="run-1", step_id=f"s{i}", data=[{"i": i}])
                    for i in range(20)
                ],
            )
            store.set_flow_vars(tenant, "f", {"k": 1})
            with valkey.Valkey.from_url(replica.url) as r:  # confirmed: the replica has them
                assert r.exists(ec.keys.step_key(tenant, "run-1", "s19")) == 1
            with ec.ExecutionEventPublisher(url=primary.url, min_replicas=1) as pub:
                pub.publish(tenant, StepCommitted(execution_id="run-1", step_id="s0"))
            replica.freeze()  # the replica stops acknowledging
            try:
                with pytest.raises(NotDurableError, match="not confirmed durable") as info:
                    store.put_step(
                        scope, ec.StepEnvelope(execution_id="run-1", step_id="late", data=[])
                    )
                assert "0 of the 1 replicas" in str(info.value) and "again" in str(info.value)
                assert isinstance(info.value, ec.StoreUnavailableError)
                assert store.health is ec.HealthState.DEGRADED
                with (
                    ec.ExecutionEventPublisher(url=primary.url, min_replicas=1) as pub,
                    pytest.raises(NotDurableError, match="publish them again"),
                ):
                    pub.publish(tenant, StepCommitted(execution_id="run-1", step_id="s1"))
            finally:
                replica.thaw()
            # Writing it again is safe, and is confirmed once the replica is back.
            store.put_step(scope, ec.StepEnvelope(execution_id="run-1", step_id="late", data=[]))
        with pytest.raises(ValueError, match="min_replicas"):
            ec.create_valkey_execution_context_store(primary.url, min_replicas=-1)
