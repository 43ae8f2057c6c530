"""The asyncio twin of :class:`~execctx_nb.ExecutionEventSubscriber`.

Same parameters, same semantics, same decisions (:mod:`execctx_nb._stream_core`); the
handler may be a plain function or a coroutine function.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import valkey
import valkey.asyncio

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

__all__ = ["AsyncExecutionEventSubscriber", "AsyncHandler"]

AsyncHandler = Callable[[Event, EventMeta], Awaitable[object] | object]


def _async_blocking_twin(client: valkey.asyncio.Valkey, block_ms: int) -> valkey.asyncio.Valkey:
    from execctx_nb._connection import DEFAULT_TIMEOUT, AsyncBoundedRetry

    pool = client.connection_pool
    attempt = block_ms / 1000 + DEFAULT_TIMEOUT
    kwargs = dict(pool.connection_kwargs)
    kwargs.update(
        socket_timeout=attempt,
        health_check_interval=0,
        retry=AsyncBoundedRetry(timeout=attempt, attempt_timeout=attempt, retries=0),
    )
    twin_pool = type(pool)(connection_class=pool.connection_class, max_connections=4, **kwargs)
    return valkey.asyncio.Valkey.from_pool(twin_pool)


@contextlib.asynccontextmanager
async def _stop_on_signals(stop: asyncio.Event, log: LoggerLike) -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(sig: signal.Signals) -> None:
        log.info("Event subscriber: got %s, stopping after the in-flight batch", sig.name)
        stop.set()

    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # no add_signal_handler
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


class AsyncExecutionEventSubscriber(SubscriberBase):
    """Consume a tenant's execution events in a consumer group from asyncio.

    The parameters are those of :class:`~execctx_nb.ExecutionEventSubscriber`; ``client`` is
    a ``valkey.asyncio.Valkey`` (default: ``make_async_client(resolve_url(url))``).

    Examples
    --------
    >>> async def handle(event, meta): ...                            # doctest: +SKIP
    >>> sub = AsyncExecutionEventSubscriber(group="indexer")          # doctest: +SKIP
    >>> await sub.run_loop("org_42", handle, stop=asyncio.Event())     # doctest: +SKIP
    """

    def __init__(
        self,
        client: valkey.asyncio.Valkey | None = None,
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
        self._url: str | None = None
        if client is None:
            from execctx_nb._connection import make_async_client, resolve_url

            self._url = resolve_url(url)
            client = make_async_client(self._url)
        self._owned = self._url is not None
        self.client = client
        self._readers: dict[int, valkey.asyncio.Valkey] = {}
        self._read = client.register_script(READ_LUA)
        self._acquire = client.register_script(ACQUIRE_LUA)
        self._commit = client.register_script(COMMIT_LUA)
        self._dead_letter = client.register_script(DEAD_LETTER_LUA)

    async def run_loop(
        self,
        tenant_or_scope: TenantOrScope,
        handler: AsyncHandler,
        *,
        stop: asyncio.Event | None = None,
        block_ms: int = 1000,
        count: int = 100,
    ) -> SubscriberStats:
        """Await ``handler(event, meta)`` for each event until ``stop`` is set; see the sync twin."""
        validate_count(count, block_ms)
        with self._exclusive():
            return await self._run_loop(tenant_or_scope, handler, stop, block_ms, count)

    async def _run_loop(
        self,
        tenant_or_scope: TenantOrScope,
        handler: AsyncHandler,
        stop: asyncio.Event | None,
        block_ms: int,
        count: int,
    ) -> SubscriberStats:
        tenant, execution = resolve_tenant(tenant_or_scope)
        stream = keys.events_key(tenant)
        prefix = keys.dedup_prefix(tenant, self.cfg.group)
        stop = stop if stop is not None else asyncio.Event()
        reader = self._reader(block_ms)
        cursor, next_claim = "0-0", 0.0
        signals = (
            _stop_on_signals(stop, self._log) if self._handle_signals else contextlib.nullcontext()
        )
        async with signals:
            while not stop.is_set():
                try:
                    await self._flush_unrecorded(
                        keep=1
                    )  # the last batch's commit rides on the read
                    await self._ensure_group(stream)
                    if time.monotonic() >= next_claim:
                        await self._flush_unrecorded()
                        cursor, claimed = await self._claim(stream, cursor, count)
                        if cursor == "0-0":
                            next_claim = time.monotonic() + self.cfg.claim_interval_s
                        if claimed:
                            await self._process(tenant, execution, handler, claimed=claimed)
                            self._up()
                            continue
                    # Under load: read and lease in one call; block only when nothing is there.
                    # The previous batch's done marks + acks go first in the same call.
                    carried = self._unrecorded[0][1] if self._unrecorded else []
                    try:
                        leased = await self._read(
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
                    except asyncio.CancelledError:
                        if carried:  # interrupted: still record what the handlers finished
                            await asyncio.shield(self._flush_unrecorded())
                        raise
                    if carried:
                        self._unrecorded.pop(0)
                    if leased:
                        await self._process(tenant, execution, handler, leased=leased)
                        self._up()
                        continue
                    reply = await reader.xreadgroup(
                        self.cfg.group,
                        self.cfg.consumer,
                        {stream: ">"},
                        count=count,
                        block=block_ms,
                    )
                    deliveries = [
                        Delivery(text(i), f) for _, entries in reply or [] for i, f in entries
                    ]
                    if deliveries:
                        await self._process(tenant, execution, handler, claimed=deliveries)
                    self._up()
                except valkey.exceptions.ResponseError as exc:
                    if is_transient(exc):
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(stop.wait(), self._down(exc, stream))
                        continue
                    if not is_nogroup(exc):
                        raise refused(exc, stream) from exc
                    await self._group_lost(stream)
                except CONNECTION_ERRORS as exc:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(stop.wait(), self._down(exc, stream))
            await self._shutdown()
        return self.stats

    async def _ensure_group(self, stream: str) -> None:
        if stream in self._groups:
            return
        try:
            await self.client.xgroup_create(
                stream, self.cfg.group, self.cfg.start_id, mkstream=True
            )
            self._created(stream)
        except valkey.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups.add(stream)

    async def _group_lost(self, stream: str) -> None:
        self._mark_lost(stream)
        await self._ensure_group(stream)

    async def _claim(self, stream: str, cursor: str, count: int) -> tuple[str, list[Delivery]]:
        reply = await self.client.xautoclaim(
            stream, self.cfg.group, self.cfg.consumer, self.cfg.min_idle_ms, cursor, count=count
        )
        cursor, claimed, deleted = parse_xautoclaim(reply)
        if deleted:
            self._deleted(stream, deleted)
        if claimed:
            pipe = self.client.pipeline(transaction=False)
            for d in claimed:
                pipe.xpending_range(stream, self.cfg.group, d.stream_id, d.stream_id, 1)
            for d, rows in zip(claimed, await pipe.execute(), strict=True):
                d.deliveries = int(rows[0]["times_delivered"]) if rows else 1
            self.stats.reclaimed += len(claimed)
        return cursor, claimed

    async def _process(
        self,
        tenant: str,
        execution: str | None,
        handler: AsyncHandler,
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
            batch.apply_acquire(await self._acquire(args=acquire_args))
        batch.plan()
        index, finished = 0, False
        try:
            for parsed, meta in batch.run:
                try:
                    result = handler(parsed.event, meta)
                    if inspect.isawaitable(result):
                        await result
                except Exception as exc:
                    self._handler_raised(batch.stream, meta, exc)
                    batch.failed(parsed, exc, self._last_errors)
                else:
                    batch.succeeded(parsed)
                index += 1
            finished = True
        finally:
            # Also on cancellation: what finished is recorded (shielded from the cancel).
            for parsed, _ in batch.run[index:]:
                batch.not_run(parsed)
            call = batch.commit_call()
            if call is not None:
                self._unrecorded.append(call)
                if not finished:  # else the next read carries it (no extra round trip)
                    await asyncio.shield(self._flush_unrecorded())
        for d, error, dedup in batch.dead:
            dlq_keys, dlq_args = batch.dead_letter_call(d, error, dedup)
            if await self._dead_letter(keys=dlq_keys, args=dlq_args):
                self._moved(batch.stream, dlq_keys[1], d.stream_id, error)

    async def _flush_unrecorded(self, keep: int = 0) -> None:
        while len(self._unrecorded) > keep:
            call_keys, call_args = self._unrecorded[0]
            await self._commit(keys=call_keys, args=call_args)
            self._unrecorded.pop(0)

    async def _shutdown(self) -> None:
        end = time.monotonic() + self.cfg.shutdown_timeout_s
        while self._unrecorded and time.monotonic() < end:
            try:
                await self._flush_unrecorded()
            except (*CONNECTION_ERRORS, valkey.exceptions.ResponseError) as exc:
                self._log.warning(
                    "Could not record %d finished batch(es) at shutdown: %s",
                    len(self._unrecorded),
                    exc,
                )
                await asyncio.sleep(min(0.5, max(0.0, end - time.monotonic())))
        self._gave_up()

    def _reader(self, block_ms: int) -> valkey.asyncio.Valkey:
        reader = self._readers.get(block_ms)
        if reader is None:
            if self._url is not None:
                from execctx_nb._connection import make_async_blocking_client

                reader = make_async_blocking_client(self._url, block_ms=block_ms)
            else:
                reader = _async_blocking_twin(self.client, block_ms)
            self._readers[block_ms] = reader
        return reader

    async def aclose(self) -> None:
        """Close the blocking-read clients, and the command client if it was created here."""
        for reader in self._readers.values():
            await reader.aclose()
        self._readers.clear()
        if self._owned:
            await self.client.aclose()

    async def __aenter__(self) -> AsyncExecutionEventSubscriber:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncExecutionEventSubscriber(group={self.cfg.group!r}, consumer={self.cfg.consumer!r})"
