"""What the store shares besides the write path: reads, leases, flow vars, archives, probes.

Nothing here does I/O; the store (one source for both APIs) calls these around its client calls.
"""

from __future__ import annotations

import datetime as dt
import gc
import math
import os
import secrets
import threading
from typing import Any

import msgspec
import valkey

from execctx_nb import keys
from execctx_nb._connection._common import redact_url
from execctx_nb._connection._health import HealthState
from execctx_nb._records import ExecutionScope, StepEnvelope
from execctx_nb._store._cold import ColdTier, default_cold_location
from execctx_nb.errors import (
    EnvelopeDecodeError,
    InvalidKeyError,
    StoreError,
    StoreUnavailableError,
)

__all__ = [
    "EVICT_BATCH",
    "SharedState",
    "ACQUIRE_SCRIPT",
    "Archive",
    "Lease",
    "check_envelope_at",
    "client_or_error",
    "decode_envelopes",
    "decode_flow_vars",
    "encode_flow_vars",
    "new_lease_token",
    "no_archive",
    "parse_probe",
    "validate_ttl",
]
# Acquire: take a free lease, or confirm our own token (a retried acquire whose first reply
# was lost must not report the lease as held by someone else).
ACQUIRE_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

EVICT_BATCH = 500
"""Keys per UNLINK when an execution is deleted or evicted (bounded commands)."""


class SharedState:
    """What a store shares with the handles borrowed from it: open/closed, cold tier, probe.

    Thread-safe: the cold tier is opened once, the store is closed once.
    """

    def __init__(
        self, cold_store: Any, data_dir: str | os.PathLike[str] | None, timeout: float = 2.0
    ) -> None:
        self.location = cold_store if cold_store is not None else default_cold_location(data_dir)
        self.timeout = timeout
        self.closed = False
        self.run_id: str | None = None  # the server's run_id at the last probe
        self._cold: ColdTier | None = None
        self._lock = threading.Lock()

    def cold(self) -> ColdTier:
        """The cold tier, opened on first use."""
        with self._lock:
            if self._cold is None:
                self._cold = ColdTier(self.location, timeout=self.timeout)
            return self._cold

    def close(self) -> bool:
        """Mark the store closed; True for the one call that closed it."""
        with self._lock:
            was_open, self.closed = not self.closed, True
            return was_open


class Lease(msgspec.Struct, frozen=True, kw_only=True):
    """A fenced lease on one execution: only the holder of ``token`` can renew or release it."""

    tenant_id: str
    execution_id: str
    owner: str
    token: str
    ttl_ms: int

    @property
    def key(self) -> str:
        return keys.lease_key(self.tenant_id, self.execution_id)


def new_lease_token(owner: str) -> str:
    """``{owner}:{random}``: unique per acquisition, so a stale holder can never match."""
    if not isinstance(owner, str) or not owner:
        raise InvalidKeyError(
            f"Invalid lease owner {owner!r}: expected a non-empty str - at `owner`"
        )
    return f"{owner}:{secrets.token_hex(12)}"


def validate_ttl(ttl_ms: object) -> int:
    if isinstance(ttl_ms, bool) or not isinstance(ttl_ms, int) or ttl_ms <= 0:
        raise InvalidKeyError(f"Invalid lease ttl_ms {ttl_ms!r}: expected an int > 0 - at `ttl_ms`")
    return ttl_ms


def client_or_error(factory: Any, url: str, **kwargs: Any) -> Any:
    """Build a client, turning a malformed URL or an unreachable cluster into our errors."""
    try:
        return factory(url, **kwargs)
    except ValueError as exc:
        raise StoreError(
            f"Invalid Valkey URL {redact_url(url)!r}: {exc} - at `url`; expected redis://host:port,"
            " rediss://host:port, valkey://host:port or unix:///path"
        ) from exc
    except (valkey.exceptions.ValkeyError, OSError) as exc:
        # A cluster client reads the slot map when it is made: no node answered.
        raise StoreUnavailableError(
            f"Could not reach the Valkey Cluster at {redact_url(url)}: {type(exc).__name__}:"
            f" {exc} - at `url`; give the URL of a node that runs (any node of the cluster)"
        ) from exc


def decode_envelopes(raws: list[bytes | None], where: list[str]) -> list[StepEnvelope | None]:
    """Decode a batch of wire envelopes (None stays None), naming the key of a bad one.

    The cyclic garbage collector is paused meanwhile: a decoded envelope is dozens of
    containers, and while a batch is being built every collection walks the batch so far
    (and, once it is promoted, the whole heap: ~100k objects in a process that imported
    Polars). That cost 40% of a 100-envelope read here. Decoded JSON holds no reference
    cycles, so pausing loses nothing; a collector that was disabled stays disabled.
    """
    enabled = gc.isenabled()
    if enabled and len(raws) > 1:
        gc.disable()
    try:
        return [
            None if raw is None else StepEnvelope.from_json(raw, where=key)
            for raw, key in zip(raws, where, strict=True)
        ]
    finally:
        if enabled:
            gc.enable()


