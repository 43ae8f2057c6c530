"""One error tree, really: no valkey exception escapes any layer, on a dead server or a refusal.

The store's own table is in test_store_faults.py; this one covers the publisher, both
subscribers, tail, both widgets (constructors and live loops) and the magics.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import valkey
from servers import free_port
from twins import async_subscriber, close_all, run_loop_until

import execctx_nb as ec
from execctx_nb import keys
from execctx_nb.events import StepCommitted


@pytest.fixture
def refused_url(valkey_url: str, tenant: str) -> Iterator[str]:
    """A user whose ACL grants another tenant only: every command on ``tenant`` is refused."""
    user, password = f"r{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = valkey.Valkey.from_url(valkey_url)
    admin.execute_command(
        "ACL", "SETUSER", user, "on", f">{password}", *keys.tenant_acl_rules(f"{tenant}z")
    )
    yield valkey_url.replace("redis://", f"redis://{user}:{password}@")
    admin.execute_command("ACL", "DELUSER", user)
    admin.close()


def _calls(url: str, tenant: str) -> dict[str, Callable[[], Any]]:
    event = StepCommitted(execution_id="run-1", step_id="a")

    def publish() -> Any:
        with ec.ExecutionEventPublisher(url=url) as pub:
            return pub.publish(tenant, event)

    def publish_many() -> Any:
        with ec.ExecutionEventPublisher(url=url) as pub:
            return pub.publish_many(tenant, [event, event])

    def trim() -> Any:
        with ec.ExecutionEventPublisher(url=url) as pub:
            return pub.trim(tenant, maxlen=10)

    def tail() -> Any:
        return next(ec.tail(tenant, url=url, block_ms=50))

    def event_tail() -> Any:
        from execctx_nb.widgets import EventTail

        return EventTail(tenant, url=url).close()

    def lineage_graph() -> Any:
        from execctx_nb.widgets import LineageGraph

        with ec.create_valkey_execution_context_store(url, timeout=0.5) as store:
            return LineageGraph(tenant, "run-1", store=store).close()

    return {
        "publish": publish,
        "publish_many": publish_many,
        "trim": trim,
        "tail": tail,
        "EventTail": event_tail,
        "LineageGraph": lineage_graph,
    }


def _assert_ours(name: str, call: Callable[[], Any]) -> ec.ExecctxError:
    try:
        call()
    except ec.ExecctxError as exc:
        assert not isinstance(exc, valkey.exceptions.ValkeyError), name
        return exc
    except BaseException as exc:  # pragma: no cover - the failure this test is for
        raise AssertionError(
            f"{name} raised {type(exc).__module__}.{type(exc).__name__}: {exc}"
        ) from exc
    raise AssertionError(f"{name} did not raise")


@pytest.mark.parametrize("name", list(_calls("redis://x", "t")))
def test_a_dead_server_raises_the_librarys_errors(name: str, tenant: str) -> None:
    dead = f"redis://127.0.0.1:{free_port()}"
    exc = _assert_ours(name, _calls(dead, tenant)[name])
    assert isinstance(exc, ec.StoreUnavailableError), (name, exc)


@pytest.mark.parametrize("name", list(_calls("redis://x", "t")))
def test_an_acl_refusal_raises_the_librarys_errors(
    name: str, tenant: str, refused_url: str
) -> None:
    exc = _assert_ours(name, _calls(refused_url, tenant)[name])
    assert "forbidden" in str(exc) and "ACL" in str(exc), (name, exc)


@pytest.mark.parametrize("api", ["sync", "async"])
def test_subscribers_refused_raise_and_dead_servers_show_in_health(
    api: str, tenant: str, refused_url: str
) -> None:
    def make(url: str) -> Any:
        options = {"group": "g", "handle_signals": False}
        if api == "async":
            return async_subscriber(url, **options)
        return ec.ExecutionEventSubscriber(url=url, **options)

    sub = make(refused_url)
    _assert_ours("run_loop refused", lambda: sub.run_loop(tenant, lambda e, m: None, block_ms=50))
    sub.close()
    dead = make(f"redis://127.0.0.1:{free_port()}")
    run_loop_until(dead, tenant, lambda e, m: None, lambda: dead.health.state == "unavailable")
    assert dead.health.last_error  # it waited, it did not die
    dead.close()
    close_all()


def test_magics_raise_the_librarys_errors_when_the_server_dies(tenant: str) -> None:
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell
    from servers import ControlledServer

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "execctx_nb")
    dead = f"redis://127.0.0.1:{free_port()}"
    try:
        with pytest.raises(UsageError, match="Cannot connect"):
            shell.run_line_magic("execctx", f"connect {dead}")
        with ControlledServer() as server:
            shell.run_line_magic("execctx", f"connect {server.url}")
            server.kill()
            for line in (
                f"executions {tenant}",
                f"steps {tenant} run-1",
                f"load {tenant} run-1 s",
                f"schema {tenant} run-1 s",
                f"lineage {tenant} run-1",
                f"tail {tenant}",
            ):
                _assert_ours(line, lambda line=line: shell.run_line_magic("execctx", line))
    finally:
        shell.run_line_magic("reload_ext", "execctx_nb")


def test_live_widgets_show_a_refusal_in_their_error_trait(valkey_url: str, tenant: str) -> None:
    from execctx_nb.widgets import EventTail, LineageGraph

    user, password = f"w{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = valkey.Valkey.from_url(valkey_url)
    admin.execute_command(
        "ACL", "SETUSER", user, "on", f">{password}", *keys.tenant_acl_rules(tenant)
    )
    url = valkey_url.replace("redis://", f"redis://{user}:{password}@")
    tail = EventTail(tenant, url=url)
    graph = LineageGraph(tenant, "run-1", store=ec.connect(url))
    try:
        admin.execute_command("ACL", "SETUSER", user, "resetkeys")  # revoked while they run
        end = time.monotonic() + 10
        while not (tail.error and graph.error) and time.monotonic() < end:
            time.sleep(0.02)
        for widget in (tail, graph):
            assert widget.status == "error"
            assert widget.error.startswith("EventStreamError: ") and "forbidden" in widget.error
            assert password not in widget.error
    finally:
        tail.close()
        graph.close()
        admin.execute_command("ACL", "DELUSER", user)
        admin.close()
        ec.disconnect(url)
