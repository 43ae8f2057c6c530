"""The layered DAG layout and its SVG: deterministic, readable, escaped."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execctx_nb._records import LineageEntry, StepEnvelope, StepMetadata
from execctx_nb.display._grow import GrowingGraph
from execctx_nb.display._layout import (
    GAP_X,
    NODE_H,
    NODE_W,
    STATUS_COLOURS,
    Graph,
    GraphNode,
    Lanes,
    NodePosition,
    columns,
    edge_path,
    edge_routes,
    graph_from_envelopes,
    layout,
    render_svg,
    route,
)
from execctx_nb.errors import InvalidArgumentError

PIPELINE = Graph(
    nodes=tuple(
        GraphNode(n, row_count=10)
        for n in ["ingest", "customers", "clean", "join", "quality", "features", "score", "export"]
    ),
    edges=(
        ("ingest", "clean"),
        ("clean", "join"),
        ("customers", "join"),
        ("clean", "quality"),
        ("join", "features"),
        ("features", "score"),
        ("score", "export"),
    ),
)


def assert_layout_contract(graph: Graph) -> None:
    """Every node placed once; every edge points to a later layer; no two nodes overlap."""
    lay = layout(graph)
    ids = [p.node_id for p in lay.positions]
    assert sorted(ids) == sorted(n.node_id for n in graph.nodes)
    layer = {p.node_id: p.layer for p in lay.positions}
    for src, dst in graph.edges:
        if src != dst:
            assert layer[src] < layer[dst] or _on_cycle(graph, src, dst)
    spots = {(p.x, p.y) for p in lay.positions}
    assert len(spots) == len(lay.positions)
    for p in lay.positions:
        assert 0 <= p.x <= lay.width and 0 <= p.y <= lay.height


def _point(seg: tuple[tuple[float, float], ...], t: float) -> tuple[float, float]:
    if len(seg) == 2:
        (x1, y1), (x2, y2) = seg
        return x1 + (x2 - x1) * t, y1 + (y2 - y1) * t
    u = 1 - t  # a cubic Bezier curve
    weights = (u**3, 3 * u * u * t, 3 * u * t * t, t**3)
    return (
        sum(w * x for w, (x, _) in zip(weights, seg, strict=True)),
        sum(w * y for w, (_, y) in zip(weights, seg, strict=True)),
    )


def assert_edges_clear(
    pos: dict[str, NodePosition],
    edges: list[tuple[str, str]],
    lanes: object = None,
    direction: str = "LR",
) -> None:
    """No edge (of a later layer) passes through a node box: 40 points on each segment."""
    drawn = Lanes(columns(pos.values(), direction), direction)  # as render_svg takes them
    for src, dst in sorted(set(edges)):
        a, b = pos[src], pos[dst]
        if src == dst:
            continue
        via = drawn.route(a, b) if lanes is None else lanes(src, dst)  # type: ignore[operator]
        if a.layer >= b.layer:
            continue  # an edge closing a cycle (bad lineage)
        for seg in edge_path(a, b, via, direction):
            for i in range(41):
                x, y = _point(seg, i / 40)
                for p in pos.values():
                    inside = p.x < x < p.x + NODE_W and p.y < y < p.y + NODE_H
                    assert not inside, f"{src}->{dst} passes through {p.node_id} at {x},{y}"


@pytest.mark.parametrize("direction", ["LR", "TB"])
def test_long_edges_go_around_the_nodes_between(direction: str) -> None:
    """The issue's two cases: enrich -> publish past transform, a -> d past b and c."""
    for nodes, edges in (
        ("extract transform publish enrich", [("extract", "transform"),
         ("transform", "publish"), ("enrich", "publish")]),
        ("a b c d", [("a", "b"), ("b", "c"), ("c", "d"), ("a", "d")]),
    ):  # fmt: skip
        g = Graph(nodes=tuple(GraphNode(n) for n in nodes.split()), edges=tuple(edges))
        lay = layout(g, direction)
        pos = {p.node_id: p for p in lay.positions}
        assert_edges_clear(pos, edges, direction=direction)
        long = [(s, d) for s, d in edges if pos[d].layer - pos[s].layer > 1]
        assert long  # the case has a long edge
        size = lay.height if direction == "LR" else lay.width
        for src, dst in long:
            via = route(pos[src], pos[dst], columns(lay.positions, direction), direction)
            assert via and all(0 < v < size for v in via)
        svg = render_svg(g, lay)
        again = Graph(nodes=g.nodes[::-1], edges=g.edges[::-1])
        assert svg == render_svg(again, layout(again, direction))
        assert svg.count("<path") == len(edges)


def test_edges_sharing_a_lane_are_drawn_beside_each_other() -> None:
    # a -> c and a -> d both pass b in the lane above it: the second one beside the first
    edges = [("a", "b"), ("b", "c"), ("c", "d"), ("a", "c"), ("a", "d")]
    g = Graph(nodes=tuple(GraphNode(n) for n in "abcd"), edges=tuple(edges))
    lay = layout(g)
    routes = edge_routes(lay, g.edges)
    assert routes[("a", "d")][0] != routes[("a", "c")][0]  # not on top of each other
    assert len(set(routes[("a", "d")])) == 1  # shifted all along: its level run stays level
    assert_edges_clear({p.node_id: p for p in lay.positions}, edges)


