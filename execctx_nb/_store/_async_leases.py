"""Execution leases of the store: acquire (SET NX), renew (SET IFEQ), release (DELIFEQ).

Part of the store, written once: ``scripts/unasync.py`` makes ``_store/_sync_leases.py`` from
``_store/_async_leases.py``.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec

from execctx_nb import keys
from execctx_nb._records import ExecutionScope
from execctx_nb._store._async_parts import AsyncStoreParts
from execctx_nb._store._common import Lease, new_lease_token, validate_ttl
from execctx_nb.errors import LeaseError

__all__ = ["AsyncLeases"]

T = TypeVar("T")


class AsyncLeases(AsyncStoreParts):
    """The lease methods of the store (a part: the store provides ``_run`` and the script)."""

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
        """Extend a held lease (SET IFEQ).

        Raises
        ------
        LeaseError
            The lease expired or was taken: stop the work it protected.
        """
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
                f"Lease on execution {lease.execution_id!r} held by {lease.owner!r} was lost"
                f" (expired or taken) - at `{key}`; stop the work it protected and acquire it"
                " again"
            )
        return msgspec.structs.replace(lease, ttl_ms=ttl)

    async def release_lease(self, lease: Lease) -> bool:
        """Release a held lease (DELIFEQ); False when it had already expired or been taken."""
        key = lease.key
        released = await self._run(
            "DELIFEQ", key, lambda: self._r.execute_command("DELIFEQ", key, lease.token)
        )
        return bool(released)
