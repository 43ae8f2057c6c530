"""Idempotency keys for store writes and event publishes."""

from __future__ import annotations

import hashlib

import rfc8785

from execctx_nb import keys
from execctx_nb.errors import InvalidKeyError

__all__ = ["idempotency_key"]


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
    if not isinstance(execution_id, str) or not (step_id is None or isinstance(step_id, str)):
        raise InvalidKeyError(
            f"Invalid idempotency input ({execution_id!r}, {step_id!r}): expected str ids"
        )
    if kind is not None:
        parts.append(kind)
    return hashlib.sha256(rfc8785.dumps(parts)).hexdigest()
