"""``StreamMonitor``: a tenant's consumer groups and dead letters, refreshed live.

Read-only by default: it reads with ``XINFO`` / ``XPENDING`` / ``XREVRANGE`` and never joins
a group. With ``actions=True`` each dead letter offers "replay" and each consumer "remove";
an action only asks (``confirm`` says what would happen) until it is confirmed, then runs
:func:`~execctx_nb.replay_dead_letter` / :func:`~execctx_nb.remove_consumer`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anywidget
import traitlets as t

from execctx_nb._events._groups import (
    StreamStatus,
    group_status,
    remove_consumer,
    replay_dead_letter,
)
from execctx_nb._store._sync import ExecutionContextStore
from execctx_nb.display._groups_view import status_html
from execctx_nb.display._html import esc
from execctx_nb.errors import InvalidArgumentError
from execctx_nb.widgets._live import error_text, release, take_over

__all__ = ["StreamMonitor"]

_HERE = Path(__file__).parent
_REPLAY = "<button data-op='replay' data-id='{id}'>replay…</button>"
_REMOVE = (
    "<button data-op='remove' data-group='{group}' data-consumer='{consumer}'>remove…</button>"
)


class StreamMonitor(anywidget.AnyWidget):  # type: ignore[misc,unused-ignore]
    """Consumer groups of ``t:{tenant}:events``: consumers with pending counts and idle
    times, lag, the oldest pending entry, dead letters with their reasons.

    Parameters
    ----------
    tenant
        Whose stream to watch.
    store, url
        The server: ``store``, else a store connected to ``url`` (default: ``$VALKEY_URL``,
        else the embedded server), closed with the widget.
    interval
        Seconds between refreshes while live (>= 0.1).
    actions
        Offer replay / remove buttons (default False: read-only).
    dead_letters
        How many of the newest dead letters to list.
    start
        Start refreshing at once (default); otherwise call :meth:`start`.
    """

    _esm = _HERE / "monitor.js"
    _css = _HERE / "monitor.css"

    tenant = t.Unicode("").tag(sync=True)
    html = t.Unicode("").tag(sync=True)
    status = t.Unicode("idle").tag(sync=True)
    error = t.Unicode("").tag(sync=True)
    confirm = t.Unicode("").tag(sync=True)
    result = t.Unicode("").tag(sync=True)
    actions = t.Bool(False).tag(sync=True)

    # A class default: Widget.__del__ calls close() even when __init__ raised early.
    _stop: threading.Event | None = None

    def __init__(
        self,
        tenant: str,
        *,
        store: ExecutionContextStore | None = None,
        url: str | None = None,
        interval: float = 1.0,
        actions: bool = False,
        dead_letters: int = 5,
        start: bool = True,
    ) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval < 0.1:
            raise InvalidArgumentError(
                f"Invalid interval {interval!r}: expected seconds >= 0.1 - at `StreamMonitor`"
            )
        super().__init__(tenant=tenant, actions=actions)
        self._owned = store is None
        if store is None:
            from execctx_nb._store._session import connect

            store = connect(url)
        self._store = store
        self._interval = float(interval)
        self._dead_letters = dead_letters
        self._pending: tuple[str, ...] | None = None
        self._lock = threading.Lock()
        self.last: StreamStatus | None = None
        self.on_msg(self._on_view_message)
        self.refresh()
        if start:
            self.start()

    # -- reading ------------------------------------------------------------------------
    def refresh(self) -> StreamStatus | None:
        """Read the groups now and redraw; returns what was read (None on an error)."""
        try:
            status = group_status(self.tenant, store=self._store, dead_letters=self._dead_letters)
        except Exception as exc:  # shown in the view; the next refresh tries again
            self.error = error_text(exc)
            return None
        with self.hold_sync():
            self.last = status
            self.error = ""
            self.html = status_html(
                status,
                consumer_action=_REMOVE if self.actions else "",
                dead_action=_REPLAY if self.actions else "",
            )
        return status

    def start(self) -> StreamMonitor:
        """Refresh every ``interval`` seconds on a background thread; returns self."""
        if self._stop is not None:
            return self
        # one refreshing monitor per server and tenant: a re-run cell's replaces the last
        take_over(("StreamMonitor", self._store.url, self.tenant), self)
        stop = self._stop = threading.Event()

        def run() -> None:
            while not stop.wait(self._interval):
                self.refresh()

        threading.Thread(target=run, name="execctx-monitor", daemon=True).start()
        self.status = "live"
        return self

    def stop(self) -> None:
        """Stop refreshing (idempotent); the view keeps its last state."""
        stop, self._stop = self._stop, None
        if stop is not None:
            stop.set()
            release(self)
            self.status = "stopped"

    def close(self) -> None:
        """Stop refreshing and close the widget (and the store it connected)."""
        self.stop()
        store: ExecutionContextStore | None = getattr(self, "_store", None)
        if store is not None and self._owned:
            store.close()  # only this widget's handle on the shared store
        super().close()

    # -- actions ------------------------------------------------------------------------
    def ask_replay(self, dead_letter_id: str) -> str:
        """Ask to replay a dead letter; it runs on :meth:`confirm_action`. Returns the question."""
        return self._ask(
            ("replay", dead_letter_id),
            f"Replay dead letter {dead_letter_id} into t:{self.tenant}:events? The consumer"
            " groups deliver it again.",
        )

    def ask_remove(self, group: str, consumer: str) -> str:
        """Ask to remove a consumer (its pending entries are handed over first)."""
        return self._ask(
            ("remove", group, consumer),
            f"Remove consumer {consumer} from group {group}? Its pending entries go to the"
            " group's most recently active other consumer first.",
        )

    def _ask(self, action: tuple[str, ...], question: str) -> str:
        if not self.actions:
            raise InvalidArgumentError(
                "This StreamMonitor is read-only - create it with actions=True to replay dead"
                " letters or remove consumers"
            )
        with self._lock:
            self._pending = action
            self.confirm = question
        return question

    def confirm_action(self) -> str:
        """Run the action asked for; returns what it did (also shown in the view)."""
        with self._lock:
            action, self._pending = self._pending, None
            self.confirm = ""
        if action is None:
            raise InvalidArgumentError("Nothing to confirm - ask for an action first")
        try:
            if action[0] == "replay":
                new_id = replay_dead_letter(self.tenant, action[1], store=self._store)
                done = f"replayed {action[1]} as {new_id}"
            else:
                moved = remove_consumer(self.tenant, action[1], action[2], store=self._store)
                done = f"removed {action[2]} from {action[1]} ({moved} pending entries handed over)"
        except Exception as exc:
            self.result = error_text(exc)
            raise
        self.result = done
        self.refresh()
        return done

    def cancel_action(self) -> None:
        """Forget the action asked for."""
        with self._lock:
            self._pending = None
            self.confirm = ""

    def _on_view_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        try:
            op = content.get("op")
            if op == "replay":
                self.ask_replay(str(content.get("id", "")))
            elif op == "remove":
                self.ask_remove(str(content.get("group", "")), str(content.get("consumer", "")))
            elif op == "confirm":
                self.confirm_action()
            elif op == "cancel":
                self.cancel_action()
        except Exception as exc:  # shown in the view, never raised into the comm thread
            self.result = error_text(exc)

    def __repr__(self) -> str:
        return f"StreamMonitor({self.tenant!r}, status={self.status!r}, actions={self.actions})"

    def _repr_html_(self) -> str:  # where widgets do not render: the last reading
        return self.html or f"<pre>{esc(repr(self))}</pre>"
