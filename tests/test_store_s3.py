"""The cold tier on a real S3-protocol server (moto's server, started by the fixtures):
portable ``s3://`` references whichever way the store was opened, lazy scans, bounded waits."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import msgspec
import obstore
import pandas as pd
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from s3 import s3_server

import execctx_nb as ec
from execctx_nb import keys
from execctx_nb.errors import ColdTierError, StoreUnavailableError

FRAME = pl.DataFrame({"x": list(range(5_000)), "s": [f"v{i % 7}" for i in range(5_000)]})


@pytest.fixture
def bucket(s3: Any) -> str:
    return str(s3.bucket(f"b{uuid.uuid4().hex[:10]}"))


@pytest.fixture
def s3_env(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)


def _store(valkey_url: str, cold: Any, **settings: Any) -> ec.ExecutionContextStore:
    return ec.create_valkey_execution_context_store(
        valkey_url, cold_store=cold, inline_limit_bytes=1024, **settings
    )


def _env(step: str, data: Any) -> ec.StepEnvelope:
    return ec.StepEnvelope.from_frame(data, execution_id="run-1", step_id=step)


@pytest.mark.usefixtures("s3_env")
def test_s3_url_round_trip_and_lazy_scan(
    valkey_url: str, tenant: str, bucket: str, s3: Any
) -> None:
    scope = ec.ExecutionScope(tenant, "run-1")
    with _store(valkey_url, f"s3://{bucket}/lake") as store:
        stored = store.put_step(scope, _env("big", FRAME))
        assert stored.data_ref is not None
        assert stored.data_ref.uri.startswith(f"s3://{bucket}/lake/t/{tenant}/exec/run-1/")
        back = store.get_step(scope, "big")
        assert back is not None
        assert_frame_equal(back.to_polars(), FRAME)
        scanned = store.scan_step(scope, "big").filter(pl.col("x") >= 4_998).collect()
        assert scanned["x"].to_list() == [4_998, 4_999]
        lazy = store.put_step(scope, _env("lazy", FRAME.lazy().filter(pl.col("x") < 10)))
        assert lazy.data_ref is not None and lazy.metadata.row_count == 10
        frame = store.get_step(scope, "lazy")
        assert frame is not None and frame.to_polars().height == 10
        pandas = store.put_step(scope, _env("pandas", FRAME.to_pandas()))
        assert pandas.data_ref is not None
        got = store.get_step(scope, "pandas")
        assert got is not None
        pd.testing.assert_frame_equal(got.to_pandas(), FRAME.to_pandas())
    # The object is where the reference says, in the bucket itself.
    path = stored.data_ref.uri.removeprefix(f"s3://{bucket}/lake/")
    meta = obstore.head(s3.store(bucket, "lake"), path)
    assert int(meta["size"]) == stored.data_ref.bytes


@pytest.mark.usefixtures("s3_env")
def test_references_resolve_whichever_way_the_store_was_opened(
    valkey_url: str, tenant: str, bucket: str, s3: Any
) -> None:
    scope = ec.ExecutionScope(tenant, "run-1")
    with _store(valkey_url, s3.store(bucket, "lake")) as by_object:
        stored = by_object.put_step(scope, _env("a", FRAME))
        assert stored.data_ref is not None
        # Not "obstore:S3Store/...": a URI any engine can resolve.
        assert stored.data_ref.uri.startswith(f"s3://{bucket}/lake/t/{tenant}/")
    with _store(valkey_url, f"s3://{bucket}/lake") as by_url:
        back = by_url.get_step(scope, "a")
        assert back is not None
        assert_frame_equal(back.to_polars(), FRAME)
        by_url.put_step(scope, _env("b", FRAME.head(3_000)))
    with _store(valkey_url, s3.store(bucket, "lake")) as again:
        got = again.get_step(scope, "b")
        assert got is not None and got.to_polars().height == 3_000


@pytest.mark.usefixtures("s3_env")
def test_a_reference_to_another_tenants_object_is_refused(
    valkey_url: str, tenant: str, bucket: str, valkey_client: Any
) -> None:
    victim = ec.ExecutionScope(f"{tenant}v", "run-1")
    scope = ec.ExecutionScope(tenant, "run-1")
    with _store(valkey_url, f"s3://{bucket}/lake") as store:
        theirs = store.put_step(victim, _env("secret", FRAME))
        store.put_step(scope, _env("mine", FRAME.head(2_000)))
        key = keys.step_key(tenant, "run-1", "mine")
        wire = msgspec.json.decode(valkey_client.get(key))
        assert theirs.data_ref is not None
        wire["dataRef"] = msgspec.to_builtins(theirs.data_ref)  # forged: the victim's object
        valkey_client.set(key, msgspec.json.encode(wire))
        with pytest.raises(ColdTierError, match="not the object of its own tenant"):
            store.get_step(scope, "mine")
        with pytest.raises(ColdTierError, match="not the object of its own tenant"):
            store.scan_step(scope, "mine")


@pytest.fixture
def doomed_s3() -> Iterator[Any]:
    with s3_server() as server:
        yield server


def test_cold_calls_are_bounded_by_the_store_timeout(
    valkey_url: str, tenant: str, doomed_s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in doomed_s3.env().items():
        monkeypatch.setenv(name, value)
    bucket = doomed_s3.bucket("doomed")
    scope = ec.ExecutionScope(tenant, "run-1")
    with _store(valkey_url, f"s3://{bucket}/lake", timeout=1.0) as store:
        store.put_step(scope, _env("before", FRAME))
        doomed_s3.stop()  # the endpoint goes away: connections are refused from now on
        start = time.monotonic()
        with pytest.raises((ColdTierError, StoreUnavailableError)) as info:
            store.put_step(scope, _env("after", FRAME))
        waited = time.monotonic() - start
        assert "after" in str(info.value) or "lake" in str(info.value)
        # One retry within the 1 s budget: the write fails, it does not hang on retries.
        assert waited < 3.0, f"the failed cold write took {waited:.1f} s against a 1 s timeout"
        assert store.get_step(scope, "after") is None  # nothing half-written is visible


def test_a_hung_endpoint_fails_within_the_store_timeout(
    valkey_url: str, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    # A server that accepts connections and never answers (a hung proxy, a stuck node):
    # only the request timeout ends the wait.
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)
        port = hung.getsockname()[1]
        monkeypatch.setenv("AWS_ENDPOINT", f"http://127.0.0.1:{port}")
        for name in ("AWS_ALLOW_HTTP", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
            monkeypatch.setenv(
                name, {"AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1"}.get(name, "x")
            )
        scope = ec.ExecutionScope(tenant, "run-1")
        with _store(valkey_url, "s3://hung/lake", timeout=1.0) as store:
            start = time.monotonic()
            with pytest.raises(ColdTierError, match="Could not write 's3://hung/lake/"):
                store.put_step(scope, _env("stuck", FRAME))
            waited = time.monotonic() - start
            assert waited < 3.0, f"the cold write waited {waited:.1f} s against a 1 s timeout"
            assert store.get_step(scope, "stuck") is None
