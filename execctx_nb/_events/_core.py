"""The subscriber's records, configuration, backoff and error classification (no I/O)."""

from __future__ import annotations

import os
import random
import secrets
import socket
from dataclasses import dataclass
from typing import Literal

import msgspec
import valkey

from execctx_nb import keys
from execctx_nb._connection._common import tls_failure
from execctx_nb.errors import EventStreamError, InvalidArgumentError, StoreUnavailableError

__all__ = [
    "Backoff",
    "CONNECTION_ERRORS",
    "FORBIDDEN_ERRORS",
    "EventMeta",
    "MAX_COUNT",
    "SubscriberConfig",
    "SubscriberHealth",
    "SubscriberStats",
    "default_consumer_name",
    "is_nogroup",
    "is_unknown_command",
    "is_transient",
    "new_token",
    "refused",
    "tls_refused",
    "text",
    "validate_count",
]
CONNECTION_ERRORS = (
    valkey.exceptions.ConnectionError,
    valkey.exceptions.TimeoutError,
    OSError,
    # A cluster mid-failover (a primary down, its replica not promoted yet): an outage too.
    valkey.exceptions.ClusterError,
    valkey.exceptions.ValkeyClusterException,
)
MAX_COUNT = 1000  # Lua's unpack() takes ~8000 values: acks of one batch stay far below


def text(value: bytes | str) -> str:
    """A reply as str (clients may or may not decode responses)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def is_unknown_command(exc: BaseException) -> bool:
    """True for a server that lacks a command (e.g. MSETEX before Valkey 9.1)."""
    return (
        isinstance(exc, valkey.exceptions.ResponseError) and "unknown command" in str(exc).lower()
    )


def _reply(exc: BaseException) -> str:
    # The server's error text: valkey-py prefixes an error raised inside a pipeline with
    # "Command # n (...) of pipeline caused error: ".
    message = str(exc)
    return message.rpartition(" of pipeline caused error: ")[2]


def is_nogroup(exc: BaseException) -> bool:
    """True for the server's NOGROUP reply (the group or the stream is gone)."""
    return isinstance(exc, valkey.exceptions.ResponseError) and _reply(exc).startswith("NOGROUP")


# Refusals that pass by themselves: memory freed (OOM), a failover done (READONLY,
# MASTERDOWN), a failed disk write retried (MISCONF), a slow script finished (BUSY). A
# backend consumer backs off and waits them out, as it does for an outage, instead of dying.
_TRANSIENT_CODES = frozenset({"MISCONF", "BUSY", "MASTERDOWN", "TRYAGAIN", "NOREPLICAS"})


def is_transient(exc: BaseException) -> bool:
    """True for a server refusal that clears without the client changing anything."""
    if isinstance(exc, valkey.exceptions.OutOfMemoryError | valkey.exceptions.ReadOnlyError):
        return True
    return (
        isinstance(exc, valkey.exceptions.ResponseError)
        and _reply(exc).split(" ", 1)[0] in _TRANSIENT_CODES
    )


FORBIDDEN_ERRORS = (
    valkey.exceptions.NoPermissionError,
    valkey.exceptions.AuthenticationError,
    valkey.exceptions.AuthorizationError,
)
"""Refusals by authentication or ACL: permanent, never retried as an outage."""


def refused(exc: BaseException, stream: str) -> EventStreamError:
    """The error for a command the server refused (not NOGROUP): ACL, wrong key type, OOM."""
    if isinstance(exc, FORBIDDEN_ERRORS):
        return EventStreamError(
            f"The server refused a command on `{stream}`: forbidden ({type(exc).__name__}:"
            f" {exc}) - check the user name, password and the user's ACL: it needs the"
            " commands and the key pattern ~t:<tenant>:* that docs/security.md lists"
        )
    return EventStreamError(
        f"The server refused a command on `{stream}`: {exc} - check that the"
        " key holds a stream and the server's maxmemory"
    )


def tls_refused(exc: BaseException, stream: str) -> StoreUnavailableError:
    """The error for a failed TLS handshake on the stream's connection (never retried)."""
    from execctx_nb._connection._health import tls_message

    tls = tls_failure(exc)
    return StoreUnavailableError(
        tls_message(
            tls if tls is not None else exc, url="the server", op="the stream read", where=stream
        )
    )


def default_consumer_name() -> str:
    """``{hostname}-{pid}``: unique per process, readable in ``XINFO CONSUMERS``."""
    host = "".join(c if c.isalnum() or c in "-_." else "-" for c in socket.gethostname())[:100]
    return f"{host or 'host'}-{os.getpid()}"


