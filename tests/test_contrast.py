"""Every text colour of the displays and widget styles meets WCAG AA (4.5:1), measured in a
real browser from the rendered (computed) colours, in JupyterLab's light and dark themes and
on a dark page outside JupyterLab; lineage node texts against their own fills."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from execctx_nb import LineageEntry, StepEnvelope, StepMetadata, infer_schema, schema_diff
from execctx_nb.display import ExecutionView, SchemaDiffView, SchemaView
from execctx_nb.display._layout import STATUS_COLOURS

CHROMIUM = Path("/usr/bin/chromium")
WIDGETS = Path(__file__).resolve().parents[1] / "execctx_nb" / "widgets"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

# JupyterLab 4's own theme values for what our CSS reads (theme-light / theme-dark-extension).
THEMES = {
    "jupyterlab-light": (
        "",
        "--jp-layout-color0:#ffffff;--jp-content-font-color1:rgba(0,0,0,0.87);"
        "--jp-content-font-color2:rgba(0,0,0,0.54);--jp-border-color2:#e0e0e0;"
        "background:#ffffff;color:rgba(0,0,0,0.87)",
    ),
    "jupyterlab-dark": (
        'data-jp-theme-light="false"',
        "--jp-layout-color0:#111111;--jp-content-font-color1:rgba(255,255,255,1);"
        "--jp-content-font-color2:rgba(255,255,255,0.7);--jp-border-color2:#424242;"
        "background:#111111;color:rgba(255,255,255,1)",
    ),
    "vscode-dark": ('class="vscode-dark"', "background:#1e1e1e;color:#cccccc"),
    "plain-light-page": ("", "background:#ffffff;color:#222222"),
}

# Markup with every class the two widgets colour (as tail.js / lineage.js build it).
WIDGET_MARKUP = """
<div class="execctx-tail"><div class="bar"><span class="title">tail</span>
<span class="status s-live">live</span><span class="status s-paused">paused</span>
<span class="status s-error">error</span><span class="counts">3 events</span></div>
<div class="error" style="display:block">server gone</div>
<table><tr class="k-ok"><td class="ts">06:00:00Z</td><td>step.committed</td></tr>
<tr class="k-bad"><td class="ts">06:00:01Z</td><td>step.failed</td></tr>
<tr class="k-info"><td class="ts">06:00:02Z</td><td>execution.started</td></tr></table></div>
<div class="execctx-lineage-widget"><div class="head"><span class="info">8 steps</span></div>
<div class="error" style="display:block">cannot read</div></div>
"""


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _ratio(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_lineage_node_texts_meet_aa_on_their_fills() -> None:
    for status, (fill, stroke) in STATUS_COLOURS.items():
        assert _ratio("#202124", fill) >= 4.5, status  # the step name
        assert _ratio("#5f6368", fill) >= 4.5, status  # the caption
        if status in ("success", "failed", "running"):
            assert _ratio(stroke, fill) >= 4.5, status  # "attempt N" is drawn in the stroke


def _page_body() -> str:
    day = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    envs = [
        StepEnvelope(
            execution_id="run",
            step_id="ingest",
            metadata=StepMetadata(row_count=3, bytes=10, elapsed_ms=5, produced_at=day),
        ),
        StepEnvelope(
            execution_id="run",
            step_id="clean",
            attempt=1,
            status="failed",
            error="boom",
            lineage=(LineageEntry(step_id="ingest"),),
        ),
    ]
    old = infer_schema([{"a": 1, "b": "x", "c": {"d": 1.5}}] * 12)
    new = infer_schema([{"a": "1", "c": {"d": None}, "e": True}] * 12)
    views = [
        ExecutionView(envs, "run", "acme")._repr_html_(),
        SchemaView(old, title="rows")._repr_html_(),
        SchemaDiffView(schema_diff(old, new), old_schema=old, new_schema=new)._repr_html_(),
    ]
    css = (WIDGETS / "tail.css").read_text() + (WIDGETS / "lineage.css").read_text()
    return f"<style>{css}</style>" + "".join(views) + WIDGET_MARKUP


CHECK = """() => {
  const parse = (c) => { const m = c.match(/[\\d.]+/g).map(Number);
    return [m[0], m[1], m[2], m.length > 3 ? m[3] : 1]; };
  const lum = ([r, g, b]) => { const f = (v) => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = (el) => { const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; } }
    let out = [255, 255, 255];
    for (const c of layers.reverse()) out = out.map((v, i) => c[i] * c[3] + v * (1 - c[3]));
    return out; };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg') || ['STYLE', 'SCRIPT'].includes(el.tagName)) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const style = getComputedStyle(el);
    if (!own || style.display === 'none' || style.visibility === 'hidden') continue;
    const bg = background(el); const fg = parse(style.color);
    const shown = fg.slice(0, 3).map((v, i) => v * fg[3] + bg[i] * (1 - fg[3]));
    const [hi, lo] = [lum(shown), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    if (ratio < 4.5) bad.push(`${el.tagName}.${el.className}: "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}:1 (${style.color})`);
  }
  return bad;
}"""


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing")
@pytest.mark.parametrize("theme", list(THEMES))
def test_rendered_text_meets_aa(theme: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    attrs, style = THEMES[theme]
    page_file = tmp_path / "page.html"
    page_file.write_text(
        f"<!doctype html><html><body {attrs} style='{style}'>{_page_body()}</body></html>"
    )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1600})
            page.goto(page_file.as_uri())
            bad = page.evaluate(CHECK)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"contrast-{theme}.png"), full_page=True)
        finally:
            browser.close()
    assert not bad, f"{theme}: text below 4.5:1:\n" + "\n".join(bad)
