"""Flow variables of the store, and the one-command writes confirmed by replicas.

Part of the store, written once: ``scripts/unasync.py`` makes ``_store/_sync_flow.py`` from
``_store/_async_flow.py``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from execctx_nb import keys
from execctx_nb._store._async_parts import AsyncStoreParts
from execctx_nb._store._common import decode_flow_vars, encode_flow_vars

__all__ = ["AsyncFlowVars"]

T = TypeVar("T")


def _flat(fields: dict[str, bytes]) -> list[Any]:
    return [item for pair in fields.items() for item in pair]


class AsyncFlowVars(AsyncStoreParts):
    """The flow-variable methods of the store (a part: the store provides the rest)."""

    async def _confirmed(self, key: str, command: tuple[Any, ...]) -> Any:
        """Run one write command, then (with ``min_replicas``) WAIT on its connection."""
        if not self.min_replicas:
            return await self._r.execute_command(*command)
        pipe = self._r.pipeline(transaction=False)
        pipe.execute_command(*command)
        waits = self._add_waits(pipe, [key])
        replies = await pipe.execute()
        self._check_waits(replies[len(replies) - waits :], key)
        return replies[0]

    async def get_flow_vars(self, tenant_id: str, flow_id: str) -> dict[str, Any]:
        """A flow's variables (JSON values), sorted by name; {} when none."""
        key = keys.flow_vars_key(tenant_id, flow_id)
        raw = await self._run("HGETALL", key, lambda: self._r.hgetall(key))
        return decode_flow_vars(raw, key=key)

    async def set_flow_vars(self, tenant_id: str, flow_id: str, mapping: dict[str, Any]) -> None:
        """Set (merge) flow variables; values must be JSON-encodable."""
        key = keys.flow_vars_key(tenant_id, flow_id)
        fields = encode_flow_vars(mapping)
        if fields:
            await self._run(
                "HSET", key, lambda: self._confirmed(key, ("HSET", key, *_flat(fields)))
            )

    async def delete_flow_vars(
        self, tenant_id: str, flow_id: str, names: list[str] | None = None
    ) -> int:
        """Delete some (or all) of a flow's variables; return how many were removed."""
        key = keys.flow_vars_key(tenant_id, flow_id)
        if names is None:
            return int(await self._run("DEL", key, lambda: self._confirmed(key, ("DEL", key))))
        if not names:
            return 0
        return int(
            await self._run("HDEL", key, lambda: self._confirmed(key, ("HDEL", key, *names)))
        )
