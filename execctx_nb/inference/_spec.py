"""A neutral description of a column type, built from Arrow or Polars dtypes.

The dtype walkers (:mod:`._arrow`, :mod:`._polars`) translate their library's types into a
:class:`Spec` tree; the column walker (:mod:`._columns`) then reads statistics from the
sampled Arrow data guided by that tree. Dtype walkers stop at ``max_depth`` and return a
``cut`` spec, so even a 10,000-level nested type is only walked a few levels.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CUT", "UNKNOWN", "Spec"]


@dataclass(frozen=True, slots=True)
class Spec:
    """What a dtype declares about a column.

    ``kind`` is one of ``null boolean integer number decimal string binary temporal
    categorical enum struct list map cut unknown``.
    """

    kind: str
    fmt: str | None = None  # temporal: a JSON Schema format
    pattern: str | None = None  # temporal without offset: a pattern instead
    fields: tuple[tuple[str, Spec], ...] = ()
    item: Spec | None = None  # list items / map values
    fixed: int | None = None  # fixed-size list length
    categories: tuple[str, ...] | None = None  # enum dtypes
    decimal: tuple[int, int] | None = None  # (precision, scale)
    key_pattern: str | None = None  # map keys that are integers on the wire
    dtype: str = ""  # the source dtype, for messages


CUT = Spec("cut")
UNKNOWN = Spec("unknown")
INT_KEY_PATTERN = r"^-?[0-9]+$"