class EventMeta(msgspec.Struct, frozen=True, kw_only=True):
    """What a handler learns about the delivery of one event.

    Attributes
    ----------
    stream_id
        Id of the stream entry (a duplicate publish has another id, same key).
    idempotency_key
        The entry's ``idem`` field: the group handles each key once.
    delivery_count
        1 on first delivery; more after a handler raised or a consumer died.
    tenant_id, group, consumer, kind
        Where it came from, who handles it, and the event kind.
    """

    stream_id: str
    idempotency_key: str
    delivery_count: int
    tenant_id: str
    group: str
    consumer: str
    kind: str

    @property
    def redelivered(self) -> bool:
        """True when an earlier delivery did not finish."""
        return self.delivery_count > 1


SubscriberState = Literal["starting", "ok", "unavailable", "stopped"]


class SubscriberHealth(msgspec.Struct, frozen=True, kw_only=True):
    """A named health state of a subscriber.

    ``lost_state`` turns True (and stays) once the consumer group had to be recreated: the
    server lost it (restart without persistence), so events and done marks may be lost.
    """

    state: SubscriberState
    lost_state: bool = False
    last_error: str | None = None
    failures: int = 0


@dataclass
class SubscriberStats:
    """Counters of one subscriber (cumulative over its run loops)."""

    handled: int = 0
    """Handler calls that returned."""
    failed: int = 0
    """Handler calls that raised (the entry is retried)."""
    duplicates: int = 0
    """Entries acknowledged without a handler call: their key was done already."""
    busy: int = 0
    """Entries left pending because another consumer held the key's lease."""
    reclaimed: int = 0
    """Entries taken over with XAUTOCLAIM."""
    dead_lettered: int = 0
    """Entries moved to the dead-letter stream."""
    skipped: int = 0
    """Entries of other executions (a run loop given an ExecutionScope), acknowledged."""
    groups_recreated: int = 0
    """Times the consumer group was missing and recreated (lost server state)."""


@dataclass(frozen=True)
class SubscriberConfig:
    """Tuning of a subscriber (validated once)."""

    group: str
    consumer: str
    min_idle_ms: int = 30_000
    lease_ms: int = 30_000
    max_deliveries: int = 5
    dedup_ttl_s: int = 7 * 24 * 3600
    claim_interval_s: float = 5.0
    shutdown_timeout_s: float = 5.0
    start_id: str = "0"

    def __post_init__(self) -> None:
        keys.validate_id(self.group, kind="consumer group", where="group")
        keys.validate_id(self.consumer, kind="consumer name", where="consumer")
        for name in ("min_idle_ms", "lease_ms", "max_deliveries", "dedup_ttl_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(
                    f"Invalid {name} {value!r}: expected an int >= 1 - at `{name}`"
                )
        for name in ("claim_interval_s", "shutdown_timeout_s"):
            if not getattr(self, name) > 0:
                raise InvalidArgumentError(
                    f"Invalid {name} {getattr(self, name)!r}: expected seconds > 0 - at `{name}`"
                )


def validate_count(count: int, block_ms: int) -> None:
    """Check run-loop arguments: ``1 <= count <= 1000``, ``block_ms >= 1``."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise InvalidArgumentError(
            f"Invalid count {count!r}: expected an int from 1 to {MAX_COUNT} - at `count`"
        )
    if isinstance(block_ms, bool) or not isinstance(block_ms, int) or block_ms < 1:
        raise InvalidArgumentError(
            f"Invalid block_ms {block_ms!r}: expected an int >= 1 - at `block_ms`"
            " (0 would block forever and never see the stop event)"
        )


class Backoff:
    """Jittered exponential backoff from ``base`` to ``cap`` seconds (never a busy loop)."""

    def __init__(self, base: float = 0.1, cap: float = 5.0) -> None:
        self.base, self.cap, self.failures = base, cap, 0
        # Its own generator: jitter must not draw from (and so disturb) the global random
        # state that the application, or a test framework, relies on.
        self._rng = random.Random()

    def next(self) -> float:
        self.failures += 1
        high = min(self.cap, self.base * 2.0 ** (self.failures - 1))
        return high / 2 + self._rng.random() * high / 2

    def reset(self) -> None:
        self.failures = 0


def new_token(consumer: str) -> str:
    """The lease value of one subscriber: ``i:{consumer}:{nonce}``."""
    return f"i:{consumer}:{secrets.token_hex(6)}"
