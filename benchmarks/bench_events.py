"""Event stream throughput against the raw valkey-py baseline, in the same run.

1. publish: ``ExecutionEventPublisher.publish_many`` (validation, idempotency keys, encoding,
   send-once pipelining) vs a raw pipelined ``XADD`` of the very same field payloads.
   Target: >= 0.7x the raw throughput.
2. consume: ``ExecutionEventSubscriber.run_loop`` (count=100; leases, done marks, acks,
   decoding every event) vs a raw ``XREADGROUP COUNT 100`` + ``XACK`` loop.
   Target: >= 0.5x the raw throughput.

Also printed for context: consume vs a raw loop that decodes each event but does no dedup,
and one ``publish()`` per event vs one raw ``XADD`` per event.
Run: ``.venv/bin/python benchmarks/bench_events.py`` (uses $VALKEY_URL or an embedded server).
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable

from execctx_nb import ExecutionEventPublisher, ExecutionEventSubscriber, keys
from execctx_nb._connection import make_client, resolve_url
from execctx_nb._events._publisher import entry_fields
from execctx_nb.events import StepCommitted, decode_event

N = 20_000
REPEATS = 7
SINGLE = 2_000


def _events(n: int) -> list[StepCommitted]:
    return [
        StepCommitted(
            execution_id=f"run-{i // 50}",
            step_id=f"step-{i % 50}",
            attempt=i % 3,
            schema_hash="a" * 64,
            row_count=i,
            bytes=i * 100,
            elapsed_ms=1.5,
        )
        for i in range(n)
    ]


def _medians(ours: Callable[[], float], raw: Callable[[], float]) -> tuple[float, float]:
    # Interleaved, so load from other processes drifts over both sides alike.
    pairs = [(ours(), raw()) for _ in range(REPEATS)]
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def main() -> int:
    url = resolve_url()
    client = make_client(url, timeout=10)
    pub = ExecutionEventPublisher(make_client(url, retries=0, timeout=10))
    events = _events(N)
    payloads = [entry_fields(e) for e in events]
    tenants: list[str] = []

    def fresh() -> str:
        tenants.append(f"bench{uuid.uuid4().hex[:10]}")
        return tenants[-1]

    def raw_publish() -> float:
        stream = keys.events_key(fresh())
        start = time.perf_counter()
        for at in range(0, N, 1000):
            pipe = client.pipeline(transaction=False)
            for fields in payloads[at : at + 1000]:
                pipe.xadd(stream, fields)  # type: ignore[arg-type]
            pipe.execute()
        return time.perf_counter() - start

    def our_publish() -> float:
        tenant = fresh()
        start = time.perf_counter()
        pub.publish_many(tenant, events)
        return time.perf_counter() - start

    def raw_single() -> float:
        stream = keys.events_key(fresh())
        start = time.perf_counter()
        for fields in payloads[:SINGLE]:
            client.xadd(stream, fields)  # type: ignore[arg-type]
        return time.perf_counter() - start

    def our_single() -> float:
        tenant = fresh()
        start = time.perf_counter()
        for event in events[:SINGLE]:
            pub.publish(tenant, event)
        return time.perf_counter() - start

    source = fresh()
    pub.publish_many(source, events)
    stream = keys.events_key(source)

    def raw_consume() -> float:
        group = f"raw{uuid.uuid4().hex[:8]}"
        client.xgroup_create(stream, group, "0")
        done = 0
        start = time.perf_counter()
        while done < N:
            reply = client.xreadgroup(group, "c", {stream: ">"}, count=100, block=1000)
            ids = [i for _, entries in reply for i, _ in entries]
            client.xack(stream, group, *ids)
            done += len(ids)
        return time.perf_counter() - start

    def raw_decode_consume() -> float:
        # What a hand-written consumer without dedup does: read, decode each event, ack.
        group = f"dec{uuid.uuid4().hex[:8]}"
        client.xgroup_create(stream, group, "0")
        done = 0
        start = time.perf_counter()
        while done < N:
            reply = client.xreadgroup(group, "c", {stream: ">"}, count=100, block=1000)
            ids = []
            for _, entries in reply:
                for i, fields in entries:
                    decode_event(fields[b"event"])
                    ids.append(i)
            client.xack(stream, group, *ids)
            done += len(ids)
        return time.perf_counter() - start

    def our_consume() -> float:
        sub = ExecutionEventSubscriber(
            make_client(url, timeout=10),
            group=f"sub{uuid.uuid4().hex[:8]}",
            consumer="c",
            handle_signals=False,
        )
        stop = threading.Event()
        handled = 0

        def handler(event: object, meta: object) -> None:
            nonlocal handled
            handled += 1
            if handled == N:
                stop.set()

        start = time.perf_counter()
        sub.run_loop(source, handler, stop=stop, count=100, block_ms=1000)
        elapsed = time.perf_counter() - start
        assert sub.stats.handled == N, sub.stats
        sub.close()
        sub.client.close()  # type: ignore[no-untyped-call]
        return elapsed

    rows = [
        ("publish_many vs pipelined XADD", N, *_medians(our_publish, raw_publish), 0.7),
        ("consume+dedup+ack vs XREADGROUP(100)+XACK", N, *_medians(our_consume, raw_consume), 0.5),
        (
            "  (context) vs XREADGROUP+decode_event+XACK",
            N,
            *_medians(our_consume, raw_decode_consume),
            None,
        ),
        (
            "publish() one by one vs XADD one by one",
            SINGLE,
            *_medians(our_single, raw_single),
            None,
        ),
    ]
    print(
        f"events: {N} StepCommitted (~{len(payloads[0]['event'])} B each), median of {REPEATS}"
        " interleaved runs"
    )
    print(f"{'case':44} {'ours msg/s':>12} {'raw msg/s':>12} {'ratio':>7} {'target':>7}")
    failed = False
    for name, n, ours, raw, target in rows:
        ratio = raw / ours  # throughput ratio = (n / ours) / (n / raw)
        mark = "" if target is None else f">={target}"
        print(f"{name:44} {n / ours:12,.0f} {n / raw:12,.0f} {ratio:7.2f} {mark:>7}")
        failed |= target is not None and ratio < target
    for tenant in tenants:
        client.delete(keys.events_key(tenant))
    client.close()  # type: ignore[no-untyped-call]
    pub.close()
    if failed:
        print("below target (machines are noisy: rerun before acting on one run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
