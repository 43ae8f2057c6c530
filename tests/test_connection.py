"""Client factories and the embedded server, against real servers (refused, frozen, restarted)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
import valkey
from servers import ControlledServer, free_port

from execctx_nb._connection import (
    BoundedRetry,
    deadline,
    make_async_client,
    make_blocking_client,
    make_client,
    remaining,
    resolve_url,
)
from execctx_nb._connection._embedded import embedded_server

# A loaded 2-core CI machine wakes threads late; the bound under test is the timeout itself.
SLACK = 0.6


def test_refused_connection_is_retried_until_the_deadline() -> None:
    errors: list[BaseException] = []
    client = make_client(f"redis://127.0.0.1:{free_port()}", timeout=1.0, on_retry=errors.append)
    start = time.monotonic()
    with pytest.raises(valkey.exceptions.ConnectionError):
        client.get("k")
    elapsed = time.monotonic() - start
    assert elapsed <= 1.0 + SLACK
    assert len(errors) >= 2  # OSError (refused) is retried, not raised at once
    assert all(isinstance(e, valkey.exceptions.ConnectionError | OSError) for e in errors)


def test_no_retries_means_one_attempt() -> None:
    errors: list[BaseException] = []
    client = make_client(
        f"redis://127.0.0.1:{free_port()}", timeout=1.0, retries=0, on_retry=errors.append
    )
    with pytest.raises(valkey.exceptions.ConnectionError):
        client.get("k")
    assert errors == []


def test_frozen_server_times_out_then_recovers() -> None:
    with ControlledServer() as server:
        client = make_client(server.url, timeout=1.0)
        client.set("k", "v")
        server.freeze()
        try:
            start = time.monotonic()
            with pytest.raises(valkey.exceptions.TimeoutError):
                client.get("k")
            assert time.monotonic() - start <= 1.0 + SLACK
        finally:
            server.thaw()
        assert client.get("k") == b"v"


def test_restart_is_bridged_by_retries() -> None:
    with ControlledServer() as server:
        errors: list[BaseException] = []
        # 4 s: a retry starts only if a full attempt (timeout / 2) still fits, so the server
        # must be back within 2 s; 1 s (with timeout=2.0) was tight for a start under load.
        client = make_client(server.url, timeout=4.0, on_retry=errors.append)
        client.set("k", "v")
        server.kill()
        back = threading.Timer(0.3, server.start)
        back.start()
        try:
            assert client.get("k") is None  # reconnected to the new, empty server in time
        finally:
            back.join()
        assert errors  # refused while the server was down, retried until it came back


def test_deadline_spans_calls_and_nests() -> None:
    assert remaining() is None
    with deadline(5.0) as outer, deadline(10.0) as inner:
        assert inner == outer  # nesting keeps the earlier deadline
        left = remaining()
        assert left is not None and 4.5 < left <= 5.0
    assert remaining() is None


def test_blocking_client_outwaits_block() -> None:
    with ControlledServer() as server:
        client = make_blocking_client(server.url, block_ms=1500, timeout=0.5)
        start = time.monotonic()
        assert client.xread({"stream": "$"}, block=1500) == []  # not mistaken for a dead server
        # It waited out the BLOCK (had the socket timed out first, xread would have raised);
        # no upper bound: a loaded machine may answer late, that proves nothing here.
        assert time.monotonic() - start >= 1.4
        kwargs = client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == pytest.approx(2.0)
        assert kwargs["health_check_interval"] == 0


def test_client_settings_are_safe(valkey_url: str) -> None:
    kwargs = make_client(valkey_url, timeout=2.0).connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 1.0 and kwargs["socket_connect_timeout"] == 1.0
    assert kwargs["socket_keepalive"] is True and kwargs["health_check_interval"] > 0
    assert OSError in kwargs["retry_on_error"]
    assert isinstance(kwargs["retry"], BoundedRetry)
    with pytest.raises(ValueError, match="timeout"):
        make_client(valkey_url, timeout=0)
    with pytest.raises(ValueError, match="block_ms"):
        make_blocking_client(valkey_url, block_ms=-1)


def test_async_client_is_bounded_too() -> None:
    async def scenario() -> float:
        client = make_async_client(f"redis://127.0.0.1:{free_port()}", timeout=0.6)
        start = time.monotonic()
        with pytest.raises(valkey.exceptions.ConnectionError):
            await client.get("k")
        await client.aclose()
        return time.monotonic() - start

    assert asyncio.run(scenario()) <= 0.6 + SLACK


def test_embedded_server_persists_in_its_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VALKEY_URL", raising=False)
    server = embedded_server(tmp_path / "data")
    assert embedded_server(tmp_path / "data") is server  # once per process and directory
    url = resolve_url(data_dir=tmp_path / "data")
    assert url == server.url
    client = valkey.Valkey.from_url(url, socket_timeout=5)
    client.set("kept", "yes")
    client.close()
    server.stop()  # graceful: the AOF is flushed
    again = embedded_server(tmp_path / "data")
    assert again is not server and again.running
    client = valkey.Valkey.from_url(again.url, socket_timeout=5)
    assert client.get("kept") == b"yes"
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    client.close()
    again.stop()


def test_blocking_clients_of_both_apis_share_one_bound(valkey_url: str) -> None:
    # One source: the pool cap and the twin helper are the same for both APIs.
    from execctx_nb._connection import (
        BLOCKING_POOL_SIZE,
        _async,
        _sync,
        make_async_blocking_client,
        make_blocking_client,
    )

    sync_client = make_blocking_client(valkey_url, block_ms=100)
    twin = _sync.blocking_twin(sync_client, 100)
    async_client = make_async_blocking_client(valkey_url, block_ms=100)
    async_twin = _async.blocking_twin(async_client, 100)
    for client in (sync_client, twin, async_client, async_twin):
        assert client.connection_pool.max_connections == BLOCKING_POOL_SIZE
        assert client.connection_pool.connection_kwargs["socket_timeout"] > 0.1
    sync_client.close()
    twin.close()


def test_connect_is_thread_safe(valkey_url: str, tmp_path: Path) -> None:
    import execctx_nb as ec

    handles: list[ec.ExecutionContextStore] = []
    barrier = threading.Barrier(8)

    def grab() -> None:
        barrier.wait()
        handles.append(ec.connect(valkey_url, cold_store=str(tmp_path)))

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(handles) == 8 and len({id(h.client) for h in handles}) == 1
    assert ec.disconnect(valkey_url, cold_store=str(tmp_path))
    assert all(h.closed for h in handles)


def test_sentinel_urls_are_parsed_and_redacted() -> None:
    from execctx_nb._connection._common import parse_sentinel_url, redact_url
    from execctx_nb.errors import InvalidArgumentError

    sentinels, service, settings = parse_sentinel_url(
        "valkey+sentinel://app:s3cret@s1:26379,s2:26380/orders?db=2"
    )
    assert sentinels == [("s1", 26379), ("s2", 26380)] and service == "orders"
    assert settings == {"username": "app", "password": "s3cret", "db": 2}
    assert parse_sentinel_url("valkeys+sentinel://h:1/x")[2] == {"ssl": True}
    assert "s3cret" not in redact_url("valkey+sentinel://app:s3cret@s1:26379/orders")
    for bad in ("valkey+sentinel://h:1", "valkey+sentinel://h/x", "valkey+sentinel:///x"):
        with pytest.raises(InvalidArgumentError, match="sentinel"):
            parse_sentinel_url(bad)
