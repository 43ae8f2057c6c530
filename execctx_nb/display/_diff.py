"""Display of a schema diff (:class:`execctx_nb.inference.SchemaDiff`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from execctx_nb.display._html import CSS, badge, esc
from execctx_nb.display._schema import SchemaView

__all__ = ["SchemaDiffView"]

# The first character of each line of ``SchemaDiff.changes`` says what kind of change it is.
_KINDS = {
    "+": ("added", "add"),
    "-": ("removed", "rem"),
    "~": ("changed", "chg"),
    "?": ("loosened", "chg"),
}


class SchemaDiffView:
    """A schema diff as a table of changes, with the two schemas one click away.

    Parameters
    ----------
    diff
        The :class:`~execctx_nb.inference.SchemaDiff` to show.
    old_label, new_label
        What the two sides are (e.g. two execution ids).
    old_schema, new_schema
        Shown as collapsed trees under the table when given.
    """

    def __init__(
        self,
        diff: Any,
        *,
        old_label: str = "old",
        new_label: str = "new",
        title: str = "schema",
        old_schema: Mapping[str, Any] | None = None,
        new_schema: Mapping[str, Any] | None = None,
    ) -> None:
        self.diff = diff
        self.old_label = old_label
        self.new_label = new_label
        self.title = title
        self.old_schema = old_schema
        self.new_schema = new_schema

    def __getattr__(self, name: str) -> Any:
        # The view reads like the diff: view.added, view.breaking, ...
        if name == "diff":
            raise AttributeError(name)
        return getattr(self.diff, name)

    def __bool__(self) -> bool:
        return bool(self.diff)

    def _heading(self) -> str:
        n = len(self.diff.changes)
        if not n:
            verdict = "no change"
        else:
            verdict = f"{'breaking' if self.diff.breaking else 'compatible'}, {n} change{'s' if n != 1 else ''}"
        return f"{self.title}: {self.old_label} -> {self.new_label} ({verdict})"

    def _rows(self) -> list[tuple[str, str, str]]:
        rows = []
        for line in self.diff.changes:
            kind, _ = _KINDS.get(line[:1], ("changed", "chg"))
            rest = line[2:] if line[1:2] == " " else line
            path, _, detail = rest.partition(": ")
            rows.append((kind, path, detail))
        return rows

    def __str__(self) -> str:
        lines = [self._heading()]
        rows = self._rows()
        width = max((len(p) for _, p, _ in rows), default=0)
        breaking = set(getattr(self.diff, "breaking_changes", ()))
        lines.extend(
            f"  {k:<8} {p:<{width}}  {'breaking  ' if line in breaking else 'compatible'}  {d}"
            for line, (k, p, d) in zip(self.diff.changes, rows, strict=True)
        )
        return "\n".join(line.rstrip() for line in lines)

    def __repr__(self) -> str:
        return f"<SchemaDiffView {self._heading()}>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        diff = self.diff
        if not diff.changes:
            verdict = badge("no change", "b-success")
        elif diff.breaking:
            verdict = badge("breaking", "b-failed")
        else:
            verdict = badge("compatible", "b-success")
        breaking = set(getattr(diff, "breaking_changes", ()))
        body = "".join(
            f"<tr><td class='{_KINDS.get(line[:1], ('', 'chg'))[1]}'>{esc(k)}</td>"
            f"<td><code>{esc(p)}</code></td><td>{esc(d)}</td>"
            f"<td>{badge('breaking', 'b-failed') if line in breaking else badge('compatible', 'b-success')}</td></tr>"
            for line, (k, p, d) in zip(diff.changes, self._rows(), strict=True)
        )
        parts = [
            CSS,
            "<div class='execctx'>",
            f"<div><b>{esc(self.title)}</b>: <code>{esc(self.old_label)}</code> &rarr;"
            f" <code>{esc(self.new_label)}</code> {verdict}</div>",
        ]
        if body:
            parts.append(
                "<table><thead><tr><th>change</th><th>path</th><th>detail</th><th>impact</th></tr>"
                "</thead>"
                f"<tbody>{body}</tbody></table>"
            )
        for label, schema in ((self.old_label, self.old_schema), (self.new_label, self.new_schema)):
            if schema is not None:
                parts.append(SchemaView(schema, title=f"schema of {label}").html_body(2))
        parts.append("</div>")
        return "".join(parts)
