"""``ValidationReport``: what a validation found, worst paths first, as data and as a display."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["PathViolations", "ValidationReport"]


class PathViolations(msgspec.Struct, frozen=True):
    """One failing (JSON pointer, keyword): how many rows, which share, the first rows."""

    path: str
    keyword: str
    count: int
    share: float
    rows: tuple[int, ...] = ()
    values: tuple[Any, ...] = ()


class ValidationReport:
    """The result of :func:`execctx_nb.validate`.

    ``ok``, ``rows`` checked, ``violations`` (worst first), ``invalid_rows`` (row indices, a
    Polars Series), :meth:`split` (the checked frame's valid and invalid rows) and
    :meth:`to_polars`.
    """

    def __init__(self, rows: int, violations: tuple[PathViolations, ...], invalid_rows: Any):
        self.rows = rows
        self.violations = violations
        self.invalid_rows = invalid_rows

    @property
    def ok(self) -> bool:
        """True when every row satisfies the schema."""
        return not self.violations

    def __bool__(self) -> bool:
        return self.ok

    def split(self, frame: Any) -> tuple[Any, Any]:
        """``(valid, invalid)``: the rows of ``frame`` (the Polars DataFrame or LazyFrame
        that was checked) that satisfy the schema, and the others, in their order."""
        import polars as pl

        from execctx_nb.errors import InvalidArgumentError

        if not isinstance(frame, pl.DataFrame | pl.LazyFrame):
            raise InvalidArgumentError(
                f"Cannot split a {type(frame).__name__} - at `ValidationReport.split(frame)`;"
                " pass the Polars DataFrame or LazyFrame that was validated"
                " (pl.from_arrow / pl.from_pandas convert others)"
            )
        bad = pl.int_range(pl.len(), dtype=pl.UInt32).is_in(self.invalid_rows.implode())
        return frame.filter(~bad), frame.filter(bad)

    def to_polars(self) -> Any:
        """One row per failing path and keyword."""
        import polars as pl

        return pl.DataFrame(
            {
                "path": [v.path for v in self.violations],
                "keyword": [v.keyword for v in self.violations],
                "violations": [v.count for v in self.violations],
                "share": [v.share for v in self.violations],
                "first_rows": [list(v.rows) for v in self.violations],
            },
            schema={
                "path": pl.String,
                "keyword": pl.String,
                "violations": pl.Int64,
                "share": pl.Float64,
                "first_rows": pl.List(pl.Int64),
            },
        )

    def summary_lines(self) -> list[str]:
        """One line per failing path (what ``execctx validate`` prints)."""
        return [
            f"{v.path}: {v.keyword} - {v.count:,} of {self.rows:,} rows ({v.share:.2%});"
            f" first rows {list(v.rows)}"
            for v in self.violations
        ]

    def __repr__(self) -> str:
        if self.ok:
            return f"ValidationReport(ok, {self.rows:,} rows)"
        bad = len(self.invalid_rows)
        head = (
            f"ValidationReport({bad:,} of {self.rows:,} rows invalid, {len(self.violations)} paths)"
        )
        return "\n".join([head, *(f"  {line}" for line in self.summary_lines())])

    def _repr_html_(self) -> str:
        from execctx_nb.display._html import CSS, badge, esc

        if self.ok:
            verdict = badge("valid", "b-success")
        else:
            verdict = badge(f"{len(self.invalid_rows):,} invalid rows", "b-failed")
        body = "".join(
            "<tr>"
            f"<td><code>{esc(v.path)}</code></td><td>{esc(v.keyword)}</td>"
            f"<td class='num'>{v.count:,}</td>"
            f"<td><span style='display:inline-block;height:8px;width:{max(1, round(v.share * 120))}px;"
            f"background:var(--ex-bad)'></span> {v.share:.2%}</td>"
            f"<td><code>{esc(', '.join(map(str, v.rows)))}</code></td>"
            f"<td><code>{esc(', '.join(_short(x) for x in v.values))}</code></td>"
            "</tr>"
            for v in self.violations
        )
        table = (
            "<table><thead><tr><th>path</th><th>keyword</th><th>rows</th><th>share</th>"
            f"<th>first rows</th><th>values</th></tr></thead><tbody>{body}</tbody></table>"
            if body
            else ""
        )
        return (
            f"{CSS}<div class='execctx'><div><b>validation</b> of {self.rows:,} rows {verdict}"
            f"</div>{table}</div>"
        )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"
