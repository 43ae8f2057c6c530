"""A deterministic layered layout of an execution's step DAG, and its static SVG.

Why by hand: graphviz needs a system binary and grandalf's layout is not deterministic; the
lineage graphs here are small (tens of steps), so a Sugiyama-style layout in plain Python is
fast, runs everywhere and gives byte-identical SVG for identical input (nbval compares it).

Layers come from the longest path from a source; the order inside a layer from a few
barycentre sweeps with stable tie-breaks (previous position, then step id). The graph flows
left to right. An edge that spans several layers is routed through each layer in between
along a free lane (a gap between that layer's nodes, or above or below them), as layered
layouts such as dagre route long edges through virtual nodes: it never passes behind a node.

Examples
--------
>>> g = Graph(nodes=(GraphNode("a"), GraphNode("b")), edges=(("a", "b"),))
>>> lay = layout(g)
>>> [(p.node_id, p.layer) for p in lay.positions]
[('a', 0), ('b', 1)]
>>> render_svg(g).startswith("<svg")
True
"""

from __future__ import annotations

import bisect
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import msgspec

from execctx_nb.errors import InvalidArgumentError

if TYPE_CHECKING:
    from execctx_nb._records import StepEnvelope

__all__ = [
    "STATUS_COLOURS",
    "Graph",
    "GraphNode",
    "Layout",
    "NodePosition",
    "graph_from_envelopes",
    "layout",
    "DIRECTIONS",
    "Geometry",
    "columns",
    "Lanes",
    "edge_path",
    "edge_routes",
    "edge_svg",
    "geometry",
    "route",
    "node_caption",
    "node_svg",
    "render_svg",
    "svg_open",
    "svg_title",
]

NODE_W = 156
NODE_H = 54
GAP_X = 56
GAP_Y = 22
MARGIN = 12
_SWEEPS = 4


class Geometry(msgspec.Struct, frozen=True):
    """A direction's sizes: along the flow (layers follow each other) and across it (the
    nodes of one layer). Layouts are computed in (along, across) and drawn as (x, y) for
    ``LR`` and (y, x) for ``TB``; nodes are always drawn NODE_W x NODE_H, upright."""

    direction: str
    along: int  # a node's size along the flow
    across: int  # a node's size across it
    gap_along: int  # between layers
    gap_across: int  # between the nodes of a layer

    def point(self, u: float, v: float) -> tuple[float, float]:
        """Drawing coordinates of (along, across)."""
        return (u, v) if self.direction == "LR" else (v, u)

    def of(self, p: NodePosition) -> tuple[int, int]:
        """(along, across) of a position's top-left corner."""
        return (p.x, p.y) if self.direction == "LR" else (p.y, p.x)

    def layer_at(self, layer: int) -> int:
        """Where ``layer`` starts along the flow."""
        return MARGIN + layer * (self.along + self.gap_along)


#: Fill and stroke per node status (colour-blind safe pairs, readable on white and dark).
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    "success": ("#e3f4e8", "#1e7a34"),
    "failed": ("#fde8e8", "#b3261e"),
    "running": ("#e6f0fb", "#1a5f9e"),
    "pending": ("#f2f2f2", "#8a8a8a"),
    "external": ("#ffffff", "#8a8a8a"),
}


class GraphNode(msgspec.Struct, frozen=True):
    """One step of the graph with what the picture shows about it."""

    node_id: str
    status: str = "success"
    row_count: int | None = None
    elapsed_ms: float | None = None
    attempt: int = 0
    execution_id: str | None = None
    """Set for an input read from another execution (drawn dashed)."""


class Graph(msgspec.Struct, frozen=True):
    """Nodes and directed edges ``(upstream, downstream)`` by node id."""

    nodes: tuple[GraphNode, ...] = ()
    edges: tuple[tuple[str, str], ...] = ()


DIRECTIONS = ("LR", "TB")


class NodePosition(msgspec.Struct, frozen=True):
    """Where a node is drawn: its layer, its rank inside the layer, and its top-left corner."""

    node_id: str
    layer: int
    rank: int
    x: int
    y: int


class Layout(msgspec.Struct, frozen=True):
    """Positions of every node (in layer, then rank order), the drawing size and the
    direction the layers follow each other (``LR``: left to right, ``TB``: top to bottom)."""

    positions: tuple[NodePosition, ...]
    width: int
    height: int
    direction: str = "LR"

    def position(self, node_id: str) -> NodePosition:
        """The position of ``node_id``; KeyError names the missing node."""
        for pos in self.positions:
            if pos.node_id == node_id:
                return pos
        raise KeyError(f"no node {node_id!r} in this layout")


