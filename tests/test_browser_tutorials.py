"""The tutorials as a new user meets them under `make lab`, in a real JupyterLab (Playwright
on Debian's chromium): saved lineage outputs render as pictures before anything runs, and
tutorial 04 run end to end leaves both widget views showing their last state."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from execctx_nb.lab import trust_notebooks
from tests.labs import CHROMIUM, chromium, jupyterlab

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
LIVE = "04-live-monitoring-and-lineage"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing"),
]


def _saved_pictures(path: Path) -> int:
    """Saved lineage SVGs outside widget outputs (widgets render from their model)."""
    count = 0
    for cell in nbformat.read(path, as_version=4).cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data:
                continue
            count += str(data.get("text/html", "")).count('class="execctx-lineage"')
    return count


def _open(page: object, url: str) -> None:
    page.goto(url)  # type: ignore[attr-defined]
    page.wait_for_function("window.jupyterapp !== undefined", timeout=60_000)  # type: ignore[attr-defined]
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)  # type: ignore[attr-defined]


def test_tutorials_show_saved_graphs_and_keep_their_widgets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import expect, sync_playwright

    root = tmp_path / "root"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns("*.py", ".*"))
    data_dir = tmp_path / "jupyter-data"  # the signature store of this lab's user
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(data_dir))
    assert trust_notebooks(root) == 5  # what `make lab` does
    env = {
        "JUPYTER_DATA_DIR": str(data_dir),
        "EXECCTX_COLD_STORE": str(tmp_path / "cold"),
        "VALKEY_URL": "",  # each kernel starts its own embedded server, as nbval runs them
    }
    ARTIFACTS.mkdir(exist_ok=True)
    with jupyterlab(root, tmp_path, env) as (base, token), sync_playwright() as pw:
        browser = chromium(pw, tmp_path / "chromium-profile")
        try:
            page = browser.new_page()
            for nb in sorted(root.glob("[0-9][0-9]-*.ipynb")):
                saved = _saved_pictures(nb)
                _open(page, f"{base}/lab/tree/{nb.name}?token={token}")
                # The workspace reopens earlier tutorials in hidden tabs (their DOM stays, as
                # every cell is rendered): look inside this tutorial's panel only.
                page.wait_for_function(
                    f"window.jupyterapp.shell.currentWidget?.context?.path === {nb.name!r}",
                    timeout=60_000,
                )
                page.evaluate(
                    "window.jupyterapp.shell.currentWidget.node.setAttribute('data-tutorial',"
                    f" {nb.stem!r})"
                )
                pictures = page.locator(
                    f'[data-tutorial="{nb.stem}"] .jp-OutputArea-output svg.execctx-lineage'
                )
                expect(pictures).to_have_count(saved, timeout=30_000)  # not sanitised away
                for i in range(saved):
                    picture = pictures.nth(i)
                    assert picture.locator("g[data-step]").count() == 8, nb.name
                    picture.evaluate(
                        "e => { const d = e.closest('details'); if (d) d.open = true; }"
                    )
                    box = picture.bounding_box()
                    assert box is not None and box["height"] > 60, f"{nb.name}: not a picture"
                page.screenshot(path=str(ARTIFACTS / f"tutorial-{nb.stem}-light.png"))

            page.evaluate(
                "window.jupyterapp.commands.execute('apputils:change-theme',"
                " {theme: 'JupyterLab Dark'})"
            )
            page.wait_for_function("document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "tutorial-05-dark.png"))

            # Tutorial 04 end to end: its last cell stops both widgets, which keep showing.
            page.evaluate(
                "window.jupyterapp.commands.execute('docmanager:open',"
                f" {{path: {LIVE + '.ipynb'!r}}})"
            )
            page.wait_for_function(
                f"window.jupyterapp.shell.currentWidget?.context?.path === {LIVE + '.ipynb'!r}",
                timeout=60_000,
            )
            # (each tutorial was opened by a page load: mark this panel again)
            page.evaluate(
                "window.jupyterapp.shell.currentWidget.node.setAttribute('data-tutorial',"
                f" {LIVE!r})"
            )
            panel = page.locator(f'[data-tutorial="{LIVE}"]')
            page.wait_for_function(
                "window.jupyterapp.shell.currentWidget?.sessionContext.session?.kernel"
                "?.status === 'idle'",
                timeout=60_000,
            )
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            last = panel.locator(".jp-Cell").last
            expect(last.locator(".jp-OutputArea-output")).to_contain_text(
                "(False, 'stopped')", timeout=120_000
            )
            tail = panel.locator(".execctx-tail")
            expect(tail).to_be_visible(timeout=30_000)
            expect(tail.locator(".status")).to_have_text("stopped")
            assert tail.locator("tbody tr").count() > 0
            # the live graph (the first one is static): it says "stopped" and keeps its nodes
            live = panel.locator(".execctx-lineage-widget").filter(
                has=page.locator(".info", has_text="stopped")
            )
            expect(live).to_be_visible(timeout=30_000)
            assert live.locator("g[data-step]").count() == 8
            page.screenshot(path=str(ARTIFACTS / "tutorial-04-run-dark.png"), full_page=True)
        finally:
            browser.close()
