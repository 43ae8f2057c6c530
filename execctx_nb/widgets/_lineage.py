"""``LineageGraph``: an execution's step DAG, laid out in Python, live on step events."""

from __future__ import annotations

import html
import threading
import time
from pathlib import Path
from typing import Any

import anywidget
import traitlets as t

from execctx_nb._records import ExecutionScope, StepEnvelope
from execctx_nb.display._html import CSS
from execctx_nb.display._layout import (
    STATUS_COLOURS,
    Graph,
    graph_from_envelopes,
    layout,
    node_caption,
    render_svg,
)
from execctx_nb.widgets._runner import Batch, QuietLog, TailRunner, stream_tip

__all__ = ["LineageGraph"]

_HERE = Path(__file__).parent
BLOCK_MS = 500
_STEP_KINDS = ["step.committed", "step.failed"]


def _fetch(store: Any, scope: ExecutionScope, step_id: str) -> StepEnvelope | None:
    try:
        env = store.get_step(scope, step_id)
    except KeyError:
        return None
    return env if isinstance(env, StepEnvelope) else None


def _open(store: Any) -> Any:
    """``store``, or a reopened one on its URL if it was closed.

    ``connect()`` hands one store to every caller in a kernel, so a later cell's
    ``with connect() as s:`` closes the graph's store too.
    """
    if getattr(store, "_closed", False):
        from execctx_nb import connect

        return connect(store.url)
    return store