LR = Geometry("LR", NODE_W, NODE_H, GAP_X, GAP_Y)
TB = Geometry("TB", NODE_H, NODE_W, 40, 24)


def geometry(direction: str) -> Geometry:
    """The geometry of ``"LR"`` or ``"TB"``; anything else is named in the error."""
    if direction == "LR":
        return LR
    if direction == "TB":
        return TB
    raise InvalidArgumentError(
        f"Invalid direction {direction!r}: expected 'LR' (left to right) or 'TB' (top to bottom)"
    )


def graph_from_envelopes(
    envelopes: Iterable[StepEnvelope], execution_id: str | None = None
) -> Graph:
    """Build the step DAG of one execution from its envelopes' lineage.

    A lineage entry of the same execution (``execution_id`` None or equal) is an edge between
    steps; an entry naming another execution becomes an ``external`` node ``exec/step``. A
    step named in lineage but not (yet) written is a ``pending`` node.
    """
    envs = list(envelopes)
    nodes: dict[str, GraphNode] = {}
    edges: set[tuple[str, str]] = set()
    for env in envs:
        execution_id = execution_id or env.execution_id
        nodes[env.step_id] = GraphNode(
            env.step_id,
            status=env.status,
            row_count=env.metadata.row_count,
            elapsed_ms=env.metadata.elapsed_ms,
            attempt=env.attempt,
        )
    for env in envs:
        for entry in env.lineage:
            if entry.execution_id in (None, execution_id):
                src = entry.step_id
                nodes.setdefault(src, GraphNode(src, status="pending"))
            else:
                src = f"{entry.execution_id}/{entry.step_id}"
                nodes.setdefault(
                    src, GraphNode(src, status="external", execution_id=entry.execution_id)
                )
            if src != env.step_id:
                edges.add((src, env.step_id))
    return Graph(
        nodes=tuple(sorted(nodes.values(), key=lambda n: n.node_id)), edges=tuple(sorted(edges))
    )


def _layers(ids: list[str], preds: dict[str, list[str]]) -> dict[str, int]:
    """Longest-path layering; edges closing a cycle (bad lineage) are ignored, not looped on."""
    layer: dict[str, int] = {}
    visiting: set[str] = set()

    def visit(node: str) -> int:
        # Iterative depth-first search: lineage chains may be long, recursion limits are not.
        stack: list[tuple[str, int]] = [(node, 0)]
        while stack:
            current, i = stack.pop()
            if current in layer:
                continue
            visiting.add(current)
            ps = preds[current]
            while i < len(ps) and (ps[i] in layer or ps[i] in visiting):
                i += 1
            if i < len(ps):
                stack.append((current, i + 1))
                stack.append((ps[i], 0))
                continue
            visiting.discard(current)
            layer[current] = 1 + max((layer[p] for p in ps if p in layer), default=-1)
        return layer[node]

    for node in ids:
        visit(node)
    return layer


def layout(graph: Graph, direction: str = "LR") -> Layout:
    """Lay ``graph`` out in layers, left to right (``"TB"``: top to bottom); the result
    depends only on the input set."""
    geo = geometry(direction)
    ids = sorted(n.node_id for n in graph.nodes)
    known = set(ids)
    preds: dict[str, list[str]] = {i: [] for i in ids}
    succs: dict[str, list[str]] = {i: [] for i in ids}
    for src, dst in sorted(set(graph.edges)):
        if src in known and dst in known and src != dst:
            preds[dst].append(src)
            succs[src].append(dst)
    layer_of = _layers(ids, preds)
    depth = 1 + max(layer_of.values(), default=-1)
    layers: list[list[str]] = [[] for _ in range(depth)]
    for node in ids:
        layers[layer_of[node]].append(node)

    rank = {node: i for lay in layers for i, node in enumerate(lay)}

    def sweep(order: range, neighbours: dict[str, list[str]]) -> None:
        for li in order:

            def key(node: str) -> tuple[float, int, str]:
                ns = [rank[n] for n in neighbours[node]]
                bary = sum(ns) / len(ns) if ns else float(rank[node])
                return (bary, rank[node], node)

            layers[li].sort(key=key)
            for i, node in enumerate(layers[li]):
                rank[node] = i

    for _ in range(_SWEEPS):
        sweep(range(1, depth), preds)
        sweep(range(depth - 2, -1, -1), succs)

    tallest = max((len(lay) for lay in layers), default=0)
    # Room for a lane beside every layer when an edge may need one.
    long = any(layer_of[b] - layer_of[a] > 1 for b in ids for a in preds[b])
    pad = geo.gap_across if long else 0
    step = geo.across + geo.gap_across
    across = 2 * (MARGIN + pad) + tallest * geo.across + max(tallest - 1, 0) * geo.gap_across
    along = 2 * MARGIN + depth * geo.along + max(depth - 1, 0) * geo.gap_along
    positions: list[NodePosition] = []
    for li, lay in enumerate(layers):
        # Centre short layers so single chains sit on the middle line.
        offset = (tallest - len(lay)) * step // 2
        for ri, node in enumerate(lay):
            x, y = geo.point(geo.layer_at(li), MARGIN + pad + offset + ri * step)
            positions.append(NodePosition(node, li, ri, int(x), int(y)))
    width, height = (int(v) for v in geo.point(along, across))
    return Layout(
        positions=tuple(positions),
        width=max(width, 2 * MARGIN),
        height=max(height, 2 * MARGIN),
        direction=geo.direction,
    )


