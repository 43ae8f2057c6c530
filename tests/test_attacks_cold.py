"""Attacks on the cold tier, performed for real: planted references, bombs, panics, races.

Whoever may write a tenant's keys can plant any envelope there. The store must read nothing
but the object ``keys`` builds for that envelope's own tenant, execution, step and attempt.
"""

from __future__ import annotations

import hashlib
import io
import random
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import psutil
import pytest
import valkey
from twins import APIS, store_for

import execctx_nb as ec
from execctx_nb import keys
from execctx_nb.errors import ColdTierError, IdempotencyConflictError


def plant(client: valkey.Valkey, scope: ec.ExecutionScope, env: ec.StepEnvelope) -> None:
    """Write an envelope straight to Valkey, as any client with the tenant's keys could."""
    key, akey = keys.step_keys(scope.tenant_id, env.execution_id, env.step_id)
    wire = env.to_json()
    client.set(key, wire)
    client.hset(akey, str(env.attempt), wire)


def frame_envelope(step: str, frame: pl.DataFrame, attempt: int = 0) -> ec.StepEnvelope:
    return ec.StepEnvelope.from_frame(frame, execution_id="run-1", step_id=step, attempt=attempt)


@pytest.fixture(params=APIS)
def store(request: pytest.FixtureRequest, valkey_url: str, tmp_path: Path) -> Any:
    with store_for(
        request.param, valkey_url, cold_store=tmp_path / "cold", inline_limit_bytes=10
    ) as s:
        yield s


def test_a_reference_to_another_tenants_object_is_refused(
    store: Any, valkey_client: valkey.Valkey, tenant: str
) -> None:
    globex, acme = ec.ExecutionScope(f"{tenant}g", "run-1"), ec.ExecutionScope(tenant, "run-1")
    secret = store.put_step(globex, frame_envelope("salaries", pl.DataFrame({"pay": [1, 2]})))
    stolen = ec.StepEnvelope(execution_id="run-1", step_id="salaries", data_ref=secret.data_ref)
    plant(valkey_client, acme, stolen)
    with pytest.raises(ColdTierError, match="not the object of its own tenant") as info:
        store.get_step(acme, "salaries")
    assert keys.step_key(acme.tenant_id, "run-1", "salaries") in str(info.value)
    with pytest.raises(ColdTierError, match="not the object of its own tenant"):
        store.get_execution(acme)
    with pytest.raises(ColdTierError, match="nothing was written"):
        store.put_step(acme, stolen)  # the same reference, handed to put_step


@pytest.mark.parametrize(
    "uri",
    [
        "{base}../../../../etc/passwd",
        "{base}t/{tenant}/exec/run-1/steps/s/a0/../../../../../../etc/passwd",
        "/etc/passwd",
        "file:///etc/passwd",
        "s3://bucket/t/{tenant}g/exec/run-1/steps/s/a0/{sha}.parquet",  # another tenant's
        "s3://bucket/t/{tenant}/exec/run-1/steps/s/a0/{sha}.parquet/../x.parquet",
    ],
)
def test_paths_outside_the_object_of_the_step_are_refused(
    store: Any, valkey_client: valkey.Valkey, tenant: str, uri: str
) -> None:
    scope = ec.ExecutionScope(tenant, "run-1")
    sha = "a" * 64
    ref = ec.DataRef(uri=uri.format(base=store.cold.base_url, tenant=tenant, sha=sha), bytes=1,
                     sha256=sha, row_count=1)  # fmt: skip
    plant(valkey_client, scope, ec.StepEnvelope(execution_id="run-1", step_id="s", data_ref=ref))
    with pytest.raises(ColdTierError, match="nothing was read"):
        store.get_step(scope, "s")


def test_a_reference_under_another_base_reads_this_tiers_own_object(
    store: Any, valkey_client: valkey.Valkey, tenant: str
) -> None:
    # Another engine (or this bucket opened another way) records s3://its-bucket/prefix/...:
    # the reference is resolved by its tenant path, and only this tier's object is read.
    scope = ec.ExecutionScope(tenant, "run-1")
    frame = pl.DataFrame({"pay": [1, 2]})
    stored = store.put_step(scope, frame_envelope("s", frame))
    assert stored.data_ref is not None
    path = stored.data_ref.uri.removeprefix(store.cold.base_url)
    moved = msgspec.structs.replace(stored.data_ref, uri=f"s3://elsewhere/lake/{path}")
    plant(valkey_client, scope, msgspec.structs.replace(stored, data_ref=moved))
    got = store.get_step(scope, "s")
    assert got is not None and got.to_polars().equals(frame)


