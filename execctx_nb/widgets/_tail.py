"""``EventTail``: a live, filterable view of a tenant's execution events."""

from __future__ import annotations

import html
import threading
import time
import weakref
from collections import deque
from pathlib import Path
from typing import Any, ClassVar

import anywidget
import traitlets as t

from execctx_nb import keys
from execctx_nb._events._records import EVENT_KINDS, Event
from execctx_nb._idempotency import event_idempotency_key
from execctx_nb.widgets._runner import Batch, QuietLog, TailRunner, stream_tip

__all__ = ["EventTail", "event_row"]

_HERE = Path(__file__).parent
BLOCK_MS = 500


def _summary(event: Event) -> str:
    kind = event.kind
    if kind == "step.committed":
        bits = []
        rows = getattr(event, "row_count", None)
        ms = getattr(event, "elapsed_ms", None)
        if rows is not None:
            bits.append(f"{rows:,} row" + ("" if rows == 1 else "s"))
        if ms is not None:
            bits.append(f"{ms:.0f} ms")
        return "committed" + (f" ({', '.join(bits)})" if bits else "")
    if kind == "step.failed":
        again = " - will retry" if getattr(event, "retryable", False) else ""
        return f"failed: {getattr(event, 'error', '')}{again}"
    if kind == "execution.status":
        return f"execution {getattr(event, 'status', '')}"
    return f"[{getattr(event, 'level', 'info')}] {getattr(event, 'message', '')}"


def event_row(stream_id: str, event: Event) -> dict[str, Any]:
    """The JSON-able row the front-end shows for one event."""
    return {
        "id": stream_id,
        "kind": event.kind,
        "executionId": event.execution_id,
        "stepId": getattr(event, "step_id", None) or "",
        "attempt": event.attempt,
        "ts": event.ts.isoformat().replace("+00:00", "Z"),
        "summary": _summary(event),
    }