def _fmt_rows(n: int | None) -> str:
    if n is None:
        return "- rows"
    return f"{n:,} row" + ("" if n == 1 else "s")


def _fmt_ms(ms: float | None) -> str:
    if ms is None:
        return ""
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    return f"{ms:.0f} ms"


def node_caption(node: GraphNode) -> str:
    """The second line of a node's label: rows and time (also used by the widget)."""
    if node.status == "external":
        return "from another execution"
    if node.status == "pending":
        return "not written yet"
    parts = [_fmt_rows(node.row_count)]
    if node.status in ("failed", "running"):
        parts.insert(0, node.status)  # said in words, not only by colour
    if node.elapsed_ms is not None:
        parts.append(_fmt_ms(node.elapsed_ms))
    return " · ".join(parts)


def _clip(text: str, limit: int = 20) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_svg(graph: Graph, lay: Layout | None = None, *, selected: str | None = None) -> str:
    """Render ``graph`` as a self-contained SVG string (no ids, no scripts, text escaped).

    Each node is a ``<g class="execctx-node" data-step="...">`` so a widget can attach click
    handlers; ``selected`` draws that node with a thicker border.
    """
    lay = lay or layout(graph)
    if not lay.positions:  # room for the "no steps yet" line (24 px cut it off)
        lay = Layout(positions=(), width=2 * MARGIN + NODE_W, height=2 * MARGIN + 20)
    by_id = {n.node_id: n for n in graph.nodes}
    pos = {p.node_id: p for p in lay.positions}
    out = [svg_open(graph, lay)]
    for (src, dst), via in edge_routes(lay, graph.edges).items():
        out.append(edge_svg(pos[src], pos[dst], via, lay.direction))
    out.extend(node_svg(by_id[p.node_id], p, selected=selected) for p in lay.positions)
    if not lay.positions:
        out.append(f'<text x="{MARGIN}" y="{MARGIN + 14}" fill="#5f6368">no steps yet</text>')
    out.append("</svg>")
    # Newlines between elements: where a viewer strips the SVG tags (JupyterLab sanitises
    # untrusted outputs), the texts stay apart ("attempt 1" and "38 rows" once read as
    # "attempt 138 rows"); inside the SVG they draw nothing.
    return "\n".join(out)


def svg_title(steps: int, edges: int) -> str:
    """The text of the drawing's ``<title>``."""
    return f"Lineage graph: {steps} steps, {edges} edges"


def svg_open(graph: Graph, lay: Layout) -> str:
    """The opening ``<svg>`` tag and title of a drawing of ``lay``."""
    return (
        # Scales down to its container (never wider than drawn, never cropped): a fixed-width
        # SVG in an `overflow: auto` box showed a wide graph scrolled to the clicked node,
        # its first column cut off. The width/height attributes stay for viewers that drop
        # the style attribute (they then scroll from the left instead).
        f'<svg xmlns="http://www.w3.org/2000/svg" class="execctx-lineage" width="{lay.width}"'
        f' height="{lay.height}" viewBox="0 0 {lay.width} {lay.height}"'
        ' preserveAspectRatio="xMinYMin meet"'
        f' style="display:block;width:100%;max-width:{lay.width}px;height:auto" role="img"'
        ' font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">'
        f"<title>{svg_title(len(graph.nodes), len(graph.edges))}</title>"
    )


