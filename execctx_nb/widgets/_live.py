"""The lifecycle every live widget shares: one runner per stream, stopped on close and replace.

A live widget follows a tenant's event stream on background threads (:class:`TailRunner`).
Re-running a cell builds a new widget for the same stream: the earlier one is stopped (it
keeps its last state and says ``stopped``), so five constructions leave one runner, not
five. ``close()`` stops the threads too. Failures reach the synced ``error`` trait as the
library's own messages; nothing is printed from a thread.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from typing import Any

import anywidget
import traitlets as t

from execctx_nb._events._tail import TailEntry
from execctx_nb.errors import ExecctxError
from execctx_nb.widgets._runner import Batch, QuietLog, TailRunner

__all__ = ["LiveWidget", "error_text", "release", "take_over"]

# The one running widget per key in this kernel (what a re-run cell replaces).
_LIVE: dict[tuple[str, ...], weakref.ref[Any]] = {}
_LIVE_LOCK = threading.Lock()


def take_over(key: tuple[str, ...], widget: Any) -> None:
    """Make ``widget`` the running widget for ``key``, stopping the one it replaces."""
    with _LIVE_LOCK:
        previous = _LIVE.get(key)
        _LIVE[key] = weakref.ref(widget)
    old = previous() if previous is not None else None
    if old is not None and old is not widget:
        old.stop()


def release(widget: Any) -> None:
    """Forget ``widget`` (it stopped), and widgets that are gone."""
    with _LIVE_LOCK:
        for key, ref in list(_LIVE.items()):
            if ref() is widget or ref() is None:
                del _LIVE[key]


def error_text(exc: BaseException) -> str:
    """What a widget shows for an error: the library's message, or the unexpected one named."""
    if isinstance(exc, ExecctxError):
        return f"{type(exc).__name__}: {exc}"
    return f"Unexpected {type(exc).__name__}: {exc} - please report this as a bug"


class LiveWidget(anywidget.AnyWidget):  # type: ignore[misc,unused-ignore]
    """Base of the widgets that follow an event stream (``EventTail``, ``LineageGraph``)."""

    # A class default: Widget.__del__ calls close() even when __init__ raised early.
    _runner: TailRunner | None = None

    status = t.Unicode("idle").tag(sync=True)
    error = t.Unicode("").tag(sync=True)
    notice = t.Unicode("").tag(sync=True)

    def _stream_key(self) -> tuple[str, ...]:
        """What this widget follows; a newer widget with the same key replaces it."""
        raise NotImplementedError

    def _on_batch(self, batch: Batch) -> None:
        raise NotImplementedError

    # -- lifecycle ----------------------------------------------------------------------
    def _follow(self, entries: Iterator[TailEntry], stop: threading.Event, name: str) -> None:
        """Run ``entries`` (a :func:`tail` started with ``stop``) on background threads."""
        take_over((type(self).__name__, *self._stream_key()), self)
        self.error = ""
        self._runner = TailRunner(
            lambda _stop: entries, self._on_batch, self._on_error, name=name, stop_flag=stop
        ).start()
        self.status = "live"

    def _quiet_log(self) -> QuietLog:
        return QuietLog(self._on_notice)

    @property
    def running(self) -> bool:
        """True while the background reader runs."""
        return self._runner is not None and self._runner.running

    def stop(self) -> None:
        """Stop the background threads (idempotent); the view keeps its last state."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.stop()
        release(self)
        if self.status in ("live", "paused"):
            self.status = "stopped"

    def close(self) -> None:
        """Stop the background threads and close the widget."""
        self.stop()
        super().close()

    @classmethod
    def stop_all(cls) -> int:
        """Stop every running widget of this class in this kernel; returns how many ran."""
        with _LIVE_LOCK:
            widgets = [ref() for ref in _LIVE.values()]
        stopped = 0
        for widget in widgets:
            if isinstance(widget, cls) and widget._runner is not None:
                widget.stop()
                stopped += 1
        return stopped

    # -- callbacks (flusher thread) -----------------------------------------------------
    def _on_notice(self, message: str) -> None:
        self.notice = message

    def _on_error(self, exc: BaseException) -> None:
        self.error = error_text(exc)
        self.status = "error"
