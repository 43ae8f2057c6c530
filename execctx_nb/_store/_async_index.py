"""Listings from an index: what a tenant holds costs the tenant's size, not the keyspace's.

Two sorted sets inside the tenant's prefix (so a tenant-restricted ACL covers them), scored by
the time (Unix ms) an entry was first written: ``t:{tenantId}:executions`` (execution ids)
and ``t:{tenantId}:exec:{executionId}:index`` (step ids). Every write adds to them in the same
round trip as the put script (``ZADD NX``: idempotent). A tenant written only by an engine that
does not keep the index is still read: with no tenant index at all, listings fall back to a
SCAN of the tenant's prefix, and :meth:`reindex` builds the index once (docs/wire-format.md).

Part of the store, written once: ``scripts/unasync.py`` makes ``_store/_sync_index.py`` from
``_store/_async_index.py``.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, TypeVar

from execctx_nb import keys
from execctx_nb._records import ExecutionScope
from execctx_nb._store._async_parts import AsyncStoreParts
from execctx_nb._store._common import EVICT_BATCH
from execctx_nb.errors import InvalidKeyError

__all__ = ["AsyncIndex", "index_commands"]

T = TypeVar("T")


def index_commands(scope: ExecutionScope, step_ids: list[str]) -> list[tuple[Any, ...]]:
    """The ``ZADD NX`` commands that index a batch of writes of one execution."""
    now = int(time.time() * 1000)
    members: list[Any] = []
    for step in dict.fromkeys(step_ids):
        members += [now, step]
    return [
        ("ZADD", keys.executions_index_key(scope.tenant_id), "NX", now, scope.execution_id),
        ("ZADD", keys.steps_index_key(scope.tenant_id, scope.execution_id), "NX", *members),
    ]


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _valid_ids(members: Any) -> list[str]:
    # The index is read back: a member no key could be built from (planted, or written by a
    # broken engine) is left out rather than failing the whole listing.
    out = []
    for member in members:
        try:
            out.append(keys.validate_id(_text(member)))
        except InvalidKeyError:
            continue
    return out


class AsyncIndex(AsyncStoreParts):
    """The listing methods of the store (a part: the store provides ``_run`` and the rest)."""

    async def _step_ids(self, scope: ExecutionScope) -> list[str]:
        """The execution's step ids from its index; a tenant without any index is scanned."""
        index = keys.steps_index_key(scope.tenant_id, scope.execution_id)
        tenant_index = keys.executions_index_key(scope.tenant_id)

        async def read() -> tuple[list[Any], int]:
            pipe = self._r.pipeline(transaction=False)
            pipe.zrange(index, 0, -1)
            pipe.exists(tenant_index)
            members, indexed = await pipe.execute()
            return members, int(indexed)

        # Both keys lie in the tenant's prefix: a user who may not read it gets NOPERM here,
        # before anything is scanned or touched (no separate access probe needed).
        members, indexed = await self._run("ZRANGE", index, read)
        if indexed:
            return sorted(_valid_ids(members))
        pattern = keys.steps_pattern(scope.tenant_id, scope.execution_id)
        found = await self._run("SCAN", pattern, lambda: self._scan(pattern))
        skip = len(pattern) - 1
        return sorted({_text(k)[skip:] for k in found})

    async def list_steps(self, scope: ExecutionScope) -> list[str]:
        """Sorted step ids of an execution (from the index: no keyspace scan)."""
        return await self._step_ids(scope)

    async def list_executions(self, tenant_id: str) -> list[str]:
        """Sorted ids of the executions of one tenant (from the index: no keyspace scan)."""
        return sorted(e for e, _ in await self.recent_executions(tenant_id))

    async def list_tenants(self) -> list[str]:
        """Sorted ids of the tenants that have a listing index.

        A keyspace scan (``SCAN MATCH t:*:executions``): an operator's call, for a user whose
        ACL spans tenants; a tenant-restricted user sees only their own tenant, or nothing.
        """
        pattern = keys.TENANTS_PATTERN
        found = await self._run("SCAN", pattern, lambda: self._scan(pattern))
        return sorted({t for k in found if (t := keys.parse_tenant_index_key(k)) is not None})

    async def recent_executions(
        self, tenant_id: str, limit: int | None = None
    ) -> list[tuple[str, dt.datetime]]:
        """``(execution id, first write time)`` of a tenant's executions, newest first.

        The time is when the first step of the execution was written (through this store,
        or when :meth:`reindex` found it). A tenant without an index is scanned instead,
        and its times are then unknown (the Unix epoch).
        """
        index = keys.executions_index_key(tenant_id)
        stop = -1 if limit is None else max(0, limit) - 1
        # The index is the tenant's key: reading it checks the caller may (NOPERM otherwise).
        rows = await self._run(
            "ZRANGE", index, lambda: self._r.zrange(index, 0, stop, desc=True, withscores=True)
        )
        if rows:
            valid = set(_valid_ids(m for m, _ in rows))
            return [
                (_text(m), dt.datetime.fromtimestamp(min(max(score, 0), 2**43) / 1000, dt.UTC))
                for m, score in rows
                if _text(m) in valid
            ]
        pattern = keys.executions_pattern(tenant_id)
        found = await self._run("SCAN", pattern, lambda: self._scan(pattern))
        ids = sorted({i for k in found if (i := keys.parse_execution_key(k, tenant_id))})
        epoch = dt.datetime.fromtimestamp(0, dt.UTC)
        return [(i, epoch) for i in ids[: limit if limit is not None else len(ids)]]

    async def reindex(self, tenant_id: str) -> int:
        """Build the tenant's listing index from a scan of its step keys; return the steps.

        For data written by an engine that writes only step keys. Idempotent (``ZADD NX``);
        run it once after such writes (it scans the keyspace, as the listings otherwise would).
        """
        pattern = keys.executions_pattern(tenant_id)
        await self._check_access("SCAN", keys.tenant_probe_key(tenant_id))
        found = await self._run("SCAN", pattern, lambda: self._scan(pattern))
        by_execution: dict[str, list[str]] = {}
        for key in found:
            tenant, execution, step = keys.parse_step_key(key)
            if tenant == tenant_id:
                by_execution.setdefault(execution, []).append(step)

        async def write() -> None:
            pipe = self._r.pipeline(transaction=False)
            for execution, steps in by_execution.items():
                for command in index_commands(ExecutionScope(tenant_id, execution), steps):
                    pipe.execute_command(*command)
            await pipe.execute()

        if by_execution:
            await self._run("ZADD", keys.executions_index_key(tenant_id), write)
        return sum(len(s) for s in by_execution.values())

    async def _evict(self, scope: ExecutionScope) -> int:
        """Delete the execution's hot keys (steps, attempts, lease) and its index entries;
        return how many data keys were deleted."""
        tenant, execution = scope.tenant_id, scope.execution_id
        found = [keys.lease_key(tenant, execution)]
        for step in await self._step_ids(scope):
            found.extend(keys.step_keys(tenant, execution, step))

        async def unlink() -> int:
            removed = 0
            for i in range(0, len(found), EVICT_BATCH):  # bounded commands: no huge UNLINK
                removed += int(await self._r.unlink(*found[i : i + EVICT_BATCH]))
            await self._r.unlink(keys.steps_index_key(tenant, execution))
            await self._r.zrem(keys.executions_index_key(tenant), execution)
            return removed

        return await self._run("UNLINK", keys.execution_prefix(tenant, execution), unlink)
