"""The one place that builds valkey-py clients, with settings that bound every call in time.

valkey-py's defaults are unsafe for a store that must never hang or drop a write silently:
``socket_timeout=None`` blocks forever on a frozen server, a refused connection bypasses
``Retry`` unless the builtin ``OSError`` is in ``retry_on_error``, and retrying a
non-idempotent command (``XADD *``, ``INCR``) can apply it twice. The factories here set:

- ``socket_timeout`` / ``socket_connect_timeout`` per attempt, TCP keepalive, and a
  ``health_check_interval`` PING on connections that sat idle;
- a :class:`BoundedRetry` with jittered exponential backoff that never starts an attempt it
  could not finish before the call's deadline, so a whole call (connect, health-check PING,
  command and every retry) takes at most ``timeout`` seconds;
- ``retries=0`` for clients that send non-idempotent commands: pass it explicitly.

A deadline can also span several calls (:func:`deadline`): the store wraps each public
method in one, so a method that sends three commands still answers within ``timeout``.

Examples
--------
>>> from execctx_nb._connection import make_client, resolve_url
>>> client = make_client(resolve_url(), timeout=2.0)          # doctest: +SKIP
>>> publisher = make_client(resolve_url(), retries=0)          # doctest: +SKIP  (XADD *)
>>> tail = make_blocking_client(resolve_url(), block_ms=5000)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import valkey.asyncio
import valkey.asyncio.cluster
import valkey.asyncio.retry
import valkey.asyncio.sentinel
from valkey.backoff import AbstractBackoff, EqualJitterBackoff

from execctx_nb._connection._common import (
    CLUSTER_UNSUPPORTED,
    DEADLINE,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    HEALTH_CHECK_INTERVAL,
    RETRY_ON_ERROR,
    SENTINEL_SCHEMES,
    BoundedMixin,
    RetryListener,
    attempt_timeout,
    blocking_kwargs,
    client_kwargs,
    cluster_seed,
    for_url,
    is_cluster,
    parse_sentinel_url,
    tls_failure,
)

__all__ = [
    "BLOCKING_POOL_SIZE",
    "AsyncBoundedRetry",
    "AsyncClient",
    "blocking_twin",
    "make_async_blocking_client",
    "make_async_client",
]

T = TypeVar("T")

BLOCKING_POOL_SIZE = 4
"""Connections a blocking-read client may open (one per concurrent BLOCK read)."""

AsyncClient = valkey.asyncio.Valkey | valkey.asyncio.cluster.ValkeyCluster
"""A client of one server, or of a Valkey Cluster (routing each key to its slot's node)."""


def _client_for(url: str, kwargs: dict[str, Any], cluster: bool | None, timeout: float) -> Any:
    if url.startswith(SENTINEL_SCHEMES):
        # Sentinel: the pool asks the sentinels for the current primary on every connect,
        # and a primary demoted by a failover (READONLY) drops the connection, so the
        # bounded retry reconnects to the new one.
        sentinels, service, settings = parse_sentinel_url(url)
        bound = kwargs.get("socket_timeout", timeout)
        sentinel_type: Any = valkey.asyncio.sentinel.Sentinel  # partly unannotated
        manager = sentinel_type(
            sentinels,
            sentinel_kwargs={"socket_timeout": bound, "socket_connect_timeout": bound},
            **{k: v for k, v in kwargs.items() if k not in ("client_name",)},
            **settings,
        )
        return manager.master_for(service)
    if cluster is None:
        cluster = is_cluster(url, timeout)
    if cluster:
        # Any node's URL: the cluster client reads the slot map from it and routes by key.
        kwargs = {k: v for k, v in kwargs.items() if k not in CLUSTER_UNSUPPORTED}
        cluster_type: Any = valkey.asyncio.cluster.ValkeyCluster  # partly unannotated
        return cluster_type.from_url(url, **kwargs)
    return valkey.asyncio.Valkey.from_url(url, **for_url(url, kwargs))


class AsyncBoundedRetry(BoundedMixin, valkey.asyncio.retry.Retry):
    """valkey-py ``Retry`` that respects a deadline.

    Parameters
    ----------
    timeout
        Seconds the whole call may take when no ambient :func:`deadline` is set.
    attempt_timeout
        The longest one attempt can take (the socket timeout).
    retries
        At most this many retries; 0 disables them (non-idempotent commands).
    on_retry
        Called with each error that is retried.
    backoff
        valkey-py backoff policy; jittered exponential from 20 ms up to 250 ms by default.
    """

    __slots__ = ("attempt_timeout", "max_retries", "on_retry", "timeout")

    def __init__(
        self,
        *,
        timeout: float,
        attempt_timeout: float,
        retries: int,
        on_retry: RetryListener | None = None,
        backoff: AbstractBackoff | None = None,
    ) -> None:
        supported: Any = RETRY_ON_ERROR  # valkey-py annotates these as ValkeyError subclasses only
        super().__init__(backoff or EqualJitterBackoff(cap=0.25, base=0.01), retries, supported)
        self._setup(
            timeout=timeout, attempt_timeout=attempt_timeout, retries=retries, on_retry=on_retry
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> AsyncBoundedRetry:
        # valkey-py deep-copies the policy per connection; share the listener, not a copy of
        # whatever object it is bound to.
        return AsyncBoundedRetry(
            timeout=self.timeout,
            attempt_timeout=self.attempt_timeout,
            retries=self.max_retries,
            on_retry=self.on_retry,
            backoff=self._backoff,
        )

    async def call_with_retry(
        self, do: Callable[[], Awaitable[T]], fail: Callable[[Any], Awaitable[Any]]
    ) -> T:
        outer = DEADLINE.get()
        end = outer if outer is not None else time.monotonic() + self.timeout
        token = DEADLINE.set(end) if outer is None else None  # nested calls share the budget
        try:
            self._backoff.reset()  # type: ignore[no-untyped-call]
            failures = 0
            while True:
                try:
                    return await do()
                except self._supported_errors as error:
                    if tls_failure(error) is not None:
                        raise  # a certificate does not get better by asking again
                    failures += 1
                    await fail(error)
                    backoff = self._backoff.compute(failures)
                    if not self._may_retry(failures, backoff, end):
                        raise
                    self._notify(error)
                    if backoff > 0:
                        await asyncio.sleep(backoff)
        finally:
            if token is not None:
                DEADLINE.reset(token)


def make_async_client(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    on_retry: RetryListener | None = None,
    health_check_interval: int = HEALTH_CHECK_INTERVAL,
    client_name: str | None = None,
    max_connections: int | None = None,
    cluster: bool | None = None,
) -> AsyncClient:
    """A client whose every call ends within ``timeout`` seconds (retries included).

    Parameters
    ----------
    url
        ``redis://``, ``rediss://``, ``valkey://`` or ``unix://`` URL (see :func:`resolve_url`).
    timeout
        Upper bound in seconds for one call: connect, health-check PING, command, retries.
    retries
        Retries for connection errors and timeouts. Use ``retries=0`` for a client that
        sends non-idempotent commands (``XADD *``, ``INCR``, ``LPUSH``): a retry after a
        lost reply would apply them twice.
    on_retry
        Listener called with each retried error.
    health_check_interval
        PING a connection idle this many seconds before using it (0 disables).
    client_name
        ``CLIENT SETNAME`` value, shown by ``CLIENT LIST``.
    max_connections
        Pool size limit (None: unbounded, as valkey-py).
    cluster
        True for a Valkey Cluster client, False for a single server; None (default) asks
        the server (:func:`is_cluster`), so the URL of any cluster node works.
    """
    attempt = attempt_timeout(timeout, retries)
    kwargs = client_kwargs(timeout, retries, attempt, health_check_interval, client_name)
    kwargs["retry"] = AsyncBoundedRetry(
        timeout=timeout, attempt_timeout=attempt, retries=retries, on_retry=on_retry
    )
    if max_connections is not None:
        kwargs["max_connections"] = max_connections
    client: AsyncClient = _client_for(url, kwargs, cluster, timeout)
    return client


def make_async_blocking_client(
    url: str,
    *,
    block_ms: int,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = 0,
    on_retry: RetryListener | None = None,
    cluster: bool | None = None,
) -> AsyncClient:
    """A client for blocking reads (``XREAD``/``XREADGROUP ... BLOCK block_ms``), on its own pool.

    Its socket timeout is ``block_ms / 1000 + timeout``, so an empty poll is not mistaken
    for a dead server, while a frozen server is still noticed ``timeout`` seconds after
    the BLOCK would have ended. ``retries`` defaults to 0 because ``XREADGROUP ... >``
    moves entries to the pending list: a retried read after a lost reply would leave them
    pending for XAUTOCLAIM instead of delivering them. A tail using plain ``XREAD`` may
    pass ``retries > 0``. The pool holds at most :data:`BLOCKING_POOL_SIZE` connections.
    """
    attempt, kwargs = blocking_kwargs(block_ms, timeout, retries)
    kwargs["retry"] = AsyncBoundedRetry(
        timeout=attempt * (retries + 1), attempt_timeout=attempt, retries=retries, on_retry=on_retry
    )
    kwargs["max_connections"] = BLOCKING_POOL_SIZE
    client: AsyncClient = _client_for(url, kwargs, cluster, timeout)
    return client


def blocking_twin(client: AsyncClient, block_ms: int) -> AsyncClient:
    """A client like ``client`` on its own pool, with a socket timeout above ``block_ms``.

    For blocking reads through a client the caller made (its URL, password and TLS
    settings are reused); the pool holds at most :data:`BLOCKING_POOL_SIZE` connections
    (per node, for a cluster client).
    """
    attempt, _ = blocking_kwargs(block_ms, DEFAULT_TIMEOUT, 0)
    retry = AsyncBoundedRetry(timeout=attempt, attempt_timeout=attempt, retries=0)
    if isinstance(client, valkey.asyncio.cluster.ValkeyCluster):
        host, port, kwargs = cluster_seed(client)
        kwargs.update(socket_timeout=attempt, health_check_interval=0, retry=retry)
        kwargs["max_connections"] = BLOCKING_POOL_SIZE
        cluster_type: Any = valkey.asyncio.cluster.ValkeyCluster
        twin: AsyncClient = cluster_type(host=host, port=port, **kwargs)
        return twin
    pool = client.connection_pool
    kwargs = dict(pool.connection_kwargs)
    kwargs.update(socket_timeout=attempt, health_check_interval=0, retry=retry)
    if isinstance(pool, valkey.asyncio.sentinel.SentinelConnectionPool):
        pool_type: Any = valkey.asyncio.sentinel.SentinelConnectionPool
        sentinel_pool = pool_type(
            pool.service_name, pool.sentinel_manager, max_connections=BLOCKING_POOL_SIZE, **kwargs
        )
        return valkey.asyncio.Valkey.from_pool(sentinel_pool)
    twin_pool = type(pool)(
        connection_class=pool.connection_class, max_connections=BLOCKING_POOL_SIZE, **kwargs
    )
    return valkey.asyncio.Valkey.from_pool(twin_pool)
