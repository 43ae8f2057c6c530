"""The exception tree of execctx_nb.

Every error the package raises is an :class:`ExecctxError`; leaves also subclass the builtin
that fits, so ``except ValueError`` keeps working for bad input::

    ExecctxError
    ├── InvalidArgumentError (ValueError)    an argument is out of range or of the wrong kind
    ├── MissingExtraError (ImportError)      a feature needs an extra: names the pip install
    ├── InvalidTenantError (ValueError)      tenant id fails ^[a-zA-Z0-9_-]{1,64}$
    ├── InvalidKeyError (ValueError)         execution / step / flow id or attempt is unusable
    ├── EnvelopeDecodeError (ValueError)     bytes are not a valid envelope, event or stream entry
    ├── EnvelopeEncodeError (ValueError)     step data cannot be written as JSON or Parquet
    ├── SchemaInferenceError (ValueError)    input cannot be turned into a JSON Schema
    │   └── CyclicDataError                  a Python container contains itself
    ├── StoreError
    │   ├── StoreUnavailableError (ConnectionError)  the server did not take or answer in time
    │   │   └── NotDurableError              written, but fewer replicas confirmed it than required
    │   ├── IdempotencyConflictError         same idempotency key, different payload
    │   ├── LeaseError                       a lease is held by someone else or was lost
    │   └── ColdTierError (OSError)          the object store failed
    └── EventStreamError                     the server refused a stream command (ACL, type)

A handler's own exception never surfaces as an error of the subscriber: it is logged, the
event is retried and, after ``max_deliveries``, dead-lettered with the exception's text.

Dependency exceptions (valkey, pyarrow, obstore, msgspec) are translated at one boundary per
module with ``raise ... from exc``; messages follow "what was expected, what was got, where,
and what to do".
"""

from __future__ import annotations

__all__ = [
    "ColdTierError",
    "CyclicDataError",
    "EnvelopeDecodeError",
    "EnvelopeEncodeError",
    "EventStreamError",
    "ExecctxError",
    "IdempotencyConflictError",
    "InvalidArgumentError",
    "InvalidKeyError",
    "InvalidTenantError",
    "LeaseError",
    "MissingExtraError",
    "NotDurableError",
    "SchemaInferenceError",
    "StoreError",
    "StoreUnavailableError",
]


class ExecctxError(Exception):
    """Root of every error raised by execctx_nb."""


class InvalidArgumentError(ExecctxError, ValueError):
    """An argument is out of range or of the wrong kind (``block_ms``, ``timeout``, a kind name)."""


class MissingExtraError(ExecctxError, ImportError):
    """A feature needs an optional dependency that is not installed; the message says which
    ``pip install`` gives it."""


class InvalidTenantError(ExecctxError, ValueError):
    """A tenant id does not match ``^[a-zA-Z0-9_-]{1,64}$``."""


class InvalidKeyError(ExecctxError, ValueError):
    """An execution, step or flow id (or an attempt number) cannot be used in a key."""


class EnvelopeDecodeError(ExecctxError, ValueError):
    """Bytes are not a valid step envelope, event or stream entry; the message names the path."""


class EnvelopeEncodeError(ExecctxError, ValueError):
    """Step data cannot be written as JSON (inline) or Parquet (cold tier); names the step."""


class SchemaInferenceError(ExecctxError, ValueError):
    """An input cannot be turned into a JSON Schema."""


class CyclicDataError(SchemaInferenceError):
    """A Python container passed to inference contains itself."""


class StoreError(ExecctxError):
    """Base for errors of the execution context store."""


class StoreUnavailableError(StoreError, ConnectionError):
    """The server did not accept or answer a command in time (a write sent to a hung server
    may still be applied when it resumes; store writes are idempotent, so repeat it)."""


class NotDurableError(StoreUnavailableError):
    """A write reached the primary, but fewer replicas than ``min_replicas`` confirmed it in
    time: it may be lost if the primary fails; writing it again is safe."""


class IdempotencyConflictError(StoreError):
    """A write reused an idempotency key with a different payload."""


class LeaseError(StoreError):
    """A lease is held by another owner, or the caller's lease was lost."""


class ColdTierError(StoreError, OSError):
    """The object store behind the cold tier failed."""


class EventStreamError(ExecctxError):
    """Base for errors of the execution event stream."""
