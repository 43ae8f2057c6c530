"""Idempotency keys: the protocol rule for store writes, and the default key of each event."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
import rfc8785

from execctx_nb import keys
from execctx_nb._events._records import Event, ExecutionLog, ExecutionStatus
from execctx_nb.errors import InvalidKeyError

__all__ = ["event_idempotency_key", "idempotency_key"]


_JCS = msgspec.json.Encoder()
# msgspec's JSON for a list of strings, ints (|n| < 2**53) and null is byte for byte the RFC
# 8785 canonical form (checked for every code point in tests/test_events_publisher.py) and
# ~4x faster than the reference implementation used by execctx_nb.idempotency_key.
_SAFE_INT = 2**53


def idempotency_key(
    execution_id: str, step_id: str | None, attempt: int, *, kind: str | None = None
) -> str:
    """The idempotency key of one attempt of one step (and, for events, one event kind).

    Defined as the lowercase hex sha256 of the RFC 8785 canonical JSON of
    ``[executionId, stepId, attempt]``, or ``[executionId, stepId, attempt, kind]`` when a
    kind is given (stepId may be null for execution-level events). JSON string escaping makes
    the encoding unambiguous whatever characters the ids hold, and JCS pins it byte for byte,
    so an engine in any language derives the same key.

    Examples
    --------
    >>> idempotency_key("run-1", "clean", 0) == idempotency_key("run-1", "clean", 0)
    True
    >>> len(idempotency_key("run-1", "clean", 0))
    64
    """
    keys.validate_attempt(attempt)
    parts: list[str | int | None] = [execution_id, step_id, attempt]
    named = [("execution_id", execution_id, False), ("step_id", step_id, True)]
    if kind is not None:
        parts.append(kind)
        named.append(("kind", kind, False))
    for where, value, nullable in named:
        if not (isinstance(value, str) or (value is None and nullable)):
            raise InvalidKeyError(
                f"Invalid idempotency input {value!r}: expected a str, got "
                f"{type(value).__name__} - at `{where}`"
            )
    try:
        canonical = rfc8785.dumps(parts)
    except rfc8785.CanonicalizationError as exc:
        # JSON (so JCS) has no form for a lone surrogate; only strings can hold one here
        for where, value, _ in named:
            text = value or ""
            bad = next((i for i, c in enumerate(text) if "\ud800" <= c <= "\udfff"), None)
            if bad is not None:
                raise InvalidKeyError(
                    f"Invalid idempotency input {value!r}: expected Unicode text, got a lone "
                    f"surrogate {text[bad]!r} at position {bad} - at `{where}`; decode the "
                    f"id strictly (or with errors='replace') first"
                ) from exc
        raise InvalidKeyError(
            f"Invalid idempotency input {parts!r}: expected JSON-encodable ids, got {exc} - "
            f"at `idempotency_key`"
        ) from exc
    return hashlib.sha256(canonical).hexdigest()


def event_idempotency_key(event: Event) -> str:
    """The default idempotency key of an event (64 lowercase hex characters).

    ``sha256(JCS(parts))`` where ``parts`` is ``[executionId, stepId, attempt, kind]`` (stepId
    null for execution-level events) followed by what tells two events of one attempt apart:

    - ``step.committed``, ``step.failed``: nothing, so the key equals
      ``idempotency_key(executionId, stepId, attempt, kind=kind)``;
    - ``execution.status``: ``status`` (one ``running`` and one ``succeeded`` per attempt);
    - ``execution.log``: ``ts`` (its wire string), ``level`` and ``message``, since an attempt
      logs many lines. Republish the same record (same ``ts``) to retry a log line.

    Examples
    --------
    >>> from execctx_nb.events import StepCommitted
    >>> from execctx_nb import idempotency_key
    >>> ev = StepCommitted(execution_id="run-1", step_id="clean", attempt=2)
    >>> event_idempotency_key(ev) == idempotency_key("run-1", "clean", 2, kind="step.committed")
    True
    """
    parts: list[Any] = [
        event.execution_id,
        getattr(event, "step_id", None),
        event.attempt,
        event.kind,
    ]
    if isinstance(event, ExecutionStatus):
        parts.append(event.status)
    elif isinstance(event, ExecutionLog):
        parts.extend((msgspec.to_builtins(event.ts), event.level, event.message))
    if event.attempt >= _SAFE_INT:  # JCS numbers are IEEE doubles: larger ints are not exact
        raise InvalidKeyError(
            f"Invalid attempt {event.attempt}: expected < 2**53 for an"
            " idempotency key - at `event.attempt`"
        )
    return hashlib.sha256(_JCS.encode(parts)).hexdigest()
