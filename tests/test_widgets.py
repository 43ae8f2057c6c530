"""EventTail and LineageGraph against a real Valkey: live updates, filters, bounds, threads."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from execctx_nb import (
    ExecutionEventPublisher,
    ExecutionScope,
    LineageEntry,
    StepEnvelope,
    StepMetadata,
)
from execctx_nb import connect as store_connect
from execctx_nb.errors import InvalidArgumentError
from execctx_nb.events import ExecutionLog, StepCommitted, StepFailed
from execctx_nb.widgets import EventTail, LineageGraph
from tests.servers import ControlledServer

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout} s")


def tail_threads() -> list[threading.Thread]:
    return [
        t for t in threading.enumerate() if t.name.startswith(("execctx-tail", "execctx-lineage"))
    ]


@pytest.fixture
def publisher(valkey_url: str) -> Iterator[ExecutionEventPublisher]:
    with ExecutionEventPublisher(url=valkey_url) as pub:
        yield pub


@pytest.fixture
def store(valkey_url: str) -> Iterator[Any]:
    with store_connect(valkey_url) as s:
        yield s


@pytest.fixture
def make_tail(valkey_url: str) -> Iterator[Callable[..., EventTail]]:
    made: list[EventTail] = []

    def make(tenant: str, **kw: Any) -> EventTail:
        tail = EventTail(tenant, url=valkey_url, **kw)
        made.append(tail)
        return tail

    yield make
    for tail in made:
        tail.close()


def committed(execution: str, step: str, rows: int = 1) -> StepCommitted:
    return StepCommitted(execution_id=execution, step_id=step, row_count=rows)


def test_tail_shows_event_published_after_it_started(make_tail, publisher, tenant) -> None:
    tail = make_tail(tenant)
    assert tail.status == "live"
    publisher.publish(tenant, committed("run-1", "clean", rows=1200))
    wait_for(lambda: len(tail.events) == 1)
    row = tail.events[0]
    assert (row["kind"], row["executionId"], row["stepId"]) == ("step.committed", "run-1", "clean")
    assert row["summary"] == "committed (1,200 rows)"
    assert tail.received == 1


def test_tail_starts_with_history_since_and_restarts_without_gaps(
    make_tail, publisher, tenant
) -> None:
    ids = [publisher.publish(tenant, committed("run-1", f"old{i}")) for i in range(5)]
    recent = make_tail(tenant, history=3)
    wait_for(lambda: len(recent.events) == 3)
    assert [e["stepId"] for e in recent.events] == ["old2", "old3", "old4"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC", recent.events[0]["ts"])
    # One tail per stream in a kernel: each new one stops the previous (it says so).
    since = make_tail(tenant, since=ids[1])  # inclusive
    wait_for(lambda: len(since.events) == 4)
    assert since.events[0]["stepId"] == "old1" and recent.status == "stopped"
    replay = make_tail(tenant, from_id="0")
    wait_for(lambda: len(replay.events) == 5)
    later = make_tail(tenant, since=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    time.sleep(0.3)
    assert later.events == [] and later.status == "live"
    fresh = make_tail(tenant, history=0)
    publisher.publish(tenant, committed("run-1", "new"))
    wait_for(lambda: len(fresh.events) == 1)
    assert fresh.events[0]["stepId"] == "new"
    with pytest.raises(InvalidArgumentError, match="no time zone"):
        make_tail(tenant, since=dt.datetime(2024, 5, 1), start=False)
    with pytest.raises(InvalidArgumentError, match="Invalid since"):
        make_tail(tenant, since="yesterday", start=False)

    # A stopped tail restarts (the view's button) after the last event it saw.
    assert not recent.running
    publisher.publish(tenant, committed("run-1", "while-stopped"))
    recent._on_view_message(recent, {"op": "restart"}, [])
    wait_for(lambda: len(recent.events) == 5)
    assert [e["stepId"] for e in recent.events] == ["old2", "old3", "old4", "new", "while-stopped"]
    assert recent.status == "live"
    # a row expands to the whole event
    whole = json.loads(recent.event_json(ids[4]))
    assert whole["kind"] == "step.committed" and "old4" in json.dumps(whole)
    assert recent.event_json("1-0") == ""


def test_filters_by_kind_and_execution_and_refilters_the_buffer(
    make_tail, publisher, tenant
) -> None:
    tail = make_tail(tenant, kinds=["step.failed"])
    publisher.publish_many(
        tenant,
        [
            committed("run-1", "a"),
            StepFailed(execution_id="run-1", step_id="b", error="boom", retryable=True),
            StepFailed(execution_id="run-2", step_id="c", error="bang"),
        ],
    )
    wait_for(lambda: tail.received == 3)
    assert [e["stepId"] for e in tail.events] == ["b", "c"]
    assert tail.events[0]["summary"] == "failed: boom - will retry"
    tail.execution_id = "run-2"
    assert [e["stepId"] for e in tail.events] == ["c"]
    tail.kinds = []
    tail.execution_id = ""
    assert [e["stepId"] for e in tail.events] == ["a", "b", "c"]


def test_buffer_is_bounded_and_counts_drops(make_tail, publisher, tenant) -> None:
    tail = make_tail(tenant, max_events=5)
    publisher.publish_many(tenant, [committed("run-1", f"s{i}") for i in range(12)])
    wait_for(lambda: tail.received == 12)
    assert [e["stepId"] for e in tail.events] == [f"s{i}" for i in range(7, 12)]
    assert tail.dropped == 7


def test_updates_are_batched(make_tail, publisher, tenant) -> None:
    tail = make_tail(tenant, max_events=1000)
    updates = []
    tail.observe(lambda change: updates.append(len(change["new"])), names=["events"])
    publisher.publish_many(tenant, [committed("run-1", f"s{i}") for i in range(500)])
    wait_for(lambda: tail.received == 500)
    assert len(tail.events) == 500
    # One model update per collection window, not one per event.
    assert 1 <= len(updates) <= 25, updates


def test_the_front_end_is_sent_changes_not_the_buffer(make_tail, publisher, tenant) -> None:
    # What the view receives, replayed the way tail.js applies it, is what Python shows.
    tail = make_tail(tenant, max_events=20)
    sent: list[dict] = []
    real_send = tail.send
    tail.send = lambda content, buffers=None: (sent.append(content), real_send(content, buffers))
    view: list[dict] = []

    def replay() -> list[dict]:
        for msg in sent:
            if msg["op"] == "reset":
                view[:] = msg["rows"]
            else:
                view[:] = (view + msg["rows"])[-msg["keep"] :]
        sent.clear()
        return view

    for batch in range(6):
        publisher.publish_many(tenant, [committed("run-1", f"b{batch}-{i}") for i in range(7)])
        wait_for(lambda b=batch: tail.received == 7 * (b + 1))
    adds = [m for m in sent if m["op"] == "add"]
    assert adds and sum(len(m["rows"]) for m in adds) <= 42  # each row sent once
    assert replay() == tail.events and len(view) == 20
    tail.kinds = ["step.failed"]  # a filter change redraws: one reset with what is left
    assert [m["op"] for m in sent] == ["reset"] and replay() == tail.events == []
    tail.kinds = []
    assert replay() == tail.events and len(view) == 20
    tail._on_view_message(tail, {"op": "sync"}, [])  # a new view asks for the rows
    assert [m["op"] for m in sent] == ["reset"] and replay() == tail.events


def test_pause_buffers_and_resume_shows(make_tail, publisher, tenant) -> None:
    tail = make_tail(tenant)
    tail.paused = True
    assert tail.status == "paused"
    publisher.publish_many(tenant, [committed("run-1", f"s{i}") for i in range(3)])
    wait_for(lambda: tail.received == 3)
    assert tail.events == []
    assert tail.pending == 3
    tail.paused = False
    assert tail.status == "live"
    assert [e["stepId"] for e in tail.events] == ["s0", "s1", "s2"]
    assert tail.pending == 0


def test_duplicate_publish_is_shown_once(make_tail, publisher, tenant) -> None:
    tail = make_tail(tenant)
    event = ExecutionLog(execution_id="run-1", message="hello")
    publisher.publish(tenant, event)
    publisher.publish(tenant, event)  # a publisher retry: same idempotency key
    publisher.publish(tenant, committed("run-1", "after"))
    wait_for(lambda: tail.received >= 2 and tail.events[-1]["stepId"] == "after")
    assert [e["kind"] for e in tail.events] == ["execution.log", "step.committed"]


def test_new_tail_on_same_stream_replaces_the_old(make_tail, tenant) -> None:
    first = make_tail(tenant)
    other = make_tail(f"{tenant}x")
    second = make_tail(tenant)
    assert not first.running and first.status == "stopped"
    assert second.running and other.running
    assert EventTail.stop_all() >= 2
    assert not second.running and not other.running


def test_close_ends_threads(make_tail, tenant) -> None:
    before = len(tail_threads())
    tail = make_tail(tenant)
    assert len(tail_threads()) == before + 2
    tail.close()
    wait_for(lambda: len(tail_threads()) == before)


def test_tail_repr_and_mimebundle_are_stable(make_tail, tenant) -> None:
    tail = make_tail(tenant, kinds=["step.failed"], execution_id="run-1", start=False)
    assert repr(tail) == (
        f"EventTail(tenant={tenant!r}, kinds=step.failed, execution=run-1, max_events=200)"
    )
    data, _ = tail._repr_mimebundle_()
    assert data["text/plain"] == repr(tail)
    assert WIDGET_VIEW in data and tenant in data["text/html"]


def test_bad_arguments_name_the_problem(valkey_url: str) -> None:
    with pytest.raises(ValueError, match=r"Unknown event kind\(s\) \['step.done'\]"):
        EventTail("acme", url=valkey_url, kinds=["step.done"], start=False)
    with pytest.raises(ValueError, match="Invalid tenant"):
        EventTail("no spaces", url=valkey_url, start=False)


def test_tail_never_prints_and_reports_outage(capfd, tenant) -> None:
    server = ControlledServer().start()
    try:
        tail = EventTail(tenant, url=server.url)
        with ExecutionEventPublisher(url=server.url) as pub:
            pub.publish(tenant, committed("run-1", "before"))
            wait_for(lambda: len(tail.events) == 1)
            server.kill()
            wait_for(lambda: "unavailable" in tail.notice, timeout=10)
            server.start()
            wait_for(lambda: tail.running, timeout=1)
            # The server lost its data (no AOF); the tail keeps running once it is back.
            pub.publish(tenant, committed("run-1", "after"))
        tail.close()
    finally:
        server.stop()
    out, err = capfd.readouterr()
    assert out == "" and err == ""


# -- LineageGraph ----------------------------------------------------------------------


def put_steps(store: Any, tenant: str, execution: str, steps: dict[str, tuple[str, ...]]) -> None:
    scope = ExecutionScope(tenant, execution)
    for step, ups in steps.items():
        store.put_step(
            scope,
            StepEnvelope(
                execution_id=execution,
                step_id=step,
                data=[{"x": 1}],
                lineage=tuple(LineageEntry(step_id=u) for u in ups),
                metadata=StepMetadata(row_count=1, elapsed_ms=12.0),
            ),
        )


def test_graph_shows_every_step_and_static_svg(store, tenant) -> None:
    put_steps(store, tenant, "run-1", {"ingest": (), "clean": ("ingest",), "report": ("clean",)})
    graph = LineageGraph(tenant, "run-1", store=store, live=False)
    assert sorted(n["id"] for n in graph.nodes) == ["clean", "ingest", "report"]
    assert graph.svg.count("data-step=") == 3
    assert repr(graph) == f"LineageGraph(tenant={tenant!r}, execution='run-1', steps=3, edges=2)"
    data, _ = graph._repr_mimebundle_()
    assert WIDGET_VIEW in data and graph.svg in data["text/html"]
    again = LineageGraph(tenant, "run-1", store=store, live=False)
    assert again._repr_html_() == graph._repr_html_()


def test_graph_click_shows_envelope(store, tenant) -> None:
    put_steps(store, tenant, "run-1", {"ingest": (), "clean": ("ingest",)})
    graph = LineageGraph(tenant, "run-1", store=store, live=False)
    graph.selected = "clean"
    assert graph.details["stepId"] == "clean"
    assert graph.details["lineage"] == ["ingest"]
    assert "step envelope" in graph.details["html"]
    assert graph.svg.count('stroke-width="3"') == 1
    graph.selected = ""
    assert graph.details == {}


def test_graph_turns_top_to_bottom_live_and_offers_the_load_line(store, tenant) -> None:
    put_steps(store, tenant, "run-1", {"ingest": (), "clean": ("ingest",), "report": ("clean",)})
    graph = LineageGraph(tenant, "run-1", store=store, live=False)
    ys = {n["id"]: n["y"] for n in graph.nodes}
    assert ys["ingest"] == ys["clean"] == ys["report"]  # left to right
    sent: list[Any] = []
    graph.send = lambda content, buffers=None: sent.append(content)  # type: ignore[method-assign]
    graph.direction = "TB"
    assert sent and sent[-1]["op"] == "reset"  # the view gets the new drawing whole
    xs = {n["id"]: (n["x"], n["y"]) for n in graph.nodes}
    assert xs["ingest"][0] == xs["report"][0] and xs["ingest"][1] < xs["clean"][1] < xs["report"][1]
    graph.direction = "diagonal"  # refused, undone, said
    assert graph.direction == "TB" and "Invalid direction 'diagonal'" in graph.error
    graph.selected = "clean"
    assert graph.details["load"] == f"df = %execctx load {tenant} run-1 clean --attempt 0"
    with pytest.raises(InvalidArgumentError, match="Invalid direction"):
        LineageGraph(tenant, "run-1", store=store, live=False, direction="up")


def test_graph_follows_step_events_live(store, publisher, tenant) -> None:
    put_steps(store, tenant, "run-1", {"ingest": ()})
    graph = LineageGraph(tenant, "run-1", store=store)
    try:
        assert graph.status == "live"
        put_steps(store, tenant, "run-1", {"clean": ("ingest",)})
        publisher.publish(tenant, committed("run-1", "clean"))
        publisher.publish(tenant, committed("run-2", "elsewhere"))
        publisher.publish(
            tenant, StepFailed(execution_id="run-1", step_id="score", attempt=2, error="boom")
        )
        wait_for(lambda: len(graph.nodes) == 3)
        status = {n["id"]: n["status"] for n in graph.nodes}
        assert status == {"ingest": "success", "clean": "success", "score": "failed"}
        assert "attempt 2" in graph.svg
    finally:
        graph.close()
    assert graph.status == "stopped"


def test_graph_keeps_its_settings_when_the_cells_handle_is_closed(
    publisher, tenant, valkey_url, tmp_path
) -> None:
    # The shared store of a kernel is lent as handles: a cell's `with connect() as s:`
    # closes its own handle only. The graph reads on with the settings the store was opened
    # with (here a private cold tier and a tiny inline limit: every frame goes cold).
    import polars as pl

    settings = {"cold_store": str(tmp_path / "cold"), "inline_limit_bytes": 10}
    cell = store_connect(valkey_url, **settings)
    scope = ExecutionScope(tenant, "run-1")
    frame = pl.DataFrame({"x": [1, 2, 3]})
    cell.put_step(scope, StepEnvelope.from_frame(frame, execution_id="run-1", step_id="ingest"))
    graph = LineageGraph(tenant, "run-1", store=cell)
    try:
        with store_connect(valkey_url, **settings):
            pass  # another cell's `with` block
        cell.close()
        writer = store_connect(valkey_url, **settings)
        writer.put_step(
            scope,
            StepEnvelope.from_frame(
                frame,
                execution_id="run-1",
                step_id="clean",
                lineage=(LineageEntry(step_id="ingest"),),
            ),
        )
        publisher.publish(tenant, committed("run-1", "clean"))
        wait_for(lambda: len(graph.nodes) == 2)
        assert graph.status == "live" and graph.error == "" and graph.notice == ""
        assert all(e.data is None and e.data_ref is not None for e in graph.envelopes)
        graph.selected = "clean"  # loads the step's data from the store's own cold tier
        assert graph.details["rowCount"] == 3 and "<td>3</td>" in graph.details["html"]
    finally:
        graph.close()
        store_connect(valkey_url, **settings).close()


def test_graph_reports_a_store_its_owner_closed(store, publisher, tenant, valkey_url) -> None:
    from execctx_nb import create_valkey_execution_context_store

    own = create_valkey_execution_context_store(valkey_url)
    put_steps(store, tenant, "run-1", {"ingest": ()})
    graph = LineageGraph(tenant, "run-1", store=own)
    try:
        own.close()  # the owner closes its connections: every handle stops
        put_steps(store, tenant, "run-1", {"clean": ("ingest",)})
        publisher.publish(tenant, committed("run-1", "clean"))
        wait_for(lambda: "closed" in graph.notice)
        assert "Could not read step `clean`" in graph.notice and graph.status == "live"
    finally:
        graph.close()


def test_tail_dedups_on_each_entrys_own_key_as_the_groups_do(make_tail, publisher, tenant) -> None:
    # Two entries with one event but their own idempotency keys are two events for the
    # consumer groups (they handle each key once): the widget shows both. The same key
    # twice is one event published twice: shown once.
    tail = make_tail(tenant)
    event = ExecutionLog(execution_id="run-1", message="same text")
    publisher.publish(tenant, event, idempotency_key="key-a")
    publisher.publish(tenant, event, idempotency_key="key-b")
    publisher.publish(tenant, event, idempotency_key="key-b")
    publisher.publish(tenant, committed("run-1", "after"))
    wait_for(lambda: bool(tail.events) and tail.events[-1]["stepId"] == "after")
    assert [e["kind"] for e in tail.events] == ["execution.log"] * 2 + ["step.committed"]


def test_widgets_on_a_dead_server_raise_the_librarys_error(tenant: str) -> None:
    from execctx_nb import create_valkey_execution_context_store
    from execctx_nb.errors import StoreUnavailableError
    from tests.servers import free_port

    before = len(tail_threads())
    dead = f"redis://127.0.0.1:{free_port()}"
    with pytest.raises(StoreUnavailableError, match="Could not start a tail"):
        EventTail(tenant, url=dead)
    with (
        create_valkey_execution_context_store(dead, timeout=0.3) as store,
        pytest.raises(StoreUnavailableError),
    ):
        LineageGraph(tenant, "run-1", store=store)
    assert len(tail_threads()) == before  # nothing was left running


def test_rebuilding_a_live_graph_leaves_one_runner(store, tenant) -> None:
    put_steps(store, tenant, "run-1", {"ingest": ()})
    before = len(tail_threads())
    graphs = [LineageGraph(tenant, "run-1", store=store) for _ in range(5)]  # a cell re-run 5x
    try:
        wait_for(lambda: len(tail_threads()) == before + 2)
        assert [g.status for g in graphs] == ["stopped"] * 4 + ["live"]
        assert graphs[0].nodes == graphs[-1].nodes  # the stopped ones keep their last state
    finally:
        for graph in graphs:
            graph.close()
    wait_for(lambda: len(tail_threads()) == before)


def test_graph_draws_without_reading_cold_data(valkey_url, tenant, tmp_path) -> None:
    import polars as pl

    settings = {"cold_store": str(tmp_path / "cold"), "inline_limit_bytes": 10}
    cell = store_connect(valkey_url, **settings)
    scope = ExecutionScope(tenant, "run-1")
    for step in ("a", "b"):
        frame = pl.DataFrame({"x": [1, 2]})
        cell.put_step(scope, StepEnvelope.from_frame(frame, execution_id="run-1", step_id=step))
    for parquet in (tmp_path / "cold").rglob("*.parquet"):
        parquet.unlink()  # a read of any cold object would now fail
    graph = LineageGraph(tenant, "run-1", store=cell, live=False)
    try:
        assert sorted(n["id"] for n in graph.nodes) == ["a", "b"] and graph.error == ""
        nodes = graph.nodes
        graph.selected = "a"  # opening a node reads its data: here, the error says why
        assert graph.details["status"] == "error" and "ColdTierError" in graph.details["caption"]
        assert graph.nodes is nodes  # selecting redraws, it does not lay the graph out again
        assert 'stroke-width="3"' in graph.svg
    finally:
        graph.close()
        cell.close()


def test_front_end_ships_in_the_package_and_loads_nothing_remote() -> None:
    from pathlib import Path

    from execctx_nb import widgets

    here = Path(widgets.__file__).parent
    files = sorted(here.glob("*.js")) + sorted(here.glob("*.css"))
    assert [f.name for f in files] == [
        "lineage.js", "monitor.js", "tail.js", "lineage.css", "monitor.css", "tail.css"
    ]  # fmt: skip
    for f in files:
        text = f.read_text()
        assert not re.search(r"https?://", text), f"{f.name} references a remote URL"
        assert not re.search(r"^\s*import\b|\bimport\(", text, re.M), f"{f.name} imports a module"
    assert str(EventTail._esm).endswith("export default { render };\n")


def test_widgets_and_magics_work_on_a_cluster(cluster_url, tenant) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    with store_connect(cluster_url) as store:
        put_steps(store, tenant, "run-1", {"ingest": (), "clean": ("ingest",)})
    tail = EventTail(tenant, url=cluster_url)
    graph = LineageGraph(tenant, "run-1", store=store_connect(cluster_url))
    try:
        with ExecutionEventPublisher(url=cluster_url) as pub:
            pub.publish(tenant, committed("run-1", "clean"))
        wait_for(lambda: tail.received == 1 and len(graph.nodes) == 2)
        assert tail.error == "" and graph.error == ""
    finally:
        tail.close()
        graph.close()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "execctx_nb")
    try:
        shell.run_line_magic("execctx", f"connect {cluster_url}")
        table = shell.run_line_magic("execctx", f"executions {tenant}")
        assert table["execution"].to_list() == ["run-1"] and table["steps"].to_list() == [2]
        frame = shell.run_line_magic("execctx", f"load {tenant} run-1 clean")
        assert frame.height == 1
    finally:
        shell.run_line_magic("reload_ext", "execctx_nb")
