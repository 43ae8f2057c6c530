"""``LineageView``: the static lineage picture (no widget library needed)."""

from __future__ import annotations

import html
from collections.abc import Iterable

from execctx_nb._records import StepEnvelope
from execctx_nb.display._html import CSS
from execctx_nb.display._layout import graph_from_envelopes, layout, render_svg

__all__ = ["LineageView", "lineage_svg"]


class LineageView:
    """An execution's step DAG as a static SVG (``%execctx lineage --static``, exports)."""

    def __init__(
        self,
        envelopes: Iterable[StepEnvelope],
        execution_id: str | None = None,
        tenant_id: str | None = None,
        direction: str = "LR",
    ) -> None:
        envs = list(envelopes)
        self.execution_id = execution_id or (envs[0].execution_id if envs else "")
        self.tenant_id = tenant_id
        self.graph = graph_from_envelopes(envs, self.execution_id or None)
        self.svg = render_svg(self.graph, layout(self.graph, direction))

    def _repr_html_(self) -> str:
        name = "/".join(x for x in (self.tenant_id, self.execution_id) if x)
        title = html.escape(name)
        return f"{CSS}<div class='execctx'><div><b>lineage of {title}</b></div>{self.svg}</div>"

    def __repr__(self) -> str:
        return (
            f"LineageView(tenant={self.tenant_id!r}, execution={self.execution_id!r},"
            f" steps={len(self.graph.nodes)}, edges={len(self.graph.edges)})"
        )


def lineage_svg(
    envelopes: Iterable[StepEnvelope], execution_id: str | None = None, direction: str = "LR"
) -> str:
    """The lineage SVG of ``envelopes`` as one string (no widget library needed); layers
    left to right, or top to bottom with ``direction="TB"``."""
    return LineageView(envelopes, execution_id, direction=direction).svg
