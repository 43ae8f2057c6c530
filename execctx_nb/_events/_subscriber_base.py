"""State and log lines shared by the sync and async subscribers (no I/O here)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import msgspec

from execctx_nb._events._core import (
    Backoff,
    EventMeta,
    SubscriberConfig,
    SubscriberHealth,
    SubscriberState,
    SubscriberStats,
    default_consumer_name,
    new_token,
)

__all__ = ["SubscriberBase"]


class SubscriberBase:
    """State and log lines shared by the sync and async subscribers (no I/O here)."""

    def __init__(
        self, *, group: str, consumer: str | None, logger: Any, handle_signals: bool, **tuning: Any
    ) -> None:
        from execctx_nb._log import get_logger

        self.cfg = SubscriberConfig(
            group=group, consumer=consumer or default_consumer_name(), **tuning
        )
        self._log = get_logger(logger)
        self._handle_signals = handle_signals
        self._token = new_token(self.cfg.consumer)
        self._groups: set[str] = set()
        self._unrecorded: list[tuple[list[str], list[Any]]] = []
        self._last_errors: dict[str, str] = {}
        self._backoff = Backoff()
        self._down_since: float | None = None
        self.stats = SubscriberStats()
        self._health = SubscriberHealth(state="starting")
        self._running = False

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        # The loop's state (unrecorded commits, backoff, stats) belongs to one loop at a time.
        if self._running:
            raise RuntimeError(
                f"run_loop is already running on {self!r}; create one subscriber per"
                " concurrent loop (each with its own consumer name)"
            )
        self._running = True
        try:
            yield
        finally:
            self._running = False

    @property
    def health(self) -> SubscriberHealth:
        """``starting`` | ``ok`` | ``unavailable`` | ``stopped``, plus the lost-state flag."""
        return self._health

    @property
    def group(self) -> str:
        """The consumer group name."""
        return self.cfg.group

    @property
    def consumer(self) -> str:
        """This consumer's name in the group."""
        return self.cfg.consumer

    def _set_health(self, state: SubscriberState, **changes: Any) -> None:
        self._health = msgspec.structs.replace(self._health, state=state, **changes)

    def _mark_lost(self, stream: str) -> None:
        if stream not in self._groups:
            return
        self._groups.discard(stream)
        self.stats.groups_recreated += 1
        self._set_health(self._health.state, lost_state=True, last_error="consumer group lost")
        self._log.warning(
            "Consumer group `%s` on `%s` is gone (the server restarted without persistence, or"
            " the stream was deleted): recreating it from id %s. Pending entries and done marks"
            " may be lost, so events may be missing or handled again; turn on appendonly on the"
            " server",
            self.cfg.group,
            stream,
            self.cfg.start_id,
        )

    def _created(self, stream: str) -> None:
        self._log.info(
            "Created consumer group `%s` on `%s` from id %s",
            self.cfg.group,
            stream,
            self.cfg.start_id,
        )

    def _up(self) -> None:
        if self._down_since is not None:
            self._log.info(
                "Event subscriber `%s/%s`: server back after %d failure(s) in %.1f s; resuming",
                self.cfg.group,
                self.cfg.consumer,
                self._backoff.failures,
                time.monotonic() - self._down_since,
            )
            self._down_since = None
        if self._health.state != "ok":
            self._set_health("ok", failures=0)
        self._backoff.reset()

    def _down(self, exc: BaseException, stream: str) -> float:
        delay = self._backoff.next()
        if self._down_since is None:
            self._down_since = time.monotonic()
        self._set_health(
            "unavailable",
            last_error=f"{type(exc).__name__}: {exc}",
            failures=self._backoff.failures,
        )
        self._log.warning(
            "Event subscriber `%s/%s`: server unavailable (%s: %s) - at `%s`;"
            " retrying in %.2f s (failure %d)",
            self.cfg.group,
            self.cfg.consumer,
            type(exc).__name__,
            exc,
            stream,
            delay,
            self._backoff.failures,
        )
        return delay

    def _handler_raised(self, stream: str, meta: EventMeta, exc: BaseException) -> None:
        self._log.warning(
            "Event handler raised on %s entry %s (kind %s, delivery %d of at most %d): %s: %s -"
            " the entry stays pending and is retried after %d ms",
            stream,
            meta.stream_id,
            meta.kind,
            meta.delivery_count,
            self.cfg.max_deliveries,
            type(exc).__name__,
            exc,
            self.cfg.min_idle_ms,
            exc_info=True,
        )

    def _deleted(self, stream: str, deleted: list[str]) -> None:
        self._log.warning(
            "%d pending entries of group `%s` were deleted from `%s` before being"
            " handled (trimmed or XDEL): %s",
            len(deleted),
            self.cfg.group,
            stream,
            ", ".join(deleted[:10]),
        )

    def _moved(self, stream: str, dlq: str, stream_id: str, error: str) -> None:
        self.stats.dead_lettered += 1
        self._log.warning("Moved entry %s of `%s` to `%s`: %s", stream_id, stream, dlq, error)

    def _gave_up(self) -> None:
        if self._unrecorded:
            self._log.error(
                "Gave up recording %d finished batch(es) after %.1f s: their events"
                " will be handled again after lease_ms",
                len(self._unrecorded),
                self.cfg.shutdown_timeout_s,
            )
            self._unrecorded.clear()
        self._set_health("stopped")
