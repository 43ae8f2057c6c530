"""A tail of a tenant's event stream on background threads, delivering batches to a callback.

Two threads: the reader iterates :func:`execctx_nb.tail` (XREAD, never a consumer group, so it
steals nothing from the engine's consumers) and queues events; the flusher waits for the
first queued event, lets a short window collect more, then hands the whole batch to the
callback at once. One widget update per window keeps the front-end and the comm channel
calm at thousands of events per second.

Nothing here prints: output from a background thread lands in whatever cell runs then.
Failures go to ``on_error`` (widgets show them in a synced traitlet).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from execctx_nb._events._tail import TailEntry

__all__ = ["QuietLog", "TailRunner", "TailSource"]

Batch = list[TailEntry]
TailSource = Callable[[threading.Event], Iterable[TailEntry]]
"""Called on the reader thread with the stop flag; yields :class:`TailEntry` items."""

_STOP = object()


class QuietLog:
    """A logger for background threads: never prints, hands warnings to ``sink``.

    The package logger would reach stderr through logging's last-resort handler, and
    output from a thread lands in whichever cell happens to run.
    """

    def __init__(self, sink: Callable[[str], None]) -> None:
        self._sink = sink

    def _emit(self, msg: str, *args: Any) -> None:
        try:
            self._sink(msg % args if args else msg)
        except Exception:  # pragma: no cover - a broken sink must not break the tail
            return

    def debug(self, msg: str, /, *args: Any, **kwargs: Any) -> None:
        return None

    def info(self, msg: str, /, *args: Any, **kwargs: Any) -> None:
        self._emit(msg, *args)

    def warning(self, msg: str, /, *args: Any, **kwargs: Any) -> None:
        self._emit(msg, *args)

    def error(self, msg: str, /, *args: Any, **kwargs: Any) -> None:
        self._emit(msg, *args)


class TailRunner:
    """Run ``source`` on a reader thread and deliver batches to ``on_batch``.

    Parameters
    ----------
    source
        Yields ``(stream_id, event)``; must return soon after the stop flag is set.
    on_batch
        Called on the flusher thread with every event read during one window.
    on_error
        Called on the flusher thread with the exception that ended the reader.
    window
        Seconds to collect events after the first of a batch (latency vs update rate).
    max_batch
        Upper bound of one batch (the queue is drained in slices of this size).
    stop_flag
        The flag that ends the reader (default: a new one); pass the one a :func:`tail` was
        started with, so stopping the runner ends the tail too.
    """

    def __init__(
        self,
        source: TailSource,
        on_batch: Callable[[Batch], None],
        on_error: Callable[[BaseException], None],
        *,
        window: float = 0.025,
        max_batch: int = 5000,
        name: str = "execctx-tail",
        stop_flag: threading.Event | None = None,
    ) -> None:
        self._source = source
        self._on_batch = on_batch
        self._on_error = on_error
        self._window = window
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.stop_flag = stop_flag if stop_flag is not None else threading.Event()
        self._reader = threading.Thread(target=self._read, name=f"{name}-reader", daemon=True)
        self._flusher = threading.Thread(target=self._flush, name=f"{name}-flusher", daemon=True)

    def start(self) -> TailRunner:
        """Start both threads; returns self."""
        self._reader.start()
        self._flusher.start()
        return self

    @property
    def running(self) -> bool:
        """True while the reader thread is alive."""
        return self._reader.is_alive()

    def stop(self, timeout: float = 3.0) -> None:
        """Ask both threads to end and wait up to ``timeout`` seconds for them."""
        self.stop_flag.set()
        self._queue.put(_STOP)
        deadline = time.monotonic() + timeout
        for thread in (self._reader, self._flusher):
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    def _read(self) -> None:
        try:
            items: Iterator[TailEntry] = iter(self._source(self.stop_flag))
            for item in items:
                if self.stop_flag.is_set():
                    break
                self._queue.put(item)
        except BaseException as exc:  # the thread must end quietly, the flusher reports it
            if not self.stop_flag.is_set():
                self._queue.put(exc)
        self._queue.put(_STOP)

    def _flush(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            if isinstance(first, BaseException):
                self._safe(self._on_error, first)
                continue
            batch: Batch = [first]
            # Let the window fill: one model update per window, not per event.
            time.sleep(self._window)
            ended = False
            error: BaseException | None = None
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    ended = True
                    break
                if isinstance(item, BaseException):
                    error = item
                    break
                batch.append(item)
            if not self.stop_flag.is_set():
                self._safe(self._on_batch, batch)
            if error is not None:
                self._safe(self._on_error, error)
            if ended:
                return

    def _safe(self, fn: Callable[[Any], None], arg: Any) -> None:
        try:
            fn(arg)
        except Exception as exc:  # a failing callback must not kill the thread or print
            if fn is not self._on_error:
                with contextlib.suppress(Exception):
                    self._on_error(exc)