class EventTail(anywidget.AnyWidget):  # type: ignore[misc,unused-ignore]
    """Live tail of a tenant's execution events (``XREAD``; never a consumer group).

    Parameters
    ----------
    tenant
        Whose stream (``t:{tenant}:events``) to follow.
    url, store
        The server: ``url``, else ``store.url``, else ``$VALKEY_URL`` or the embedded server.
    kinds
        Show only these event kinds (default: all); changeable live, from Python or the UI.
    execution_id
        Show only this execution's events (default: all).
    max_events
        Size of the bounded buffer; older events are dropped (counted in ``dropped``).
    from_id
        ``"$"`` (default) shows events published from now on; ``"0"`` replays the stream.
    start
        Start tailing at once (default); otherwise call :meth:`start`.

    Starting a tail stops any earlier tail of the same stream in this kernel, and closing the
    widget stops its threads. ``paused`` freezes the view; events keep being buffered.

    Examples
    --------
    >>> tail = EventTail("acme", kinds=["step.failed"])  # doctest: +SKIP
    >>> tail.paused = True                                # doctest: +SKIP
    """

    # A class default: Widget.__del__ calls close() even when __init__ raised early.
    _runner: TailRunner | None = None

    _esm = _HERE / "tail.js"
    _css = _HERE / "tail.css"

    tenant = t.Unicode().tag(sync=True)
    kinds = t.List(t.Unicode(), default_value=[]).tag(sync=True)
    execution_id = t.Unicode("").tag(sync=True)
    paused = t.Bool(False).tag(sync=True)
    status = t.Unicode("idle").tag(sync=True)
    error = t.Unicode("").tag(sync=True)
    notice = t.Unicode("").tag(sync=True)
    events = t.List(t.Dict(), default_value=[]).tag(sync=True)
    max_events = t.Int(200).tag(sync=True)
    received = t.Int(0).tag(sync=True)
    dropped = t.Int(0).tag(sync=True)
    pending = t.Int(0).tag(sync=True)
    all_kinds = t.List(t.Unicode(), default_value=list(EVENT_KINDS)).tag(sync=True)

    _live: ClassVar[dict[tuple[str, str], weakref.ref[EventTail]]] = {}
    _live_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        tenant: str,
        *,
        url: str | None = None,
        store: Any = None,
        kinds: list[str] | tuple[str, ...] | None = None,
        execution_id: str | None = None,
        max_events: int = 200,
        from_id: str = "$",
        start: bool = True,
    ) -> None:
        keys.validate_tenant(tenant, where="EventTail(tenant)")
        bad = sorted(set(kinds or ()) - set(EVENT_KINDS))
        if bad:
            raise ValueError(
                f"Unknown event kind(s) {bad}: expected some of {list(EVENT_KINDS)}"
                " - at `EventTail(kinds)`"
            )
        if max_events < 1:
            raise ValueError(
                f"max_events must be >= 1, got {max_events} - at `EventTail(max_events)`"
            )
        super().__init__(
            tenant=tenant,
            kinds=list(kinds or ()),
            execution_id=execution_id or "",
            max_events=max_events,
        )
        self._url_arg = url or (getattr(store, "url", None) if store is not None else None)
        self._from_id = from_id
        self._buffer: deque[dict[str, Any]] = deque(maxlen=max_events)
        self._lock = threading.RLock()
        self._seen: deque[str] = deque(maxlen=4 * max_events)
        self._seen_set: set[str] = set()
        self.last_update: float = 0.0
        """``time.perf_counter()`` of the latest model update (the tail benchmark reads it)."""
        self.observe(self._refilter, names=["kinds", "execution_id", "paused"])
        if start:
            self.start()

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> EventTail:
        """Start tailing (stopping an earlier tail of the same stream); returns self."""
        from execctx_nb import tail
        from execctx_nb._connection import make_client, resolve_url

        if self._runner is not None and self._runner.running:
            return self
        url = resolve_url(self._url_arg)
        stream = (url, self.tenant)
        with EventTail._live_lock:
            previous = EventTail._live.get(stream)
            EventTail._live[stream] = weakref.ref(self)
        old = previous() if previous is not None else None
        if old is not None and old is not self:
            old.stop()
        from_id = self._from_id
        if from_id == "$":
            with make_client(url) as client:
                from_id = stream_tip(client, self.tenant)
        tenant, log = self.tenant, QuietLog(self._on_notice)

        def source(stop: threading.Event) -> Any:
            return tail(tenant, url=url, from_id=from_id, block_ms=BLOCK_MS, stop=stop, logger=log)

        self.error = ""
        self._runner = TailRunner(source, self._on_batch, self._on_error).start()
        self.status = "paused" if self.paused else "live"
        return self

    def stop(self) -> None:
        """Stop the background threads (idempotent); the view keeps its last events."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.stop()
        if self.status != "error":
            self.status = "stopped"

    def close(self) -> None:
        """Stop tailing and close the widget."""
        self.stop()
        super().close()

    @classmethod
    def stop_all(cls) -> int:
        """Stop every live tail of this kernel; returns how many were running."""
        with cls._live_lock:
            tails = [ref() for ref in cls._live.values()]
            cls._live.clear()
        stopped = 0
        for tail in tails:
            if tail is not None and tail._runner is not None:
                tail.stop()
                stopped += 1
        return stopped

    def wait(self, received: int, timeout: float = 10.0) -> bool:
        """Block until at least ``received`` events arrived (scripts, tests, tutorials).

        Returns False if ``timeout`` seconds passed first.
        """
        end = time.monotonic() + timeout
        while self.received < received:
            if time.monotonic() >= end:
                return False
            time.sleep(0.01)
        return True

    @property
    def running(self) -> bool:
        """True while the background reader runs."""
        return self._runner is not None and self._runner.running

    # -- updates (flusher thread) -------------------------------------------------------
    def _wanted(self, row: dict[str, Any]) -> bool:
        if self.kinds and row["kind"] not in self.kinds:
            return False
        return not (self.execution_id and row["executionId"] != self.execution_id)

    def _on_batch(self, batch: Batch) -> None:
        rows = [event_row(sid, ev) for sid, ev in batch if self._first_time(ev)]
        # One comm message for all trait changes of this batch.
        with self._lock, self.hold_sync():
            overflow = max(0, len(self._buffer) + len(rows) - self.max_events)
            self._buffer.extend(rows)
            if self.paused:
                self.pending += sum(1 for r in rows if self._wanted(r))
            else:
                self._publish()
            # Counters last: wait() watches `received`, so `events` is complete when it moves.
            self.dropped += overflow
            self.received += len(rows)

    def _first_time(self, event: Event) -> bool:
        # A publisher that retried may have appended an event twice (same idempotency key):
        # show it once. The memory of keys is bounded like the buffer.
        key = event_idempotency_key(event)
        if key in self._seen_set:
            return False
        if len(self._seen) == self._seen.maxlen:
            self._seen_set.discard(self._seen[0])
        self._seen.append(key)
        self._seen_set.add(key)
        return True

    def _on_notice(self, message: str) -> None:
        self.notice = message

    def _publish(self) -> None:
        with self.hold_sync():
            self.events = [r for r in self._buffer if self._wanted(r)]
            self.pending = 0
        self.last_update = time.perf_counter()

    def _refilter(self, change: dict[str, Any]) -> None:
        with self._lock:
            if change["name"] == "paused" and self.status in ("live", "paused"):
                self.status = "paused" if self.paused else "live"
            if not self.paused:
                self._publish()

    def _on_error(self, exc: BaseException) -> None:
        self.error = f"{type(exc).__name__}: {exc}"
        self.status = "error"

    # -- display ------------------------------------------------------------------------
    def __repr__(self) -> str:
        kinds = ",".join(self.kinds) or "all"
        execution = self.execution_id or "all"
        return (
            f"EventTail(tenant={self.tenant!r}, kinds={kinds}, execution={execution},"
            f" max_events={self.max_events})"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, meta = bundle
        # Where widgets do not render (exported HTML, nbval) say what this output is.
        data["text/html"] = (
            "<div class='execctx-tail-static'>Live event tail of tenant "
            f"<code>{html.escape(self.tenant)}</code>: open the notebook in Jupyter to see it.</div>"
        )
        return data, meta
