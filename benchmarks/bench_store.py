"""ExecutionContextStore against its baselines, in the same run.

1. small envelopes (~1.7 KB of JSON): ``put_step`` / ``get_step`` one at a time, and
   ``put_steps`` / ``get_steps`` batched by 100, vs raw valkey-py ``SET`` / ``GET`` of the very
   same bytes (one at a time, and pipelined by 100). Targets (issue 12): single put / get
   >= 0.8x / 0.9x, batched put / get >= 0.6x / 0.9x of the raw throughput.
2. a 1,000,000-row Polars frame: ``put_step`` (Parquet to the cold tier through obstore, then
   the envelope) and ``get_step`` (envelope, object, sha256 check, decode) vs Polars
   ``write_parquet`` / ``read_parquet`` of the same frame in the same directory (same disk).
   Targets: put >= 0.95x, get >= 0.9x (baseline time / store time).

Medians of REPEATS runs. Run: ``.venv/bin/python benchmarks/bench_store.py`` (uses $VALKEY_URL
or an embedded server). The raw client is valkey-py with its defaults (libvalkey parser).
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import valkey

import execctx_nb as ec
from execctx_nb._connection import resolve_url

REPEATS = 7
SINGLE = 2_000
BATCH = 100
BATCHES = 20
ROWS = 1_000_000


def _paired(ours: Callable[[], float], base: Callable[[], float]) -> tuple[float, float]:
    """Medians of REPEATS runs, ours and the baseline alternating: a noisy neighbour on a
    shared machine then slows both sides alike instead of skewing the ratio."""
    a, b = [], []
    for _ in range(REPEATS):
        a.append(ours())
        b.append(base())
    return statistics.median(a), statistics.median(b)


def _small(step: str, execution: str) -> ec.StepEnvelope:
    rows = [
        {"id": i, "name": f"item-{i}", "price": 9.99 + i, "tags": ["a", "b"], "ok": True}
        for i in range(12)
    ]
    return ec.StepEnvelope.from_frame(rows, execution_id=execution, step_id=step)


def small_envelopes(
    store: ec.ExecutionContextStore, raw: valkey.Valkey
) -> list[tuple[str, float, float]]:
    tenant = f"bench{uuid.uuid4().hex[:8]}"
    template = _small("s", "run-0")
    wire = template.to_json()
    print(f"small envelope: {len(wire)} bytes of JSON")
    results = []

    def ops_per_s(n: int, fn: Callable[[], object]) -> float:
        start = time.perf_counter()
        fn()
        return n / (time.perf_counter() - start)

    def each(items: list[Any], call: Callable[[Any], object]) -> Callable[[], None]:
        # Results are dropped as they come, as a consumer would; keeping thousands of
        # decoded envelopes alive would make the loop measure the garbage collector.
        def run() -> None:
            for item in items:
                call(item)

        return run

    # -- one at a time ---------------------------------------------------------------
    def store_put_single() -> float:
        scope = ec.ExecutionScope(tenant, f"run-{uuid.uuid4().hex[:8]}")
        envs = [_small(f"s{i}", scope.execution_id) for i in range(SINGLE)]
        return ops_per_s(SINGLE, each(envs, lambda e: store.put_step(scope, e)))

    # The raw side writes and reads exactly the bytes the store does: the JSON of each
    # envelope (the envelopes carry schema, hash and metadata, so the store adds nothing).
    def raw_set_single() -> float:
        prefix = f"bench:raw:{uuid.uuid4().hex[:8]}:"
        wires = [(f"{prefix}{i}", _small(f"s{i}", "run-x").to_json()) for i in range(SINGLE)]
        return ops_per_s(SINGLE, each(wires, lambda kw: raw.set(*kw)))

    scope_read = ec.ExecutionScope(tenant, "read")
    store.put_steps(scope_read, [_small(f"s{i}", "read") for i in range(SINGLE)])
    # Copies of the very bytes the store holds (the stored envelopes are not kept alive:
    # thousands of live containers would make every garbage collection slower on one side).
    stored = raw.mget([ec.keys.step_key(tenant, "read", f"s{i}") for i in range(SINGLE)])
    raw_keys = [f"bench:raw:read:{i}" for i in range(SINGLE)]
    raw.mset(dict(zip(raw_keys, stored, strict=True)))
    del stored

    def store_get_single() -> float:
        return ops_per_s(
            SINGLE,
            each([f"s{i}" for i in range(SINGLE)], lambda step: store.get_step(scope_read, step)),
        )

    def raw_get_single() -> float:
        return ops_per_s(SINGLE, each(raw_keys, raw.get))

    results.append(("put one at a time", *_paired(store_put_single, raw_set_single)))
    results.append(("get one at a time", *_paired(store_get_single, raw_get_single)))

    # -- batched by 100 --------------------------------------------------------------
    def store_put_batched() -> float:
        scope = ec.ExecutionScope(tenant, f"run-{uuid.uuid4().hex[:8]}")
        batches = [
            [_small(f"s{b}-{i}", scope.execution_id) for i in range(BATCH)] for b in range(BATCHES)
        ]
        return ops_per_s(
            BATCH * BATCHES, each(batches, lambda batch: store.put_steps(scope, batch))
        )

    def raw_set_batched() -> float:
        prefix = f"bench:raw:{uuid.uuid4().hex[:8]}:"
        wires = [
            [(f"{prefix}{b}-{i}", _small(f"s{b}-{i}", "run-x").to_json()) for i in range(BATCH)]
            for b in range(BATCHES)
        ]

        def run() -> None:
            for batch in wires:
                p = raw.pipeline(transaction=False)
                for key, value in batch:
                    p.set(key, value)
                p.execute()

        return ops_per_s(BATCH * BATCHES, run)

    step_batches = [[f"s{b * BATCH + i}" for i in range(BATCH)] for b in range(BATCHES)]

    def store_get_batched() -> float:
        return ops_per_s(
            BATCH * BATCHES, each(step_batches, lambda ids: store.get_steps(scope_read, ids))
        )

    def raw_get_batched() -> float:
        def run() -> None:
            for b in range(BATCHES):
                p = raw.pipeline(transaction=False)
                for key in raw_keys[b * BATCH : (b + 1) * BATCH]:
                    p.get(key)
                p.execute()

        return ops_per_s(BATCH * BATCHES, run)

    results.append((f"put batched x{BATCH}", *_paired(store_put_batched, raw_set_batched)))
    results.append((f"get batched x{BATCH}", *_paired(store_get_batched, raw_get_batched)))
    for key in raw.scan_iter(match="bench:raw:*", count=1000):
        raw.unlink(key)
    for execution in store.list_executions(tenant):
        store.delete_execution(ec.ExecutionScope(tenant, execution))
    return results


def context_floors(raw: valkey.Valkey) -> list[tuple[str, float, float]]:
    """Raw floors, against pipelined SET / GET x100: the put script alone (two keys per
    envelope, atomically), MGET alone and MGET plus decoding."""
    from execctx_nb._store._write import PUT_SCRIPT

    wire = _small("s", "run-0").to_json()
    sha = raw.script_load(PUT_SCRIPT)
    prefix = f"bench:floor:{uuid.uuid4().hex[:8]}:"

    def timed(fn: Callable[[], object]) -> float:
        start = time.perf_counter()
        fn()
        return BATCH * BATCHES / (time.perf_counter() - start)

    def pipelined(
        make: Callable[[valkey.client.Pipeline, int], object],
        then: Callable[[bytes], object] | None = None,
    ) -> Callable[[], None]:
        def run() -> None:
            for b in range(BATCHES):
                p = raw.pipeline(transaction=False)
                for i in range(BATCH):
                    make(p, b * BATCH + i)
                replies = p.execute()
                if then is not None:
                    for reply in replies:
                        then(reply)

        return run

    counter = iter(range(1_000_000))

    def evalsha() -> float:
        # What put_steps sends: one script call writing the whole batch (two keys each).
        run = next(counter)

        def batch() -> None:
            for b in range(BATCHES):
                names = [
                    n
                    for i in range(BATCH)
                    for n in (f"{prefix}{run}:s:{b}-{i}", f"{prefix}{run}:a:{b}-{i}")
                ]
                raw.execute_command(
                    "EVALSHA",
                    sha,
                    len(names),
                    *names,
                    *[a for _ in range(BATCH) for a in (0, wire)],
                )

        return timed(batch)

    def set_() -> float:
        run = next(counter)
        return timed(pipelined(lambda p, i: p.set(f"{prefix}{run}:s:{i}", wire)))

    # Distinct envelopes under distinct keys, as the store reads them.
    get_keys = [f"{prefix}get:{i}" for i in range(BATCH * BATCHES)]
    raw.mset({key: _small(f"s{i}", "run-0").to_json() for i, key in enumerate(get_keys)})
    get_only = pipelined(lambda p, i: p.get(get_keys[i]))

    def mget(then: Callable[[bytes], object] | None) -> Callable[[], None]:
        def run() -> None:
            for b in range(BATCHES):
                replies = raw.mget(get_keys[b * BATCH : (b + 1) * BATCH])
                if then is not None:
                    for reply in replies:
                        then(reply)

        return run

    rows = [
        (f"one EVALSHA of the put script for {BATCH} envelopes", *_paired(evalsha, set_)),
        (
            f"MGET x{BATCH} (what get_steps sends)",
            *_paired(lambda: timed(mget(None)), lambda: timed(get_only)),
        ),
        (
            f"MGET x{BATCH} + StepEnvelope.from_json",
            *_paired(lambda: timed(mget(ec.StepEnvelope.from_json)), lambda: timed(get_only)),
        ),
    ]
    for key in raw.scan_iter(match=f"{prefix}*", count=1000):
        raw.unlink(key)
    return rows


def big_frame() -> pl.DataFrame:
    """1M rows: ints, floats, a categorical, strings and tz-aware timestamps (deterministic)."""
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ids = pl.int_range(ROWS, eager=True, dtype=pl.Int64)
    return pl.DataFrame({"id": ids}).with_columns(
        value=((pl.col("id") * 2654435761) % 1_000_003) / 1_000_003.0 - 0.5,
        category=pl.format("c{}", pl.col("id") * 7 % 4).cast(pl.Categorical),
        name=pl.format("user-{}", pl.col("id") % 50_000),
        at=pl.datetime_range(start, start + dt.timedelta(seconds=ROWS - 1), "1s", eager=True),
    )


def large_frame(url: str, workdir: Path) -> list[tuple[str, float, float]]:
    frame = big_frame()
    tenant = f"bench{uuid.uuid4().hex[:8]}"
    scope = ec.ExecutionScope(tenant, "big")
    started = time.perf_counter()
    template = ec.StepEnvelope.from_frame(frame, execution_id="big", step_id="frame")
    print(
        f"1M-row frame: {frame.estimated_size() / 1e6:.0f} MB in memory;"
        f" from_frame (schema inference, hash) {1000 * (time.perf_counter() - started):.0f} ms"
    )
    with ec.create_valkey_execution_context_store(
        url, cold_store=workdir / "cold", timeout=10
    ) as store:
        counter = iter(range(10_000))

        def store_put() -> float:
            env = ec.StepEnvelope(
                **{
                    **{f: getattr(template, f) for f in template.__struct_fields__},
                    "attempt": next(counter),
                }
            )
            start = time.perf_counter()
            store.put_step(scope, env)
            return time.perf_counter() - start

        def polars_write() -> float:
            start = time.perf_counter()
            frame.write_parquet(workdir / "baseline.parquet")
            return time.perf_counter() - start

        def store_get() -> float:
            start = time.perf_counter()
            got = store.get_step(scope, "frame", attempt=0)
            elapsed = time.perf_counter() - start
            assert got is not None and got.data.height == ROWS
            return elapsed

        def polars_read() -> float:
            start = time.perf_counter()
            pl.read_parquet(workdir / "baseline.parquet")
            return time.perf_counter() - start

        put_s, write_s = _paired(store_put, polars_write)
        get_s, read_s = _paired(store_get, polars_read)
        got = store.get_step(scope, "frame", attempt=0)
        assert got is not None and got.data.equals(frame) and got.data.schema == frame.schema
        ref = got.data_ref
        print(f"Parquet object: {ref.bytes / 1e6:.1f} MB" if ref else "inline?!")
        store.delete_execution(scope)
    # Reported as throughput (frames per second) so that ratios read the same way as above.
    return [
        ("put 1M-row frame", 1 / put_s, 1 / write_s),
        ("get 1M-row frame", 1 / get_s, 1 / read_s),
    ]


def main() -> int:
    url = resolve_url()
    raw = valkey.Valkey.from_url(url)
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        workdir = Path(tmp)
        with ec.create_valkey_execution_context_store(url, cold_store=workdir / "cold") as store:
            small = small_envelopes(store, raw)
            floors = context_floors(raw)
        large = large_frame(url, workdir)
    raw.close()
    print(f"\n{'case':<22} {'store':>14} {'baseline':>14} {'ratio':>7} {'target':>7}")
    failed = False
    # Issue 12's targets, in the order of the rows: single put/get, batched put/get, frames.
    targets = (0.8, 0.9, 0.6, 0.9, 0.95, 0.9)
    rows = [(row, "ops/s", "valkey-py") for row in small]
    rows += [(row, "frames/s", "polars parquet") for row in large]
    for ((name, ours, base), unit, peer), target in zip(rows, targets, strict=True):
        ratio = ours / base
        failed |= ratio < target
        mark = "" if ratio >= target else "  BELOW TARGET"
        print(
            f"{name:<22} {ours:>10,.1f} {unit:<3} {base:>10,.1f} {ratio:>6.2f}x {target:>6.2f}x  vs {peer}{mark}"
        )
    print("\ncontext (raw valkey-py, same bytes, vs pipelined SET / GET x100 in the same run):")
    for name, ours, base in floors:
        print(f"  {name:<44} {ours:>10,.0f} ops/s = {ours / base:.2f}x raw")
    if failed:
        print("some ratios are below target (reported, not asserted: see docs/store.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
