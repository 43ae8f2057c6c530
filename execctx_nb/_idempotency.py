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
