"""A lineage graph and its layout kept up to date as steps arrive (the live LineageGraph).

:func:`graph_from_envelopes` plus :func:`layout` cost O(steps) per call; a live graph that
called them per step event cost O(steps^2) over a run (3.3 s for 500 steps). Here an update
costs what it changes: the changed steps' nodes and edges are replaced in place, new nodes
are placed below the last node of their layer (none of the drawn ones moves), and the
immutable :class:`Graph` / :class:`Layout` are only built when asked for (the static SVG).
Anything a placement cannot express (a drawn step gained or lost an input, a cycle) falls
back to the full layout of every envelope, so the picture is always what
:func:`graph_from_envelopes` would draw.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from execctx_nb._records import StepEnvelope
from execctx_nb.display._layout import (
    MARGIN,
    NODE_H,
    NODE_W,
    Graph,
    GraphNode,
    Lanes,
    Layout,
    NodePosition,
    columns,
    edge_routes,
    geometry,
    graph_from_envelopes,
    layout,
)

__all__ = ["Change", "GrowingGraph"]


class Change:
    """What one update changed: node ids to draw again and edges to add."""

    __slots__ = ("edges", "nodes")

    def __init__(self, nodes: set[str], edges: list[tuple[str, str]]) -> None:
        self.nodes = nodes
        self.edges = edges


class GrowingGraph:
    """The graph of ``envelopes`` (a mapping the owner keeps current) and its layout.

    Call :meth:`update` with the step ids whose envelopes changed; it returns a
    :class:`Change`, or None when everything was laid out again (send the whole drawing).
    """

    def __init__(
        self, envelopes: Mapping[str, StepEnvelope], execution_id: str, direction: str = "LR"
    ) -> None:
        self._geo = geometry(direction)
        self.direction = direction
        self._envelopes = envelopes
        self._execution_id = execution_id
        self.nodes: dict[str, GraphNode] = {}
        self._preds: dict[str, frozenset[str]] = {}  # step -> its inputs (edges into it)
        self.edge_count = 0
        self.failed = 0
        self.pos: dict[str, NodePosition] = {}
        self.width = self.height = 2 * MARGIN
        self._bottom: dict[int, int] = {}  # layer -> where its last node starts (across)
        self._rank: dict[int, int] = {}  # layer -> rank of its last node
        self._tops: dict[int, list[int]] = {}  # layer -> its nodes' tops, sorted
        self._routes: dict[tuple[str, str], tuple[int, ...]] = {}  # drawn edge -> its lanes
        self._lanes = Lanes(self._tops, direction)
        self._graph: Graph | None = None
        self._layout: Layout | None = None
        self.relayout()

    # -- reading ------------------------------------------------------------------------
    @property
    def graph(self) -> Graph:
        """The current graph (built once per change, when asked for)."""
        if self._graph is None:
            edges = sorted((src, dst) for dst, ins in self._preds.items() for src in ins)
            self._graph = Graph(
                nodes=tuple(self.nodes[k] for k in sorted(self.nodes)), edges=tuple(edges)
            )
        return self._graph

    @property
    def layout(self) -> Layout:
        """The current layout (built once per change, when asked for)."""
        if self._layout is None:
            self._layout = Layout(
                positions=tuple(self.pos.values()),
                width=self.width,
                height=self.height,
                direction=self.direction,
            )
        return self._layout

    def route(self, src: str, dst: str) -> tuple[int, ...]:
        """The lanes of the drawn edge ``src -> dst`` through the layers between (new nodes
        are placed a gap below a layer's last node, so a drawn lane never comes to cross
        one)."""
        via = self._routes.get((src, dst))
        if via is None:
            via = self._routes[(src, dst)] = self._lanes.route(self.pos[src], self.pos[dst])
        return via

    def inputs(self, step_id: str) -> frozenset[str]:
        """The drawn inputs of ``step_id``."""
        return self._preds.get(step_id, frozenset())

    # -- changing -----------------------------------------------------------------------
    def relayout(self) -> None:
        """Build the graph from every envelope and lay it out from scratch."""
        graph = graph_from_envelopes(self._envelopes.values(), self._execution_id)
        lay = layout(graph, self.direction)
        preds: dict[str, set[str]] = {}
        for src, dst in graph.edges:
            preds.setdefault(dst, set()).add(src)
        self.nodes = {n.node_id: n for n in graph.nodes}
        self._preds = {k: frozenset(v) for k, v in preds.items()}
        self.edge_count = len(graph.edges)
        self.failed = sum(n.status == "failed" for n in graph.nodes)
        self.pos = {p.node_id: p for p in lay.positions}
        self.width, self.height = lay.width, lay.height
        self._bottom, self._rank = {}, {}
        self._tops = columns(lay.positions, self.direction)
        # the lanes as the static SVG takes them; later edges take theirs as they arrive
        self._lanes = Lanes(self._tops, self.direction)
        self._routes = edge_routes(lay, graph.edges, self._lanes)
        for p in lay.positions:
            self._bottom[p.layer] = max(self._bottom.get(p.layer, -1), self._geo.of(p)[1])
            self._rank[p.layer] = max(self._rank.get(p.layer, -1), p.rank)
        self._graph, self._layout = graph, lay

    def update(self, step_ids: Iterable[str]) -> Change | None:
        """Take the envelopes of ``step_ids`` (changed or new) into the graph."""
        self._graph = self._layout = None
        if not self.pos:
            self.relayout()  # the first drawing gets the full layout's ordering
            return None
        changed: set[str] = set()
        edges: list[tuple[str, str]] = []
        for step_id in sorted(set(step_ids)):
            env = self._envelopes[step_id]
            ins = self._inputs_of(env, changed)
            old = self._preds.get(step_id, frozenset())
            if ins != old and step_id in self.pos:
                self.relayout()  # a drawn step's inputs changed: its layer may change
                return None
            self._preds[step_id] = ins
            self.edge_count += len(ins) - len(old)
            edges.extend((src, step_id) for src in sorted(ins - old))
            node = GraphNode(
                step_id,
                status=env.status,
                row_count=env.metadata.row_count,
                elapsed_ms=env.metadata.elapsed_ms,
                attempt=env.attempt,
            )
            if self.nodes.get(step_id) != node:
                self._set(node)
                changed.add(step_id)
        if not self._place(sorted(n for n in changed if n not in self.pos)):
            self.relayout()  # new steps in a cycle (bad lineage): the full layout breaks it
            return None
        return Change(changed, edges)

    def _inputs_of(self, env: StepEnvelope, changed: set[str]) -> frozenset[str]:
        ins: set[str] = set()
        for entry in env.lineage:
            if entry.execution_id in (None, self._execution_id):
                src = entry.step_id
                node = GraphNode(src, status="pending")
            else:
                src = f"{entry.execution_id}/{entry.step_id}"
                node = GraphNode(src, status="external", execution_id=entry.execution_id)
            if src not in self.nodes:
                self._set(node)
                changed.add(src)
            if src != env.step_id:
                ins.add(src)
        return frozenset(ins)

    def _set(self, node: GraphNode) -> None:
        old = self.nodes.get(node.node_id)
        self.failed += (node.status == "failed") - (old is not None and old.status == "failed")
        self.nodes[node.node_id] = node

    def _place(self, todo: list[str]) -> bool:
        """Place ``todo`` (new nodes) once their inputs are placed; False on a cycle."""
        while todo:
            ready = [n for n in todo if all(q in self.pos for q in self.inputs(n))]
            if not ready:
                return False
            for node in ready:
                li = 1 + max((self.pos[q].layer for q in self.inputs(node)), default=-1)
                geo = self._geo
                last = self._bottom.get(li)
                v = MARGIN if last is None else last + geo.across + geo.gap_across
                self._bottom[li] = v
                self._rank[li] = self._rank.get(li, -1) + 1
                x, y = geo.point(geo.layer_at(li), v)
                p = NodePosition(node, li, self._rank[li], int(x), int(y))
                self.pos[node] = p
                self._tops.setdefault(li, []).append(v)  # the last: the list stays sorted
                self.width = max(self.width, p.x + NODE_W + MARGIN)
                self.height = max(self.height, p.y + NODE_H + MARGIN)
            todo = [n for n in todo if n not in self.pos]
        return True