def test_top_to_bottom_puts_layers_below_each_other() -> None:
    lay = layout(PIPELINE, "TB")
    pos = {p.node_id: p for p in lay.positions}
    assert lay.direction == "TB" and pos["ingest"].y < pos["clean"].y < pos["join"].y
    assert pos["ingest"].x != pos["customers"].x and pos["ingest"].y == pos["customers"].y
    assert lay.height > lay.width  # a chain of six layers, two wide
    assert_layout_contract(PIPELINE)
    with pytest.raises(InvalidArgumentError, match="Invalid direction 'up'"):
        layout(PIPELINE, "up")


def _on_cycle(graph: Graph, src: str, dst: str) -> bool:
    """True when ``src`` is reachable from ``dst`` (the edge closes a cycle)."""
    seen, todo = set(), [dst]
    while todo:
        n = todo.pop()
        if n == src:
            return True
        if n not in seen:
            seen.add(n)
            todo.extend(d for s, d in graph.edges if s == n)
    return False


def test_longest_path_layers() -> None:
    lay = layout(PIPELINE)
    layer = {p.node_id: p.layer for p in lay.positions}
    assert layer == {
        "ingest": 0,
        "customers": 0,
        "clean": 1,
        "join": 2,
        "quality": 2,
        "features": 3,
        "score": 4,
        "export": 5,
    }
    assert lay.width == 2 * 12 + 6 * NODE_W + 5 * GAP_X
    assert_layout_contract(PIPELINE)


def test_barycentre_puts_customers_next_to_its_child() -> None:
    g = Graph(
        nodes=tuple(GraphNode(n) for n in "abcxyz"),
        edges=(("a", "z"), ("b", "y"), ("c", "x")),
    )
    lay = layout(g)
    rank = {p.node_id: p.rank for p in lay.positions}
    # Sorted ids would give a,b,c over x,y,z (all edges crossing); the sweeps uncross them.
    assert [rank["x"], rank["y"], rank["z"]] == [rank["c"], rank["b"], rank["a"]]


def test_independent_of_input_order() -> None:
    nodes = list(PIPELINE.nodes)
    edges = list(PIPELINE.edges)
    rng = random.Random(7)
    for _ in range(5):
        rng.shuffle(nodes)
        rng.shuffle(edges)
        shuffled = Graph(nodes=tuple(nodes), edges=tuple(edges))
        assert layout(shuffled) == layout(PIPELINE)
        assert render_svg(shuffled) == render_svg(PIPELINE)


def test_cycle_does_not_hang_and_places_every_node() -> None:
    g = Graph(nodes=tuple(GraphNode(n) for n in "abc"), edges=(("a", "b"), ("b", "c"), ("c", "a")))
    assert_layout_contract(g)


def test_long_chain_no_recursion_error() -> None:
    n = 3000
    g = Graph(
        nodes=tuple(GraphNode(f"s{i:05d}") for i in range(n)),
        edges=tuple((f"s{i:05d}", f"s{i + 1:05d}") for i in range(n - 1)),
    )
    assert layout(g).positions[-1].layer == n - 1


def test_empty_graph() -> None:
    lay = layout(Graph())
    assert lay.positions == ()
    assert render_svg(Graph()).startswith("<svg")
    assert "no steps yet" in render_svg(Graph())


@settings(max_examples=150, deadline=None)
@given(
    st.integers(min_value=1, max_value=12).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=30),
        )
    ),
    st.sampled_from(["LR", "TB"]),
)
def test_layout_contract_on_random_graphs(
    case: tuple[int, list[tuple[int, int]]], direction: str
) -> None:
    n, pairs = case
    g = Graph(
        nodes=tuple(GraphNode(f"n{i}") for i in range(n)),
        edges=tuple((f"n{a}", f"n{b}") for a, b in pairs),
    )
    assert_layout_contract(g)
    lay = layout(g, direction)
    assert_edges_clear({p.node_id: p for p in lay.positions}, list(g.edges), direction=direction)
    spots = [(p.x, p.y) for p in lay.positions]
    assert all(
        abs(x1 - x2) >= NODE_W or abs(y1 - y2) >= NODE_H
        for i, (x1, y1) in enumerate(spots)
        for x2, y2 in spots[i + 1 :]
    )  # no two boxes overlap
    shuffled = Graph(nodes=g.nodes[::-1], edges=g.edges[::-1])
    again = layout(shuffled, direction)
    assert again == lay and render_svg(shuffled, again) == render_svg(g, lay)  # deterministic


def test_svg_scales_to_its_container_and_is_never_cropped() -> None:
    # A fixed-width SVG in a scrolling cell showed a wide graph cut off on the left
    # (tests/test_browser.py checks the real thing in JupyterLab).
    lay = layout(PIPELINE)
    head = render_svg(PIPELINE, lay).split(">", 1)[0]
    assert f'viewBox="0 0 {lay.width} {lay.height}"' in head
    assert 'preserveAspectRatio="xMinYMin meet"' in head
    assert f"width:100%;max-width:{lay.width}px;height:auto" in head


