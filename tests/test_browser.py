"""Both widgets in a real JupyterLab, driven by Playwright on Debian's chromium.

The tail must show an event published after it rendered, the graph every node, and a click
on a node the step's envelope. A screenshot goes to test-artifacts/ (gitignored).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from execctx_nb import ExecutionEventPublisher, ExecutionScope, StepEnvelope, connect
from execctx_nb.demo import EXECUTIONS, STEPS, load_demo
from execctx_nb.events import ExecutionLog, StepCommitted
from tests.labs import CHROMIUM, chromium, jupyterlab

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="/usr/bin/chromium is missing: `make browser-deps` (apt-get install chromium)",
    ),
]


@pytest.fixture
def lab(tmp_path: Path, valkey_url: str, tenant: str) -> Iterator[str]:
    """A JupyterLab server on a notebook with both widgets; yields the notebook URL."""
    with connect(valkey_url) as store:
        load_demo(store, tenant)
    nb = new_notebook(
        cells=[
            new_code_cell(
                "from execctx_nb import connect\n"
                "from execctx_nb.widgets import EventTail, LineageGraph\n"
                f"store = connect({valkey_url!r})"
            ),
            new_code_cell(f"tail = EventTail({tenant!r}, store=store, max_events=5)\ntail"),
            new_code_cell(
                f"graph = LineageGraph({tenant!r}, {EXECUTIONS[0]!r}, store=store)\ngraph"
            ),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    (tmp_path / "root").mkdir()
    nbformat.write(nb, tmp_path / "root" / "widgets.ipynb")
    env = {"VALKEY_URL": valkey_url}
    with jupyterlab(tmp_path / "root", tmp_path, env) as (base, token):
        yield f"{base}/lab/tree/widgets.ipynb?token={token}"


def test_widgets_render_and_update_in_jupyterlab(
    lab: str, valkey_url: str, tenant: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = chromium(pw, tmp_path / "chromium-profile")
        try:
            page = browser.new_page()
            page.goto(lab)
            page.wait_for_function("window.jupyterapp !== undefined", timeout=60_000)
            page.wait_for_selector(".jp-Notebook", timeout=60_000)
            # Wait for the kernel, then run every cell through JupyterLab's own command.
            page.wait_for_function(
                "document.querySelector('.jp-Notebook') &&"
                " window.jupyterapp.shell.currentWidget &&"
                " window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel?.status === 'idle'",
                timeout=60_000,
            )
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")

            tail = page.locator(".execctx-tail")
            expect(tail).to_be_visible(timeout=60_000)
            expect(tail.locator(".status")).to_have_text("live", timeout=30_000)
            graph = page.locator(".execctx-lineage-widget")
            expect(graph).to_be_visible(timeout=60_000)
            nodes = graph.locator("g[data-step]")
            expect(nodes).to_have_count(len(STEPS), timeout=30_000)
            shown = sorted(nodes.nth(i).get_attribute("data-step") or "" for i in range(len(STEPS)))
            assert shown == sorted(STEPS)

            # An event published after the tail rendered shows up in it.
            with ExecutionEventPublisher(url=valkey_url) as pub:
                pub.publish(
                    tenant,
                    StepCommitted(
                        execution_id="browser-run", step_id="published_later", row_count=7
                    ),
                )
            row = tail.locator("tbody tr", has_text="published_later")
            expect(row).to_be_visible(timeout=30_000)
            expect(row).to_contain_text("committed (7 rows)")

            # Python sends changes, not the buffer: later batches add rows on top and the
            # oldest leave at the bottom (max_events=5); a filter change redraws them all.
            with ExecutionEventPublisher(url=valkey_url) as pub:
                pub.publish_many(
                    tenant,
                    [
                        StepCommitted(execution_id="browser-run", step_id=f"later{i}")
                        for i in range(8)
                    ],
                )
                pub.publish(tenant, ExecutionLog(execution_id="browser-run", message="a log"))
            rows = tail.locator("tbody tr")
            expect(rows.first).to_contain_text("a log", timeout=30_000)
            expect(rows).to_have_count(5)
            expect(rows.nth(1)).to_contain_text("later7")
            expect(tail.locator("tbody tr", has_text="published_later")).to_have_count(0)
            tail.locator('input[data-kind="step.committed"]').uncheck()
            expect(rows).to_have_count(1, timeout=30_000)
            expect(rows.first).to_contain_text("a log")
            tail.locator('input[data-kind="step.committed"]').check()
            expect(rows).to_have_count(5, timeout=30_000)

            # The demo graph is drawn wider than the cell, so it must scale down to fit.
            canvas = graph.locator(".canvas")
            drawn = float(graph.locator("svg").get_attribute("width") or 0)
            assert drawn > _box(canvas)["width"], "the test needs a graph wider than its cell"
            _assert_nodes_inside(nodes, canvas)

            # Clicking a node shows its envelope under the graph; the graph stays whole
            # (a scrolling canvas used to follow the click and cut off the first column).
            graph.locator('g[data-step="score"]').click()
            panel = graph.locator(".panel")
            expect(panel).to_contain_text("score", timeout=30_000)
            expect(panel).to_contain_text("step envelope")
            _assert_nodes_inside(nodes, canvas)
            rect = graph.locator('g[data-step="score"] rect')
            expect(rect).to_have_attribute("stroke-width", "3")  # the patched selection

            # A step committed later is patched in: a node and its edge, nothing redrawn.
            edges = graph.locator("path.execctx-edge")
            edges_before = edges.count()
            with connect(valkey_url) as store:
                store.put_step(
                    ExecutionScope(tenant, EXECUTIONS[0]),
                    StepEnvelope.from_frame(
                        [{"a": 1}],
                        execution_id=EXECUTIONS[0],
                        step_id="added_live",
                        lineage=["score"],
                    ),
                )
            with ExecutionEventPublisher(url=valkey_url) as pub:
                pub.publish(tenant, StepCommitted(execution_id=EXECUTIONS[0], step_id="added_live"))
            expect(nodes).to_have_count(len(STEPS) + 1, timeout=30_000)
            expect(edges).to_have_count(edges_before + 1)
            expect(graph.locator(".info")).to_contain_text(f"{len(STEPS) + 1} steps")
            expect(rect).to_have_attribute("stroke-width", "3")  # the drawing was not reset

            # No news/update toast: the lab's settings say never, without asking (the
            # overrides become the schema's defaults on the server).
            defaults = page.evaluate(
                "window.jupyterapp.serviceManager.settings"
                ".fetch('@jupyterlab/apputils-extension:notification')"
                ".then((s) => Object.fromEntries(Object.entries(s.schema.properties)"
                ".map(([k, v]) => [k, v.default])))"
            )
            assert defaults["fetchNews"] == "false", defaults
            assert defaults["checkForUpdates"] is False, defaults
            expect(page.get_by_text("official Jupyter news")).to_have_count(0)

            page.screenshot(path=str(ARTIFACTS / "browser-widgets.png"), full_page=True)
        finally:
            browser.close()


def _box(locator: Any) -> dict[str, float]:
    box = locator.bounding_box()
    assert box is not None, f"{locator} is not rendered"
    return cast("dict[str, float]", box)


def _assert_nodes_inside(nodes: Any, area: Any) -> None:
    """Every node's box lies within ``area``'s box (its visible, unscrolled part)."""
    outer = _box(area)
    # A scrolled canvas would also hide nodes inside its box; it must not have scrolled.
    assert area.evaluate("(el) => el.scrollLeft") == 0
    for i in range(nodes.count()):
        node = nodes.nth(i)
        box, step = _box(node), node.get_attribute("data-step")
        assert box["x"] >= outer["x"] - 1 and box["y"] >= outer["y"] - 1, (step, box, outer)
        assert box["x"] + box["width"] <= outer["x"] + outer["width"] + 1, (step, box, outer)
        assert box["y"] + box["height"] <= outer["y"] + outer["height"] + 1, (step, box, outer)
