"""The execution context store: step envelopes, flow vars and leases on Valkey, data in Parquet.

Storage layout (keys from :mod:`execctx_nb.keys`): the latest envelope of a step as a JSON
string at ``step_key`` (what other engines read), every attempt in the hash
``step_attempts_key`` (field = attempt number). One Lua script writes an attempt
idempotently and updates the latest envelope atomically (the rule is in
:mod:`execctx_nb._store._write`). Data too large for an inline JSON envelope, or whose
dtypes JSON cannot keep, goes to the cold tier as Parquet *before* the envelope that
references it is written, so a reader never meets a dangling reference.

Every public method either completes or raises within ``timeout`` seconds per Valkey
phase; valkey errors never escape: they become :class:`StoreUnavailableError` (server
down, hung, loading, read-only, out of memory, forbidden), :class:`EnvelopeDecodeError`
(malformed value, naming the key) or :class:`StoreError`. Cold-tier work (Parquet,
object-store transfers) goes through ``async_run_blocking``: a worker thread for awaiting
callers, the calling thread otherwise.

Written once: ``scripts/unasync.py`` makes ``_store/_sync.py`` from ``_store/_async.py``.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

import msgspec
import valkey.asyncio
import valkey.asyncio.cluster

from execctx_nb import keys
from execctx_nb._concurrency import async_run_blocking
from execctx_nb._connection._async import AsyncClient, make_async_client
from execctx_nb._connection._common import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    pop_deadline,
    push_deadline,
    redact_url,
    resolve_url,
    validate_min_replicas,
    wait_budget_ms,
)
from execctx_nb._connection._health import HealthMonitor, HealthState, translate
from execctx_nb._log import LoggerLike, get_logger
from execctx_nb._records import ExecutionScope, StepEnvelope
from execctx_nb._store._async_archive import AsyncArchives
from execctx_nb._store._async_flow import AsyncFlowVars
from execctx_nb._store._async_index import AsyncIndex, index_commands
from execctx_nb._store._async_leases import AsyncLeases
from execctx_nb._store._cold import ColdTier
from execctx_nb._store._common import (
    ACQUIRE_SCRIPT,
    SharedState,
    check_envelope_at,
    client_or_error,
    decode_envelopes,
    parse_probe,
)
from execctx_nb._store._write import (
    DEFAULT_INLINE_LIMIT,
    PUT_SCRIPT,
    check_conflict,
    check_data_ref,
    check_execution,
    check_scope,
    cold_data_path,
    cold_envelope,
    data_parquet,
    envelope_json,
    fill_envelope,
    fits_inline,
    no_step_error,
    orphaned_objects,
    put_args,
    put_chunks,
    put_results,
)
from execctx_nb.errors import (
    ColdTierError,
    ExecctxError,
    NotDurableError,
    StoreError,
    StoreUnavailableError,
)

if TYPE_CHECKING:
    import polars as pl

__all__ = ["AsyncExecutionContextStore", "create_async_valkey_execution_context_store"]

T = TypeVar("T")
# ValkeyClusterException (a cluster with no reachable node) does not derive from ValkeyError.
_VALKEY_ERRORS = (valkey.exceptions.ValkeyError, valkey.exceptions.ValkeyClusterException, OSError)
_Plan = tuple[str, str, int, Any, StepEnvelope]  # step key, attempts key, attempt, JSON, envelope


class AsyncExecutionContextStore(AsyncIndex, AsyncLeases, AsyncArchives, AsyncFlowVars):
    """The execution context of a workflow engine, stored in Valkey.

    Create it with :func:`create_async_valkey_execution_context_store` (or, in a notebook,
    :func:`~execctx_nb.connect`). A context manager; thread-safe (valkey-py pools
    connections). Whoever creates a store owns it: :meth:`borrow` lends a handle that
    shares its connections and settings and whose ``close`` closes only the handle.

    Attributes
    ----------
    url
        The server URL as given (it may hold a password: reprs, messages and logs show it
        redacted, ``redis://:***@host``).
    client
        The underlying valkey-py client. It retries after connection errors, which is
        safe for idempotent commands only: send ``XADD *`` and the like once (as the event
        publisher does) or through ``_connection.make_client(url, retries=0)``.
    timeout
        Seconds within which each Valkey phase of a call completes or raises.
    inline_limit_bytes
        Envelopes larger than this keep their data in the cold tier.
    min_replicas
        Writes return only once this many replicas confirmed them (``WAIT``); else they
        raise StoreUnavailableError saying the write is not confirmed durable.

    Examples
    --------
    >>> import execctx_nb as ec
    >>> async with ec.create_async_valkey_execution_context_store() as store:  # doctest: +SKIP
    ...     scope = ec.ExecutionScope("org_42", "run-1")
    ...     env = ec.StepEnvelope(execution_id="run-1", step_id="clean", data=[{"a": 1}])
    ...     await store.put_step(scope, env)
    ...     (await store.get_step(scope, "clean")).to_polars()
    """

    def __init__(
        self,
        url: str,
        *,
        logger: LoggerLike | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        cold_store: Any = None,
        inline_limit_bytes: int = DEFAULT_INLINE_LIMIT,
        data_dir: str | os.PathLike[str] | None = None,
        min_replicas: int = 0,
    ) -> None:
        self.url = url
        self._shown_url = redact_url(url)  # what reprs, messages and logs say
        self.timeout = timeout
        self.inline_limit_bytes = inline_limit_bytes
        self.min_replicas = validate_min_replicas(min_replicas)
        # WAIT blocks its connection: it must give up before the socket does.
        self._wait_ms = wait_budget_ms(timeout, retries)
        self._logger = get_logger(logger)
        self._health = HealthMonitor(self._logger, self._shown_url)
        self._shared = SharedState(cold_store, data_dir, timeout)
        self.client: AsyncClient = client_or_error(
            make_async_client,
            url,
            timeout=timeout,
            retries=retries,
            on_retry=self._health.on_retry,
            # No CLIENT SETNAME: a tenant-restricted ACL user may not be allowed it, and
            # valkey-py would then fail every connection (name one with ?client_name=).
        )
        # valkey-py annotates commands as "Awaitable[T] | T" for its sync and async clients
        # alike; an Any view keeps the calls below readable under mypy strict.
        self._r: Any = cast(Any, self.client)
        self._cluster = isinstance(self.client, valkey.asyncio.cluster.ValkeyCluster)
        self._put_sha = self.client.register_script(PUT_SCRIPT).sha
        self._acquire_script = self.client.register_script(ACQUIRE_SCRIPT)
        self._owner = True
        self._closed = False

    # -- plumbing ----------------------------------------------------------------------
    @property
    def cold(self) -> ColdTier:
        """The cold tier (opened on first use, shared with every borrowed handle)."""
        return self._shared.cold()

    @property
    def health(self) -> HealthState:
        """The health state seen by the last call (see :meth:`check_health` for a probe)."""
        return self._health.state

    @property
    def health_reason(self) -> str:
        """Why the store is in its health state (the last error, or "ok")."""
        return self._health.reason

    @property
    def closed(self) -> bool:
        """True once this handle, or the store it was borrowed from, was closed."""
        return self._closed or self._shared.closed

    async def _run(self, op: str, where: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Run Valkey calls under the deadline; the one boundary for valkey exceptions."""
        if self.closed:
            raise StoreError(
                f"The store for {self._shown_url} is closed - at `{op}`; create a new one"
                " (or call execctx_nb.connect() again in a notebook)"
            )
        token = self._health.begin()
        started = time.monotonic()
        bound = push_deadline(self.timeout)
        try:
            result = await fn()
        except ExecctxError as exc:
            # Already ours (e.g. NotDurableError, an OSError by descent): not re-translated.
            degraded = HealthState.DEGRADED if isinstance(exc, NotDurableError) else None
            self._health.failure(degraded, str(exc), token)
            raise
        except _VALKEY_ERRORS as exc:
            error, state = translate(
                exc,
                op=op,
                where=where,
                url=self._shown_url,
                timeout=self.timeout,
                elapsed=time.monotonic() - started,
            )
            self._health.failure(state, str(error), token)
            raise error from exc
        finally:
            pop_deadline(bound)
        self._health.success(token)
        return result

    def __repr__(self) -> str:
        kind = "" if self._owner else ", borrowed"
        return f"{type(self).__name__}({self._shown_url!r}, health={self.health.value!r}{kind})"

    async def __aenter__(self) -> AsyncExecutionContextStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def borrow(self) -> AsyncExecutionContextStore:
        """A handle on this store: same connections, cold tier and settings.

        Closing the handle closes only the handle; closing the store (its owner) closes
        the connections for every handle. Widgets and magics borrow the store they are
        given, so a cell's ``with store:`` block never closes theirs.

        Raises
        ------
        StoreError
            This store is closed.
        """
        if self.closed:
            raise StoreError(
                f"The store for {self._shown_url} is closed - at `borrow`; create a new one"
            )
        handle = copy.copy(self)
        handle._owner = False
        handle._closed = False
        return handle

    async def aclose(self) -> None:
        """Close this handle; the store's owner also closes its connections."""
        if self._closed:
            return
        self._closed = True
        if self._owner and self._shared.close():
            await self._r.aclose()

    async def check_health(self) -> HealthState:
        """Probe the server (PING and INFO) and return the state it is in.

        Reports ``degraded`` when the server reports a failed AOF or RDB write, or when it
        restarted without persistence since the last probe (its data is gone). A user whose
        ACL does not allow INFO gets a PING-only probe (``healthy`` with a reason saying
        persistence was not checked).
        """
        try:
            info = await self._run("INFO", "server", lambda: self._r.info("everything"))
        except StoreUnavailableError as exc:
            if not isinstance(exc.__cause__, valkey.exceptions.NoPermissionError):
                raise
            await self._run("PING", "server", self._r.ping)
            reason = "answers PING; INFO is not permitted for this user, persistence not checked"
            self._health.set(HealthState.HEALTHY, reason)
            return HealthState.HEALTHY
        state, reason, run_id = parse_probe(info, self._shared.run_id)
        self._shared.run_id = run_id
        self._health.set(state, reason)
        return state

    async def _scan(self, pattern: str) -> list[bytes]:
        return [key async for key in self._r.scan_iter(match=pattern, count=1000)]

    async def _check_access(self, op: str, key: str) -> None:
        # SCAN ignores ACL key patterns and the cold tier is shared: before a listing or a
        # cold-tier operation, read one key of that tenant with the caller's credentials, so
        # a user who may not read it gets `forbidden` instead of names or objects.
        await self._run(op, key, lambda: self._r.exists(key))

    # -- steps -------------------------------------------------------------------------
    async def put_step(self, scope: ExecutionScope, envelope: StepEnvelope) -> StepEnvelope:
        """Store one attempt of a step idempotently; return the envelope as stored.

        Raises
        ------
        IdempotencyConflictError
            The attempt is stored with a different payload.
        StoreUnavailableError
            The write did not land in time (nothing is ever dropped silently).
        """
        return (await self.put_steps(scope, [envelope]))[0]

    async def put_steps(
        self, scope: ExecutionScope, envelopes: list[StepEnvelope]
    ) -> list[StepEnvelope]:
        """Store several envelopes of one execution in one round trip.

        One script call per :data:`~execctx_nb._store._write.PUT_BATCH_ENVELOPES`
        envelopes, pipelined. Each envelope is written or refused on its own: a conflict
        raises after the others were written.

        Raises
        ------
        IdempotencyConflictError
            An attempt is stored with a different payload.
        StoreUnavailableError
            The writes did not land in time (nothing is ever dropped silently).
        """
        if not envelopes:
            return []
        # The scope's ids are checked once per batch, not once per envelope.
        prefix = keys.execution_prefix(check_scope(scope).tenant_id, scope.execution_id)
        plans = []
        for envelope in envelopes:
            plan = self._plan(scope, prefix, envelope)
            if plan[3] is None:  # the data goes to the cold tier
                plan = await self._plan_cold(scope, plan[4], plan[0], plan[1])
            plans.append(plan)
        where = (
            plans[0][0]
            if len(plans) == 1
            else keys.execution_prefix(scope.tenant_id, scope.execution_id)
        )
        replies = await self._run("put_step", where, lambda: self._send_put(scope, plans))
        await self._drop_orphans(orphaned_objects(plans, replies))
        return put_results(plans, replies, envelopes)

    async def _send_put(self, scope: ExecutionScope, plans: list[_Plan]) -> list[Any]:
        # EVALSHA by hand rather than through valkey-py Script objects: those cost a Python
        # layer per call and, in a pipeline, a SCRIPT EXISTS round trip per batch.
        chunks = put_chunks(plans, by_slot=self._cluster)
        index = index_commands(scope, [plan[4].step_id for plan in plans])
        try:
            return await self._eval_put(chunks, index)
        except valkey.exceptions.NoScriptError:
            # The server does not know the script yet (first use, or it restarted): load it
            # and send the batch again; every write of it is idempotent.
            await self._r.script_load(PUT_SCRIPT)
            return await self._eval_put(chunks, index)

    async def _eval_put(self, chunks: list[list[_Plan]], index: list[tuple[Any, ...]]) -> list[Any]:
        # The index entries ride in the same round trip (ZADD NX: idempotent); in a cluster
        # they live in other slots, so they are not part of the script.
        pipe = self._r.pipeline(transaction=False)
        for chunk in chunks:
            pipe.execute_command(*put_args(self._put_sha, chunk))
        for command in index:
            pipe.execute_command(*command)
        waits = self._add_waits(pipe, [chunk[0][0] for chunk in chunks])
        replies = await pipe.execute()
        self._check_waits(replies[len(replies) - waits :], chunks[0][0][0])
        return [r for chunk_replies in replies[: len(chunks)] for r in chunk_replies]

    def _add_waits(self, pipe: Any, written: list[str]) -> int:
        """Queue ``WAIT`` after the writes, on the connection(s) that sent them."""
        if not self.min_replicas:
            return 0
        if not self._cluster:
            pipe.execute_command("WAIT", self.min_replicas, self._wait_ms)
            return 1
        # A cluster pipeline sends each node's commands on one connection: one WAIT per
        # node that took writes, queued on that node.
        nodes = {id(n): n for n in (self._r.get_node_from_key(k) for k in written)}
        for node in nodes.values():
            pipe.execute_command("WAIT", self.min_replicas, self._wait_ms, target_nodes=node)
        return len(nodes)

    def _check_waits(self, counts: list[Any], where: str) -> None:
        if self.min_replicas and any(int(c) < self.min_replicas for c in counts):
            got = min(int(c) for c in counts)
            raise NotDurableError(
                f"The write is not confirmed durable: {got} of the {self.min_replicas} replicas"
                f" required acknowledged it within {self._wait_ms} ms - at `{where}`; it is on"
                " the primary but may be lost if the primary fails now: write it again (writes"
                " are idempotent) or check the replicas (INFO replication)"
            )

    def _plan(self, scope: ExecutionScope, prefix: str, envelope: StepEnvelope) -> _Plan:
        """The write plan of an envelope; its JSON is None when its data goes to the cold
        tier (:meth:`_plan_cold` makes that plan)."""
        check_execution(scope, envelope)
        env = fill_envelope(envelope)
        key, akey = keys.step_keys_under(prefix, env.step_id)
        if env.data_ref is not None:  # a reference given (a restore, another engine): check it
            check_data_ref(env, self.cold, cold_data_path(scope, env), key)
        if env.data is None:
            return key, akey, env.attempt, envelope_json(env), env
        if env.data_ref is None and fits_inline(env.data, self.inline_limit_bytes):
            wire = envelope_json(env)
            if len(wire) <= self.inline_limit_bytes:
                return key, akey, env.attempt, wire, env
        return key, akey, env.attempt, None, env

    async def _plan_cold(
        self, scope: ExecutionScope, env: StepEnvelope, key: str, akey: str
    ) -> _Plan:
        payload, rows = await async_run_blocking(data_parquet, env)
        staging = keys.cold_staging_path(
            scope.tenant_id, env.execution_id, env.step_id, env.attempt, secrets.token_hex(8)
        )
        staged, digest = await async_run_blocking(self.cold.stage, staging, payload)
        # Content-addressed: writers racing on one attempt with other data never overwrite
        # each other's object, so the winner's envelope stays readable.
        path = keys.cold_step_data_path(
            scope.tenant_id, env.execution_id, env.step_id, env.attempt, digest
        )
        wire, stored = cold_envelope(env, self.cold.uri(path), payload, rows, digest)
        try:
            existing = await self._run("HGET", akey, lambda: self._r.hget(akey, str(env.attempt)))
            if existing is not None:  # stored already: nothing is kept unless it is the same
                check_conflict(existing, wire, key=akey, attempt=env.attempt)  # raises unless same
        except BaseException:
            with contextlib.suppress(ColdTierError):
                await async_run_blocking(self.cold.discard, staged)
            raise
        # Stored (again, for the same write: it repairs a lost object).
        await async_run_blocking(self.cold.commit, staged, path, payload)
        return key, akey, env.attempt, wire, stored

    async def _drop_orphans(self, uris: list[str]) -> None:
        # Objects uploaded for writes that lost a race (the attempt was stored with other
        # data meanwhile): nothing references them. Best effort: a leftover is only garbage.
        for uri in uris:
            with contextlib.suppress(ColdTierError):
                await async_run_blocking(self.cold.delete, uri[len(self.cold.base_url) :])

    async def get_step(
        self,
        scope: ExecutionScope,
        step_id: str,
        attempt: int | None = None,
        *,
        data: bool = True,
    ) -> StepEnvelope | None:
        """The latest attempt of a step (or ``attempt``); None when absent.

        With ``data=False`` cold-tier data is not read (``data`` stays None and
        ``data_ref`` says where it is): for listings and graphs.

        Raises
        ------
        EnvelopeDecodeError
            The key holds something that is not an envelope of this step (names the key).
        ColdTierError
            The envelope's cold data is missing, altered or outside the cold tier.
        """
        key = keys.step_key(scope.tenant_id, scope.execution_id, step_id)
        if attempt is None:
            raw = await self._run("GET", key, lambda: self._r.get(key))
            where = key
        else:
            keys.validate_attempt(attempt)
            akey = keys.step_attempts_key(scope.tenant_id, scope.execution_id, step_id)
            raw, latest = await self._run(
                "HGET", akey, lambda: self._get_attempt(key, akey, attempt)
            )
            where = f"{akey}#{attempt}"
            if raw is None and latest is not None:
                raw, where = latest, key  # written by an engine that keeps only the latest
        if raw is None:
            return None
        env = check_envelope_at(StepEnvelope.from_json(raw, where=where), scope, step_id, where)
        if attempt is not None and env.attempt != attempt:
            return None
        return await self._load(scope, env, where) if data else env

    async def _get_attempt(
        self, key: str, akey: str, attempt: int
    ) -> tuple[bytes | None, bytes | None]:
        pipe = self._r.pipeline(transaction=False)
        pipe.hget(akey, str(attempt))
        pipe.get(key)
        raw, latest = await pipe.execute()
        return raw, latest

    async def _load(self, scope: ExecutionScope, env: StepEnvelope, where: str) -> StepEnvelope:
        if env.data_ref is not None and env.data is None:
            path = cold_data_path(scope, env)
            read = functools.partial(self.cold.read_frame, env.data_ref, path, where=where)
            return msgspec.structs.replace(env, data=await async_run_blocking(read))
        return env

    async def scan_step(
        self, scope: ExecutionScope, step_id: str, attempt: int | None = None
    ) -> pl.LazyFrame:
        """A Polars LazyFrame over a stored step's data (the latest attempt, or ``attempt``).

        Cold-tier Parquet is scanned lazily after the integrity checks of :meth:`get_step`
        (reference, size, row count, sha256), so filters and projections push down into
        the scan; inline rows are decoded with their schema's dtypes.

        Raises
        ------
        InvalidKeyError
            No such step (or attempt) is stored.
        ColdTierError
            The envelope's cold data is missing, altered or outside the cold tier.
        """
        env = await self.get_step(scope, step_id, attempt, data=False)
        if env is None:
            raise no_step_error(scope, step_id, attempt, "scan_step")
        if env.data_ref is None or env.data is not None:
            return env.to_polars().lazy()
        where = keys.step_key(scope.tenant_id, scope.execution_id, step_id)
        scan = functools.partial(self.cold.scan_frame, env.data_ref, where=where)
        return cast("pl.LazyFrame", await async_run_blocking(scan, cold_data_path(scope, env)))

    async def get_steps(
        self, scope: ExecutionScope, step_ids: list[str], *, data: bool = True
    ) -> list[StepEnvelope | None]:
        """The latest attempt of each of ``step_ids`` in one round trip (None where absent).

        ``data=False`` leaves cold-tier data unread, as in :meth:`get_step`.
        """
        step_keys = keys.step_keys_of(scope.tenant_id, scope.execution_id, step_ids)
        if not step_keys:
            return []
        where = keys.execution_prefix(scope.tenant_id, scope.execution_id)
        # A cluster splits a multi-key read per slot (not atomic: neither is a batch of GETs).
        mget = self._r.mget_nonatomic if self._cluster else self._r.mget
        raws: list[Any] = await self._run("MGET", where, lambda: mget(step_keys))
        missing = [key for key, raw in zip(step_keys, raws, strict=True) if raw is None]
        if missing and await self._run("EXISTS", where, lambda: self._r.exists(*missing)):
            # MGET answers nil for a key holding another type; GET names it (WRONGTYPE).
            for i, key in enumerate(step_keys):
                if raws[i] is None:
                    raws[i] = await self._run("GET", key, functools.partial(self._r.get, key))
        out: list[StepEnvelope | None] = []
        decoded = decode_envelopes(raws, step_keys)
        for step, key, env in zip(step_ids, step_keys, decoded, strict=True):
            if env is None:
                out.append(None)
                continue
            checked = check_envelope_at(env, scope, step, key)
            out.append(await self._load(scope, checked, key) if data else checked)
        return out

    async def get_execution(
        self, scope: ExecutionScope, *, data: bool = True
    ) -> list[StepEnvelope]:
        """The latest attempt of every step (sorted by step id).

        ``data=False`` leaves cold-tier data unread, as in :meth:`get_step`.
        """
        steps = await self.list_steps(scope)
        return [env for env in await self.get_steps(scope, steps, data=data) if env is not None]

    async def delete_execution(self, scope: ExecutionScope) -> int:
        """Delete every key of an execution and its cold objects; return the keys deleted."""
        removed = await self._evict(scope)  # reads the tenant's index first: NOPERM before cold
        prefix = keys.cold_execution_prefix(scope.tenant_id, scope.execution_id)
        await async_run_blocking(self.cold.delete_prefix, prefix)
        return removed


def create_async_valkey_execution_context_store(
    url: str | None = None,
    *,
    logger: LoggerLike | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    cold_store: Any = None,
    inline_limit_bytes: int = DEFAULT_INLINE_LIMIT,
    data_dir: str | os.PathLike[str] | None = None,
    min_replicas: int = 0,
) -> AsyncExecutionContextStore:
    """Open the execution context store; the caller owns it (close it when done).

    Parameters
    ----------
    url
        Valkey URL; else ``$VALKEY_URL``; else an embedded server started on demand
        (persistent with ``data_dir``).
    logger
        Any logger with debug/info/warning/error; health transitions are logged to it.
    timeout
        Seconds within which each call completes or raises StoreUnavailableError.
    retries
        Retries of a failed connection or timeout, within ``timeout``.
    cold_store
        Local directory, object-store URL or obstore store for large data; default
        ``$EXECCTX_COLD_STORE``, else ``{data_dir}/cold``, else ``~/.cache/execctx_nb/cold``.
    inline_limit_bytes
        Envelopes larger than this keep their data in the cold tier.
    data_dir
        Data directory for the embedded server (AOF) and the default cold tier.
    min_replicas
        Replicas that must confirm each write (``WAIT``) before it returns (default 0).
    """
    return AsyncExecutionContextStore(
        resolve_url(url, data_dir=data_dir),
        logger=logger,
        timeout=timeout,
        retries=retries,
        cold_store=cold_store,
        inline_limit_bytes=inline_limit_bytes,
        data_dir=data_dir,
        min_replicas=min_replicas,
    )