def test_svg_escapes_text_and_has_no_ids() -> None:
    g = Graph(nodes=(GraphNode("a<b>&c", status="failed", row_count=1, elapsed_ms=1500.0),))
    svg = render_svg(g)
    assert "a&lt;b&gt;&amp;c" in svg
    assert "<b>" not in svg
    assert " id=" not in svg
    assert "1 row · 1.50 s" in svg
    assert STATUS_COLOURS["failed"][1] in svg  # failed stroke


def test_svg_shows_every_node_with_status_and_counts() -> None:
    svg = render_svg(PIPELINE, selected="join")
    steps = re.findall(r'data-step="([^"]+)"', svg)
    assert sorted(steps) == sorted(n.node_id for n in PIPELINE.nodes)
    assert svg.count("<path") == len(PIPELINE.edges)
    assert svg.count('stroke-width="3"') == 1
    assert "10 rows" in svg


def test_graph_from_envelopes_builds_edges_pending_and_external() -> None:
    envs = [
        StepEnvelope(execution_id="r1", step_id="ingest", metadata=StepMetadata(row_count=3)),
        StepEnvelope(
            execution_id="r1",
            step_id="clean",
            attempt=1,
            status="failed",
            lineage=(
                LineageEntry(step_id="ingest"),
                LineageEntry(step_id="ref", execution_id="r0"),
                LineageEntry(step_id="lookup", execution_id="r1"),
            ),
        ),
    ]
    g = graph_from_envelopes(iter(envs))
    status = {n.node_id: n.status for n in g.nodes}
    assert status == {
        "ingest": "success",
        "clean": "failed",
        "r0/ref": "external",
        "lookup": "pending",
    }
    assert set(g.edges) == {("ingest", "clean"), ("r0/ref", "clean"), ("lookup", "clean")}
    assert_layout_contract(g)


def _lineage_env(
    step: int, ins: list[int], status: str, attempt: int, *, external: int = 6
) -> StepEnvelope:
    """Step ``s<step>`` reading ``s<i>`` for each ``i`` (of execution r0 when i % 7 == external)."""
    lineage = tuple(
        LineageEntry(step_id=f"s{i}", execution_id="r0" if i % 7 == external else None) for i in ins
    )
    return StepEnvelope(
        execution_id="r1", step_id=f"s{step}", lineage=lineage, status=status, attempt=attempt
    )


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(
                st.integers(0, 9),
                st.lists(st.integers(0, 9), max_size=3),
                st.sampled_from(["success", "failed"]),
                st.integers(0, 2),
            ),
            min_size=1,
            max_size=4,
        ),
        min_size=1,
        max_size=8,
    ),
    st.sampled_from(["LR", "TB"]),
)
def test_growing_graph_is_the_full_graph_after_every_update(
    batches: list[list[tuple[int, list[int], str, int]]], direction: str
) -> None:
    """Updates in place (new steps, re-attempts, pending steps written, cycles) always end
    in the graph :func:`graph_from_envelopes` builds; a placement never moves a drawn node."""
    envs: dict[str, StepEnvelope] = {}
    grow = GrowingGraph(envs, "r1", direction)
    for batch in batches:
        before = dict(grow.pos)
        for step, ins, status, attempt in batch:
            envs[f"s{step}"] = _lineage_env(step, ins, status, attempt)
        change = grow.update({f"s{step}" for step, *_ in batch})
        full = graph_from_envelopes(envs.values(), "r1")
        assert grow.graph == full
        assert grow.failed == sum(n.status == "failed" for n in full.nodes)
        assert grow.edge_count == len(full.edges)
        assert sorted(grow.pos) == sorted(n.node_id for n in full.nodes)
        spots = {(p.x, p.y) for p in grow.pos.values()}
        assert len(spots) == len(grow.pos)  # no two nodes drawn on each other
        for p in grow.pos.values():
            assert p.x + NODE_W <= grow.width and p.y <= grow.height
        assert_edges_clear(grow.pos, list(full.edges), grow.route, direction)
        if change is not None:
            assert all(grow.pos[k] == p for k, p in before.items())  # nothing moved
            for src, dst in full.edges:
                on_cycle = _on_cycle(full, src, dst)
                assert grow.pos[src].layer < grow.pos[dst].layer or on_cycle
        else:
            assert grow.layout == layout(full, direction)  # laid out anew: the full layout


def test_growing_graph_costs_what_an_update_changes() -> None:
    envs: dict[str, StepEnvelope] = {"s0": _lineage_env(0, [], "success", 0)}
    grow = GrowingGraph(envs, "r1")
    for i in range(1, 300):
        envs[f"s{i}"] = _lineage_env(i, [i - 1, i // 2], "success", 0, external=-1)
        change = grow.update({f"s{i}"})
        assert change is not None  # grown in place, never laid out again
        assert change.nodes == {f"s{i}"}
        assert sorted(change.edges) == sorted({(f"s{j}", f"s{i}") for j in {i - 1, i // 2}})