def columns(positions: Iterable[NodePosition], direction: str = "LR") -> dict[int, list[int]]:
    """Layer -> the sorted starts (across the flow) of its nodes: what :func:`route` avoids."""
    geo = geometry(direction)
    out: dict[int, list[int]] = {}
    for p in positions:
        out.setdefault(p.layer, []).append(geo.of(p)[1])
    for tops in out.values():
        tops.sort()
    return out


def route(
    a: NodePosition, b: NodePosition, cols: Mapping[int, Sequence[int]], direction: str = "LR"
) -> tuple[int, ...]:
    """Where (across the flow) the edge ``a -> b`` crosses each layer strictly between
    theirs: on the straight line between the two nodes' centres where it passes at least
    half a gap from every node of that layer (above the first or between two), else in the
    free lane (beside the node in the way, half a gap from it) nearest to that line; ties go
    to the upper (left) lane. Nothing passes further below a layer's last node than its
    lane: that is where a growing graph places the layer's next node."""
    if b.layer <= a.layer + 1:
        return ()
    geo = geometry(direction)
    ya, yb = geo.of(a)[1] + geo.across / 2, geo.of(b)[1] + geo.across / 2
    half = geo.gap_across // 2
    span = b.layer - a.layer
    via = []
    for layer in range(a.layer + 1, b.layer):
        aim = ya + (yb - ya) * (layer - a.layer) / span
        tops = cols.get(layer, ())
        i = bisect.bisect_right(tops, aim + half) - 1  # the last node starting before aim
        if i < 0 or (aim >= tops[i] + geo.across + half and i < len(tops) - 1):
            via.append(round(aim))  # clear of every node of the layer
            continue
        if aim >= tops[i] + geo.across + half:
            # below the last node: where a growing graph places its next node; the lane
            # just below the last one stays clear of it
            via.append(tops[i] + geo.across + half)
            continue
        lanes = (tops[i] - half, tops[i] + geo.across + half)
        via.append(min(lanes, key=lambda y: (abs(y - aim), y)))
    return tuple(via)


class Lanes:
    """The lanes long edges take, per layer: an edge whose lane an earlier edge took is drawn
    beside it (4 or 8 px off the lane's centre, the same shift all along the edge so its
    level runs stay level) instead of on top of it; a shift that would come within 2 px of
    a node is not made there."""

    _OFFSETS = (0, 4, -4, 8, -8)

    def __init__(self, cols: Mapping[int, Sequence[int]], direction: str = "LR") -> None:
        self.cols = cols  # read live: a growing graph appends to it
        self._geo = geometry(direction)
        self._used: dict[tuple[int, int], int] = {}

    def route(self, a: NodePosition, b: NodePosition) -> tuple[int, ...]:
        """:func:`route`, spread beside the edges that took the same lanes before."""
        via = route(a, b, self.cols, self._geo.direction)
        layers = range(a.layer + 1, b.layer)
        taken = max(
            (self._used.get((layer, v), 0) for layer, v in zip(layers, via, strict=True)), default=0
        )
        shift = self._OFFSETS[taken % len(self._OFFSETS)]
        out = []
        for layer, v in zip(layers, via, strict=True):
            self._used[(layer, v)] = self._used.get((layer, v), 0) + 1
            out.append(v + shift if shift and self._clear(layer, v + shift) else v)
        return tuple(out)

    def _clear(self, layer: int, v: int) -> bool:
        tops = self.cols.get(layer, ())
        i = bisect.bisect_right(tops, v + 2) - 1
        return not (i >= 0 and v < tops[i] + self._geo.across + 2)


def edge_routes(
    lay: Layout, edges: Iterable[tuple[str, str]], lanes: Lanes | None = None
) -> dict[tuple[str, str], tuple[int, ...]]:
    """The lanes of every drawn edge of ``lay``, taken in sorted order (as
    :func:`render_svg` draws them) from ``lanes`` (default: fresh ones)."""
    pos = {p.node_id: p for p in lay.positions}
    lanes = lanes or Lanes(columns(lay.positions, lay.direction), lay.direction)
    return {
        (src, dst): lanes.route(pos[src], pos[dst])
        for src, dst in sorted(set(edges))
        if src in pos and dst in pos and src != dst
    }


Segment = tuple[tuple[float, float], ...]  # 2 points: a line; 4: a cubic curve


