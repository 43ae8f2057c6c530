"""Live notebook widgets (anywidget; JavaScript and CSS ship in the package, no CDN).

- :class:`EventTail`: follow a tenant's execution events, filter, pause and resume.
- :class:`LineageGraph`: an execution's step DAG, live on step events, click a node to see
  its envelope; renders as a static SVG where widgets do not.

Importing this module imports anywidget; ``import execctx_nb`` does not.
"""

from __future__ import annotations

from execctx_nb.widgets._lineage import LineageGraph
from execctx_nb.widgets._tail import EventTail

__all__ = ["EventTail", "LineageGraph"]
