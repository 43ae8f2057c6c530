"""A consumer-group subscriber of a tenant's event stream: effectively-once per group.

The decisions (dedup, leases, dead letters) live in :mod:`execctx_nb._events._batch`; this
module does the I/O and runs the loop: read, reclaim, recover, back off, stop. The handler is
a plain function (a coroutine function is awaited). Written once: ``scripts/unasync.py``
makes ``_events/_subscriber.py`` from ``_events/_async_subscriber.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, cast

import valkey.asyncio

from execctx_nb import keys
from execctx_nb._concurrency import (
    async_call_handler,
    async_shielded,
    async_stop_on_signals,
    async_wait_stop,
)
from execctx_nb._connection._async import (
    AsyncClient,
    blocking_twin,
    make_async_blocking_client,
    make_async_client,
)
from execctx_nb._connection._common import resolve_url, tls_failure
from execctx_nb._events._batch import Batch, Delivery, native_commit, parse_xautoclaim
from execctx_nb._events._core import (
    CONNECTION_ERRORS,
    FORBIDDEN_ERRORS,
    EventMeta,
    SubscriberStats,
    is_nogroup,
    is_transient,
    is_unknown_command,
    refused,
    tls_refused,
    validate_count,
)
from execctx_nb._events._records import Event
from execctx_nb._events._scripts import ACQUIRE_LUA, COMMIT_LUA, DEAD_LETTER_LUA, READ_LUA
from execctx_nb._events._subscriber_base import SubscriberBase
from execctx_nb._log import LoggerLike
from execctx_nb._records import TenantOrScope, resolve_tenant

__all__ = ["AsyncExecutionEventSubscriber", "AsyncHandler"]

AsyncHandler = Callable[[Event, EventMeta], object]
"""The handler: ``handler(event, meta)`` (a coroutine function is awaited)."""


class AsyncExecutionEventSubscriber(SubscriberBase):
    """Consume a tenant's execution events in a consumer group, each idempotency key once.

    Parameters
    ----------
    client
        valkey-py client for commands (default: ``make_client(resolve_url(url))``, owned and
        closed by the subscriber). Blocking reads always use a separate pool whose socket
        timeout exceeds the BLOCK.
    group
        Consumer group name; created on demand (from ``start_id``) and recreated if lost.
    consumer
        This consumer's name in the group (default ``{hostname}-{pid}``).
    logger
        Any logger with debug/info/warning/error (default: the ``execctx_nb`` logger).
    url
        Server URL used when ``client`` is None (else ``$VALKEY_URL``, else the embedded server).
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
    shutdown_timeout_s
        How long a stopping loop keeps trying to record finished batches.
    start_id
        Where a newly created group starts reading ("0": the whole stream, "$": new events).
    handle_signals
        Stop on SIGTERM/SIGINT during :meth:`run_loop` (only in the main thread).

    Examples
    --------
    >>> sub = AsyncExecutionEventSubscriber(group="indexer")           # doctest: +SKIP
    >>> await sub.run_loop("org_42", lambda event, meta: print(meta.kind))  # doctest: +SKIP
    """

    def __init__(
        self,
        client: AsyncClient | None = None,
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
            self._url = resolve_url(url)
            client = make_async_client(self._url)
        self._owned = self._url is not None
        self.client = client
        # valkey-py annotates commands as "Awaitable[T] | T" for its sync and async clients
        # alike; an Any view keeps the calls below readable under mypy strict.
        self._c: Any = cast(Any, client)
        self._readers: dict[int, Any] = {}
        self._read = self._c.register_script(READ_LUA)
        self._acquire = self._c.register_script(ACQUIRE_LUA)
        self._commit = self._c.register_script(COMMIT_LUA)
        self._dead_letter = self._c.register_script(DEAD_LETTER_LUA)
        # Native commands (MULTI/EXEC with MSETEX, Valkey 9.1) instead of the scripts where
        # the server has them; a cluster keeps the scripts (one call per slot, no MULTI).
        self._native = not isinstance(client, valkey.asyncio.cluster.ValkeyCluster)

    async def run_loop(
        self,
        tenant_or_scope: TenantOrScope,
        handler: AsyncHandler,
        *,
        stop: asyncio.Event | None = None,
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
            Called (a coroutine function is awaited) once per idempotency key and group; an exception leaves the event pending
            for a retry after ``min_idle_ms`` (up to ``max_deliveries``).
        stop
            An Event; the loop finishes the in-flight batch, acknowledges it and returns
            within about ``block_ms`` plus one batch once it is set.
        block_ms, count
            XREADGROUP ``BLOCK`` and ``COUNT`` (1 to 1000).

        Returns
        -------
        SubscriberStats
            The subscriber's counters.

        Raises
        ------
        EventStreamError
            The server refused a command for good (the key is not a stream, ACL).
        """
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
            async_stop_on_signals(stop, self._log)
            if self._handle_signals
            else contextlib.nullcontext()
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
                    # Under load: read without blocking; block only when nothing is there.
                    # The previous batch's done marks + acks go first in the same round trip.
                    if self._native:
                        unread = await self._read_native(stream, count)
                        if unread:
                            await self._process(tenant, execution, handler, unread=unread)
                            self._up()
                            continue
                        if unread is not None:  # else the server lacks MSETEX: scripts below
                            await self._block(
                                reader, tenant, execution, handler, stream, count, block_ms
                            )
                            self._up()
                            continue
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
                            await async_shielded(self._flush_unrecorded())
                        raise
                    if carried:
                        self._unrecorded.pop(0)
                    if leased:
                        await self._process(tenant, execution, handler, leased=leased)
                        self._up()
                        continue
                    await self._block(reader, tenant, execution, handler, stream, count, block_ms)
                    self._up()
                except valkey.exceptions.ResponseError as exc:
                    if is_transient(exc):
                        await async_wait_stop(stop, self._down(exc, stream))
                        continue
                    if not is_nogroup(exc):
                        raise refused(exc, stream) from exc
                    await self._group_lost(stream)
                except FORBIDDEN_ERRORS as exc:  # a wrong password is no outage: say so
                    raise refused(exc, stream) from exc
                except CONNECTION_ERRORS as exc:
                    if tls_failure(exc) is not None:  # no outage: a certificate problem
                        raise tls_refused(exc, stream) from exc
                    await async_wait_stop(stop, self._down(exc, stream))
            await self._shutdown()
        return self.stats

    async def _block(
        self,
        reader: Any,
        tenant: str,
        execution: str | None,
        handler: AsyncHandler,
        stream: str,
        count: int,
        block_ms: int,
    ) -> None:
        """Nothing new: wait up to ``block_ms`` for entries (on the blocking-read client)."""
        command = [*self._xreadgroup(stream, count), "BLOCK", block_ms, "STREAMS", stream, ">"]
        if not self._native:  # a cluster client routes by the command's name: a str
            command[0] = "XREADGROUP"
        reply = await reader.execute_command(*command)
        unread = [entry for _, entries in reply or [] for entry in entries]
        if not self._native:  # parsed by valkey-py: (id, {field: value}) back to flat fields
            unread = [(i, [x for kv in (f or {}).items() for x in kv]) for i, f in unread]
        if unread:
            await self._process(tenant, execution, handler, unread=unread)

    def _xreadgroup(self, stream: str, count: int) -> list[Any]:
        # The command name as bytes: valkey-py looks up its reply callback by the str name,
        # so the reply stays the server's nested lists; the callback's dict per entry cost
        # more than the checks add_new does on the flat field list.
        return [b"XREADGROUP", "GROUP", self.cfg.group, self.cfg.consumer, "COUNT", count]

    async def _read_native(self, stream: str, count: int) -> list[Any] | None:
        """Record the previous batch and read new entries in one round trip of native
        commands: ``MULTI; MSETEX <done marks> EX; XACK <ids>; XREADGROUP COUNT n; EXEC``.

        Done marks and acks stay atomic (MULTI). 38k of the 110k instructions an event cost
        through :data:`READ_LUA` were Lua converting the stream reply into Lua values and
        back. Returns None when the server has no MSETEX (the scripts are used from then on).
        """
        carried = self._unrecorded[0][1] if self._unrecorded else None
        plan = native_commit(carried) if carried is not None else None
        if carried is not None and plan is None:
            await self._flush_unrecorded()  # leases to release or busy entries: the script
        pipe = self._c.pipeline(transaction=plan is not None)
        if plan is not None:
            done, ids = plan
            if done:
                pipe.execute_command("MSETEX", len(done) // 2, *done, "EX", self.cfg.dedup_ttl_s)
            if ids:
                pipe.xack(stream, self.cfg.group, *ids)
        pipe.execute_command(*self._xreadgroup(stream, count), "STREAMS", stream, ">")
        try:
            replies = await pipe.execute()
        except asyncio.CancelledError:
            if plan is not None:  # interrupted: still record what the handlers finished
                await async_shielded(self._flush_unrecorded())
            raise
        except valkey.exceptions.ResponseError as exc:
            if plan is None or not is_unknown_command(exc):
                raise
            self._native = False
            return None
        if plan is not None:
            self._unrecorded.pop(0)
        return [entry for _, entries in replies[-1] or [] for entry in entries]

    async def _lease(self, batch: Batch, args: list[Any]) -> Any:
        """Lease every new key of the batch: one ``MSETEX ... NX PX`` when none is taken
        (all or nothing), else the per-key script, which says who holds each."""
        if self._native:
            todo = args[3:]
            pairs = [part for idem in todo for part in (batch.prefix + idem, self._token)]
            try:
                if await self._c.execute_command(
                    "MSETEX", len(todo), *pairs, "NX", "PX", self.cfg.lease_ms
                ):
                    return [None] * len(todo)
            except valkey.exceptions.ResponseError as exc:
                if not is_unknown_command(exc):
                    raise
                self._native = False
        # The stream key routes the call to the node of its slot (the dedup keys share it).
        return await self._acquire(keys=[batch.stream], args=args)

    async def _ensure_group(self, stream: str) -> None:
        if stream in self._groups:
            return
        try:
            await self._c.xgroup_create(stream, self.cfg.group, self.cfg.start_id, mkstream=True)
            self._created(stream)
        except valkey.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups.add(stream)

    async def _group_lost(self, stream: str) -> None:
        self._mark_lost(stream)
        await self._ensure_group(stream)

    async def _claim(self, stream: str, cursor: str, count: int) -> tuple[str, list[Delivery]]:
        reply = await self._c.xautoclaim(
            stream, self.cfg.group, self.cfg.consumer, self.cfg.min_idle_ms, cursor, count=count
        )
        cursor, claimed, deleted = parse_xautoclaim(reply)
        if deleted:
            self._deleted(stream, deleted)
        if claimed:
            pipe = self._c.pipeline(transaction=False)
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
        unread: list[Any] | None = None,
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
        if unread:
            batch.add_new(unread)
        acquire_args = batch.acquire_call()
        if acquire_args is not None:
            batch.apply_acquire(await self._lease(batch, acquire_args))
        batch.plan()
        index, finished = 0, False
        try:
            for parsed, meta in batch.run:
                try:
                    await async_call_handler(handler, parsed.event, meta)
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
                    await async_shielded(self._flush_unrecorded())
        for d, error, dedup in batch.dead:
            dlq_keys, dlq_args = batch.dead_letter_call(d, error, dedup)
            if await self._dead_letter(keys=dlq_keys, args=dlq_args):
                self._moved(batch.stream, dlq_keys[1], d.stream_id, error)

    async def _flush_unrecorded(self, keep: int = 0) -> int:
        # Done marks + acks of handlers that already returned: idempotent, so retried as
        # often as needed; a failure keeps them for the next iteration. Returns how many
        # batches were recorded.
        recorded = 0
        while len(self._unrecorded) > keep:
            call_keys, call_args = self._unrecorded[0]
            await self._commit(keys=call_keys, args=call_args)
            self._unrecorded.pop(0)
            recorded += 1
        return recorded

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

    def _reader(self, block_ms: int) -> Any:
        reader = self._readers.get(block_ms)
        if reader is None:
            if self._url is not None:
                reader = make_async_blocking_client(self._url, block_ms=block_ms)
            else:
                reader = blocking_twin(self.client, block_ms)
            self._readers[block_ms] = reader
        return reader

    async def aclose(self) -> None:
        """Close the blocking-read clients, and the command client if it was created here."""
        for reader in self._readers.values():
            await reader.aclose()
        self._readers.clear()
        if self._owned:
            await self._c.aclose()

    async def __aenter__(self) -> AsyncExecutionEventSubscriber:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(group={self.cfg.group!r}, consumer={self.cfg.consumer!r})"
