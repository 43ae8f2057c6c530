"""Both widgets in a real JupyterLab, driven by Playwright on Debian's chromium.

The tail must show an event published after it rendered, the graph every node, and a click
on a node the step's envelope. A screenshot goes to test-artifacts/ (gitignored).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from execctx_nb import (
    ExecutionEventPublisher,
    ExecutionEventSubscriber,
    ExecutionScope,
    StepEnvelope,
    connect,
    keys,
)
from execctx_nb._connection import make_client
from execctx_nb.demo import EXECUTIONS, STEPS, load_demo
from execctx_nb.events import ExecutionLog, StepCommitted
from tests.labs import CHROMIUM, chromium, jupyterlab
from tests.twins import FAST_RECLAIM, run_loop_until

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="/usr/bin/chromium is missing: `make browser-deps` (apt-get install chromium)",
    ),
]


def _dead_letter_and_pending(valkey_url: str, tenant: str) -> None:
    """Produced for real: a subscriber whose handler fails dead-letters an event; a consumer
    reads an entry and dies without acknowledging it."""
    sub = ExecutionEventSubscriber(
        make_client(valkey_url),
        group="engine",
        consumer="worker-1",
        max_deliveries=2,
        **FAST_RECLAIM,
    )

    with ExecutionEventPublisher(url=valkey_url) as pub:
        pub.publish(tenant, StepCommitted(execution_id="browser-run", step_id="poison"))

    def refuse(event: Any, meta: Any) -> None:
        if getattr(event, "step_id", "") == "poison":
            raise ValueError("no handler for this step yet")

    run_loop_until(sub, tenant, refuse, lambda: sub.stats.dead_lettered >= 1, block_ms=100)
    with ExecutionEventPublisher(url=valkey_url) as pub:
        pub.publish(tenant, StepCommitted(execution_id="browser-run", step_id="stuck"))
    client = make_client(valkey_url)
    client.xreadgroup("engine", "dead-1", {keys.events_key(tenant): ">"}, count=1)
    client.close()


@pytest.fixture
def lab(tmp_path: Path, valkey_url: str, tenant: str) -> Iterator[str]:
    """A JupyterLab server on a notebook with the three widgets; yields the notebook URL."""
    with connect(valkey_url) as store:
        load_demo(store, tenant)
    with ExecutionEventPublisher(url=valkey_url) as pub:  # history the tail shows at start
        pub.publish(tenant, ExecutionLog(execution_id="before-run", message="before the tail"))
    _dead_letter_and_pending(valkey_url, tenant)
    nb = new_notebook(
        cells=[
            new_code_cell(
                "from execctx_nb import connect\n"
                "from execctx_nb.widgets import EventTail, LineageGraph, StreamMonitor\n"
                f"store = connect({valkey_url!r})"
            ),
            new_code_cell(f"tail = EventTail({tenant!r}, store=store, max_events=5)\ntail"),
            new_code_cell(
                f"graph = LineageGraph({tenant!r}, {EXECUTIONS[0]!r}, store=store)\ngraph"
            ),
            new_code_cell(
                f"monitor = StreamMonitor({tenant!r}, store=store, actions=True, interval=0.5)\n"
                "monitor"
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
            # history at start: an event published before the tail existed
            expect(tail.locator("tbody tr", has_text="before the tail")).to_be_visible()
            ts = tail.locator("tbody tr td.ts").first.inner_text()
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC", ts), ts
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
            # Enter applies the execution filter (no Tab, no click elsewhere)
            exec_box = tail.locator("input.exec")
            exec_box.fill("no-such-run")
            exec_box.press("Enter")
            expect(rows).to_have_count(0, timeout=30_000)
            exec_box.fill("browser-run")
            exec_box.press("Enter")
            expect(rows).to_have_count(5, timeout=30_000)
            # a row expands to the whole event, its summary is never clipped
            rows.first.click()
            detail = tail.locator("tr.detail pre")
            expect(detail).to_contain_text('"execution.log"', timeout=30_000)
            expect(detail).to_contain_text("a log")
            summary = rows.first.locator("td.summary")
            assert summary.evaluate("td => td.scrollWidth <= td.clientWidth + 1")

            # The demo graph is drawn wider than the cell: it is fitted, but its labels never
            # shrink below 85% (12 px -> 10.2 px); the rest is a pan away.
            canvas = graph.locator(".canvas")
            drawn = float(graph.locator("svg").get_attribute("width") or 0)
            assert drawn > _box(canvas)["width"], "the test needs a graph wider than its cell"
            fitted = float(canvas.get_attribute("data-scale") or 0)
            assert 0.85 <= fitted < 1
            label = graph.locator('g[data-step="join"] text').first
            assert _box(label)["height"] >= 10, "labels stay readable"
            # the long edge ingest_customers -> join runs outside every node box
            assert _edge_clear(graph, "ingest_customers", "join")
            # wheel zooms around the cursor, a drag pans, "fit" goes back
            box = _box(canvas)
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.wheel(0, -300)
            expect(canvas).not_to_have_attribute("data-scale", f"{fitted:.3f}")
            assert float(canvas.get_attribute("data-scale") or 0) > fitted
            before = graph.locator("svg").get_attribute("viewBox")
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] / 2 - 120, box["y"] + box["height"] / 2 - 20)
            page.mouse.up()
            assert graph.locator("svg").get_attribute("viewBox") != before
            graph.locator("button.z-fit").click()
            expect(canvas).to_have_attribute("data-scale", f"{fitted:.3f}")
            # search by step id
            graph.locator("input.search").fill("scor")
            graph.locator("input.search").press("Enter")
            expect(graph.locator('g.match[data-step="score"]')).to_have_count(1)
            expect(graph.locator(".found")).to_have_text("1 found")
            graph.locator("input.search").fill("")
            graph.locator("button.z-fit").click()
            # top to bottom and back: layers below each other, the long edge still clear
            flip = graph.locator("button.direction")
            flip.click()
            expect(flip).to_have_text("left to right", timeout=30_000)
            clean = graph.locator('g[data-step="clean"] rect')
            expect(clean).to_have_attribute("x", re.compile(r".+"))
            page.wait_for_function(
                "() => { const y = (s) => +document.querySelector("
                "`.execctx-lineage-widget g[data-step=\"${s}\"] rect`).getAttribute('y');"
                " return y('clean') > y('ingest_orders') && y('join') > y('clean'); }",
                timeout=30_000,
            )
            assert _edge_clear(graph, "ingest_customers", "join")
            page.screenshot(path=str(ARTIFACTS / "browser-lineage-top-to-bottom.png"))
            flip.click()
            expect(flip).to_have_text("top to bottom", timeout=30_000)
            page.wait_for_function(
                "() => { const y = (s) => +document.querySelector("
                "`.execctx-lineage-widget g[data-step=\"${s}\"] rect`).getAttribute('x');"
                " return y('join') > y('clean'); }",
                timeout=30_000,
            )

            # Clicking a node shows its envelope under the graph; the graph stays whole
            # (a scrolling canvas used to follow the click and cut off the first column).
            graph.locator('g[data-step="score"]').click()
            panel = graph.locator(".panel")
            expect(panel).to_contain_text("score", timeout=30_000)
            expect(panel).to_contain_text("step envelope")
            expect(panel.locator(".load code")).to_contain_text(
                f"df = %execctx load {tenant} {EXECUTIONS[0]} score --attempt"
            )
            rect = graph.locator('g[data-step="score"] rect')
            expect(rect).to_have_attribute("stroke-width", "3")  # the patched selection
            # the selection's upstream and downstream paths are highlighted, the rest dimmed
            for step in ("features", "join", "clean", "ingest_orders", "export"):
                expect(graph.locator(f'g.hl[data-step="{step}"]')).to_have_count(1)
            expect(graph.locator('g.hl[data-step="quality_report"]')).to_have_count(0)
            page.screenshot(path=str(ARTIFACTS / "browser-lineage-highlight.png"))

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

            # The monitor: the pending entry of the dead consumer and the real dead letter;
            # replay asks first, then puts it back, and a consumer handles it.
            monitor = page.locator(".execctx-monitor")
            expect(monitor).to_be_visible(timeout=60_000)
            expect(monitor.locator("tr[data-consumer='dead-1']")).to_contain_text("1")
            dead = monitor.locator("tr[data-dead]")
            expect(dead).to_have_count(1)
            expect(dead).to_contain_text("no handler for this step yet")
            monitor.screenshot(path=str(ARTIFACTS / "browser-monitor.png"))
            dead.locator("button[data-op='replay']").click()
            expect(monitor.locator(".ask")).to_contain_text("Replay dead letter")
            expect(dead).to_have_count(1)  # asked, not done
            monitor.locator(".ask button.confirm").click()
            expect(monitor.locator(".result")).to_contain_text("replayed", timeout=30_000)
            expect(monitor.locator("tr[data-dead]")).to_have_count(0, timeout=30_000)
            replayed = (monitor.locator(".result").inner_text()).rsplit(" ", 1)[-1]
            handled: list[str] = []
            sub = ExecutionEventSubscriber(
                make_client(valkey_url), group="engine", consumer="worker-2",
                min_idle_ms=60_000, handle_signals=False,
            )  # fmt: skip
            run_loop_until(
                sub, tenant, lambda e, m: handled.append(m.stream_id), lambda: replayed in handled
            )

            page.screenshot(path=str(ARTIFACTS / "browser-widgets.png"), full_page=True)
        finally:
            browser.close()


def _box(locator: Any) -> dict[str, float]:
    box = locator.bounding_box()
    assert box is not None, f"{locator} is not rendered"
    return cast("dict[str, float]", box)


def _edge_clear(graph: Any, src: str, dst: str) -> bool:
    """The drawn edge ``src -> dst`` (its path, sampled every 2 px) enters no node box."""
    return bool(
        graph.locator(f'path[data-from="{src}"][data-to="{dst}"]').evaluate(
            """(path) => {
              const boxes = [...path.ownerSVGElement.querySelectorAll("g[data-step] rect")]
                .map((r) => [+r.getAttribute("x"), +r.getAttribute("y"),
                             +r.getAttribute("width"), +r.getAttribute("height")]);
              const n = Math.ceil(path.getTotalLength() / 2);
              for (let i = 0; i <= n; i++) {
                const p = path.getPointAtLength((i / n) * path.getTotalLength());
                for (const [x, y, w, h] of boxes) {
                  if (p.x > x + 0.5 && p.x < x + w - 0.5 && p.y > y + 0.5 && p.y < y + h - 0.5)
                    return false;
                }
              }
              return n > 10;
            }"""
        )
    )
