"""Named health states of the store and the one boundary that translates valkey errors.

Every valkey-py exception the store meets passes through :func:`translate`, which returns
an execctx_nb error (never a valkey one) and the :class:`HealthState` the error reveals.
:class:`HealthMonitor` keeps the latest state and logs each transition once.
"""

from __future__ import annotations

import contextvars
import enum
import threading
from typing import Any

import valkey.exceptions as vx

from execctx_nb._connection._common import tls_failure
from execctx_nb._log import LoggerLike
from execctx_nb.errors import EnvelopeDecodeError, StoreError, StoreUnavailableError

__all__ = ["HealthMonitor", "HealthState", "classify", "tls_message", "translate"]


class HealthState(enum.StrEnum):
    """What the store last saw of its server.

    ``healthy``: the last call succeeded at once. ``degraded``: it succeeded only after
    retries, or the server reports a persistence error or lost its data on a restart.
    ``unavailable``: refused, reset or timed out. ``loading``: the server is loading its
    dataset. ``read_only``: a replica or a read-only server. ``out_of_memory``: writes
    refused under ``maxmemory``. ``forbidden``: authentication or ACL denied the command.
    """

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNAVAILABLE = "unavailable"
    LOADING = "loading"
    READ_ONLY = "read_only"
    OUT_OF_MEMORY = "out_of_memory"
    FORBIDDEN = "forbidden"


_ADVICE = {
    HealthState.UNAVAILABLE: (
        "check that the server runs and is reachable (the store reconnects by itself);"
        " if it is only slow, create the store with a larger `timeout`"
    ),
    HealthState.LOADING: "the server is loading its dataset; retry in a moment",
    HealthState.READ_ONLY: "the server is a replica or read-only; point the store at the primary",
    HealthState.OUT_OF_MEMORY: "the server hit maxmemory; free memory or raise maxmemory",
    HealthState.FORBIDDEN: "check the user name, password and ACL key patterns (~t:<tenant>:*)",
}


def classify(exc: BaseException) -> HealthState | None:
    """The health state a valkey (or socket) error reveals; None for a plain command error."""
    if isinstance(exc, vx.BusyLoadingError):
        return HealthState.LOADING
    if isinstance(exc, vx.AuthenticationError | vx.AuthorizationError | vx.NoPermissionError):
        return HealthState.FORBIDDEN
    if isinstance(exc, vx.ReadOnlyError):
        return HealthState.READ_ONLY
    if isinstance(exc, vx.OutOfMemoryError):
        return HealthState.OUT_OF_MEMORY
    if isinstance(exc, vx.ConnectionError | vx.TimeoutError | OSError):
        return HealthState.UNAVAILABLE
    if isinstance(exc, vx.ResponseError):
        text = str(exc)
        for prefix, state in (
            ("NOAUTH", HealthState.FORBIDDEN),
            ("WRONGPASS", HealthState.FORBIDDEN),
            ("NOPERM", HealthState.FORBIDDEN),
            ("MISCONF", HealthState.DEGRADED),
            ("LOADING", HealthState.LOADING),
            ("READONLY", HealthState.READ_ONLY),
            ("OOM", HealthState.OUT_OF_MEMORY),
        ):
            if text.startswith(prefix):
                return state
    return None


def _seconds(value: float) -> str:
    return f"{value:.1f}" if value >= 1 else f"{value:.2f}"


def tls_message(tls: BaseException, *, url: str, op: str, where: str) -> str:
    """What a failed TLS handshake means, and what to do (it is never retried)."""
    reason = getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or tls
    return (
        f"TLS to Valkey at {url} failed at {op}: {reason} ({type(tls).__name__}) - at"
        f" `{where}`; the server's certificate is not trusted or does not match its name:"
        " pass the CA in the URL (?ssl_ca_certs=/path/to/ca.pem) or fix the certificate;"
        " retrying cannot help"
    )


_CLUSTER_ERRORS = {
    "MOVED": "the key lives on another node: this client talks to one node of a Valkey Cluster;"
    " create the store without cluster=False (any node's URL gives a cluster client)",
    "ASK": "the key's slot is migrating between cluster nodes: this client is not a cluster"
    " client; create the store without cluster=False",
    "CROSSSLOT": "one command touched keys of several cluster slots; this is a bug of the"
    " caller or of an old execctx_nb key layout (see docs/wire-format.md, Valkey Cluster)",
    "CLUSTERDOWN": "the cluster cannot serve this slot (a primary failed and no replica took"
    " over yet, or slots are unassigned); retry when it is healthy again",
    "TRYAGAIN": "the cluster is resharding this slot; retry in a moment",
}


_CLUSTER_TYPES: dict[str, type[BaseException]] = {
    "MOVED": vx.MovedError,
    "ASK": vx.AskError,
    "CROSSSLOT": vx.ClusterCrossSlotError,
    "CLUSTERDOWN": vx.ClusterDownError,
    "TRYAGAIN": vx.TryAgainError,
}


