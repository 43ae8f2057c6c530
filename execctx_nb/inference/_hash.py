"""``schema_hash``: sha256 over the RFC 8785 canonical form of a schema's contract.

What is hashed (see docs/inference.md, "Hash"):

- every keyword except the ``x-execctx-*`` annotations: those are statistics of one sample
  (null and distinct counts, rows sampled, observed list lengths) and change when the data
  grows while the contract does not, which would make every hash comparison a false alarm;
- set-like arrays sorted (``required``, ``type``, ``enum``, and the branches of ``anyOf`` /
  ``oneOf`` / ``allOf``), by their canonical bytes; ``prefixItems`` keeps its order;
- then RFC 8785 (JCS) via the ``rfc8785`` package, which fixes number spelling and key order
  where ``json.dumps(sort_keys=True)`` does not.
"""

from __future__ import annotations

import hashlib
from typing import Any

from execctx_nb.errors import SchemaInferenceError

__all__ = ["canonical_bytes", "schema_hash"]

_SET_LIKE = frozenset({"required", "type", "enum", "anyOf", "oneOf", "allOf"})
_ANNOTATION = "x-execctx-"
# Keywords whose values are maps from names to schemas (their keys are data, not keywords).
_NAMED = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})


def _canon(value: Any, named: bool = False) -> Any:
    """Drop annotations; ``named``: ``value`` maps property names (kept as they are)."""
    if isinstance(value, dict):
        return {
            k: _canon(v, k in _NAMED and not named)
            for k, v in value.items()
            if named or not (isinstance(k, str) and k.startswith(_ANNOTATION))
        }
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    return value


def _sort_sets(value: Any) -> Any:
    import rfc8785

    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            sub = _sort_sets(v)
            if k in _SET_LIKE and isinstance(sub, list):
                sub = sorted(sub, key=rfc8785.dumps)
            out[k] = sub
        return out
    if isinstance(value, list):
        return [_sort_sets(v) for v in value]
    return value


def canonical_bytes(schema: dict[str, Any]) -> bytes:
    """The bytes :func:`schema_hash` digests."""
    import rfc8785

    if not isinstance(schema, dict):
        raise SchemaInferenceError(
            f"Cannot hash a schema: expected a dict, got `{type(schema).__name__}` - at "
            f"`schema_hash(schema)`"
        )
    try:
        return bytes(rfc8785.dumps(_sort_sets(_canon(schema))))
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError) as exc:
        raise SchemaInferenceError(
            f"Cannot hash a schema: expected JSON values only (finite floats, integers within "
            f"+-2**53, string keys), got {type(exc).__name__}: {exc} - at `schema_hash(schema)`"
        ) from exc


def schema_hash(schema: dict[str, Any]) -> str:
    """64 lowercase hex chars identifying ``schema``'s contract, stable across processes.

    >>> a = {"type": "object", "required": ["b", "a"], "x-execctx-rows": 3}
    >>> b = {"required": ["a", "b"], "type": "object", "x-execctx-rows": 9}
    >>> schema_hash(a) == schema_hash(b)
    True
    """
    return hashlib.sha256(canonical_bytes(schema)).hexdigest()
