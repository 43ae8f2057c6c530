"""Fault tests of the event stream against real servers and real consumer processes.

Nothing is mocked: consumers are separate processes killed with SIGKILL, and the server is a
real valkey-server killed with SIGKILL and restarted (AOF on) by tests/servers.ControlledServer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import valkey

from execctx_nb import (
    AsyncExecutionEventSubscriber,
    EventMeta,
    ExecutionEventPublisher,
    ExecutionEventSubscriber,
    keys,
    tail,
)
from execctx_nb._connection import make_async_client, make_client
from execctx_nb._events._subscriber import Handler
from execctx_nb._idempotency import event_idempotency_key
from execctx_nb.errors import StoreUnavailableError
from execctx_nb.events import StepCommitted
from tests.servers import ControlledServer

HELPER = Path(__file__).with_name("_consumer_proc.py")
ROOT = Path(__file__).resolve().parents[1]
COUNT = 50  # XREADGROUP COUNT: the in-flight batch, so the bound on repeats


def _spawn(
    url: str,
    tenant: str,
    name: str,
    out: Path,
    logs: Path,
    *,
    fail_rate: float,
    seed: int,
    handler_ms: int = 0,
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with (logs / f"{name}.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(HELPER),
                url,
                tenant,
                "workers",
                name,
                str(out),
                str(fail_rate),
                str(seed),
                "3000",
                "3000",
                str(COUNT),
                str(handler_ms),
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
        )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"ready"
    proc.stdout.close()
    return proc


def _handled(out_dir: Path) -> list[str]:
    lines: list[str] = []
    for path in out_dir.glob("*.out"):
        lines.extend(line.split()[0] for line in path.read_text().splitlines() if line)
    return lines


def _publish_all(
    url: str,
    tenant: str,
    events: list[StepCommitted],
    done: threading.Event,
    republished: list[int],
) -> None:
    pub = ExecutionEventPublisher(make_client(url, retries=0))
    for start in range(0, len(events), 100):
        chunk = events[start : start + 100]
        while True:
            try:
                pub.publish_many(tenant, chunk)
                break
            except StoreUnavailableError:
                # Outcome unknown: publish the chunk again, the subscribers drop duplicates.
                republished.append(len(chunk))
                time.sleep(0.2)
        time.sleep(0.05)  # spread publishing over the run so the faults hit live traffic
    pub.close()
    done.set()


@pytest.mark.slow
def test_effectively_once_through_consumer_and_server_kills(tmp_path: Path) -> None:
    rng = random.Random(5)
    unique = [
        StepCommitted(execution_id=f"run-{i // 100}", step_id=f"s{i % 100}", attempt=0, row_count=i)
        for i in range(10_000)
    ]
    events = list(unique)
    for twin in rng.sample(unique, 500):  # 5% published twice, the copy somewhere later
        position = events.index(twin)
        events.insert(rng.randint(position + 1, len(events)), twin)
    expected = {event_idempotency_key(e) for e in unique}
    tenant = f"fault{rng.randrange(10**9)}"
    logs = tmp_path / "logs"
    logs.mkdir()

    with ControlledServer(aof=True) as server:
        # 1 ms per handler call: consumers are busy when the faults hit, mid-batch.
        a = _spawn(
            server.url, tenant, "a", tmp_path / "a.out", logs, fail_rate=0.01, seed=1, handler_ms=1
        )
        b = _spawn(
            server.url, tenant, "b", tmp_path / "b.out", logs, fail_rate=0.01, seed=2, handler_ms=1
        )
        published, republished = threading.Event(), []
        publisher = threading.Thread(
            target=_publish_all, args=(server.url, tenant, events, published, republished)
        )
        publisher.start()
        procs = [a, b]
        try:
            _wait(lambda: len(_handled(tmp_path)) >= 2_500, 30, "2,500 events handled")
            a.send_signal(signal.SIGKILL)  # mid-run, mid-batch: no chance to record anything
            a.wait()
            procs.append(
                _spawn(
                    server.url,
                    tenant,
                    "c",
                    tmp_path / "c.out",
                    logs,
                    fail_rate=0.01,
                    seed=3,
                    handler_ms=1,
                )
            )
            _wait(lambda: len(_handled(tmp_path)) >= 5_000, 30, "5,000 events handled")
            old_pid = server.pid
            server.restart(down_for=0.5)  # SIGKILL, AOF (appendfsync always) keeps everything
            assert server.pid != old_pid
            publisher.join(60)
            assert published.is_set(), "publisher did not finish"
            client = make_client(server.url)
            stream, dlq = keys.events_key(tenant), keys.dlq_key(tenant)

            def drained() -> bool:
                try:
                    group = client.xinfo_groups(stream)[0]
                except (valkey.exceptions.TimeoutError, valkey.exceptions.ConnectionError):
                    return False  # the restarted server is still busy: ask again
                return (
                    expected <= set(_handled(tmp_path))
                    and group["pending"] == 0
                    and group["lag"] == 0
                )

            _wait(drained, 40, "every event handled and nothing pending")
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            exits = [proc.wait(15) for proc in procs]
        assert exits[1:] == [0, 0], "consumers did not stop gracefully on SIGTERM"
        assert client.xlen(dlq) == 0
        assert client.xpending(stream, "workers")["pending"] == 0

    handled = _handled(tmp_path)
    repeats = Counter(handled) - Counter(set(handled))
    assert set(handled) == expected
    # The only allowed repeats: events whose handler finished in "a" before it was killed,
    # at most its in-flight batch.
    assert sum(repeats.values()) <= COUNT, repeats.most_common(5)
    print(
        f"repeats: {sum(repeats.values())} (bound {COUNT}); republished chunks: {len(republished)}"
    )
    assert republished, "the server outage should have hit the publisher too"
    a_keys = {line.split()[0] for line in (tmp_path / "a.out").read_text().splitlines()}
    assert set(repeats) <= a_keys
    for name in ("b", "c"):
        text = (logs / f"{name}.log").read_text()
        # The outage may be absorbed by the command client's bounded retries, so it is not
        # necessarily logged; what must not happen is a lost group (AOF kept it).
        assert "is gone" not in text


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for: {what}")
        time.sleep(0.1)


@contextlib.contextmanager
def _loop_running(
    sub: ExecutionEventSubscriber, tenant: str, handler: Handler, *, block_ms: int = 200
) -> Iterator[threading.Thread]:
    """Run ``sub.run_loop`` in a thread; stop and join it even when the test fails, so a
    failing test never leaves a loop running (and retrying) into the tests after it."""
    stop = threading.Event()
    runner = threading.Thread(
        target=sub.run_loop, args=(tenant, handler), kwargs={"stop": stop, "block_ms": block_ms}
    )
    runner.start()
    try:
        yield runner
    finally:
        stop.set()
        runner.join(5)
    assert not runner.is_alive()


def test_loop_rides_out_a_server_outage(tmp_path: Path) -> None:
    with ControlledServer(aof=True) as server:
        tenant = "outage"
        sub = ExecutionEventSubscriber(
            make_client(server.url),
            group="g",
            min_idle_ms=1000,
            lease_ms=1000,
            claim_interval_s=0.2,
            handle_signals=False,
        )
        pub = ExecutionEventPublisher(make_client(server.url, retries=0))
        seen: list[str] = []
        with _loop_running(sub, tenant, lambda e, m: seen.append(m.idempotency_key)):
            pub.publish(tenant, StepCommitted(execution_id="r", step_id="before"))
            _wait(lambda: len(seen) == 1, 10, "first event")
            server.kill()
            _wait(lambda: sub.health.state == "unavailable", 10, "health unavailable")
            with pytest.raises(StoreUnavailableError, match="nothing of this batch was sent"):
                pub.publish(tenant, StepCommitted(execution_id="r", step_id="during"))
            time.sleep(1.0)
            failures = sub.health.failures
            assert 1 <= failures <= 12  # backoff, not a busy loop
            server.start()
            pub.publish(tenant, StepCommitted(execution_id="r", step_id="after"))
            _wait(lambda: len(seen) == 2, 15, "event after restart")
            assert sub.health.state == "ok" and not sub.health.lost_state


def test_lost_group_after_restart_without_persistence_is_recreated_and_reported() -> None:
    with ControlledServer(aof=False) as server:
        tenant = "lost"
        sub = ExecutionEventSubscriber(
            make_client(server.url), group="g", handle_signals=False, claim_interval_s=0.2
        )
        pub = ExecutionEventPublisher(make_client(server.url, retries=0))
        seen: list[str] = []
        with _loop_running(sub, tenant, lambda e, m: seen.append(m.kind)):
            pub.publish(tenant, StepCommitted(execution_id="r", step_id="one"))
            _wait(lambda: len(seen) == 1, 10, "first event")
            server.restart(down_for=0.2)  # no AOF: stream, group and marks are gone
            _wait(
                lambda: sub.health.state == "ok" and sub.health.lost_state,
                15,
                "lost state reported",
            )
            pub.publish(tenant, StepCommitted(execution_id="r", step_id="two"))
            _wait(lambda: len(seen) == 2, 10, "event after the group was recreated")
            assert sub.stats.groups_recreated == 1


def test_sigterm_stops_a_consumer_process_gracefully(
    tmp_path: Path, valkey_url: str, tenant: str
) -> None:
    proc = _spawn(
        valkey_url, tenant, "solo", tmp_path / "solo.out", tmp_path, fail_rate=0.0, seed=0
    )
    ExecutionEventPublisher(make_client(valkey_url, retries=0)).publish_many(
        tenant, [StepCommitted(execution_id="r", step_id=f"s{i}") for i in range(20)]
    )
    _wait(lambda: len(_handled(tmp_path)) == 20, 10, "20 events handled")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert time.monotonic() - started < 5  # block_ms=200 plus one batch, not a timeout
    assert "got SIGTERM" in (tmp_path / "solo.log").read_text()


def test_tail_resumes_after_a_server_restart() -> None:
    with ControlledServer(aof=True) as server:
        pub = ExecutionEventPublisher(make_client(server.url, retries=0))
        first = pub.publish("tailed", StepCommitted(execution_id="r", step_id="one"))
        stop = threading.Event()
        got: list[str] = []

        def follow() -> None:
            for stream_id, _ in tail(
                "tailed", client=make_client(server.url), from_id="0", block_ms=100, stop=stop
            ):
                got.append(stream_id)
                if len(got) == 2:
                    stop.set()

        runner = threading.Thread(target=follow)
        runner.start()
        _wait(lambda: got == [first], 10, "the first event")
        server.restart(down_for=0.5)
        second = pub.publish("tailed", StepCommitted(execution_id="r", step_id="two"))
        runner.join(15)
        assert not runner.is_alive() and got == [first, second]


def test_async_loop_rides_out_a_server_outage() -> None:
    with ControlledServer(aof=True) as server:
        pub = ExecutionEventPublisher(make_client(server.url, retries=0))
        seen: list[str] = []

        async def main() -> None:
            sub = AsyncExecutionEventSubscriber(
                make_async_client(server.url), group="g", handle_signals=False, claim_interval_s=0.2
            )
            stop = asyncio.Event()
            task = asyncio.create_task(
                sub.run_loop(
                    "async-outage", lambda e, m: seen.append(m.kind), stop=stop, block_ms=100
                )
            )

            async def until(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
                end = time.monotonic() + 15
                while not predicate():
                    assert time.monotonic() < end, what
                    await asyncio.sleep(0.05)

            pub.publish("async-outage", StepCommitted(execution_id="r", step_id="one"))
            await until(lambda: len(seen) == 1, "first event")
            server.kill()
            await until(lambda: sub.health.state == "unavailable", "unavailable")
            server.start()
            pub.publish("async-outage", StepCommitted(execution_id="r", step_id="two"))
            await until(lambda: len(seen) == 2, "event after restart")
            assert sub.health.state == "ok"
            stop.set()
            await asyncio.wait_for(task, 5)
            await sub.client.aclose()
            await sub.aclose()

        asyncio.run(main())


def test_frozen_server_publish_outcome_unknown_then_deduplicated() -> None:
    with ControlledServer(aof=False) as server:
        tenant = "frozen"
        pub = ExecutionEventPublisher(make_client(server.url, retries=0, timeout=0.5))
        pub.publish(tenant, StepCommitted(execution_id="r", step_id="warm"))
        event = StepCommitted(execution_id="r", step_id="x")
        server.freeze()  # SIGSTOP: the XADD is sent, the reply never comes in time
        try:
            with pytest.raises(StoreUnavailableError, match="may or may not have landed"):
                pub.publish(tenant, event)
        finally:
            server.thaw()
        pub.publish(tenant, event)  # the caller republishes, as the error says
        client = make_client(server.url)
        assert client.xlen(keys.events_key(tenant)) == 3  # the first try did land: a duplicate
        seen: list[str] = []
        sub = ExecutionEventSubscriber(client, group="g", handle_signals=False)
        with _loop_running(sub, tenant, lambda e, m: seen.append(m.stream_id), block_ms=100):
            _wait(lambda: sub.stats.handled + sub.stats.duplicates == 3, 10, "three entries seen")
        assert len(seen) == 2 and sub.stats.duplicates == 1


def test_loop_notices_a_frozen_server_and_resumes_after_thaw() -> None:
    with ControlledServer(aof=False) as server:
        tenant = "frozen-loop"
        sub = ExecutionEventSubscriber(make_client(server.url), group="g", handle_signals=False)
        seen: list[str] = []
        with _loop_running(sub, tenant, lambda e, m: seen.append(m.kind), block_ms=100):
            _wait(lambda: sub.health.state == "ok", 5, "loop running")
            server.freeze()
            try:
                # The blocking read's socket times out at block_ms + 2 s: the loop must not hang.
                _wait(lambda: sub.health.state == "unavailable", 8, "frozen server noticed")
            finally:
                server.thaw()
            ExecutionEventPublisher(make_client(server.url, retries=0)).publish(
                tenant, StepCommitted(execution_id="r", step_id="after")
            )
            _wait(lambda: seen == ["step.committed"], 15, "event after thaw")


def test_loop_waits_out_a_full_server_instead_of_dying() -> None:
    # A real maxmemory refusal: with maxmemory 1 byte and noeviction, every write is refused
    # with OOM until memory is raised again; the loop must back off, then resume.
    with ControlledServer(aof=False) as server:
        tenant = "full"
        admin = make_client(server.url)
        # A script refused half-way (after its XREADGROUP, at its first lease write) leaves
        # the entry pending without a lease: it comes back through XAUTOCLAIM after
        # min_idle_ms, like any entry of a consumer that stalled.
        sub = ExecutionEventSubscriber(
            make_client(server.url),
            group="g",
            handle_signals=False,
            min_idle_ms=1000,
            lease_ms=1000,
            claim_interval_s=0.2,
        )
        pub = ExecutionEventPublisher(make_client(server.url, retries=0))
        seen: list[str] = []
        gate = threading.Event()

        def handler(event: object, meta: EventMeta) -> None:
            seen.append(meta.kind)
            if len(seen) == 1:
                gate.wait(10)  # the server fills up while this handler runs

        with _loop_running(sub, tenant, handler) as runner:
            try:
                pub.publish(tenant, StepCommitted(execution_id="r", step_id="one"))
                _wait(lambda: len(seen) == 1, 10, "first event in its handler")
                pub.publish(tenant, StepCommitted(execution_id="r", step_id="two"))
                admin.config_set("maxmemory-policy", "noeviction")
                admin.config_set("maxmemory", 1)
                gate.set()  # the handler returns; recording it (done mark + XACK) is refused
                _wait(lambda: sub.health.state == "unavailable", 10, "health unavailable under OOM")
                assert "OutOfMemoryError" in (sub.health.last_error or "")
                assert runner.is_alive()
                admin.config_set("maxmemory", 0)
                _wait(
                    lambda: len(seen) == 2 and sub.health.state == "ok",
                    15,
                    "resumed after memory freed",
                )
                _wait(
                    lambda: admin.xpending(keys.events_key(tenant), "g")["pending"] == 0,
                    10,
                    "both events acknowledged",
                )
                assert seen == ["step.committed", "step.committed"]  # "one" not handled again
            finally:  # release the handler first, or stopping the loop would wait for it
                gate.set()
                admin.close()
