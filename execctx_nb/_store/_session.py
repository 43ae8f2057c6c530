"""The notebook's shared store: one per URL and settings, lent to every cell as a handle.

:func:`connect` opens the store once and returns a *borrowed handle* on each call, so
``with connect() as store:`` in one cell closes that cell's handle, never the store the
magics, the widgets and the other cells use (the way a ``requests.Session`` belongs to its
creator). :func:`disconnect` closes a shared store for good.
"""

from __future__ import annotations

import threading
from typing import Any

from execctx_nb._connection._common import resolve_url
from execctx_nb._store._sync import (
    ExecutionContextStore,
    create_valkey_execution_context_store,
)

__all__ = ["connect", "disconnect"]

_SHARED: dict[tuple[str, tuple[tuple[str, str], ...]], ExecutionContextStore] = {}
_LOCK = threading.Lock()


def _memo(url: str | None, settings: dict[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    resolved = resolve_url(url, data_dir=settings.get("data_dir"))
    return resolved, tuple(sorted((k, repr(v)) for k, v in settings.items()))


def connect(url: str | None = None, **settings: Any) -> ExecutionContextStore:
    """A handle on the kernel's shared store for ``url`` and ``settings``.

    The first call opens the store (the parameters are those of
    :func:`create_valkey_execution_context_store`); later calls with the same URL and
    settings lend a new handle on it. Closing a handle closes only that handle, so a
    cell's ``with connect() as store:`` leaves the shared store open for everyone else.
    Thread-safe.

    Examples
    --------
    >>> import execctx_nb as ec
    >>> with ec.connect() as store:        # doctest: +SKIP
    ...     store.list_executions("acme")
    >>> ec.connect().closed                # doctest: +SKIP
    False
    """
    memo = _memo(url, settings)
    with _LOCK:
        shared = _SHARED.get(memo)
        if shared is None or shared.closed:
            shared = _SHARED[memo] = create_valkey_execution_context_store(memo[0], **settings)
        return shared.borrow()


def disconnect(url: str | None = None, **settings: Any) -> bool:
    """Close the shared store of ``connect(url, **settings)`` for good.

    Every handle on it stops working (calls raise StoreError saying it is closed); the
    next :func:`connect` opens a new one. Returns False when no such store was open.
    """
    memo = _memo(url, settings)
    with _LOCK:
        shared = _SHARED.pop(memo, None)
    if shared is None or shared.closed:
        return False
    shared.close()
    return True
