"""``StepHistoryView``: one step across executions, as a table and small inline charts.

The charts are plain SVG polylines (no JavaScript, no CDN), one per measure (rows, bytes,
elapsed), with the executions where the schema changed marked; the table below gives the
numbers. Output is deterministic (nbval compares it).
"""

from __future__ import annotations

from typing import Any

from execctx_nb.display._html import CSS, badge, esc, fmt_bytes, fmt_ms, fmt_rows, fmt_ts

__all__ = ["StepHistoryView"]

_W, _H, _PAD = 220, 44, 4


def sparkline(values: list[float | None], marks: list[bool], label: str) -> str:
    """An SVG line chart of ``values`` (None: a gap), ``marks`` drawn as dashed verticals."""
    known = [v for v in values if v is not None]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}"'
        f' viewBox="0 0 {_W} {_H}" role="img" class="execctx-spark">',
        f"<title>{esc(label)}</title>",
    ]
    n = len(values)
    if n and known:
        low, high = min(known), max(known)
        span = (high - low) or 1.0

        def x(i: int) -> float:
            return _PAD + (i * (_W - 2 * _PAD) / (n - 1) if n > 1 else (_W - 2 * _PAD) / 2)

        def y(v: float) -> float:
            return _H - _PAD - (v - low) / span * (_H - 2 * _PAD)

        for i, marked in enumerate(marks):
            if marked:
                parts.append(
                    f'<line x1="{x(i):.1f}" y1="0" x2="{x(i):.1f}" y2="{_H}"'
                    ' stroke="currentColor" stroke-opacity="0.5" stroke-dasharray="3 2"/>'
                )
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values) if v is not None)
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="currentColor" stroke-width="1.5"/>'
        )
        for i, v in enumerate(values):
            if v is not None:
                parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2" fill="currentColor"/>')
    parts.append("</svg>")
    return "\n".join(parts)


class StepHistoryView:
    """A step's row counts, bytes, elapsed time and schema hash over recent executions."""

    def __init__(self, frame: Any, tenant_id: str, step_id: str) -> None:
        self.frame = frame
        self.tenant_id = tenant_id
        self.step_id = step_id

    @property
    def schema_changes(self) -> list[str]:
        """The executions whose schema differs from the execution before."""
        return [r["execution"] for r in self.frame.iter_rows(named=True) if r["schema_changed"]]

    def __repr__(self) -> str:
        return (
            f"StepHistoryView(tenant={self.tenant_id!r}, step={self.step_id!r},"
            f" executions={self.frame.height}, schema_changes={self.schema_changes!r})"
        )

    def _repr_html_(self) -> str:
        rows = list(self.frame.iter_rows(named=True))
        marks = [bool(r["schema_changed"]) for r in rows]
        charts = "".join(
            f"<div style='display:inline-block;margin-right:14px'>"
            f"<div class='muted'>{esc(title)}</div>"
            f"{sparkline([r[col] for r in rows], marks, f'{self.step_id}: {title}')}</div>"
            for col, title in (("rows", "rows"), ("bytes", "bytes"), ("elapsed_ms", "elapsed"))
        )
        body = "".join(
            "<tr>"
            f"<td><code>{esc(r['execution'])}</code></td>"
            f"<td>{fmt_ts(r['produced_at'])}</td>"
            f"<td>{badge(r['status'])}</td>"
            f"<td class='num'>{r['attempt']}</td>"
            f"<td class='num'>{fmt_rows(r['rows'])}</td>"
            f"<td class='num'>{fmt_bytes(r['bytes'])}</td>"
            f"<td class='num'>{fmt_ms(r['elapsed_ms'])}</td>"
            f"<td><code>{esc((r['schema_hash'] or '-')[:12])}</code>"
            f"{' ' + badge('schema changed', 'b-warn') if r['schema_changed'] else ''}</td>"
            "</tr>"
            for r in rows
        )
        changes = self.schema_changes
        note = (
            f"schema changed in {', '.join(f'<code>{esc(c)}</code>' for c in changes)}"
            if changes
            else "same schema in every execution"
        )
        return (
            f"{CSS}<div class='execctx'><div><b>{esc(self.step_id)}</b> over"
            f" {len(rows)} executions of <code>{esc(self.tenant_id)}</code>"
            f" <span class='muted'>({note}; dashed lines mark schema changes)</span></div>"
            f"<div>{charts}</div>"
            "<table><thead><tr><th>execution</th><th>produced</th><th>status</th>"
            "<th>attempt</th><th>rows</th><th>bytes</th><th>elapsed</th><th>schema</th>"
            f"</tr></thead><tbody>{body}</tbody></table></div>"
        )
