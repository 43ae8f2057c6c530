"""Small HTML and text helpers shared by the displays: escaping, value formatting, the CSS.

Every display is plain HTML with one scoped ``<style>`` block: it renders in JupyterLab,
VS Code, exported HTML and GitHub's viewer alike, needs no JavaScript and carries no ids
(output must be byte-identical between runs, nbval compares it).
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

import msgspec

__all__ = [
    "CSS",
    "DARK_SELECTORS",
    "PALETTE",
    "badge",
    "clip",
    "esc",
    "fmt_bytes",
    "fmt_count",
    "fmt_ms",
    "fmt_rows",
    "fmt_ts",
    "fmt_value",
    "kv_table",
    "palette_css",
]

#: Text colours, each >= 4.5:1 (WCAG AA) against JupyterLab's light (#fff) and dark (#111)
#: cell backgrounds and inside their badges (tests/test_contrast.py measures them in a
#: browser). Outside JupyterLab (VS Code, Colab, exported HTML) body text takes the page's
#: own colour (`inherit`), so a dark page never gets near-black text.
PALETTE = {
    "light": {"ok": "#1e7a34", "bad": "#b3261e", "warn": "#7a5000", "info": "#1a5f9e",
              "type": "#6f36a6"},
    "dark": {"ok": "#6fcf87", "bad": "#ff8a80", "warn": "#e8b44c", "info": "#8ab4f8",
             "type": "#c39bf0"},
}  # fmt: skip
#: Where a page says it is dark: JupyterLab, VS Code, Colab.
DARK_SELECTORS = ('[data-jp-theme-light="false"]', ".vscode-dark", 'html[theme="dark"]')


def palette_css(scope: str) -> str:
    """The ``--ex-*`` colour variables for elements matching ``scope``, light and dark."""

    def block(theme: str) -> str:
        return ";".join(f"--ex-{k}:{v}" for k, v in PALETTE[theme].items())

    dark = ",".join(f"{d} {s}" for d in DARK_SELECTORS for s in scope.split(","))
    return f"{scope}{{{block('light')}}}{dark}{{{block('dark')}}}"


CSS = (
    "<style>"
    + palette_css(".execctx")
    + ".execctx{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:13px;"
    "line-height:1.45;color:var(--jp-content-font-color1,inherit)}"
    ".execctx table{border-collapse:collapse;margin:4px 0}"
    # The doubled class outranks JupyterLab's `.jp-RenderedHTMLCommon td` (right-aligned),
    # which won on equal specificity in output cells (not in the graph's detail panel).
    ".execctx.execctx th,.execctx.execctx td{padding:2px 10px 2px 0;text-align:left;"
    "vertical-align:top;border-bottom:1px solid var(--jp-border-color2,#e0e0e0)}"
    ".execctx.execctx th{font-weight:600}"
    ".execctx.execctx td.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".execctx code{font-family:var(--jp-code-font-family,monospace);font-size:12px}"
    ".execctx .muted{color:var(--jp-content-font-color2,inherit)}"
    ".execctx .badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:11px;"
    "font-weight:600;border:1px solid}"
    # Badges carry their own pale background in every theme, so their text keeps the light
    # palette (>= 4.7:1 on those backgrounds).
    f".execctx .b-success{{color:{PALETTE['light']['ok']};background:#e3f4e8;border-color:{PALETTE['light']['ok']}}}"
    f".execctx .b-failed{{color:{PALETTE['light']['bad']};background:#fde8e8;border-color:{PALETTE['light']['bad']}}}"
    f".execctx .b-info{{color:{PALETTE['light']['info']};background:#e6f0fb;border-color:{PALETTE['light']['info']}}}"
    f".execctx .b-warn{{color:{PALETTE['light']['warn']};background:#fff4d6;border-color:{PALETTE['light']['warn']}}}"
    ".execctx details{margin-left:14px}"
    ".execctx details>summary{margin-left:-14px;cursor:pointer}"
    ".execctx .leaf{margin-left:14px}"
    ".execctx .t{color:var(--ex-type)}"
    ".execctx .add{color:var(--ex-ok)}.execctx .rem{color:var(--ex-bad)}"
    ".execctx .chg{color:var(--ex-warn)}"
    "</style>"
)

_BADGE_CLASS = {"success": "b-success", "failed": "b-failed"}


def esc(value: object) -> str:
    """HTML-escape ``str(value)`` (quotes too: values land in attributes)."""
    return html.escape(str(value), quote=True)


def clip(text: str, limit: int = 60) -> str:
    """Shorten ``text`` to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def badge(text: str, kind: str | None = None) -> str:
    """A coloured pill; ``kind`` defaults to the class that fits a status word."""
    cls = kind or _BADGE_CLASS.get(text, "b-info")
    return f'<span class="badge {cls}">{esc(text)}</span>'


def fmt_count(n: int, noun: str) -> str:
    """``1 row``, ``1,200 rows``."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def fmt_rows(n: int | None) -> str:
    """``1,234`` or ``-``."""
    return "-" if n is None else f"{n:,}"


def fmt_bytes(n: int | None) -> str:
    """Human bytes with binary prefixes: ``512 B``, ``1.5 KiB``."""
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


def fmt_ms(ms: float | None) -> str:
    """``850 ms`` or ``1.25 s``."""
    if ms is None:
        return "-"
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.0f} ms"


def fmt_ts(ts: dt.datetime | None) -> str:
    """UTC ISO time without microseconds: ``2024-05-01 09:30:00Z``."""
    if ts is None:
        return "-"
    if ts.tzinfo is not None:
        ts = ts.astimezone(dt.UTC)
    return ts.replace(microsecond=0, tzinfo=None).isoformat(sep=" ") + "Z"


def fmt_value(value: Any, limit: int = 60) -> str:
    """One cell of a data preview: strings as-is, everything else as compact JSON."""
    if isinstance(value, str):
        return clip(value, limit)
    try:
        text = msgspec.json.encode(value).decode()
    except (TypeError, msgspec.EncodeError):
        text = repr(value)
    return clip(text, limit)


def kv_table(rows: list[tuple[str, str]]) -> str:
    """A two-column key/value table; values are HTML already."""
    body = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"
