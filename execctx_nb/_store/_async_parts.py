"""What every part of the store may call on the store: declared once, for the parts' types.

The store is assembled from parts (index, leases, archives, flow vars), each a mixin in its
own module. This base declares, in one place, the store's members they call; the store (or
the part that owns one, e.g. the index for ``_step_ids``) overrides each. Written once:
``scripts/unasync.py`` makes ``_store/_sync_parts.py`` from ``_store/_async_parts.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from execctx_nb._records import ExecutionScope, StepEnvelope
from execctx_nb._store._cold import ColdTier

__all__ = ["AsyncStoreParts"]

T = TypeVar("T")


class AsyncStoreParts:
    """The members of the store its parts rely on (each raises until overridden)."""

    _r: Any
    _acquire_script: Any
    min_replicas: int

    @property
    def cold(self) -> ColdTier:
        raise NotImplementedError

    async def _run(self, op: str, where: str, fn: Callable[[], Awaitable[T]]) -> T:
        raise NotImplementedError  # the store's boundary for valkey exceptions

    async def _check_access(self, op: str, key: str) -> None:
        raise NotImplementedError

    async def _scan(self, pattern: str) -> list[bytes]:
        raise NotImplementedError

    async def _step_ids(self, scope: ExecutionScope) -> list[str]:
        raise NotImplementedError  # the index part

    async def _evict(self, scope: ExecutionScope) -> int:
        raise NotImplementedError  # the index part

    def _add_waits(self, pipe: Any, written: list[str]) -> int:
        raise NotImplementedError

    def _check_waits(self, counts: list[Any], where: str) -> None:
        raise NotImplementedError

    async def put_steps(
        self, scope: ExecutionScope, envelopes: list[StepEnvelope]
    ) -> list[StepEnvelope]:
        raise NotImplementedError

    async def get_execution(
        self, scope: ExecutionScope, *, data: bool = True
    ) -> list[StepEnvelope]:
        raise NotImplementedError