def test_a_decompression_bomb_is_refused_before_it_is_decoded(
    valkey_url: str, valkey_client: valkey.Valkey, tenant: str, tmp_path: Path
) -> None:
    # 50,000,000 rows of int64 (400 MB decoded) in a Parquet file of a few hundred KiB, at the
    # very path its reference names, with the right size and sha256, but rowCount 1.
    cold = tmp_path / "cold"
    scope = ec.ExecutionScope(tenant, "run-1")
    bomb = tmp_path / "bomb.parquet"
    subprocess.run(  # written by another process: this one never holds the 400 MB
        [sys.executable, "-c", "import polars as pl, sys;"
         " pl.select(x=pl.repeat(0, 50_000_000, dtype=pl.Int64)).write_parquet(sys.argv[1])",
         str(bomb)],
        check=True,
    )  # fmt: skip
    payload = bomb.read_bytes()
    assert len(payload) < 2_000_000
    sha = hashlib.sha256(payload).hexdigest()
    path = cold / keys.cold_step_data_path(tenant, "run-1", "s", 0, sha)
    path.parent.mkdir(parents=True)
    path.write_bytes(payload)
    ref = ec.DataRef(uri=path.as_uri(), bytes=len(payload), sha256=sha, row_count=1)
    plant(valkey_client, scope, ec.StepEnvelope(execution_id="run-1", step_id="s", data_ref=ref))
    with ec.create_valkey_execution_context_store(valkey_url, cold_store=cold) as store:
        before = psutil.Process().memory_info().rss
        with pytest.raises(ColdTierError, match="row count differs"):
            store.get_step(scope, "s")
        grown = psutil.Process().memory_info().rss - before
    assert grown < 100_000_000, f"{grown / 1e6:.0f} MB allocated while refusing a bomb"


def _mutations(base: bytes, n: int) -> list[bytes]:
    out = []
    for seed in range(n):
        rng = random.Random(seed)
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        out.append(bytes(data))
    return out


def test_corrupt_objects_that_crash_the_reader_become_cold_tier_errors(
    valkey_url: str, valkey_client: valkey.Valkey, tenant: str, tmp_path: Path
) -> None:
    # Mutated Parquet, each planted with a reference that matches it (size, sha256, rows as
    # the footer says, when it can be read): some make the Rust reader panic
    # (PanicException is a BaseException), with polars 1.x seed 333 among them.
    cold = tmp_path / "cold"
    frame = pl.DataFrame(
        {"a": list(range(50)), "s": [f"x{i}" for i in range(50)], "l": [[i, i] for i in range(50)]}
    )
    buf = io.BytesIO()
    frame.write_parquet(buf, metadata={"execctx.frame": "polars"})
    outcomes: dict[str, int] = {}
    with ec.create_valkey_execution_context_store(valkey_url, cold_store=cold) as store:
        for attempt, payload in enumerate(_mutations(buf.getvalue(), 400)):
            sha = hashlib.sha256(payload).hexdigest()
            path = cold / keys.cold_step_data_path(tenant, "run-1", "s", attempt, sha)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(payload)
            ref = ec.DataRef(uri=path.as_uri(), bytes=len(payload), sha256=sha, row_count=None)
            env = ec.StepEnvelope(execution_id="run-1", step_id="s", attempt=attempt, data_ref=ref)
            plant(valkey_client, ec.ExecutionScope(tenant, "run-1"), env)
            try:
                store.get_step(ec.ExecutionScope(tenant, "run-1"), "s", attempt)
                outcomes["read"] = outcomes.get("read", 0) + 1
            except ColdTierError as exc:
                kind = "panic" if "PanicException" in str(exc) else "refused"
                outcomes[kind] = outcomes.get(kind, 0) + 1
    assert sum(outcomes.values()) == 400 and outcomes.get("refused", 0) > 0, outcomes


@pytest.mark.parametrize("writers, races", [(2, 20), (8, 10)])
def test_writers_racing_on_one_attempt_leave_the_winner_readable(
    valkey_url: str, tenant: str, tmp_path: Path, writers: int, races: int
) -> None:
    with ec.create_valkey_execution_context_store(
        valkey_url, cold_store=tmp_path / "cold", inline_limit_bytes=10
    ) as store:
        for race in range(races):
            scope = ec.ExecutionScope(tenant, f"race-{race}")
            frames = [pl.DataFrame({"w": [w] * 100}) for w in range(writers)]
            barrier = threading.Barrier(writers)
            won: list[int] = []

            def write(w: int, scope: Any, barrier: Any, frames: Any, won: Any) -> None:
                env = ec.StepEnvelope.from_frame(
                    frames[w], execution_id=scope.execution_id, step_id="s"
                )
                barrier.wait()
                try:
                    store.put_step(scope, env)
                    won.append(w)
                except IdempotencyConflictError:
                    pass

            threads = [
                threading.Thread(target=write, args=(w, scope, barrier, frames, won))
                for w in range(writers)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert len(won) == 1, won
            got = store.get_step(scope, "s")
            assert got is not None and got.to_polars()["w"].to_list() == [won[0]] * 100
            # The losers' objects are gone: only the winner's is left for this attempt.
            prefix = (
                tmp_path / "cold" / keys.cold_attempt_prefix(tenant, scope.execution_id, "s", 0)
            )
            assert len(list(prefix.glob("*.parquet"))) == 1
