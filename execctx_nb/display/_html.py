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
]

CSS = (
    "<style>"
    ".execctx{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:13px;"
    "line-height:1.45;color:var(--jp-content-font-color1,#202124)}"
    ".execctx table{border-collapse:collapse;margin:4px 0}"
    # The doubled class outranks JupyterLab's `.jp-RenderedHTMLCommon td` (right-aligned),
    # which won on equal specificity in output cells (not in the graph's detail panel).
    ".execctx.execctx th,.execctx.execctx td{padding:2px 10px 2px 0;text-align:left;"
    "vertical-align:top;border-bottom:1px solid var(--jp-border-color2,#e0e0e0)}"
    ".execctx.execctx th{font-weight:600}"
    ".execctx.execctx td.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".execctx code{font-family:var(--jp-code-font-family,monospace);font-size:12px}"
    ".execctx .muted{color:var(--jp-content-font-color2,#5f6368)}"
    ".execctx .badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:11px;"
    "font-weight:600;border:1px solid}"
    ".execctx .b-success{color:#2e8540;background:#e3f4e8;border-color:#2e8540}"
    ".execctx .b-failed{color:#c62828;background:#fde8e8;border-color:#c62828}"
    ".execctx .b-info{color:#1f6fb2;background:#e6f0fb;border-color:#1f6fb2}"
    ".execctx .b-warn{color:#8a5a00;background:#fff4d6;border-color:#b07800}"
    ".execctx details{margin-left:14px}"
    ".execctx details>summary{margin-left:-14px;cursor:pointer}"
    ".execctx .leaf{margin-left:14px}"
    ".execctx .t{color:#7b3fb2}"
    ".execctx .add{color:#2e8540}.execctx .rem{color:#c62828}.execctx .chg{color:#8a5a00}"
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
