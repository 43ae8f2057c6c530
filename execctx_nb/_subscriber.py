"""A consumer-group subscriber of a tenant's event stream: effectively-once per group.

The decisions (dedup, leases, dead letters) live in :mod:`execctx_nb._stream_core`; this
module does the sync I/O and runs the loop: read, reclaim, recover, back off, stop.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import valkey

from execctx_nb import keys
from execctx_nb._log import LoggerLike
from execctx_nb._publisher import TenantOrScope, resolve_tenant
from execctx_nb._stream_core import (
    CONNECTION_ERRORS,
    Batch,
    Delivery,
    EventMeta,
    SubscriberStats,
    is_nogroup,
    is_transient,
    parse_xautoclaim,
    refused,
    text,
    validate_count,
)
from execctx_nb._stream_scripts import ACQUIRE_LUA, COMMIT_LUA, DEAD_LETTER_LUA, READ_LUA
from execctx_nb._subscriber_base import SubscriberBase
from execctx_nb.events import Event

__all__ = ["ExecutionEventSubscriber", "Handler", "blocking_twin", "stop_on_signals"]

Handler = Callable[[Event, EventMeta], object]


def blocking_twin(client: valkey.Valkey, block_ms: int) -> valkey.Valkey:
    """A client on its own pool, like ``client`` but with a socket timeout above ``block_ms``."""
    from execctx_nb._connection import DEFAULT_TIMEOUT, BoundedRetry

    pool = client.connection_pool
    attempt = block_ms / 1000 + DEFAULT_TIMEOUT
    kwargs = dict(pool.connection_kwargs)
    kwargs.update(
        socket_timeout=attempt,
        health_check_interval=0,
        retry=BoundedRetry(timeout=attempt, attempt_timeout=attempt, retries=0),
    )
    twin_pool = type(pool)(connection_class=pool.connection_class, max_connections=4, **kwargs)
    return valkey.Valkey.from_pool(twin_pool)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, log: LoggerLike) -> Iterator[None]:
    """Set ``stop`` on SIGTERM/SIGINT while inside; only in the main thread (else a no-op).

    A second SIGINT while stopping raises KeyboardInterrupt, as Python does by default.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.info(
            "Event subscriber: got %s, stopping after the in-flight batch",
            signal.Signals(signum).name,
        )
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class ExecutionEventSubscriber(SubscriberBase):
    """Consume a tenant's execution events in a consumer group, each idempotency key once.

    Parameters
    ----------
    client
        Sync valkey-py client for commands (default: ``make_client(resolve_url(url))``).
        Blocking reads always use a separate pool whose socket timeout exceeds the BLOCK.
    group
        Consumer group name; created on demand (from ``start_id``) and recreated if lost.
    consumer
        This consumer's name in the group (default ``{hostname}-{pid}``).
    logger
        Any logger with debug/info/warning/error (default: the ``execctx_nb`` logger).
    min_idle_ms
        Pending entries idle this long are reclaimed (XAUTOCLAIM) from dead consumers and
        retried after a handler raised. Keep it above the time one batch takes.
    lease_ms
        Lifetime of the per-event lease taken before handlers run; must exceed the time one
        batch takes. An entry found leased by another consumer is left pending without using
        up a delivery; after a crash its events wait ``max(lease_ms, min_idle_ms)``.
    max_deliveries
        An entry delivered more often is moved to ``t:{tenantId}:events:dlq`` and acknowledged.
    dedup_ttl_s
        How long "done" marks live: a duplicate published later than this is handled again.
    claim_interval_s
        How often the pending list is scanned for idle entries.
    start_id
        Where a newly created group starts reading ("0": the whole stream, "$": new events).
    handle_signals
        Stop on SIGTERM/SIGINT during :meth:`run_loop` (only in the main thread).

    Examples
    --------
    >>> sub = ExecutionEventSubscriber(group="indexer")               # doctest: +SKIP
    >>> sub.run_loop("org_42", lambda event, meta: print(meta.kind))  # doctest: +SKIP
    """

    def __init__(
        self,
        client: valkey.Valkey | None = None,
        *,
        group: str,
        consumer: str | None = None,
        logger: LoggerLike | None = None,
        url: str | None = None,
        min_idle_ms: int = 30_000,
        lease_ms: int = 30_000,
        max_deliveries: int = 5,
        dedup_ttl_s: int = 7 * 24 * 3600,
        claim_interval_s: float = 5.0,
        shutdown_timeout_s: float = 5.0,
        start_id: str = "0",
        handle_signals: bool = True,
    ) -> None:
        super().__init__(
            group=group,
            consumer=consumer,
            logger=logger,
            handle_signals=handle_signals,
            min_idle_ms=min_idle_ms,
            lease_ms=lease_ms,
            max_deliveries=max_deliveries,
            dedup_ttl_s=dedup_ttl_s,
            claim_interval_s=claim_interval_s,
            shutdown_timeout_s=shutdown_timeout_s,
            start_id=start_id,
        )
        self._url = None
        if client is None:
            from execctx_nb._connection import make_client, resolve_url

            self._url = resolve_url(url)
            client = make_client(self._url)
        self._owned = self._url is not None
        self.client = client
        self._readers: dict[int, valkey.Valkey] = {}
        self._read = client.register_script(READ_LUA)
        self._acquire = client.register_script(ACQUIRE_LUA)
        self._commit = client.register_script(COMMIT_LUA)
        self._dead_letter = client.register_script(DEAD_LETTER_LUA)

    # -- the loop -------------------------------------------------------------------------------
    def run_loop(
        self,
        tenant_or_scope: TenantOrScope,
        handler: Handler,
        *,
        stop: threading.Event | None = None,
        block_ms: int = 1000,
        count: int = 100,
    ) -> SubscriberStats:
        """Call ``handler(event, meta)`` for each event until ``stop`` is set (or SIGTERM/SIGINT).

        Parameters
        ----------
        tenant_or_scope
            A tenant id, or an :class:`ExecutionScope`: then only that execution's events reach
            the handler and the group acknowledges the others (use a group per scope).
        handler
            Called once per idempotency key and group; an exception leaves the event pending
            for a retry after ``min_idle_ms`` (up to ``max_deliveries``).
        stop
            A threading.Event; the loop finishes the in-flight batch, acknowledges it and
            returns within about ``block_ms`` plus one batch once it is set.
        block_ms, count
            XREADGROUP ``BLOCK`` and ``COUNT`` (1 to 1000).

        Returns
        -------
        SubscriberStats
            The subscriber's counters.
        """
        validate_count(count, block_ms)
        with self._exclusive():
            return self._run_loop(tenant_or_scope, handler, stop, block_ms, count)

    def _run_loop(
        self,
        tenant_or_scope: TenantOrScope,
        handler: Handler,
        stop: threading.Event | None,
        block_ms: int,
        count: int,
    ) -> SubscriberStats:
        tenant, execution = resolve_tenant(tenant_or_scope)
        stream = keys.events_key(tenant)
        prefix = keys.dedup_prefix(tenant, self.cfg.group)
        stop = stop if stop is not None else threading.Event()
        reader = self._reader(block_ms)
        cursor, next_claim = "0-0", 0.0
        signals = (
            stop_on_signals(stop, self._log) if self._handle_signals else contextlib.nullcontext()
        )
        with signals:
            while not stop.is_set():
                try:
                    self._flush_unrecorded(keep=1)  # the last batch's commit rides on the read
                    self._ensure_group(stream)
                    if time.monotonic() >= next_claim:
                        self._flush_unrecorded()
                        cursor, claimed = self._claim(stream, cursor, count)
                        if cursor == "0-0":
                            next_claim = time.monotonic() + self.cfg.claim_interval_s
                        if claimed:
                            self._process(tenant, execution, handler, claimed=claimed)
                            self._up()
                            continue
                    # Under load: read and lease in one call; block only when nothing is there.
                    # The previous batch's done marks + acks go first in the same call.
                    carried = self._unrecorded[0][1] if self._unrecorded else []
                    try:
                        leased = self._read(
                            keys=[stream],
                            args=[
                                self.cfg.group,
                                self.cfg.consumer,
                                count,
                                self._token,
                                self.cfg.lease_ms,
                                prefix,
                                *carried,
                            ],
                        )
                    except KeyboardInterrupt:
                        if carried:  # interrupted: still record what the handlers finished
                            self._flush_unrecorded()
                        raise
                    if carried:
                        self._unrecorded.pop(0)
                    if leased:
                        self._process(tenant, execution, handler, leased=leased)
                        self._up()
                        continue
                    reply = reader.xreadgroup(
                        self.cfg.group,
                        self.cfg.consumer,
                        {stream: ">"},
                        count=count,
                        block=block_ms,
                    )
                    deliveries = [
                        Delivery(text(i), f)
                        for _, entries in cast(list[Any], reply or [])
                        for i, f in entries
                    ]
                    if deliveries:
                        self._process(tenant, execution, handler, claimed=deliveries)
                    self._up()
                except valkey.exceptions.ResponseError as exc:
                    if is_transient(exc):
                        stop.wait(self._down(exc, stream))
                        continue
                    if not is_nogroup(exc):
                        raise refused(exc, stream) from exc
                    self._group_lost(stream)
                except CONNECTION_ERRORS as exc:
                    stop.wait(self._down(exc, stream))
            self._shutdown()
        return self.stats

    # -- steps ----------------------------------------------------------------------------------
    def _ensure_group(self, stream: str) -> None:
        if stream in self._groups:
            return
        try:
            self.client.xgroup_create(stream, self.cfg.group, self.cfg.start_id, mkstream=True)
            self._created(stream)
        except valkey.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups.add(stream)

    def _group_lost(self, stream: str) -> None:
        self._mark_lost(stream)
        self._ensure_group(stream)

    def _claim(self, stream: str, cursor: str, count: int) -> tuple[str, list[Delivery]]:
        reply = self.client.xautoclaim(
            stream, self.cfg.group, self.cfg.consumer, self.cfg.min_idle_ms, cursor, count=count
        )
        cursor, claimed, deleted = parse_xautoclaim(reply)
        if deleted:
            self._deleted(stream, deleted)
        if claimed:
            # XAUTOCLAIM does not say how often an entry was delivered: ask XPENDING per id.
            pipe = self.client.pipeline(transaction=False)
            for d in claimed:
                pipe.xpending_range(stream, self.cfg.group, d.stream_id, d.stream_id, 1)
            for d, rows in zip(claimed, pipe.execute(), strict=True):  # type: ignore[no-untyped-call]
                d.deliveries = int(rows[0]["times_delivered"]) if rows else 1
            self.stats.reclaimed += len(claimed)
        return cursor, claimed

    def _process(
        self,
        tenant: str,
        execution: str | None,
        handler: Handler,
        *,
        leased: list[Any] | None = None,
        claimed: list[Delivery] | None = None,
    ) -> None:
        batch = Batch(
            tenant=tenant,
            execution=execution,
            cfg=self.cfg,
            token=self._token,
            stats=self.stats,
            last_errors=self._last_errors,
        )
        if leased:
            batch.add_read(leased)
        if claimed:
            batch.add(claimed)
        acquire_args = batch.acquire_call()
        if acquire_args is not None:
            batch.apply_acquire(self._acquire(args=acquire_args))
        batch.plan()
        index, finished = 0, False
        try:
            for parsed, meta in batch.run:
                try:
                    handler(parsed.event, meta)
                except Exception as exc:
                    self._handler_raised(batch.stream, meta, exc)
                    batch.failed(parsed, exc, self._last_errors)
                else:
                    batch.succeeded(parsed)
                index += 1
            finished = True
        finally:
            for parsed, _ in batch.run[index:]:
                batch.not_run(parsed)
            call = batch.commit_call()
            if call is not None:
                self._unrecorded.append(call)
                if not finished:  # else the next read carries it (no extra round trip)
                    self._flush_unrecorded()
        for d, error, dedup in batch.dead:
            dlq_keys, dlq_args = batch.dead_letter_call(d, error, dedup)
            if self._dead_letter(keys=dlq_keys, args=dlq_args):
                self._moved(batch.stream, dlq_keys[1], d.stream_id, error)

    def _flush_unrecorded(self, keep: int = 0) -> None:
        # Done marks + acks of handlers that already returned: idempotent, so retried as
        # often as needed; a failure keeps them for the next iteration.
        while len(self._unrecorded) > keep:
            call_keys, call_args = self._unrecorded[0]
            self._commit(keys=call_keys, args=call_args)
            self._unrecorded.pop(0)

    def _shutdown(self) -> None:
        end = time.monotonic() + self.cfg.shutdown_timeout_s
        while self._unrecorded and time.monotonic() < end:
            try:
                self._flush_unrecorded()
            except (*CONNECTION_ERRORS, valkey.exceptions.ResponseError) as exc:
                self._log.warning(
                    "Could not record %d finished batch(es) at shutdown: %s",
                    len(self._unrecorded),
                    exc,
                )
                time.sleep(min(0.5, max(0.0, end - time.monotonic())))
        self._gave_up()

    def _reader(self, block_ms: int) -> valkey.Valkey:
        reader = self._readers.get(block_ms)
        if reader is None:
            if self._url is not None:
                from execctx_nb._connection import make_blocking_client

                reader = make_blocking_client(self._url, block_ms=block_ms)
            else:
                reader = blocking_twin(self.client, block_ms)
            self._readers[block_ms] = reader
        return reader

    # -- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the blocking-read clients, and the command client if it was created here."""
        for reader in self._readers.values():
            reader.close()  # type: ignore[no-untyped-call]
        self._readers.clear()
        if self._owned:
            self.client.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> ExecutionEventSubscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ExecutionEventSubscriber(group={self.cfg.group!r}, consumer={self.cfg.consumer!r})"
