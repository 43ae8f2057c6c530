"""Displays of a step envelope and of an execution (its steps table)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from execctx_nb.display._html import (
    CSS,
    badge,
    clip,
    esc,
    fmt_bytes,
    fmt_count,
    fmt_ms,
    fmt_rows,
    fmt_ts,
    fmt_value,
    kv_table,
)
from execctx_nb.display._layout import graph_from_envelopes, layout, render_svg
from execctx_nb.display._schema import SchemaView

if TYPE_CHECKING:
    from execctx_nb._records import StepEnvelope

__all__ = ["ExecutionView", "envelope_html", "envelope_text", "preview_rows"]

PREVIEW_ROWS = 8


def preview_rows(
    env: StepEnvelope, limit: int = PREVIEW_ROWS
) -> tuple[list[str], list[dict[str, Any]], int]:
    """Columns, the first ``limit`` rows as dicts, and the total row count of the inline data."""
    data = env.data
    if data is None:
        return [], [], 0
    if not isinstance(data, list):
        module = type(data).__module__
        if module.startswith("pyarrow"):  # sliced before converting (a slice is a view)
            import polars as pl

            head = pl.from_arrow(data.slice(0, limit))
            assert isinstance(head, pl.DataFrame)
            return list(head.columns), head.to_dicts(), data.num_rows
        if module.startswith("polars"):
            return list(data.columns), data.head(limit).to_dicts(), data.height
        data = [data]
    # Sliced first: mapping every row of a 1M-row list cost 56 ms per display.
    rows = [r if isinstance(r, dict) else {"value": r} for r in data[:limit]]
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return list(columns), rows, len(data)


def _lineage_text(env: StepEnvelope) -> str:
    if not env.lineage:
        return "-"
    parts = []
    for entry in env.lineage:
        where = f"{entry.execution_id}/" if entry.execution_id else ""
        att = f"@{entry.attempt}" if entry.attempt is not None else ""
        parts.append(f"{where}{entry.step_id}{att}")
    return ", ".join(parts)


def _facts(env: StepEnvelope) -> list[tuple[str, str]]:
    md = env.metadata
    facts = [
        ("execution", env.execution_id),
        ("attempt", str(env.attempt)),
        ("rows", fmt_rows(md.row_count)),
        ("bytes", fmt_bytes(md.bytes)),
        ("elapsed", fmt_ms(md.elapsed_ms)),
        ("produced at", fmt_ts(md.produced_at)),
        ("lineage", _lineage_text(env)),
    ]
    if env.schema_hash:
        facts.append(("schema hash", f"{env.schema_hash[:12]} (v{env.schema_version})"))
    if env.data_ref is not None:
        facts.append(("data", f"cold tier {env.data_ref.uri}"))
    if env.error:
        facts.append(("error", env.error))
    return facts


def envelope_text(env: StepEnvelope) -> str:
    """A readable plain-text summary: header, facts, schema tree and a data preview."""
    lines = [f"StepEnvelope {env.step_id} [{env.status}]"]
    lines.extend(f"  {k:<12} {v}" for k, v in _facts(env))
    if env.schema:
        lines.append("")
        lines.append(str(SchemaView(env.schema, title="schema")))
    columns, rows, total = preview_rows(env)
    if columns:
        lines.append("")
        lines.append(f"data: first {len(rows)} of {fmt_count(total, 'row')}")
        widths = {
            c: min(24, max([len(c)] + [len(fmt_value(r.get(c), 24)) for r in rows]))
            for c in columns
        }
        lines.append("  " + "  ".join(c.ljust(widths[c]) for c in columns))
        for row in rows:
            cells = (fmt_value(row.get(c), 24).ljust(widths[c]) for c in columns)
            lines.append("  " + "  ".join(cells))
    return "\n".join(line.rstrip() for line in lines)


def _preview_html(env: StepEnvelope) -> str:
    from execctx_nb.display._preview import preview_table, typed_head

    typed = typed_head(env, PREVIEW_ROWS)
    if typed is not None and typed[0].width:
        return preview_table(*typed)
    columns, rows, total = preview_rows(env)  # not frame-shaped: plain values
    if not columns:
        return ""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td><code>{esc(fmt_value(r.get(c)))}</code></td>" for c in columns)
        + "</tr>"
        for r in rows
    )
    return (
        f"<details open><summary>data: first {len(rows)} of {fmt_count(total, 'row')}</summary>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></details>"
    )


def envelope_html(env: StepEnvelope) -> str:
    """The envelope as HTML: status badge, facts table, schema tree and a data preview."""
    facts = [(k, esc(v)) for k, v in _facts(env)]
    parts = [
        CSS,
        "<div class='execctx'>",
        f"<div><b>{esc(env.step_id)}</b> {badge(env.status)}"
        f" <span class='muted'>step envelope</span></div>",
        kv_table(facts),
    ]
    if env.schema:
        parts.append(
            SchemaView(env.schema, title="schema", schema_hash=env.schema_hash).html_body(2)
        )
    parts.append(_preview_html(env))
    parts.append("</div>")
    return "".join(parts)


class ExecutionView:
    """An execution's steps as a table (and its lineage graph), in lineage order.

    Parameters
    ----------
    envelopes
        The latest envelope of each step (``store.get_execution(scope)``).
    execution_id
        Shown in the heading; taken from the envelopes when omitted.
    tenant_id
        Shown in the heading when given.
    """

    def __init__(
        self,
        envelopes: Iterable[StepEnvelope],
        execution_id: str | None = None,
        tenant_id: str | None = None,
    ) -> None:
        envs = list(envelopes)
        graph = graph_from_envelopes(envs, execution_id)
        lay = layout(graph)
        order = {p.node_id: (p.layer, p.rank) for p in lay.positions}
        self.envelopes: Sequence[StepEnvelope] = sorted(
            envs, key=lambda e: (*order.get(e.step_id, (0, 0)), e.step_id)
        )
        self.execution_id = execution_id or (envs[0].execution_id if envs else "")
        self.tenant_id = tenant_id
        self.graph = graph
        self.layout = lay

    def __len__(self) -> int:
        return len(self.envelopes)

    def __getitem__(self, step_id: str) -> StepEnvelope:
        for env in self.envelopes:
            if env.step_id == step_id:
                return env
        raise KeyError(f"no step {step_id!r} in execution {self.execution_id!r}")

    def _heading(self) -> str:
        failed = sum(e.status == "failed" for e in self.envelopes)
        who = f"{self.tenant_id}/" if self.tenant_id else ""
        tail = f", {failed} failed" if failed else ""
        return f"execution {who}{self.execution_id}: {len(self.envelopes)} steps{tail}"

    def _rows(self) -> list[list[str]]:
        return [
            [
                e.step_id,
                e.status,
                str(e.attempt),
                fmt_rows(e.metadata.row_count),
                fmt_bytes(e.metadata.bytes),
                fmt_ms(e.metadata.elapsed_ms),
                fmt_ts(e.metadata.produced_at),
                (e.schema_hash or "-")[:12],
            ]
            for e in self.envelopes
        ]

    _HEAD = ("step", "status", "attempt", "rows", "bytes", "elapsed", "produced at", "schema")

    def __str__(self) -> str:
        rows = [list(self._HEAD), *self._rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self._HEAD))]
        lines = [self._heading()]
        for r in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<ExecutionView {self._heading()}>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        numeric = {2, 3, 4, 5}
        head = "".join(f"<th>{esc(h)}</th>" for h in self._HEAD)
        body = []
        for row in self._rows():
            cells = []
            for i, cell in enumerate(row):
                if i == 1:
                    cells.append(f"<td>{badge(cell)}</td>")
                elif i in {0, 7}:
                    cells.append(f"<td><code>{esc(clip(cell, 40))}</code></td>")
                else:
                    cls = " class='num'" if i in numeric else ""
                    cells.append(f"<td{cls}>{esc(cell)}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        return (
            f"{CSS}<div class='execctx'><div><b>{esc(self._heading())}</b></div>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f"<details><summary>lineage</summary>{render_svg(self.graph, self.layout)}</details></div>"
        )
