"""Objects keyed by data (maps), told apart from records, in plain rows.

Emoji ``skin_variations`` keyed ``1F3FB-1F3FC``, per-version or per-locale tables, objects
keyed by ids: inferred as records, every key seen becomes a required property and the next
row, with other keys, fails. An object position is a **map** when

1. it holds at least :data:`MIN_KEYS` distinct keys across the sample, and
2. its values have one shape (one JSON type, nulls aside), and
3. its keys look like data: every key is an integer, a version, a hex code, a UUID, a date
   or a locale tag - or the keys are sparse (an object holds fewer than half of them on
   average, so no set of keys is the record's).

A map is written ``{"type": "object", "additionalProperties": <the values' schema>}``, with
``propertyNames: {"pattern": ...}`` when all keys follow one of the key patterns. Merging a
map with a record keeps both (``properties`` take the map values too): merge-safe.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["KEY_PATTERNS", "MIN_KEYS", "map_keys"]

MIN_KEYS = 8

#: The key shapes that mark an object as keyed by data, most specific first.
KEY_PATTERNS = {
    "integer": r"^-?[0-9]+$",
    "version": r"^[0-9]+(?:\.[0-9]+)+$",
    "uuid": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    "date": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
    "hex code": r"^[0-9A-Fa-f]{2,}(?:-[0-9A-Fa-f]{2,})*$",
    "locale": r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$",
}
_COMPILED = {name: re.compile(p) for name, p in KEY_PATTERNS.items()}


def map_keys(
    cols: dict[str, list[Any]], objects: int, json_type: Callable[[Any], str | None]
) -> str | None:
    """None for a record; for a map, the key pattern all keys follow, or "" for none.

    ``json_type`` gives a value's JSON type (None for null): the row walker's own kinds.

    The cheap tests (on the keys) come first: most objects are records with word keys, and
    looking at every value of a wide record cost a quarter of the rows path.
    """
    if len(cols) < MIN_KEYS:
        return None
    sparse = _sparse(cols, objects)
    found = None
    for pattern in _COMPILED.values():
        if all(pattern.fullmatch(k) for k in cols):
            # A locale-looking set of plain words ("id", "ts", ...) is a record's keys: the
            # word pattern alone needs sparse keys too.
            if pattern is not _COMPILED["locale"] or sparse:
                found = pattern.pattern
            break
    if found is None and not sparse:
        return None
    return (found or "") if _one_shape(cols, json_type) else None


def _one_shape(cols: dict[str, list[Any]], json_type: Callable[[Any], str | None]) -> bool:
    """Whether every non-null value has one JSON type (stops at the second type)."""
    first = None
    for col in cols.values():
        for value in col:
            kind = json_type(value)
            if kind is None:
                continue
            if first is None:
                first = kind
            elif kind != first:
                return False
    return True


def _sparse(cols: dict[str, list[Any]], objects: int) -> bool:
    held = sum(len(col) for col in cols.values())
    return held * 2 < len(cols) * objects
