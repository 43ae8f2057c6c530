"""``%execctx`` on a real IPython shell, against a real Valkey loaded with the demo."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from execctx_nb import connect
from execctx_nb.demo import EXECUTIONS, STEPS, load_demo
from execctx_nb.display import ExecutionView, LineageView, SchemaDiffView, SchemaView
from execctx_nb.widgets import EventTail, LineageGraph

E1, E2 = EXECUTIONS


@pytest.fixture(scope="module")
def demo_tenant(valkey_url: str) -> str:
    import uuid

    tenant = f"m{uuid.uuid4().hex[:10]}"
    with connect(valkey_url) as store:
        load_demo(store, tenant)
    return tenant


@pytest.fixture
def shell(valkey_url: str) -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "execctx_nb")
    ip.run_line_magic("execctx", f"connect {valkey_url}")
    yield ip
    EventTail.stop_all()
    ip.run_line_magic("reload_ext", "execctx_nb")  # a fresh magics instance per test


def run(shell: InteractiveShell, line: str) -> Any:
    return shell.run_line_magic("execctx", line)


def test_connect_executions_steps(shell, demo_tenant, valkey_url) -> None:
    store = run(shell, f"connect {valkey_url}")
    assert store.url == valkey_url
    table = run(shell, f"executions {demo_tenant}")
    assert isinstance(table, pl.DataFrame)  # renders as the frame library's own table
    assert table.columns == [
        "execution", "status", "started", "duration", "steps", "failed", "retries"
    ]  # fmt: skip
    assert sorted(table["execution"]) == sorted(EXECUTIONS)
    assert table["started"].is_sorted(descending=True)  # newest first
    assert table["steps"].to_list() == [len(STEPS)] * 2
    assert demo_tenant in run(shell, "tenants")
    view = run(shell, f"steps {demo_tenant} {E1}")
    assert isinstance(view, ExecutionView)
    assert len(view) == len(STEPS)
    assert str(view).startswith(f"execution {demo_tenant}/{E1}: 8 steps")


def test_load_returns_polars_and_shift_assign(shell, demo_tenant) -> None:
    df = run(shell, f"load {demo_tenant} {E1} clean")
    assert isinstance(df, pl.DataFrame) and df.height > 0
    assert "customer_id" in df.columns
    result = shell.run_cell(f"df << %execctx load {demo_tenant} {E1} score --attempt 1")
    assert result.success, result.error_in_exec
    assert shell.user_ns["df"].columns == ["customer_id", "churn_risk", "band"]
    shell.run_cell(f"df2 = %execctx load {demo_tenant} {E1} export")
    assert shell.user_ns["df2"].height == 1


def test_schema_infer_and_diff(shell, demo_tenant) -> None:
    view = run(shell, f"schema {demo_tenant} {E1} ingest_orders")
    assert isinstance(view, SchemaView)
    assert "├── customer  object  required" in str(view)
    shell.user_ns["rows"] = [{"a": 1, "b": None}, {"a": 2, "b": "x"}]
    inferred = run(shell, "infer rows")
    assert "└── b  string  nullable  required" in str(inferred)
    diff = run(shell, f"diff {demo_tenant} ingest_orders {E1} {E2}")
    assert isinstance(diff, SchemaDiffView)
    assert diff.breaking and diff.removed == ("/notes",)
    assert str(diff).splitlines()[0] == f"ingest_orders: {E1} -> {E2} (breaking, 4 changes)"


def test_lineage_and_tail_widgets(shell, demo_tenant) -> None:
    picture = run(shell, f"lineage {demo_tenant} {E1} --static")
    assert isinstance(picture, LineageView)  # a static SVG: no widget library involved
    assert sorted(n.node_id for n in picture.graph.nodes) == sorted(STEPS)
    assert picture._repr_html_().count('class="execctx-node') == len(STEPS)
    graph = run(shell, f"lineage {demo_tenant} {E1}")
    assert isinstance(graph, LineageGraph)
    assert sorted(n["id"] for n in graph.nodes) == sorted(STEPS)
    graph.close()
    tail = run(shell, f"tail {demo_tenant} --kind step.failed --execution {E1} --replay")
    assert isinstance(tail, EventTail) and tail.kinds == ["step.failed"]
    import time

    end = time.monotonic() + 5
    while not tail.events and time.monotonic() < end:
        time.sleep(0.02)
    assert [e["stepId"] for e in tail.events] == ["score"]
    both = run(
        shell, f"tail {demo_tenant} --kind step.failed execution.status --kind execution.log"
    )
    assert both.kinds == ["step.failed", "execution.status", "execution.log"]  # as the help reads
    run(shell, "tail --stop")
    assert not tail.running and not both.running


def test_groups_reads_the_consumer_groups(shell, demo_tenant, valkey_client) -> None:
    from execctx_nb import StreamStatus, keys
    from execctx_nb.widgets import StreamMonitor

    stream = keys.events_key(demo_tenant)
    valkey_client.xgroup_create(stream, "engine", "0")
    valkey_client.xreadgroup("engine", "worker-1", {stream: ">"}, count=3)
    status = run(shell, f"groups {demo_tenant}")
    assert isinstance(status, StreamStatus)
    assert [(g.name, g.pending) for g in status.groups] == [("engine", 3)]
    assert "worker-1: 3 pending" in str(status)
    live = run(shell, f"groups {demo_tenant} --live")
    assert isinstance(live, StreamMonitor) and live.status == "live" and not live.actions
    live.close()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "Expected a subcommand"),
        ("frobnicate", "Unknown subcommand `frobnicate`; `%execctx"),
        ("stpes acme run", "Unknown subcommand `stpes`: did you mean `steps`"),
        (
            "steps onlytenant",
            "the following arguments are required: execution\nusage: %execctx steps tenant execution",
        ),
        ("executions 'bad tenant'", "Invalid tenant id"),
        ("load acme nope clean", "No execution `nope` for tenant `acme`"),
        ("steps acme nope", "No execution `nope` for tenant `acme`"),
        ("infer not_defined_anywhere", "No variable `not_defined_anywhere`"),
        ("tail", "Expected a tenant"),
        ("tail acme --kind step.done", "invalid choice: 'step.done'"),
        ("load acme run:1 clean", "execution id"),
        ("tail acme --max 0", "argument --max: expected an int >= 1, got '0'"),
        ("tail acme --max lots", "argument --max: expected an int >= 1, got 'lots'"),
        ("connect foo://bar", "Cannot connect: Invalid Valkey URL 'foo://bar'"),
    ],
)
def test_bad_input_raises_usage_error(shell, line, message) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        run(shell, line)


def test_typos_get_the_closest_names(shell, demo_tenant) -> None:
    typo = demo_tenant[:-1] + ("x" if demo_tenant[-1] != "x" else "y")
    with pytest.raises(UsageError, match=f"did you mean `{demo_tenant}`"):
        run(shell, f"executions {typo}")
    with pytest.raises(UsageError, match="did you mean `clean`"):
        run(shell, f"load {demo_tenant} {E1} cleen")
    with pytest.raises(UsageError, match=f"did you mean .*`{E1}`"):
        run(shell, f"load {demo_tenant} {E1[:-1]}9 clean")
    with pytest.raises(UsageError, match="did you mean `score`"):
        run(shell, f"history {demo_tenant} scor")


def test_history_shows_where_the_schema_changed(shell, demo_tenant) -> None:
    from execctx_nb.display import StepHistoryView

    view = run(shell, f"history {demo_tenant} ingest_orders")
    assert isinstance(view, StepHistoryView)
    assert view.frame["execution"].to_list() == sorted(EXECUTIONS)  # oldest first
    assert view.schema_changes == [E2]  # the demo's second run changes ingest_orders
    page = view._repr_html_()
    assert page.count("<svg") == 3 and "schema changed" in page
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # no CDN


def test_help_is_the_docstring(shell) -> None:
    doc = shell.magics_manager.magics["line"]["execctx"].__doc__
    for sub in (
        "connect",
        "infer",
        "tenants",
        "executions",
        "history",
        "steps",
        "load",
        "schema",
        "diff",
        "lineage",
        "tail",
    ):
        assert f"\n{sub} " in doc
    assert "df << %execctx load" in doc
    assert "``" not in doc  # rendered as plain text by %execctx?: no RST markup


def test_connect_to_a_dead_port_is_a_usage_error_and_keeps_the_store(shell, valkey_url) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on (bound, never listening)
        sock.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(UsageError, match=r"Cannot connect: Valkey at .* did not answer INFO"):
            run(shell, f"connect {dead}")
    magics = shell.magics_manager.registry["ExecctxMagics"]
    assert magics.store.url == valkey_url  # the working connection stays in use


def test_a_store_closed_by_another_cell_is_reopened(shell, demo_tenant, valkey_url) -> None:
    # connect() is shared in a kernel: `with connect() as store:` in a cell closes the magic's.
    with connect(valkey_url):
        pass
    assert sorted(run(shell, f"executions {demo_tenant}")["execution"]) == sorted(EXECUTIONS)
