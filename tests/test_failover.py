"""Failover for real: a cluster primary SIGKILLed during a write loop (min_replicas=1)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from clusters import Cluster
from servers import kill_and_reap

import execctx_nb as ec
from execctx_nb.errors import StoreUnavailableError


@pytest.mark.slow
def test_a_killed_cluster_primary_loses_no_acknowledged_write(tenant: str, tmp_path: Path) -> None:
    with Cluster(primaries=3, replicas=1) as cluster:
        cluster.wait_replicas_online()
        scope = ec.ExecutionScope(tenant, "run-1")
        acked: list[int] = []
        failed = 0
        gaps: list[float] = []
        with ec.create_valkey_execution_context_store(
            cluster.url, cold_store=tmp_path, min_replicas=1, timeout=1
        ) as store:
            last_ok = time.monotonic()
            for i in range(150):
                if i == 50:
                    kill_and_reap(cluster.servers[0])  # a primary, SIGKILL
                try:
                    env = ec.StepEnvelope(execution_id="run-1", step_id=f"s{i}", data=[{"i": i}])
                    store.put_step(scope, env)
                except StoreUnavailableError:
                    failed += 1  # not acknowledged (down, moved, or not confirmed durable)
                    continue
                now = time.monotonic()
                gaps.append(now - last_ok)
                last_ok = now
                acked.append(i)
        print(f"acknowledged {len(acked)}, refused {failed}, longest pause {max(gaps):.2f} s")
        assert failed > 0 and len(acked) > 50  # the kill was felt, and writes went on
        survivor = f"redis://127.0.0.1:{cluster.ports[1]}"
        with ec.create_valkey_execution_context_store(survivor, cold_store=tmp_path) as reader:
            got = reader.get_steps(scope, [f"s{i}" for i in acked])
        lost = [i for i, env in zip(acked, got, strict=True) if env is None]
        assert lost == []  # every acknowledged write survived the failover


@pytest.mark.slow
def test_a_sentinel_failover_loses_no_acknowledged_write_and_the_store_follows(
    tenant: str, tmp_path: Path
) -> None:
    from clusters import SentinelSetup

    with SentinelSetup(replicas=1) as setup:
        old_primary = setup.primary_port()
        scope = ec.ExecutionScope(tenant, "run-1")
        acked: list[int] = []
        failed, after = 0, 0
        with ec.create_valkey_execution_context_store(
            setup.url, cold_store=tmp_path, min_replicas=1, timeout=1
        ) as store:
            started = time.monotonic()
            failed_over_at = None
            for i in range(2000):
                if i == 30:
                    setup.failover()
                    failed_over_at = time.monotonic()
                try:
                    env = ec.StepEnvelope(execution_id="run-1", step_id=f"s{i}", data=[{"i": i}])
                    store.put_step(scope, env)
                except StoreUnavailableError:
                    failed += 1
                else:
                    acked.append(i)
                    after += failed_over_at is not None
                if after >= 20 or time.monotonic() - started > 60:
                    break
                time.sleep(0.02)
            assert store.health is not ec.HealthState.READ_ONLY  # it followed the new primary
        assert setup.primary_port() != old_primary and after >= 20
        with ec.create_valkey_execution_context_store(setup.url, cold_store=tmp_path) as reader:
            got = reader.get_steps(scope, [f"s{i}" for i in acked])
        assert [i for i, env in zip(acked, got, strict=True) if env is None] == []
