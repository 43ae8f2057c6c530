"""A live LineageGraph growing one step per batch: total redraw cost, and bytes sent to a view.

Steps arrive one at a time (each with lineage to one or two earlier steps), as a live run's
``step.committed`` events do; after each, the widget draws again. Compared in the same run
with what the widget did before issue 12, a full layout plus the whole SVG per update (the
baseline). Linear cost shows as a total that doubles when the steps double (quadratic: 4x).

Run: ``.venv/bin/python benchmarks/bench_lineage.py``
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from execctx_nb import LineageEntry, StepEnvelope
from execctx_nb.display._layout import graph_from_envelopes, layout, render_svg
from execctx_nb.widgets import LineageGraph

REPEATS = 3


def _envelopes(n: int) -> list[StepEnvelope]:
    return [
        StepEnvelope(
            execution_id="run",
            step_id=f"s{i:04d}",
            lineage=tuple(
                LineageEntry(step_id=f"s{j:04d}")
                for j in sorted({i - 1, i // 2})
                if j >= 0 and j < i
            ),
        )
        for i in range(n)
    ]


def widget_run(n: int) -> tuple[float, int]:
    """Seconds of drawing and bytes sent for ``n`` steps added one per update."""
    envs = _envelopes(n)
    graph = LineageGraph("bench", "run", envelopes=[], live=False)
    sent = 0
    real_send = graph.send

    def counting_send(content: Any, buffers: Any = None) -> None:
        nonlocal sent
        sent += len(str(content))
        real_send(content, buffers)

    graph.send = counting_send  # type: ignore[method-assign]
    start = time.perf_counter()
    for env in envs:
        graph._envelopes[env.step_id] = env  # what a step event does, without the store
        graph._redraw({env.step_id})
    elapsed = time.perf_counter() - start
    assert len(graph.nodes) == n
    graph.close()
    return elapsed, sent


def baseline_run(n: int) -> tuple[float, int]:
    """The former redraw: lay out every node again and send the whole SVG per update."""
    envs = _envelopes(n)
    sent = 0
    start = time.perf_counter()
    for i in range(1, n + 1):
        g = graph_from_envelopes(envs[:i], "run")
        sent += len(render_svg(g, layout(g)))
    return time.perf_counter() - start, sent


def main() -> None:
    print(
        f"{'steps':>6} {'widget s':>9} {'KB sent':>9} {'baseline s':>11} {'KB sent':>9} {'ratio':>6}"
    )
    totals: dict[int, float] = {}
    for n in (250, 500):
        ours = [widget_run(n) for _ in range(REPEATS)]
        base = [baseline_run(n) for _ in range(REPEATS)]
        t_ours = statistics.median(o[0] for o in ours)
        t_base = statistics.median(b[0] for b in base)
        totals[n] = t_ours
        print(
            f"{n:>6} {t_ours:>9.3f} {ours[0][1] / 1e3:>9.0f} {t_base:>11.3f}"
            f" {base[0][1] / 1e3:>9.0f} {t_base / t_ours:>5.1f}x"
        )
    print(
        f"widget total at 500 steps / at 250 steps: {totals[500] / totals[250]:.2f}"
        " (linear: 2, quadratic: 4; here an edge i//2 -> i crosses i/2 layers, so the"
        " routed edges alone grow as steps^2)"
    )
    # What a view's reset costs at 500 steps: one full layout (long edges routed) + SVG.
    for shape, envs in (("chain + halves", _envelopes(500)), ("wide (25 x 20)", _wide(500))):
        g = graph_from_envelopes(envs, "run")
        full = []
        for _ in range(5):
            t0 = time.perf_counter()
            render_svg(g, layout(g))
            full.append(time.perf_counter() - t0)
        print(f"full layout + SVG of 500 steps, {shape}: {statistics.median(full) * 1e3:.0f} ms")


def _wide(n: int, width: int = 25) -> list[StepEnvelope]:
    """Layers of ``width`` steps, each reading two of the layer before and one from the
    start of the run (a long edge over every layer)."""
    return [
        StepEnvelope(
            execution_id="run",
            step_id=f"w{i:04d}",
            lineage=tuple(
                LineageEntry(step_id=f"w{j:04d}")
                for j in sorted({i - width, i - width + 1, i % width})
                if 0 <= j < i and (j < i - width + 2 or j == i % width)
            ),
        )
        for i in range(n)
    ]


if __name__ == "__main__":
    main()
