"""Credentials and tenant-restricted ACL users, against the real server: isolation holds.

A user created with ``keys.tenant_acl_rules("org_42")`` may do everything the library does
for org_42, and nothing for another tenant: no names, no objects, no archives.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import valkey
from twins import APIS, run_loop_until, store_for

import execctx_nb as ec
from execctx_nb import keys
from execctx_nb.errors import ColdTierError, EventStreamError, StoreUnavailableError
from execctx_nb.events import StepCommitted


def _user_url(valkey_url: str, user: str, password: str) -> str:
    return valkey_url.replace("redis://", f"redis://{user}:{password}@")


@pytest.fixture
def tenants(valkey_url: str, tenant: str) -> Iterator[tuple[str, str, str]]:
    """(own tenant, other tenant, URL of a user limited to the own tenant)."""
    own, other = f"{tenant}o", f"{tenant}x"
    user, password = f"u{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = valkey.Valkey.from_url(valkey_url)
    admin.execute_command("ACL", "SETUSER", user, "on", f">{password}", *keys.tenant_acl_rules(own))
    yield own, other, _user_url(valkey_url, user, password)
    admin.execute_command("ACL", "DELUSER", user)
    admin.close()


def _frame_env(step: str, execution: str = "run-1") -> ec.StepEnvelope:
    return ec.StepEnvelope.from_frame(
        pl.DataFrame({"x": [1, 2]}), execution_id=execution, step_id=step
    )


@pytest.mark.parametrize("api", APIS)
def test_a_tenant_user_can_do_everything_for_its_tenant(
    tenants: tuple[str, str, str], tmp_path: Path, api: str
) -> None:
    own, _, url = tenants
    scope = ec.ExecutionScope(own, "run-1")
    with store_for(api, url, cold_store=tmp_path / "cold", inline_limit_bytes=10) as store:
        store.put_steps(
            scope,
            [_frame_env("a"), ec.StepEnvelope(execution_id="run-1", step_id="b", data=[{"y": 1}])],
        )
        assert store.get_step(scope, "a").to_polars()["x"].to_list() == [1, 2]
        assert store.get_step(scope, "a", 0) is not None
        assert [e.step_id for e in store.get_execution(scope)] == ["a", "b"]
        assert store.list_executions(own) == ["run-1"]
        store.set_flow_vars(own, "f", {"k": 1})
        assert store.get_flow_vars(own, "f") == {"k": 1}
        assert store.delete_flow_vars(own, "f") == 1
        lease = store.acquire_lease(scope, "w", 5000)
        assert lease is not None
        store.renew_lease(lease)
        assert store.release_lease(lease)
        store.archive_execution(scope, "flow", evict=True)
        assert [e.step_id for e in store.restore_execution(own, "flow", "run-1")] == ["a", "b"]
        assert store.check_health() is ec.HealthState.HEALTHY  # PING only: INFO not granted
        assert "INFO is not permitted" in store.health_reason
        assert store.delete_execution(scope) > 0


def test_a_tenant_user_can_publish_consume_trim_and_tail(tenants: tuple[str, str, str]) -> None:
    own, _, url = tenants
    with ec.ExecutionEventPublisher(url=url) as pub:
        pub.publish(own, StepCommitted(execution_id="run-1", step_id="a"))
        pub.publish(own, StepCommitted(execution_id="run-1", step_id="a"))  # a duplicate
        stop = threading.Event()
        seen: list[str] = []
        first = next(ec.tail(own, url=url, from_id="0", block_ms=50, stop=stop))
        sub = ec.ExecutionEventSubscriber(url=url, group="g", handle_signals=False)
        run_loop_until(sub, own, lambda e, m: seen.append(m.stream_id), lambda: len(seen) >= 1)
        sub.close()
        stop.set()
        assert len(seen) == 1 and first.event.step_id == "a"  # type: ignore[union-attr]
        assert sub.health.state == "stopped" and sub.health.last_error is None
        assert pub.trim(own, maxlen=0).removed >= 0


def test_nothing_of_another_tenant_is_listed_read_or_touched(
    tenants: tuple[str, str, str], valkey_url: str, tmp_path: Path
) -> None:
    _, other, url = tenants
    cold = tmp_path / "cold"  # the cold tier is shared by both
    scope = ec.ExecutionScope(other, "secret-run")
    with ec.create_valkey_execution_context_store(
        valkey_url, cold_store=cold, inline_limit_bytes=10
    ) as admin:
        admin.put_step(scope, _frame_env("payroll", "secret-run"))
        admin.archive_execution(scope, "flow")
        admin.archive_execution(ec.ExecutionScope(other, "evicted-run"), "flow", evict=True)
    before = sorted(p.relative_to(cold) for p in cold.rglob("*") if p.is_file())
    logs: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: logs.append(record.getMessage())  # type: ignore[method-assign]
    with ec.create_valkey_execution_context_store(url, cold_store=cold) as store:
        attempts = {
            "list_executions": lambda: store.list_executions(other),
            "list_steps": lambda: store.list_steps(scope),
            "get_execution": lambda: store.get_execution(scope),
            "get_step": lambda: store.get_step(scope, "payroll"),
            "archive": lambda: store.archive_execution(scope, "flow"),
            "archive evicted": lambda: store.archive_execution(
                ec.ExecutionScope(other, "evicted-run"), "flow"
            ),
            "restore": lambda: store.restore_execution(other, "flow", "secret-run"),
            "delete": lambda: store.delete_execution(scope),
            "delete evicted": lambda: store.delete_execution(
                ec.ExecutionScope(other, "evicted-run")
            ),
        }
        for name, attempt in attempts.items():
            with pytest.raises(StoreUnavailableError, match="forbidden") as info:
                attempt()
            assert "secret-run" not in str(info.value).replace(
                f"{other}:exec:secret-run", ""
            ) or "payroll" not in str(info.value), name
            assert "ACL" in str(info.value) and "maxmemory" not in str(info.value), name
            assert store.health is ec.HealthState.FORBIDDEN
    after = sorted(p.relative_to(cold) for p in cold.rglob("*") if p.is_file())
    assert after == before  # no cold object of the other tenant was written or deleted
    with (
        ec.ExecutionEventPublisher(url=url) as pub,
        pytest.raises(EventStreamError, match=r"forbidden.*ACL"),
    ):
        pub.publish(other, StepCommitted(execution_id="run-1", step_id="a"))
    with pytest.raises(EventStreamError, match="forbidden"):
        ec.tail(other, url=url)
    sub = ec.ExecutionEventSubscriber(url=url, group="g", handle_signals=False)
    with pytest.raises(EventStreamError, match="forbidden"):
        sub.run_loop(other, lambda e, m: None, block_ms=50)
    sub.close()


def test_a_wrong_password_is_forbidden_not_an_outage(valkey_url: str, tenant: str) -> None:
    url = _user_url(valkey_url, "nobody", "wrong")
    sub = ec.ExecutionEventSubscriber(url=url, group="g", handle_signals=False)
    with pytest.raises(EventStreamError, match="forbidden"):
        sub.run_loop(tenant, lambda e, m: None, block_ms=50)  # does not retry forever
    sub.close()
    with pytest.raises(EventStreamError, match="forbidden"):
        ec.tail(tenant, url=url)


ARCHIVE_STEPS = ("archive", "evict", "archive+evict", "restore")


@pytest.mark.parametrize("ops", list(itertools.product(ARCHIVE_STEPS, repeat=3)))
def test_archiving_is_idempotent_under_any_sequence(
    valkey_url: str, tenant: str, tmp_path: Path, ops: tuple[str, ...]
) -> None:
    scope = ec.ExecutionScope(tenant, "run-1")
    with ec.create_valkey_execution_context_store(
        valkey_url, cold_store=tmp_path, inline_limit_bytes=2000
    ) as store:
        written = store.put_steps(scope, [
            ec.StepEnvelope(execution_id="run-1", step_id="inline", data=[{"a": 1}]),
            ec.StepEnvelope.from_frame(  # categoricals: JSON cannot keep them, so Parquet
                pl.DataFrame({"c": pl.Series(["x", "y"], dtype=pl.Categorical)}),
                execution_id="run-1",
                step_id="cold",
            ),
            ec.StepEnvelope(execution_id="run-1", step_id="inline", attempt=1, data=[{"a": 2}]),
        ])  # fmt: skip
        store.archive_execution(scope, "flow")
        for op in ops:
            if op == "archive":
                store.archive_execution(scope, "flow")
            elif op == "evict":
                store.archive_execution(scope, "flow", evict=True)
            elif op == "archive+evict":
                store.archive_execution(scope, "flow")
                store.archive_execution(scope, "flow", evict=True)
            else:
                with contextlib.suppress(ColdTierError):
                    store.restore_execution(tenant, "flow", "run-1")
        restored = store.restore_execution(tenant, "flow", "run-1")
        assert [(e.step_id, e.attempt) for e in restored] == [("cold", 0), ("inline", 1)]
        assert store.get_step(scope, "inline", 0).data == [{"a": 1}]
        assert written[1].data_ref is not None  # it went to the cold tier
        assert store.get_step(scope, "cold").to_polars().equals(written[1].to_polars())


def test_no_secret_reaches_a_repr_a_message_a_log_or_a_widget(
    valkey_url: str, tenant: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from servers import free_port

    from execctx_nb.widgets import EventTail, LineageGraph

    secret = f"pw-{uuid.uuid4().hex}"
    user = f"s{uuid.uuid4().hex[:8]}"
    admin = valkey.Valkey.from_url(valkey_url)
    admin.execute_command(
        "ACL", "SETUSER", user, "on", f">{secret}", *keys.tenant_acl_rules(tenant)
    )
    seen: list[str] = []
    caplog.set_level(logging.DEBUG)
    try:
        good = _user_url(valkey_url, user, secret)
        dead = f"redis://{user}:{secret}@127.0.0.1:{free_port()}/0?password={secret}"
        scope = ec.ExecutionScope(tenant, "run-1")
        for url in (good, dead):
            store = ec.connect(url, cold_store=str(tmp_path), timeout=0.3)
            seen += [repr(store), str(store.borrow())]
            for call in (
                lambda s=store: s.put_step(
                    scope, ec.StepEnvelope(execution_id="run-1", step_id="a", data=[{"x": 1}])
                ),
                lambda s=store: s.list_executions(f"{tenant}zz"),
                lambda s=store: s.check_health(),
            ):
                try:
                    seen.append(repr(call()))
                except ec.ExecctxError as exc:
                    seen += [str(exc), repr(exc)]
                seen.append(store.health_reason)
            store.close()
            seen.append(repr(store))
            try:
                store.get_step(scope, "a")
            except ec.ExecctxError as exc:
                seen.append(str(exc))
            ec.disconnect(url, cold_store=str(tmp_path), timeout=0.3)
        tail = EventTail(tenant, url=good)
        graph = LineageGraph(tenant, "run-1", store=ec.connect(good))
        seen += [repr(tail), repr(graph), str(tail.get_state()), str(graph.get_state())]
        tail.close()
        graph.close()
        for fn in (lambda: EventTail(tenant, url=dead), lambda: ec.tail(tenant, url=dead)):
            try:
                fn()
            except ec.ExecctxError as exc:
                seen.append(str(exc))
    finally:
        admin.execute_command("ACL", "DELUSER", user)
        admin.close()
    seen += [r.getMessage() for r in caplog.records]
    assert len(seen) > 20
    leaks = [s for s in seen if secret in s]
    assert not leaks, leaks[:3]
    assert any(":***@" in s for s in seen)  # the URLs are there, redacted