def edge_path(
    a: NodePosition, b: NodePosition, via: Sequence[int] = (), direction: str = "LR"
) -> list[Segment]:
    """The segments (drawing coordinates) of the edge ``a -> b`` crossing the layers
    between at ``via``: curves between two lanes, straight lines along one (one line for a
    run of layers at the same place, so a long edge costs its bends, not its length)."""
    geo = geometry(direction)
    (ua, va), (ub, vb) = geo.of(a), geo.of(b)
    out: list[Segment] = []
    at = (float(ua + geo.along), va + geo.across / 2)

    def go(u: float, v: float) -> None:
        nonlocal at
        (u1, v1) = at
        if v1 == v:  # level: extend a level line, or start one
            if out and len(out[-1]) == 2 and out[-1][0][1] == v:
                out[-1] = (out[-1][0], (u, v))
            else:
                out.append((at, (u, v)))
        else:
            mid = (u1 + u) / 2
            out.append((at, (mid, v1), (mid, v), (u, v)))
        at = (u, v)

    layer = a.layer + 1
    for v in via:
        go(float(geo.layer_at(layer)), float(v))
        go(float(geo.layer_at(layer) + geo.along), float(v))
        layer += 1
    go(float(ub - 6), vb + geo.across / 2)
    return [tuple(geo.point(u, v) for u, v in seg) for seg in out]


def _num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def edge_svg(
    a: NodePosition, b: NodePosition, via: Sequence[int] = (), direction: str = "LR"
) -> str:
    """One edge from ``a`` to ``b`` (through the lanes ``via``): a path and its arrowhead."""
    geo = geometry(direction)
    segments = edge_path(a, b, via, direction)
    d = [f"M{_num(segments[0][0][0])},{_num(segments[0][0][1])}"]
    for seg in segments:
        if len(seg) == 4:
            d.append("C" + " ".join(f"{_num(x)},{_num(y)}" for x, y in seg[1:]))
        else:
            d.append(f"L{_num(seg[1][0])},{_num(seg[1][1])}")
    ub, vb = geo.of(b)
    tip_u, tip_v = ub - 6, vb + geo.across // 2
    head = " ".join(
        f"{_num(x)},{_num(y)}"
        for x, y in (
            geo.point(tip_u, tip_v - 4),
            geo.point(tip_u + 6, tip_v),
            geo.point(tip_u, tip_v + 4),
        )
    )
    esc = html.escape
    return (
        f'<path class="execctx-edge" data-from="{esc(a.node_id)}" data-to="{esc(b.node_id)}"'
        f' d="{" ".join(d)}" fill="none" stroke="#9aa0a6" stroke-width="1.5"/>'
        # A drawn arrowhead, not an SVG <marker>: markers need document-unique ids.
        f'<polygon points="{head}" fill="#9aa0a6"/>'
    )


def node_svg(node: GraphNode, p: NodePosition, *, selected: str | None = None) -> str:
    """One node's ``<g data-step=...>`` element."""
    esc = html.escape
    fill, stroke = STATUS_COLOURS.get(node.status, STATUS_COLOURS["pending"])
    width = "3" if node.node_id == selected else "1.5"
    dash = ' stroke-dasharray="5 3"' if node.status in ("external", "pending") else ""
    name = _clip(node.node_id, 14 if node.attempt else 20)
    out = [
        f'<g class="execctx-node execctx-{esc(node.status)}" data-step="{esc(node.node_id)}"'
        ' style="cursor:pointer">'
        f"\n<title>{esc(node.node_id)} ({esc(node.status)})</title>\n"
        f'<rect x="{p.x}" y="{p.y}" width="{NODE_W}" height="{NODE_H}" rx="7"'
        f' fill="{fill}" stroke="{stroke}" stroke-width="{width}"{dash}/>\n'
        f'<text x="{p.x + 10}" y="{p.y + 21}" font-weight="600" fill="#202124">{esc(name)}</text>'
    ]
    if node.attempt:
        # A retried step says so in its corner: the attempt is what lineage pins.
        out.append(
            f'<text x="{p.x + NODE_W - 8}" y="{p.y + 20}" text-anchor="end" font-size="10"'
            f' fill="{stroke}">attempt {node.attempt}</text>'
        )
    out.append(
        f'<text x="{p.x + 10}" y="{p.y + 40}" fill="#5f6368">{esc(node_caption(node))}</text>\n</g>'
    )
    return "\n".join(out)
