"""AsyncExecutionContextStore: the asyncio twin of :class:`ExecutionContextStore`.

Same methods, same keys, same script, same errors and health states, awaited; ``aclose``
instead of ``close`` and ``async with``. Cold-tier work (Parquet encoding, object-store
transfers) runs in a worker thread so the event loop stays responsive (widgets, services).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import os
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

import msgspec
import valkey
import valkey.asyncio

from execctx_nb import keys
from execctx_nb._cold import ColdTier, default_cold_location
from execctx_nb._connection import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    make_async_client,
    pop_deadline,
    push_deadline,
    resolve_url,
)
from execctx_nb._health import HealthMonitor, HealthState, translate
from execctx_nb._log import LoggerLike, get_logger
from execctx_nb._records import ExecutionScope, StepEnvelope
from execctx_nb._store_common import (
    ACQUIRE_SCRIPT,
    DEFAULT_INLINE_LIMIT,
    PUT_SCRIPT,
    Archive,
    Lease,
    check_conflict,
    check_envelope_at,
    check_scope,
    client_or_error,
    cold_envelope,
    data_parquet,
    decode_envelopes,
    decode_flow_vars,
    encode_flow_vars,
    envelope_json,
    fill_envelope,
    fits_inline,
    new_lease_token,
    no_archive,
    parse_probe,
    put_args,
    put_chunks,
    put_results,
    validate_ttl,
)
from execctx_nb.errors import EnvelopeDecodeError, LeaseError, StoreError

__all__ = ["AsyncExecutionContextStore", "create_async_valkey_execution_context_store"]

T = TypeVar("T")
_VALKEY_ERRORS = (valkey.exceptions.ValkeyError, OSError)
_Plan = tuple[str, str, int, bytes, StepEnvelope]


class AsyncExecutionContextStore:
    """The execution context store for asyncio code; see :class:`ExecutionContextStore`.

    Examples
    --------
    >>> async with create_async_valkey_execution_context_store() as store:  # doctest: +SKIP
    ...     await store.get_step(ExecutionScope("org_42", "run-1"), "clean")
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
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.inline_limit_bytes = inline_limit_bytes
        self._logger = get_logger(logger)
        self._health = HealthMonitor(self._logger, url)
        self._cold_location = (
            cold_store if cold_store is not None else default_cold_location(data_dir)
        )
        self._cold: ColdTier | None = None
        self.client: valkey.asyncio.Valkey = client_or_error(
            make_async_client,
            url,
            timeout=timeout,
            retries=retries,
            on_retry=self._health.on_retry,
            client_name="execctx_nb",
        )
        self._r: Any = self.client  # see ExecutionContextStore: valkey-py's annotations
        self._put_sha = self.client.register_script(PUT_SCRIPT).sha
        self._acquire_script = self.client.register_script(ACQUIRE_SCRIPT)
        self._run_id: str | None = None
        self._closed = False

    # -- plumbing ----------------------------------------------------------------------
    @property
    def cold(self) -> ColdTier:
        if self._cold is None:
            self._cold = ColdTier(self._cold_location)
        return self._cold

    @property
    def health(self) -> HealthState:
        """The health state seen by the last call."""
        return self._health.state

    @property
    def health_reason(self) -> str:
        return self._health.reason

    async def _run(self, op: str, where: str, fn: Callable[[], Awaitable[T]]) -> T:
        """The async boundary for valkey exceptions, under the call deadline."""
        if self._closed:
            raise StoreError(f"The store for {self.url} is closed - at `{op}`; create a new one")
        token = self._health.begin()
        started = time.monotonic()
        bound = push_deadline(self.timeout)
        try:
            result = await fn()
        except _VALKEY_ERRORS as exc:
            error, state = translate(
                exc,
                op=op,
                where=where,
                url=self.url,
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
        return f"AsyncExecutionContextStore({self.url!r}, health={self.health.value!r})"

    async def __aenter__(self) -> AsyncExecutionContextStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections; the store cannot be used afterwards."""
        if not self._closed:
            self._closed = True
            await self._r.aclose()

    async def check_health(self) -> HealthState:
        """Probe the server (PING and INFO); see ExecutionContextStore.check_health."""
        info = await self._run("INFO", "server", lambda: self._r.info("everything"))
        state, reason, run_id = parse_probe(info, self._run_id)
        self._run_id = run_id
        self._health.set(state, reason)
        return state

    async def _scan(self, pattern: str) -> list[bytes]:
        return [key async for key in self._r.scan_iter(match=pattern, count=1000)]

    # -- steps -------------------------------------------------------------------------
    async def put_step(self, scope: ExecutionScope, envelope: StepEnvelope) -> StepEnvelope:
        """Store one attempt of a step idempotently; return the envelope as stored."""
        return (await self.put_steps(scope, [envelope]))[0]

    async def put_steps(
        self, scope: ExecutionScope, envelopes: list[StepEnvelope]
    ) -> list[StepEnvelope]:
        """Store several envelopes of one execution in one round trip (see the sync store)."""
        plans = [await self._plan(scope, envelope) for envelope in envelopes]
        if not plans:
            return []
        where = (
            plans[0][0]
            if len(plans) == 1
            else keys.execution_prefix(scope.tenant_id, scope.execution_id)
        )
        replies = await self._run("put_step", where, lambda: self._send_put(plans))
        return put_results(plans, replies, envelopes)

    async def _send_put(self, plans: list[_Plan]) -> list[Any]:
        chunks = put_chunks(plans)  # EVALSHA by hand: see the sync store
        try:
            return await self._eval_put(chunks)
        except valkey.exceptions.NoScriptError:
            await self._r.script_load(PUT_SCRIPT)
            return await self._eval_put(chunks)

    async def _eval_put(self, chunks: list[list[_Plan]]) -> list[Any]:
        if len(chunks) == 1:
            reply: list[Any] = await self._r.execute_command(*put_args(self._put_sha, chunks[0]))
            return reply
        pipe = self._r.pipeline(transaction=False)
        for chunk in chunks:
            pipe.execute_command(*put_args(self._put_sha, chunk))
        return [r for replies in await pipe.execute() for r in replies]

    async def _plan(self, scope: ExecutionScope, envelope: StepEnvelope) -> _Plan:
        check_scope(scope, envelope)
        env = fill_envelope(envelope)
        key, akey = keys.step_keys(scope.tenant_id, env.execution_id, env.step_id)
        if (
            env.data is not None
            and env.data_ref is None
            and fits_inline(env.data, self.inline_limit_bytes)
        ):
            wire = envelope_json(env)
            if len(wire) <= self.inline_limit_bytes:
                return key, akey, env.attempt, wire, env
        if env.data is None:
            return key, akey, env.attempt, envelope_json(env), env
        payload, rows = await asyncio.to_thread(data_parquet, env)
        path = keys.cold_step_data_path(scope.tenant_id, env.execution_id, env.step_id, env.attempt)
        existing = await self._run("HGET", akey, lambda: self._r.hget(akey, str(env.attempt)))
        if existing is not None:  # see the sync store: never overwrite other data
            wire, stored = cold_envelope(env, self.cold.uri(path), payload, rows)
            check_conflict(existing, wire, key=akey, attempt=env.attempt)
        digest = await asyncio.to_thread(self.cold.put_hashed, path, payload)
        wire, stored = cold_envelope(env, self.cold.uri(path), payload, rows, digest)
        return key, akey, env.attempt, wire, stored

    async def get_step(
        self, scope: ExecutionScope, step_id: str, attempt: int | None = None
    ) -> StepEnvelope | None:
        """The latest attempt of a step (or ``attempt``), data loaded; None when absent."""
        key = keys.step_key(scope.tenant_id, scope.execution_id, step_id)
        if attempt is None:
            raw = await self._run("GET", key, lambda: self._r.get(key))
            where = key
        else:
            keys.validate_attempt(attempt)
            akey = keys.step_attempts_key(scope.tenant_id, scope.execution_id, step_id)

            async def both() -> list[Any]:
                pipe = self._r.pipeline(transaction=False)
                pipe.hget(akey, str(attempt))
                pipe.get(key)
                replies: list[Any] = await pipe.execute()
                return replies

            raw, latest = await self._run("HGET", akey, both)
            where = f"{akey}#{attempt}"
            if raw is None and latest is not None:
                raw, where = latest, key
        if raw is None:
            return None
        env = check_envelope_at(StepEnvelope.from_json(raw, where=where), scope, step_id, where)
        if attempt is not None and env.attempt != attempt:
            return None
        return await self._load(env)

    async def _load(self, env: StepEnvelope) -> StepEnvelope:
        if env.data is None and env.data_ref is not None:
            data = await asyncio.to_thread(self.cold.read_frame, env.data_ref)
            return msgspec.structs.replace(env, data=data)
        return env

    async def list_steps(self, scope: ExecutionScope) -> list[str]:
        """Sorted step ids of an execution."""
        pattern = keys.steps_pattern(scope.tenant_id, scope.execution_id)
        found = await self._run("SCAN", pattern, lambda: self._scan(pattern))
        skip = len(pattern) - 1
        return sorted({k.decode()[skip:] for k in found})

    async def get_steps(
        self, scope: ExecutionScope, step_ids: list[str]
    ) -> list[StepEnvelope | None]:
        """The latest attempt of each of ``step_ids`` in one round trip (None where absent)."""
        step_keys = [keys.step_key(scope.tenant_id, scope.execution_id, s) for s in step_ids]
        if not step_keys:
            return []
        where = keys.execution_prefix(scope.tenant_id, scope.execution_id)
        raws: list[Any] = await self._run("MGET", where, lambda: self._r.mget(step_keys))
        missing = [key for key, raw in zip(step_keys, raws, strict=True) if raw is None]
        if missing and await self._run("EXISTS", where, lambda: self._r.exists(*missing)):
            # MGET answers nil for a key holding another type; GET names it (WRONGTYPE).
            for i, key in enumerate(step_keys):
                if raws[i] is None:
                    raws[i] = await self._run("GET", key, functools.partial(self._r.get, key))
        out: list[StepEnvelope | None] = []
        for step, key, env in zip(
            step_ids, step_keys, decode_envelopes(raws, step_keys), strict=True
        ):
            out.append(
                None if env is None else await self._load(check_envelope_at(env, scope, step, key))
            )
        return out

    async def get_execution(self, scope: ExecutionScope) -> list[StepEnvelope]:
        """The latest attempt of every step (sorted by step id), data loaded."""
        return [
            env
            for env in await self.get_steps(scope, await self.list_steps(scope))
            if env is not None
        ]

    async def list_executions(self, tenant_id: str) -> list[str]:
        """Sorted ids of the executions of one tenant (a SCAN bounded to its prefix)."""
        pattern = keys.executions_pattern(tenant_id)
        found = await self._run("SCAN", pattern, lambda: self._scan(pattern))
        ids = {keys.parse_execution_key(k, tenant_id) for k in found}
        return sorted(i for i in ids if i is not None)

    async def delete_execution(self, scope: ExecutionScope) -> int:
        """Delete every key of an execution and its cold objects; return the keys deleted."""
        removed = await self._run(
            "UNLINK",
            keys.execution_pattern(scope.tenant_id, scope.execution_id),
            lambda: self._evict(scope),
        )
        await asyncio.to_thread(
            self.cold.delete_prefix, keys.cold_execution_prefix(scope.tenant_id, scope.execution_id)
        )
        return removed

    async def _evict(self, scope: ExecutionScope) -> int:
        found = await self._scan(keys.execution_pattern(scope.tenant_id, scope.execution_id))
        removed = 0
        for i in range(0, len(found), 500):
            removed += int(await self._r.unlink(*found[i : i + 500]))
        return removed

    # -- flow vars ---------------------------------------------------------------------
    async def get_flow_vars(self, tenant_id: str, flow_id: str) -> dict[str, Any]:
        """A flow's variables (JSON values), sorted by name; {} when none."""
        key = keys.flow_vars_key(tenant_id, flow_id)
        return decode_flow_vars(
            await self._run("HGETALL", key, lambda: self._r.hgetall(key)), key=key
        )

    async def set_flow_vars(self, tenant_id: str, flow_id: str, mapping: dict[str, Any]) -> None:
        """Set (merge) flow variables; values must be JSON-encodable."""
        key = keys.flow_vars_key(tenant_id, flow_id)
        fields = encode_flow_vars(mapping)
        if fields:
            await self._run("HSET", key, lambda: self._r.hset(key, mapping=fields))

    async def delete_flow_vars(
        self, tenant_id: str, flow_id: str, names: list[str] | None = None
    ) -> int:
        """Delete some (or all) of a flow's variables; return how many were removed."""
        key = keys.flow_vars_key(tenant_id, flow_id)
        if names is None:
            return int(await self._run("DEL", key, lambda: self._r.delete(key)))
        return int(await self._run("HDEL", key, lambda: self._r.hdel(key, *names))) if names else 0

    # -- leases ------------------------------------------------------------------------
    async def acquire_lease(self, scope: ExecutionScope, owner: str, ttl_ms: int) -> Lease | None:
        """Take the execution's lease for ``ttl_ms``; None when another owner holds it."""
        token, ttl = new_lease_token(owner), validate_ttl(ttl_ms)
        key = keys.lease_key(scope.tenant_id, scope.execution_id)
        got = await self._run(
            "SET NX", key, lambda: self._acquire_script(keys=[key], args=[token, ttl])
        )
        if not int(got):
            return None
        return Lease(
            tenant_id=scope.tenant_id,
            execution_id=scope.execution_id,
            owner=owner,
            token=token,
            ttl_ms=ttl,
        )

    async def renew_lease(self, lease: Lease, ttl_ms: int | None = None) -> Lease:
        """Extend a held lease (SET IFEQ); raise LeaseError if it expired or was taken."""
        ttl = validate_ttl(lease.ttl_ms if ttl_ms is None else ttl_ms)
        key = lease.key
        ok = await self._run(
            "SET IFEQ",
            key,
            lambda: self._r.execute_command(
                "SET", key, lease.token, "IFEQ", lease.token, "PX", ttl
            ),
        )
        if not ok:
            raise LeaseError(
                f"Lease on execution {lease.execution_id!r} held by {lease.owner!r} was lost (expired"
                f" or taken) - at `{key}`; stop the work it protected and acquire it again"
            )
        return msgspec.structs.replace(lease, ttl_ms=ttl)

    async def release_lease(self, lease: Lease) -> bool:
        """Release a held lease (DELIFEQ); False when it had already expired or been taken."""
        key = lease.key
        return bool(
            await self._run(
                "DELIFEQ", key, lambda: self._r.execute_command("DELIFEQ", key, lease.token)
            )
        )

    # -- archive -----------------------------------------------------------------------
    async def archive_execution(
        self, scope: ExecutionScope, flow_id: str, *, evict: bool = False
    ) -> str:
        """Write every attempt of every step to the archive path; return its URI."""
        path = keys.cold_archive_path(scope.tenant_id, flow_id, scope.execution_id)
        pattern = keys.step_attempts_pattern(scope.tenant_id, scope.execution_id)

        async def collect() -> list[tuple[bytes, dict[bytes, bytes]]]:
            found = await self._scan(pattern)
            pipe = self._r.pipeline(transaction=False)
            for key in found:
                pipe.hgetall(key)
            return list(zip(found, await pipe.execute(), strict=True))

        envelopes = [
            StepEnvelope.from_json(raw, where=f"{k.decode()}#{f.decode()}")
            for k, hashes in await self._run("HGETALL", pattern, collect)
            for f, raw in hashes.items()
        ]
        envelopes.sort(key=lambda e: (e.step_id, e.attempt))
        archive = Archive(
            tenant_id=scope.tenant_id,
            flow_id=flow_id,
            execution_id=scope.execution_id,
            archived_at=dt.datetime.now(dt.UTC),
            envelopes=tuple(envelopes),
        )
        await asyncio.to_thread(self.cold.put_bytes, path, msgspec.json.encode(archive))
        if evict:
            await self._run("UNLINK", scope.execution_id, lambda: self._evict(scope))
        return self.cold.uri(path)

    async def restore_execution(
        self, tenant_id: str, flow_id: str, execution_id: str
    ) -> list[StepEnvelope]:
        """Write an archived execution back (idempotently); return its latest envelopes."""
        path = keys.cold_archive_path(tenant_id, flow_id, execution_id)
        raw = await asyncio.to_thread(
            self.cold.get_bytes, path, missing=no_archive(self.cold, path, flow_id, execution_id)
        )
        try:
            archive = msgspec.json.decode(raw, type=Archive)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise EnvelopeDecodeError(f"Invalid archive at {self.cold.uri(path)!r}: {exc}") from exc
        if archive.tenant_id != tenant_id or archive.execution_id != execution_id:
            raise EnvelopeDecodeError(
                f"Archive at {self.cold.uri(path)!r} holds {archive.tenant_id}/{archive.execution_id}:"
                f" expected {tenant_id}/{execution_id}"
            )
        scope = ExecutionScope(tenant_id, execution_id)
        if archive.envelopes:
            await self.put_steps(scope, list(archive.envelopes))
        return await self.get_execution(scope)


def create_async_valkey_execution_context_store(
    url: str | None = None,
    *,
    logger: LoggerLike | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    cold_store: Any = None,
    inline_limit_bytes: int = DEFAULT_INLINE_LIMIT,
    data_dir: str | os.PathLike[str] | None = None,
) -> AsyncExecutionContextStore:
    """Open the asyncio store; the parameters are those of create_valkey_execution_context_store."""
    return AsyncExecutionContextStore(
        resolve_url(url, data_dir=data_dir),
        logger=logger,
        timeout=timeout,
        retries=retries,
        cold_store=cold_store,
        inline_limit_bytes=inline_limit_bytes,
        data_dir=data_dir,
    )
