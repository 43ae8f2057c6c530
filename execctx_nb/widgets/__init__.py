"""Live notebook widgets (anywidget; JavaScript and CSS ship in the package, no CDN).

- :class:`EventTail`: follow a tenant's execution events, filter, pause and resume.
- :class:`LineageGraph`: an execution's step DAG, live on step events, click a node to see
  its envelope; renders as a static SVG where widgets do not.
- :class:`StreamMonitor`: a tenant's consumer groups and dead letters, refreshed live;
  read-only unless asked for actions (replay a dead letter, remove a consumer, confirmed).

Importing this module imports anywidget; ``import execctx_nb`` does not. Without the
notebook extra the import raises :class:`~execctx_nb.errors.MissingExtraError` saying what to
install; the static lineage SVG (:func:`execctx_nb.display.lineage_svg`) needs no widgets.
"""

from __future__ import annotations

import importlib.util

from execctx_nb.errors import MissingExtraError

_missing = [
    m for m in ("anywidget", "ipywidgets", "traitlets") if importlib.util.find_spec(m) is None
]
if _missing:
    raise MissingExtraError(
        f"execctx_nb.widgets needs {', '.join(_missing)}, which are not installed: expected the"
        " notebook extra - run pip install 'execctx-nb[notebook]' (the static lineage picture,"
        " execctx_nb.display.lineage_svg, works without it)"
    )

from execctx_nb.widgets._lineage import LineageGraph  # noqa: E402
from execctx_nb.widgets._monitor import StreamMonitor  # noqa: E402
from execctx_nb.widgets._tail import EventTail  # noqa: E402

__all__ = ["EventTail", "LineageGraph", "StreamMonitor"]
