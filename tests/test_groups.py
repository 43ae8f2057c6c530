"""Consumer-group monitoring and repairs against a real Valkey: ``group_status``,
``replay_dead_letter``, ``remove_consumer`` (dead letters produced by a real subscriber)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import valkey
from twins import FAST_RECLAIM, run_loop_until

from execctx_nb import (
    ExecutionEventPublisher,
    ExecutionEventSubscriber,
    group_status,
    keys,
    remove_consumer,
    replay_dead_letter,
)
from execctx_nb._connection import make_client
from execctx_nb.errors import EventStreamError, InvalidArgumentError
from execctx_nb.events import Event, StepCommitted

pytestmark = pytest.mark.both_topologies


def _subscriber(url: str) -> ExecutionEventSubscriber:
    return ExecutionEventSubscriber(
        make_client(url), group="g", consumer="c1", max_deliveries=2, **FAST_RECLAIM
    )


@pytest.fixture
def publisher(valkey_url: str) -> Any:
    pub = ExecutionEventPublisher(make_client(valkey_url, retries=0))
    yield pub
    pub.client.close()


def test_status_shows_pending_lag_and_dead_letters_and_a_replay_is_handled(
    publisher: ExecutionEventPublisher, valkey_url: str, valkey_client: valkey.Valkey, tenant: str
) -> None:
    stream = keys.events_key(tenant)
    assert group_status(tenant, url=valkey_url).groups == ()  # no stream yet
    poison = publisher.publish(tenant, StepCommitted(execution_id="r", step_id="bad"))
    publisher.publish(tenant, StepCommitted(execution_id="r", step_id="ok"))
    broken = True
    handled: list[str] = []

    def handler(event: Event, meta: Any) -> None:
        if broken and getattr(event, "step_id", "") == "bad":
            raise ValueError("schema mismatch in bad")
        handled.append(meta.stream_id)

    sub = _subscriber(valkey_url)
    run_loop_until(sub, tenant, handler, lambda: sub.stats.dead_lettered == 1, block_ms=100)
    # a consumer that read an entry and died before acknowledging it
    later = publisher.publish(tenant, StepCommitted(execution_id="r", step_id="later"))
    valkey_client.xreadgroup("g", "dead-1", {stream: ">"}, count=1)
    publisher.publish(tenant, StepCommitted(execution_id="r", step_id="unread"))

    status = group_status(tenant, url=valkey_url)
    (g,) = status.groups
    assert g.name == "g" and g.pending == 1 and g.oldest_pending == later
    assert g.lag == 1  # "unread" not delivered yet
    assert {c.name: c.pending for c in g.consumers} == {"c1": 0, "dead-1": 1}
    assert status.dead_letters == 1
    (dead,) = status.newest_dead_letters
    assert dead.original_id == poison and dead.kind == "step.committed"
    assert "ValueError: schema mismatch in bad" in dead.error and dead.problem is None
    text, html = str(status), status._repr_html_()
    assert "dead-1: 1 pending" in text and "schema mismatch" in text
    assert "dead-1" in html and "schema mismatch" in html

    broken = False  # the handler was fixed: replay the dead letter, a consumer handles it
    new_id = replay_dead_letter(tenant, dead.id, url=valkey_url)
    assert valkey_client.xlen(keys.dlq_key(tenant)) == 0
    with pytest.raises(InvalidArgumentError, match="replayed or removed already"):
        replay_dead_letter(tenant, dead.id, url=valkey_url)  # never published twice
    sub = _subscriber(valkey_url)
    run_loop_until(sub, tenant, handler, lambda: new_id in handled, block_ms=100)
    assert valkey_client.xrange(stream, new_id, new_id)[0][1][b"kind"] == b"step.committed"


def test_removing_a_dead_consumer_hands_its_pending_entries_over(
    publisher: ExecutionEventPublisher, valkey_url: str, valkey_client: valkey.Valkey, tenant: str
) -> None:
    stream = keys.events_key(tenant)
    publisher.publish_many(
        tenant, [StepCommitted(execution_id="r", step_id=f"s{i}") for i in range(250)]
    )
    valkey_client.xgroup_create(stream, "g", "0")
    valkey_client.xreadgroup("g", "dead-1", {stream: ">"}, count=240)
    valkey_client.xreadgroup("g", "alive", {stream: ">"}, count=5)
    with pytest.raises(InvalidArgumentError, match="to itself"):
        remove_consumer(tenant, "g", "dead-1", to="dead-1", url=valkey_url)
    with pytest.raises(InvalidArgumentError, match="No consumer 'nobody'"):
        remove_consumer(tenant, "g", "nobody", url=valkey_url)
    with pytest.raises(InvalidArgumentError, match="No consumer group 'h'"):
        remove_consumer(tenant, "h", "dead-1", url=valkey_url)
    assert remove_consumer(tenant, "g", "dead-1", url=valkey_url) == 240  # to "alive"
    (g,) = group_status(tenant, url=valkey_url).groups
    assert {c.name: c.pending for c in g.consumers} == {"alive": 245}
    assert g.pending == 245  # nothing dropped

    # the group's only consumer: its entries need somewhere to go
    with pytest.raises(InvalidArgumentError, match="only consumer"):
        remove_consumer(tenant, "g", "alive", url=valkey_url)
    assert remove_consumer(tenant, "g", "alive", to="successor", url=valkey_url) == 245
    (g,) = group_status(tenant, url=valkey_url).groups
    assert {c.name: c.pending for c in g.consumers} == {"successor": 245}


def test_a_malformed_dead_letter_is_listed_and_never_replayed(
    valkey_url: str, valkey_client: valkey.Valkey, tenant: str
) -> None:
    dlq, stream = keys.dlq_key(tenant), keys.events_key(tenant)
    cases = {
        "not json": "{oops",
        "not an object of strings": json.dumps({"kind": 1}),
        "no fields": None,
        "too big": json.dumps({"kind": "step.committed", "event": "x" * (1 << 20)}),
    }
    ids = {}
    for name, fields in cases.items():
        entry = {"origId": "1-0", "error": f"<b>{name}</b>", "deliveries": "x"}
        if fields is not None:
            entry["fields"] = fields
        ids[name] = valkey_client.xadd(dlq, entry).decode()
    status = group_status(tenant, url=valkey_url)
    assert status.dead_letters == len(cases) == 4
    problems = {d.id: d.problem for d in status.newest_dead_letters}
    assert "not JSON" in str(problems[ids["not json"]])
    assert "object of strings" in str(problems[ids["not an object of strings"]])
    assert "no `fields`" in str(problems[ids["no fields"]])
    assert "more than 1,048,576" in str(problems[ids["too big"]])
    assert all(d.deliveries is None for d in status.newest_dead_letters)
    html = status._repr_html_()
    assert "<b>not json</b>" not in html and "&lt;b&gt;not json" in html  # escaped
    for dead_id in ids.values():
        with pytest.raises(EventStreamError, match="cannot be replayed"):
            replay_dead_letter(tenant, dead_id, url=valkey_url)
    assert valkey_client.xlen(dlq) == 4 and not valkey_client.exists(stream)
    with pytest.raises(InvalidArgumentError, match="Invalid dead letter id"):
        replay_dead_letter(tenant, "0-0 OR 1", url=valkey_url)


def test_the_monitor_is_read_only_until_asked_and_confirms_each_action(
    valkey_url: str, valkey_client: valkey.Valkey, tenant: str
) -> None:
    from execctx_nb.widgets import StreamMonitor

    stream, dlq = keys.events_key(tenant), keys.dlq_key(tenant)
    original = {"kind": "step.committed", "idem": "k1", "event": "{}"}
    dead_id = valkey_client.xadd(
        dlq, {"origId": "1-0", "fields": json.dumps(original), "error": "handler raised"}
    ).decode()
    valkey_client.xadd(stream, {"kind": "x"})
    valkey_client.xgroup_create(stream, "g", "0")
    valkey_client.xreadgroup("g", "dead-1", {stream: ">"}, count=1)

    watch = StreamMonitor(tenant, url=valkey_url, start=False)
    try:
        assert dead_id in watch.html and "dead-1" in watch.html and "handler raised" in watch.html
        assert "data-op" not in watch.html  # read-only: no buttons
        with pytest.raises(InvalidArgumentError, match="read-only"):
            watch.ask_replay(dead_id)
        watch._on_view_message(watch, {"op": "replay", "id": dead_id}, [])  # a forged click
        assert "read-only" in watch.result and valkey_client.xlen(dlq) == 1
    finally:
        watch.close()

    act = StreamMonitor(tenant, url=valkey_url, actions=True, interval=0.1)
    again = StreamMonitor(tenant, url=valkey_url, interval=0.1)  # a re-run cell
    assert again.status == "live" and act.status == "stopped"  # the earlier one stopped
    again.close()
    act.start()
    try:
        assert f"data-id='{dead_id}'" in act.html and "data-consumer='dead-1'" in act.html
        act._on_view_message(act, {"op": "replay", "id": dead_id}, [])
        assert dead_id in act.confirm and valkey_client.xlen(dlq) == 1  # asked, not done
        act._on_view_message(act, {"op": "cancel"}, [])
        assert act.confirm == "" and valkey_client.xlen(dlq) == 1
        act.ask_replay(dead_id)
        act._on_view_message(act, {"op": "confirm"}, [])
        assert act.result.startswith(f"replayed {dead_id} as ") and valkey_client.xlen(dlq) == 0
        new_id = act.result.rsplit(" ", 1)[-1]
        fields = valkey_client.xrange(stream, new_id, new_id)[0][1]
        assert {k.decode(): v.decode() for k, v in fields.items()} == original
        act.ask_remove("g", "dead-1")
        with pytest.raises(InvalidArgumentError, match="only consumer"):
            act.confirm_action()  # its pending entry has nowhere to go: nothing removed
        assert "only consumer" in act.result
        assert act.last is not None and act.last.groups[0].consumers[0].pending == 1
        assert act.status == "live"
    finally:
        act.close()
    assert act.status == "stopped"
