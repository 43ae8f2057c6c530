"""``LineageGraph``: an execution's step DAG, laid out in Python, live on step events."""

from __future__ import annotations

import html
import threading
import time
from pathlib import Path
from typing import Any

import traitlets as t

from execctx_nb._events._tail import tail
from execctx_nb._records import ExecutionScope, StepEnvelope
from execctx_nb._store._session import connect
from execctx_nb._store._sync import ExecutionContextStore
from execctx_nb.display._grow import Change, GrowingGraph
from execctx_nb.display._html import CSS
from execctx_nb.display._layout import (
    STATUS_COLOURS,
    Graph,
    edge_svg,
    geometry,
    node_caption,
    node_svg,
    render_svg,
    svg_title,
)
from execctx_nb.errors import ExecctxError
from execctx_nb.widgets._live import LiveWidget, error_text
from execctx_nb.widgets._runner import Batch

__all__ = ["LineageGraph"]

_HERE = Path(__file__).parent
BLOCK_MS = 500
_STEP_KINDS = ["step.committed", "step.failed"]


class LineageGraph(LiveWidget):
    """The DAG of an execution's steps from envelope lineage.

    Parameters
    ----------
    tenant, execution_id
        The execution to draw.
    store
        Where to read envelopes (the graph borrows a handle on it, so closing ``store``'s
        handle elsewhere leaves the graph working); ``execctx_nb.connect()`` when omitted
        and no ``envelopes``.
    envelopes
        Draw these envelopes instead of reading them (a static graph unless ``live``).
    live
        Follow ``step.committed`` / ``step.failed`` events of this execution and redraw
        (default: True when reading from a store).

    The graph reads envelopes without their cold-tier data; clicking a node selects it
    (``selected``) and loads that step's data for ``details`` (its envelope summary and HTML
    display). Without a widget front-end (exported HTML, nbval) the output is the same
    layout as a static SVG.

    Raises
    ------
    StoreUnavailableError
        The server cannot be reached.
    """

    _esm = _HERE / "lineage.js"
    _css = _HERE / "lineage.css"

    # A class default: Widget.__del__ calls close() even when __init__ raised early.
    _store: ExecutionContextStore | None = None

    tenant = t.Unicode().tag(sync=True)
    execution_id = t.Unicode().tag(sync=True)
    steps = t.Int(0).tag(sync=True)
    failed = t.Int(0).tag(sync=True)
    selected = t.Unicode("").tag(sync=True)
    direction = t.Unicode("LR").tag(sync=True)
    """``"LR"``: layers left to right; ``"TB"``: top to bottom (changeable live)."""
    details = t.Dict(default_value={}).tag(sync=True)
    colours = t.Dict(default_value={k: list(v) for k, v in STATUS_COLOURS.items()}).tag(sync=True)

    def __init__(
        self,
        tenant: str,
        execution_id: str,
        *,
        store: ExecutionContextStore | None = None,
        envelopes: list[StepEnvelope] | None = None,
        live: bool | None = None,
        direction: str = "LR",
    ) -> None:
        self._scope = ExecutionScope(tenant, execution_id)
        geometry(direction)  # checked before anything starts
        super().__init__(
            tenant=tenant, execution_id=execution_id, status="static", direction=direction
        )
        if store is None and envelopes is None:
            store = connect()
        self._store = store.borrow() if store is not None else None
        self._lock = threading.RLock()
        self._unread: dict[str, Any] = {}  # step id -> its latest event, envelope not read yet
        self._loaded: dict[str, StepEnvelope] = {}  # step id -> envelope with its data
        self._svg: str | None = None  # the whole drawing, rendered when asked for
        self._drawn_selection = ""
        self.observe(self._on_select, names=["selected"])
        self.on_msg(self._on_view_message)
        live = (self._store is not None) if live is None else live
        stop = threading.Event()
        entries = None
        if live and self._store is not None:
            # The tail resolves the stream tip before the envelopes are read: a step
            # committed in between is seen by the tail instead of being missed.
            entries = tail(
                tenant,
                url=self._store.url,
                from_id="$",
                block_ms=BLOCK_MS,
                kinds=_STEP_KINDS,
                execution_id=execution_id,
                stop=stop,
                logger=self._quiet_log(),
            )
        if envelopes is None:
            assert self._store is not None
            envelopes = self._store.get_execution(self._scope, data=False)
        self._envelopes: dict[str, StepEnvelope] = {e.step_id: e for e in envelopes}
        if self._store is None:
            self._loaded = dict(self._envelopes)  # given envelopes: nothing to load
        self._grow = GrowingGraph(self._envelopes, execution_id, direction)
        self._nodes: list[dict[str, Any]] | None = None
        self._redraw(None)
        self.observe(self._on_direction, names=["direction"])
        if entries is not None:
            self._follow(entries, stop, "execctx-lineage")

    def _stream_key(self) -> tuple[str, ...]:
        url = self._store.url if self._store is not None else ""
        return (url, self.tenant, self.execution_id)

    # -- data ---------------------------------------------------------------------------
    @property
    def envelopes(self) -> list[StepEnvelope]:
        """The envelopes drawn, by step id (cold-tier data not loaded)."""
        with self._lock:
            return [self._envelopes[k] for k in sorted(self._envelopes)]

    @property
    def graph(self) -> Graph:
        """The current graph (nodes and edges)."""
        with self._lock:
            return self._grow.graph

    @property
    def nodes(self) -> list[dict[str, Any]]:
        """The drawn nodes with their layout, by step id (the front-end is sent SVG)."""
        with self._lock:
            if self._nodes is None:
                grow = self._grow
                self._nodes = [self._node_dict(grow.nodes[k]) for k in sorted(grow.nodes)]
            return self._nodes

    def _node_dict(self, n: Any) -> dict[str, Any]:
        p = self._grow.pos[n.node_id]
        return {
            "id": n.node_id,
            "status": n.status,
            "rows": n.row_count,
            "elapsedMs": n.elapsed_ms,
            "attempt": n.attempt,
            "caption": node_caption(n),
            "layer": p.layer,
            "x": p.x,
            "y": p.y,
        }

    @property
    def svg(self) -> str:
        """The drawing as one SVG string (the static output; views are sent changes)."""
        with self._lock:
            if self._svg is None:
                selected = self.selected or None
                self._svg = render_svg(self._grow.graph, self._grow.layout, selected=selected)
            return self._svg

    def _redraw(self, step_ids: set[str] | None) -> None:
        """Draw the steps ``step_ids`` again (None: send the whole drawing). New nodes are placed
        without moving the others, and a view is sent only the nodes and edges that changed:
        an update costs what it changes, not the size of the graph."""
        with self._lock:
            grow = self._grow
            change = grow.update(step_ids) if step_ids is not None else None
            self._svg = self._nodes = None
            with self.hold_sync():
                self.steps = len(grow.nodes)
                self.failed = grow.failed
                if change is None:
                    self._send_all()
                else:
                    self._send_changes(change)
                self._drawn_selection = self.selected
                if self.selected:
                    self.details = self._details(self.selected)

    def _send_all(self) -> None:
        self.send({"op": "reset", "svg": self.svg})

    def _send_changes(self, change: Change) -> None:
        grow = self._grow
        nodes = self._nodes_svg(change.nodes)
        edges = [
            edge_svg(grow.pos[src], grow.pos[dst], grow.route(src, dst), grow.direction)
            for src, dst in change.edges
        ]
        if nodes or edges:
            self.send(
                {
                    "op": "patch",
                    "width": grow.width,
                    "height": grow.height,
                    "title": svg_title(len(grow.nodes), grow.edge_count),
                    "nodes": nodes,
                    "edges": edges,
                }
            )

    def _draw(self) -> None:
        """Show the current selection (no layout pass): the two nodes whose border changed."""
        with self._lock, self.hold_sync():
            self._svg = None
            changed = {self._drawn_selection, self.selected} - {""}
            self._drawn_selection = self.selected
            if changed:
                self.send({"op": "patch", "nodes": self._nodes_svg(changed), "edges": []})
            if self.selected:
                self.details = self._details(self.selected)

    def _nodes_svg(self, ids: set[str]) -> dict[str, str]:
        """The markup of the nodes ``ids`` (drawn with the current selection), by step id."""
        selected = self.selected or None
        grow = self._grow
        return {
            i: node_svg(grow.nodes[i], grow.pos[i], selected=selected)
            for i in sorted(ids)
            if i in grow.nodes and i in grow.pos
        }

    def _on_view_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        # A view was drawn (a cell re-run, a second view): it asks for the drawing once.
        if isinstance(content, dict) and content.get("op") == "sync":
            with self._lock:
                self._send_all()

    def _envelope_with_data(self, step_id: str) -> StepEnvelope | None:
        env = self._loaded.get(step_id)
        if env is not None or self._store is None:
            return env if env is not None else self._envelopes.get(step_id)
        drawn = self._envelopes.get(step_id)
        if drawn is None:
            return None
        loaded = self._store.get_step(self._scope, step_id, drawn.attempt)
        env = loaded if loaded is not None else drawn
        self._loaded[step_id] = env
        return env

    def _details(self, step_id: str) -> dict[str, Any]:
        from execctx_nb.display import envelope_html

        try:
            env = self._envelope_with_data(step_id)
        except ExecctxError as exc:
            return {"stepId": step_id, "status": "error", "html": "", "caption": error_text(exc)}
        if env is None:
            node = self._grow.nodes.get(step_id)
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
            # the exact attempt shown, as the magic that loads it into a variable
            "load": f"df = %execctx load {self.tenant} {self.execution_id} {env.step_id}"
            f" --attempt {env.attempt}",
        }

    def _on_direction(self, change: dict[str, Any]) -> None:
        """Lay the graph out again in the new direction (a bad one is refused and undone)."""
        try:
            geometry(change["new"])
        except ExecctxError as exc:
            self.error = error_text(exc)
            self.direction = change["old"]
            return
        with self._lock:
            self._grow = GrowingGraph(self._envelopes, self.execution_id, change["new"])
        self._redraw(None)

    def _on_select(self, change: dict[str, Any]) -> None:
        self._draw()
        if not change["new"]:
            self.details = {}

    # -- live ---------------------------------------------------------------------------
    def _on_batch(self, batch: Batch) -> None:
        changed: set[str] = set()
        # Steps whose envelope could not be read at their event are read again now.
        wanted, self._unread = self._unread, {}
        for entry in batch:
            event = entry.event
            step_id = getattr(event, "step_id", None)
            if event.execution_id != self.execution_id or not step_id:
                continue
            wanted[step_id] = event
        for step_id, event in wanted.items():
            try:
                env = self._read(step_id)
            except ExecctxError as exc:  # e.g. the server is briefly down: keep following
                self._unread[step_id] = event
                self.notice = (
                    f"Could not read step `{step_id}` ({error_text(exc)});"
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
                    self._loaded.pop(step_id, None)  # a new attempt: load its data anew
                changed.add(step_id)
        if not self._unread and self.notice.startswith("Could not read step"):
            self.notice = ""  # every step is read again: the warning is stale
        if changed:
            self._redraw(changed)

    def _read(self, step_id: str) -> StepEnvelope | None:
        assert self._store is not None  # live graphs read from a store
        env: StepEnvelope | None = self._store.get_step(self._scope, step_id, data=False)
        return env

    def wait(self, steps: int, timeout: float = 10.0) -> bool:
        """Block until the graph holds at least ``steps`` written steps (scripts, tutorials).

        Returns False if ``timeout`` seconds passed first.
        """
        end = time.monotonic() + timeout
        # Counted on the synced nodes, so the drawing is complete when this returns.
        while self._written() < steps:
            if time.monotonic() >= end:
                return False
            time.sleep(0.01)
        return True

    def _written(self) -> int:
        with self._lock:
            return sum(n.status in ("success", "failed") for n in self._grow.nodes.values())

    def close(self) -> None:
        """Stop following events, close the graph's store handle and the widget."""
        super().close()
        if self._store is not None:
            self._store.close()

    # -- display ------------------------------------------------------------------------
    def __repr__(self) -> str:
        return (
            f"LineageGraph(tenant={self.tenant!r}, execution={self.execution_id!r},"
            f" steps={len(self._grow.nodes)}, edges={self._grow.edge_count})"
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
