"""A consumer process for the event-stream fault tests (run as a script, killed for real).

Usage: python tests/_consumer_proc.py URL TENANT GROUP CONSUMER OUT_FILE FAIL_RATE SEED
       [MIN_IDLE_MS LEASE_MS COUNT HANDLER_MS]

The handler raises for a ``FAIL_RATE`` fraction of calls; otherwise it appends the event's
idempotency key to ``OUT_FILE`` with one unbuffered O_APPEND write *before* returning, so the
record of a handled event survives a SIGKILL of this process right after the handler.
SIGTERM/SIGINT stop the loop gracefully (exit status 0).
"""

from __future__ import annotations

import logging
import os
import random
import sys
import time

from execctx_nb import EventMeta, ExecutionEventSubscriber
from execctx_nb._connection import make_client
from execctx_nb.events import Event


def main(argv: list[str]) -> int:
    url, tenant, group, consumer, out_path, fail_rate, seed = argv[:7]
    min_idle_ms, lease_ms, count, handler_ms = (
        int(v) for v in (argv[7:11] or ["3000", "3000", "50", "0"])
    )
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s {consumer} %(levelname)s %(message)s",
    )
    logging.getLogger("execctx_nb").setLevel(logging.INFO)
    rng = random.Random(int(seed))
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    rate = float(fail_rate)

    def handler(event: Event, meta: EventMeta) -> None:
        if handler_ms:
            time.sleep(handler_ms / 1000)  # real work takes time: kills then land mid-batch
        if rng.random() < rate:
            raise RuntimeError(f"injected failure for {meta.stream_id}")
        os.write(fd, f"{meta.idempotency_key} {meta.stream_id} {meta.delivery_count}\n".encode())

    sub = ExecutionEventSubscriber(
        make_client(url),
        group=group,
        consumer=consumer,
        min_idle_ms=min_idle_ms,
        lease_ms=lease_ms,
        claim_interval_s=0.5,
    )
    # A quieter logger for injected failures: the traceback of each would flood the log.
    logging.getLogger("execctx_nb").addFilter(
        lambda r: "injected failure" not in r.getMessage() or r.levelno > logging.WARNING
    )
    print("ready", flush=True)
    stats = sub.run_loop(tenant, handler, block_ms=200, count=count)
    print(f"stopped {stats} {sub.health}", file=sys.stderr, flush=True)
    sub.close()
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