def check_envelope_at(
    envelope: StepEnvelope, scope: ExecutionScope, step_id: str, key: str
) -> StepEnvelope:
    """Reject a decoded envelope that does not belong where it was found."""
    if envelope.execution_id != scope.execution_id or envelope.step_id != step_id:
        raise EnvelopeDecodeError(
            f"Envelope at key {key!r} names execution {envelope.execution_id!r} step"
            f" {envelope.step_id!r}: expected execution {scope.execution_id!r} step {step_id!r};"
            " the key holds another step's data - rewrite or delete it"
        )
    return envelope


_FLOW_ENCODER = msgspec.json.Encoder()


def encode_flow_vars(mapping: dict[str, Any]) -> dict[str, bytes]:
    """Flow vars as a hash: field name -> JSON value (so types round-trip)."""
    if not isinstance(mapping, dict):
        raise InvalidKeyError(
            f"Invalid flow vars {type(mapping).__name__}: expected a dict - at `mapping`"
        )
    out: dict[str, bytes] = {}
    for name, value in mapping.items():
        if not isinstance(name, str) or not name:
            raise InvalidKeyError(
                f"Invalid flow var name {name!r}: expected a non-empty str - at `mapping`"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidKeyError(
                f"Invalid flow var {name!r}: {value!r} has no JSON form - at `mapping[{name!r}]`"
            )
        try:
            out[name] = _FLOW_ENCODER.encode(value)
        except (TypeError, msgspec.EncodeError) as exc:
            raise InvalidKeyError(
                f"Invalid flow var {name!r}: expected a JSON value, got {type(value).__name__} - at"
                f" `mapping[{name!r}]`"
            ) from exc
    return out


def decode_flow_vars(raw: dict[bytes, bytes], *, key: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, value in raw.items():
        name = field.decode(errors="replace")
        try:
            out[name] = msgspec.json.decode(value)
        except msgspec.DecodeError as exc:
            raise EnvelopeDecodeError(
                f"Malformed flow var at key {key!r} field {name!r}: expected JSON, got"
                f" {value[:40]!r} ({exc}); rewrite it with set_flow_vars"
            ) from exc
    return dict(sorted(out.items()))


class Archive(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """An archived execution: every attempt of every step (cold data stays referenced)."""

    tenant_id: str
    flow_id: str
    execution_id: str
    archived_at: dt.datetime
    envelopes: tuple[StepEnvelope, ...] = ()
    format_version: int = 1


def parse_probe(
    info: dict[str, Any], previous_run_id: str | None
) -> tuple[HealthState, str, str | None]:
    """Health state from ``INFO everything``: loading, replica, persistence errors, data loss."""
    run_id = info.get("run_id")
    run_id = None if run_id is None else str(run_id)
    if int(info.get("loading", 0)):
        return HealthState.LOADING, "the server is loading its dataset", run_id
    if str(info.get("role", "master")) not in {"master", "primary"}:
        return HealthState.READ_ONLY, "the server is a replica", run_id
    maxmemory = int(info.get("maxmemory", 0) or 0)
    if maxmemory and int(info.get("used_memory", 0)) >= maxmemory:
        return (
            HealthState.OUT_OF_MEMORY,
            f"used_memory has reached maxmemory ({maxmemory} bytes)",
            run_id,
        )
    # Persistent: AOF on, or RDB snapshots configured (a non-empty "save" policy shows as
    # rdb_saves > 0 after the first one); either way a restart reloads the data.
    persistent = bool(int(info.get("aof_enabled", 0))) or bool(int(info.get("rdb_saves", 0)))
    if int(info.get("aof_enabled", 0)) and str(info.get("aof_last_write_status", "ok")) != "ok":
        return HealthState.DEGRADED, "the server reports a failed AOF write", run_id
    if str(info.get("rdb_last_bgsave_status", "ok")) != "ok":
        return HealthState.DEGRADED, "the server reports a failed RDB save", run_id
    if previous_run_id is not None and run_id != previous_run_id and not persistent:
        return (
            HealthState.DEGRADED,
            "the server restarted without persistence: data written before the restart is lost",
            run_id,
        )
    return HealthState.HEALTHY, "PING and INFO look fine", run_id


def no_archive(cold: ColdTier, path: str, flow_id: str, execution_id: str) -> str:
    """Why ``restore_execution`` found nothing at ``path``, and what to do."""
    return (
        f"No archive of execution `{execution_id}` (flow `{flow_id}`) - at {cold.uri(path)!r};"
        " check the flow and execution ids, or write one first with"
        " archive_execution(scope, flow_id)"
    )
