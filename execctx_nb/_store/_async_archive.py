"""Archives of the store: every attempt of an execution in one cold-tier object, and back.

Part of the store, written once: ``scripts/unasync.py`` makes ``_store/_sync_archive.py`` from
``_store/_async_archive.py``.

Archiving is idempotent under any sequence of archive / evict / archive / restore: a new
archive keeps every envelope of the one it replaces (hot envelopes are added), and an
archive with nothing new is not rewritten. Cold-tier work happens only after one of the
tenant's keys was read with the caller's own credentials (the cold tier is shared: a user
who may not read ``t:acme:*`` must not archive, restore or delete acme's objects).
"""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

import msgspec

from execctx_nb import keys
from execctx_nb._concurrency import async_run_blocking
from execctx_nb._records import ExecutionScope, StepEnvelope
from execctx_nb._store._async_parts import AsyncStoreParts
from execctx_nb._store._common import Archive, no_archive
from execctx_nb.errors import ColdTierError, EnvelopeDecodeError

__all__ = ["AsyncArchives"]

T = TypeVar("T")


class AsyncArchives(AsyncStoreParts):
    """The archive methods of the store (a part: the store provides the rest)."""

    async def archive_execution(
        self, scope: ExecutionScope, flow_id: str, *, evict: bool = False
    ) -> str:
        """Write every attempt of every step to the archive path; return its URI.

        Cold data stays where it is (the archived envelopes reference it). An existing
        archive keeps every envelope it holds: archiving again (a retried job, or after an
        eviction) adds what is hot and never loses what was archived. With ``evict`` the
        execution's hot keys are deleted once the archive is written.

        Raises
        ------
        StoreUnavailableError
            The server is unreachable, or the credentials may not read this tenant
            (``forbidden``): then nothing in the cold tier is touched.
        """
        path = keys.cold_archive_path(scope.tenant_id, flow_id, scope.execution_id)
        attempts = [
            keys.step_attempts_key(scope.tenant_id, scope.execution_id, step)
            for step in await self._step_ids(scope)
        ]
        where = keys.execution_prefix(scope.tenant_id, scope.execution_id)
        hashes = await self._run("HGETALL", where, lambda: self._collect_attempts(attempts))
        hot = {
            (env.step_id, env.attempt): env
            for k, fields in hashes
            for f, raw in fields.items()
            for env in [StepEnvelope.from_json(raw, where=f"{k.decode()}#{f.decode()}")]
        }
        existing = await self._read_archive(path, scope.tenant_id, scope.execution_id)
        kept = {(e.step_id, e.attempt): e for e in (existing.envelopes if existing else ())}
        merged = {**kept, **hot}
        envelopes = tuple(merged[k] for k in sorted(merged))
        if existing is None or envelopes != existing.envelopes:
            archive = Archive(
                tenant_id=scope.tenant_id,
                flow_id=flow_id,
                execution_id=scope.execution_id,
                archived_at=dt.datetime.now(dt.UTC),
                envelopes=envelopes,
            )
            await async_run_blocking(self.cold.put_bytes, path, msgspec.json.encode(archive))
        if evict:
            await self._evict(scope)
        return self.cold.uri(path)

    async def _collect_attempts(self, found: list[str]) -> list[tuple[bytes, dict[bytes, bytes]]]:
        pipe = self._r.pipeline(transaction=False)
        for key in found:
            pipe.hgetall(key)
        return [(k.encode(), h) for k, h in zip(found, await pipe.execute(), strict=True)]

    async def _read_archive(self, path: str, tenant_id: str, execution_id: str) -> Archive | None:
        if await async_run_blocking(self.cold.size, path) is None:
            return None
        raw = await async_run_blocking(self.cold.get_bytes, path)
        try:
            archive = msgspec.json.decode(raw, type=Archive)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
            raise EnvelopeDecodeError(
                f"Invalid archive at {self.cold.uri(path)!r}: {exc} - move it aside and"
                " archive the execution again"
            ) from exc
        if archive.tenant_id != tenant_id or archive.execution_id != execution_id:
            raise EnvelopeDecodeError(
                f"Archive at {self.cold.uri(path)!r} holds"
                f" {archive.tenant_id}/{archive.execution_id}: expected {tenant_id}/{execution_id}"
            )
        return archive

    async def restore_execution(
        self, tenant_id: str, flow_id: str, execution_id: str
    ) -> list[StepEnvelope]:
        """Write an archived execution back (idempotently); return its latest envelopes.

        Raises
        ------
        ColdTierError
            There is no archive for this flow and execution, or an archived reference does
            not name its step's own object.
        EnvelopeDecodeError
            The archive is malformed or holds another execution.
        StoreUnavailableError
            The server is unreachable, or the credentials may not read this tenant.
        """
        path = keys.cold_archive_path(tenant_id, flow_id, execution_id)
        scope = ExecutionScope(tenant_id, execution_id)
        await self._check_access("HSET", keys.lease_key(tenant_id, execution_id))
        archive = await self._read_archive(path, tenant_id, execution_id)
        if archive is None:
            raise ColdTierError(no_archive(self.cold, path, flow_id, execution_id))
        if archive.envelopes:
            await self.put_steps(scope, list(archive.envelopes))
        return await self.get_execution(scope)