class LineageGraph(anywidget.AnyWidget):  # type: ignore[misc,unused-ignore]
    """The DAG of an execution's steps from envelope lineage.

    Parameters
    ----------
    tenant, execution_id
        The execution to draw.
    store
        Where to read envelopes (``execctx_nb.connect()`` when omitted and no ``envelopes``).
    envelopes
        Draw these envelopes instead of reading them (a static graph unless ``live``).
    live
        Follow ``step.committed`` / ``step.failed`` events of this execution and redraw
        (default: True when reading from a store).

    Clicking a node selects it (``selected``); ``details`` then holds that step's envelope
    summary and its HTML display. Without a widget front-end (exported HTML, nbval) the
    output is the same layout as a static SVG.
    """

    # A class default: Widget.__del__ calls close() even when __init__ raised early.
    _runner: TailRunner | None = None

    _esm = _HERE / "lineage.js"
    _css = _HERE / "lineage.css"

    tenant = t.Unicode().tag(sync=True)
    execution_id = t.Unicode().tag(sync=True)
    svg = t.Unicode("").tag(sync=True)
    nodes = t.List(t.Dict(), default_value=[]).tag(sync=True)
    selected = t.Unicode("").tag(sync=True)
    details = t.Dict(default_value={}).tag(sync=True)
    status = t.Unicode("static").tag(sync=True)
    error = t.Unicode("").tag(sync=True)
    notice = t.Unicode("").tag(sync=True)
    colours = t.Dict(default_value={k: list(v) for k, v in STATUS_COLOURS.items()}).tag(sync=True)

    def __init__(
        self,
        tenant: str,
        execution_id: str,
        *,
        store: Any = None,
        envelopes: list[StepEnvelope] | None = None,
        live: bool | None = None,
    ) -> None:
        self._scope = ExecutionScope(tenant, execution_id)
        super().__init__(tenant=tenant, execution_id=execution_id)
        if store is None and envelopes is None:
            from execctx_nb import connect

            store = connect()
        self._store = store
        self._lock = threading.RLock()
        self._unread: dict[str, Any] = {}  # step id -> its latest event, envelope not read yet
        self._graph = Graph()
        self.observe(self._on_select, names=["selected"])
        live = (store is not None) if live is None else live
        # The stream tip is read before the envelopes: a step committed in between is seen
        # by the tail instead of being missed.
        start_id = stream_tip(store.client, tenant) if live else None
        if envelopes is None:
            envelopes = list(store.get_execution(self._scope))
        self._envelopes: dict[str, StepEnvelope] = {e.step_id: e for e in envelopes}
        self._redraw()
        if live:
            self._start(start_id or "$")

    # -- data ---------------------------------------------------------------------------
    @property
    def envelopes(self) -> list[StepEnvelope]:
        """The envelopes drawn, by step id."""
        with self._lock:
            return [self._envelopes[k] for k in sorted(self._envelopes)]

    @property
    def graph(self) -> Graph:
        """The current graph (nodes and edges)."""
        return self._graph

    def _redraw(self) -> None:
        with self._lock:
            graph = graph_from_envelopes(self._envelopes.values(), self.execution_id)
            lay = layout(graph)
            pos = {p.node_id: p for p in lay.positions}
            nodes = [
                {
                    "id": n.node_id,
                    "status": n.status,
                    "rows": n.row_count,
                    "elapsedMs": n.elapsed_ms,
                    "attempt": n.attempt,
                    "caption": node_caption(n),
                    "layer": pos[n.node_id].layer,
                    "x": pos[n.node_id].x,
                    "y": pos[n.node_id].y,
                }
                for n in graph.nodes
            ]
            self._graph = graph
            with self.hold_sync():
                self.nodes = nodes
                self.svg = render_svg(graph, lay, selected=self.selected or None)
                if self.selected:
                    self.details = self._details(self.selected)

    def _details(self, step_id: str) -> dict[str, Any]:
        from execctx_nb.display import envelope_html

        env = self._envelopes.get(step_id)
        if env is None:
            node = next((n for n in self._graph.nodes if n.node_id == step_id), None)
            what = node.status if node is not None else "unknown"
            return {
                "stepId": step_id,
                "status": what,
                "html": "",
                "caption": f"no envelope ({what})",
            }
        md = env.metadata
        return {
            "stepId": env.step_id,
            "status": env.status,
            "attempt": env.attempt,
            "rowCount": md.row_count,
            "bytes": md.bytes,
            "elapsedMs": md.elapsed_ms,
            "schemaHash": env.schema_hash,
            "lineage": [e.step_id for e in env.lineage],
            "error": env.error,
            "html": envelope_html(env),
        }

    def _on_select(self, change: dict[str, Any]) -> None:
        self._redraw()
        if not change["new"]:
            self.details = {}

    # -- live ---------------------------------------------------------------------------
    def _start(self, from_id: str) -> None:
        from execctx_nb import tail

        url, scope, log = self._store.url, self._scope, QuietLog(self._on_notice)

        def source(stop: threading.Event) -> Any:
            return tail(
                scope.tenant_id,
                url=url,
                from_id=from_id,
                block_ms=BLOCK_MS,
                kinds=_STEP_KINDS,
                execution_id=scope.execution_id,
                stop=stop,
                logger=log,
            )

        self._runner = TailRunner(source, self._on_batch, self._on_error, name="execctx-lineage")
        self._runner.start()
        self.status = "live"

    def _on_notice(self, message: str) -> None:
        self.notice = message

    def _on_batch(self, batch: Batch) -> None:
        from execctx_nb.errors import ExecctxError

        changed = False
        # Steps whose envelope could not be read at their event are read again now.
        wanted, self._unread = self._unread, {}
        for _sid, event in batch:
            step_id = getattr(event, "step_id", None)
            if event.execution_id != self.execution_id or not step_id:
                continue
            wanted[step_id] = event
        for step_id, event in wanted.items():
            try:
                self._store = _open(self._store)
                env = _fetch(self._store, self._scope, step_id)
            except ExecctxError as exc:  # e.g. the server is briefly down: keep following
                self._unread[step_id] = event
                self.notice = (
                    f"Could not read step `{step_id}` ({type(exc).__name__}: {exc});"
                    " it is read again at the next step event"
                )
                continue
            if env is None and event.kind == "step.failed":
                env = StepEnvelope(
                    execution_id=self.execution_id,
                    step_id=step_id,
                    attempt=event.attempt,
                    status="failed",
                    error=getattr(event, "error", None),
                )
            if env is not None:
                with self._lock:
                    self._envelopes[step_id] = env
                changed = True
        if not self._unread and self.notice.startswith("Could not read step"):
            self.notice = ""  # every step is read again: the warning is stale
        if changed:
            self._redraw()

    def _on_error(self, exc: BaseException) -> None:
        self.error = f"{type(exc).__name__}: {exc}"
        self.status = "error"

    def wait(self, steps: int, timeout: float = 10.0) -> bool:
        """Block until the graph holds at least ``steps`` written steps (scripts, tutorials).

        Returns False if ``timeout`` seconds passed first.
        """
        end = time.monotonic() + timeout
        # Counted on the synced nodes, so the drawing is complete when this returns.
        while sum(n["status"] in ("success", "failed") for n in self.nodes) < steps:
            if time.monotonic() >= end:
                return False
            time.sleep(0.01)
        return True

    def stop(self) -> None:
        """Stop following events (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.stop()
        if self.status == "live":
            self.status = "stopped"

    def close(self) -> None:
        """Stop following events and close the widget."""
        self.stop()
        super().close()

    # -- display ------------------------------------------------------------------------
    def __repr__(self) -> str:
        return (
            f"LineageGraph(tenant={self.tenant!r}, execution={self.execution_id!r},"
            f" steps={len(self._graph.nodes)}, edges={len(self._graph.edges)})"
        )

    def _repr_html_(self) -> str:
        """The static SVG rendering (exported HTML, nbval, front-ends without widgets)."""
        title = html.escape(f"{self.tenant}/{self.execution_id}")
        return f"{CSS}<div class='execctx'><div><b>lineage of {title}</b></div>{self.svg}</div>"

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, meta = bundle
        data["text/html"] = self._repr_html_()
        return data, meta