def cluster_message(exc: BaseException, *, url: str, op: str, where: str) -> str | None:
    """A cluster-specific explanation of ``exc`` (MOVED, ASK, CROSSSLOT, CLUSTERDOWN ...)."""
    text = str(exc)
    name = type(exc).__name__
    for code, advice in _CLUSTER_ERRORS.items():
        if text.startswith(code) or isinstance(exc, _CLUSTER_TYPES[code]):
            return f"Valkey at {url} answered {op} with {code} ({text}) - at `{where}`: {advice}"
    if isinstance(exc, vx.ClusterError | vx.ValkeyClusterException):
        return (
            f"The Valkey Cluster at {url} failed {op} ({name}: {text}) - at `{where}`; check that"
            " every slot is served (CLUSTER INFO: cluster_state:ok)"
        )
    return None


def translate(
    exc: BaseException, *, op: str, where: str, url: str, timeout: float, elapsed: float
) -> tuple[StoreError | EnvelopeDecodeError, HealthState | None]:
    """Map a dependency exception to the package's error and the health state it reveals.

    ``elapsed`` is how long the call ran before giving up, ``timeout`` its configured bound:
    the call may stop well before the bound, when no further attempt (each up to the
    per-attempt socket timeout) could finish within it. ``WRONGTYPE`` means a key of ours
    holds the wrong kind of value: that is malformed data, reported as
    :class:`EnvelopeDecodeError` naming the key.
    """
    tls = tls_failure(exc)
    if tls is not None:
        return StoreUnavailableError(tls_message(tls, url=url, op=op, where=where)), (
            HealthState.UNAVAILABLE
        )
    cluster = cluster_message(exc, url=url, op=op, where=where)
    if cluster is not None:
        return StoreUnavailableError(cluster), HealthState.UNAVAILABLE
    state = classify(exc)
    detail = f"{type(exc).__name__}: {exc}"
    if state is not None and state is not HealthState.DEGRADED:
        if state is HealthState.UNAVAILABLE:
            early = (
                "; another attempt could not have finished within the bound"
                if elapsed < 0.9 * timeout
                else ""
            )
            head = (
                f"Valkey at {url} did not answer {op}: gave up after {_seconds(elapsed)} s"
                f" (bound {timeout:g} s{early}) ({detail}) - at `{where}`; the call did not"
                " complete (a write sent to a hung server may still be applied when it"
                " resumes; repeating it is safe, store writes are idempotent)"
            )
        else:
            head = (
                f"Valkey at {url} refused {op}: server is {state.value} ({detail}) - at"
                f" `{where}`; the call was not applied"
            )
        return StoreUnavailableError(f"{head}: {_ADVICE[state]}"), state
    if isinstance(exc, vx.ResponseError) and str(exc).startswith("WRONGTYPE"):
        return EnvelopeDecodeError(
            f"Malformed value at key {where!r}: expected the type the protocol pins"
            f" (see docs/wire-format.md), got a key of another type ({detail}); delete or fix"
            " the key"
        ), None
    return StoreError(f"Valkey at {url} rejected {op} ({detail}) - at `{where}`"), state


class HealthMonitor:
    """The latest health state of one store; logs every transition.

    The retry listener marks the current call as retried (per thread / asyncio task), so
    a call that succeeds after retries reports ``degraded`` rather than ``healthy``.
    """

    def __init__(self, logger: LoggerLike, url: str) -> None:
        self._logger = logger
        self._url = url
        self._lock = threading.Lock()
        self._state = HealthState.HEALTHY
        self._reason = "no call yet"
        self._retried: contextvars.ContextVar[bool] = contextvars.ContextVar(
            f"retried-{id(self)}", default=False
        )

    @property
    def state(self) -> HealthState:
        return self._state

    @property
    def reason(self) -> str:
        return self._reason

    def on_retry(self, error: BaseException) -> None:
        """Retry listener for the client factories."""
        self._retried.set(True)
        self._logger.debug(
            "execctx store %s: retrying after %s: %s", self._url, type(error).__name__, error
        )

    def begin(self) -> contextvars.Token[bool]:
        return self._retried.set(False)

    def success(self, token: contextvars.Token[bool] | None = None) -> None:
        retried = self._retried.get()
        if token is not None:
            self._retried.reset(token)
        if not retried and self._state is HealthState.HEALTHY:
            return  # the hot path: nothing changes
        if retried:
            self.set(HealthState.DEGRADED, "the last call succeeded only after retries")
        else:
            self.set(HealthState.HEALTHY, "the last call succeeded")

    def failure(
        self, state: HealthState | None, reason: str, token: contextvars.Token[bool] | None = None
    ) -> None:
        if token is not None:
            self._retried.reset(token)
        if state is not None:
            self.set(state, reason)

    def set(self, state: HealthState, reason: str) -> None:
        with self._lock:
            previous, self._state, self._reason = self._state, state, reason
        if previous is not state:
            log: Any = self._logger.info if state is HealthState.HEALTHY else self._logger.warning
            log(
                "execctx store %s: health %s -> %s (%s)",
                self._url,
                previous.value,
                state.value,
                reason,
            )
