"""Poison-pill stream entries, written for real: every decoder path dead-letters or skips them.

One hostile entry must never stop a consumer group, a tail or a widget: each entry the
decoders cannot take is dead-lettered once with its reason, and the loop goes on.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import valkey
from twins import APIS, async_subscriber, close_all, run_loop_until

from execctx_nb import ExecutionEventPublisher, ExecutionEventSubscriber, keys, tail
from execctx_nb._connection import make_client
from execctx_nb.events import ExecutionLog, StepCommitted

_TS = "2026-01-01T00:00:00Z"
_DEEP = json.dumps(
    {"kind": "execution.log", "executionId": "run-1", "attempt": 0, "ts": _TS,
     "level": "info", "message": "m"}
)[:-1] + ',"x":' + "[" * 1000 + "]" * 1000 + "}"  # fmt: skip
_HUGE = json.dumps(
    {"kind": "execution.log", "executionId": "run-1", "attempt": 0, "ts": _TS,
     "level": "info", "message": "x" * 2_000_000}
)  # fmt: skip

POISON: dict[str, dict[str, bytes | str]] = {
    "deep nesting": {"kind": "execution.log", "idem": "p-deep", "event": _DEEP},
    "invalid UTF-8 event": {"kind": "execution.log", "idem": "p-utf8", "event": b'{"kind":"\xff\xfe"}'},
    "invalid UTF-8 idem": {"kind": "execution.log", "idem": b"p-\xff", "event": "{}"},
    "invalid UTF-8 kind": {"kind": b"\xc3\x28", "idem": "p-kind8", "event": "{}"},
    "huge field": {"kind": "execution.log", "idem": "p-huge", "event": _HUGE},
    "unknown kind": {"kind": "step.exploded", "idem": "p-unknown",
                     "event": '{"kind":"step.exploded","executionId":"r","attempt":0}'},
    "missing fields": {"kind": "execution.log"},
    "not JSON": {"kind": "execution.log", "idem": "p-json", "event": "{not json"},
}  # fmt: skip


def _log(message: str) -> ExecutionLog:
    return ExecutionLog(execution_id="run-1", message=message)


@pytest.fixture
def poisoned(valkey_url: str, tenant: str) -> Iterator[tuple[str, dict[str, str]]]:
    """A stream: a good event, every poison entry, a good event. Yields (tenant, ids)."""
    with ExecutionEventPublisher(url=valkey_url) as pub:
        first = pub.publish(tenant, _log("before"))
        raw = valkey.Valkey.from_url(valkey_url)
        ids = {
            name: raw.xadd(keys.events_key(tenant), fields).decode()  # type: ignore[arg-type]
            for name, fields in POISON.items()
        }
        raw.close()
        last = pub.publish(tenant, _log("after"))
    yield tenant, {"before": first, **ids, "after": last}


@pytest.mark.parametrize("api", APIS)
def test_poison_entries_are_dead_lettered_once_and_the_group_goes_on(
    poisoned: tuple[str, dict[str, str]], valkey_url: str, valkey_client: valkey.Valkey, api: str
) -> None:
    tenant, ids = poisoned
    options = {"group": "g", "consumer": "c1", "handle_signals": False, "claim_interval_s": 0.1}
    handled: list[str] = []
    for _restart in range(2):  # a restart finds nothing left to do
        if api == "async":
            sub = async_subscriber(valkey_url, **options)
        else:
            sub = ExecutionEventSubscriber(make_client(valkey_url), **options)
        run_loop_until(
            sub,
            tenant,
            lambda event, meta: handled.append(event.message),
            lambda: (
                len(handled) == 2 and int(valkey_client.xlen(keys.dlq_key(tenant))) == len(POISON)
            ),
        )
        close_all()
    assert handled == ["before", "after"]
    letters = {
        f[b"origId"].decode(): f[b"error"].decode()
        for _, f in valkey_client.xrange(keys.dlq_key(tenant))
    }
    assert set(letters) == {ids[name] for name in POISON}  # each exactly once
    assert "nested too deeply" in letters[ids["deep nesting"]]
    assert "2000" in letters[ids["huge field"]] and "at most" in letters[ids["huge field"]]
    assert "missing field(s)" in letters[ids["missing fields"]]
    assert int(valkey_client.xpending(keys.events_key(tenant), "g")["pending"]) == 0


def test_tail_skips_poison_with_a_notice(
    poisoned: tuple[str, dict[str, str]], valkey_url: str
) -> None:
    tenant, ids = poisoned
    warnings: list[str] = []

    class Log:
        def debug(self, msg: str, *args: Any, **kw: Any) -> None: ...
        def info(self, msg: str, *args: Any, **kw: Any) -> None: ...
        def error(self, msg: str, *args: Any, **kw: Any) -> None: ...
        def warning(self, msg: str, *args: Any, **kw: Any) -> None:
            warnings.append(msg % args)

    stop = threading.Event()
    got = []
    for entry in tail(tenant, url=valkey_url, from_id="0", block_ms=50, stop=stop, logger=Log()):
        got.append(entry.event.message)  # type: ignore[union-attr]
        if entry.stream_id == ids["after"]:
            stop.set()
    assert got == ["before", "after"]
    assert len(warnings) == len(POISON) and all("skipped entry" in w for w in warnings)


def test_widgets_survive_poison(poisoned: tuple[str, dict[str, str]], valkey_url: str) -> None:
    from execctx_nb.widgets import EventTail

    tenant, _ = poisoned
    widget = EventTail(tenant, url=valkey_url, from_id="0")
    try:
        deadline = time.monotonic() + 10
        while widget.received < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert widget.status == "live" and widget.error == ""
        assert "skipped entry" in widget.notice
        with ExecutionEventPublisher(url=valkey_url) as pub:  # and it keeps following
            pub.publish(tenant, StepCommitted(execution_id="run-1", step_id="later"))
        while widget.received < 3:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        widget.close()


def test_the_publisher_refuses_what_consumers_would_dead_letter(
    valkey_url: str, tenant: str
) -> None:
    from execctx_nb.errors import InvalidArgumentError

    with ExecutionEventPublisher(url=valkey_url) as pub:
        with pytest.raises(InvalidArgumentError, match=r"at most 1048576.*at `event`"):
            pub.publish(tenant, _log("x" * 2_000_000))
        with pytest.raises(InvalidArgumentError, match=r"at `events\[1\]`"):
            pub.publish_many(tenant, [_log("ok"), _log("x" * 2_000_000)])
