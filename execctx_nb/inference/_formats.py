"""String formats recognised by inference, and the rule that decides a format.

A format is reported only when *every* distinct non-null sampled string matches it, so the
schema stays sound. The checks are at least as strict as ``jsonschema``'s ``FormatChecker``
for the same names: a value we call ``date-time`` passes its check too.

Two shapes of local (offset-free) timestamps are common in data and are *not* RFC 3339: they
are reported as a ``pattern`` instead of a format (see ``LOCAL_PATTERNS``).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Iterable

__all__ = ["FORMATS", "LOCAL_PATTERNS", "MAX_FORMAT_LEN", "detect_format", "looks_numeric"]

#: Strings longer than this (characters) are never given a format.
MAX_FORMAT_LEN = 512

_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_TIME = re.compile(r"(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))", re.ASCII)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}", re.ASCII)
# A scheme plus "//authority", or one of the common authority-less schemes. Bare "word:rest"
# is too often a label ("note:abc") to be called a URI.
_URI = re.compile(
    r"(?:[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#]+[^\s]*|(?:mailto|urn|tel|data):[^\s]+)", re.ASCII
)
_NUMERIC = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*|[+-]?(?:inf|nan)", re.I)

#: Offset-free timestamps as written by msgspec/isoformat for naive values.
LOCAL_PATTERNS = {
    "local-date-time": r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$",
    "local-time": r"^\d{2}:\d{2}(:\d{2}(\.\d+)?)?$",
}
_LOCAL = {name: re.compile(p) for name, p in LOCAL_PATTERNS.items()}


def _date_time(s: str) -> bool:
    if _DATE_TIME.fullmatch(s) is None:
        return False
    try:
        _dt.datetime.fromisoformat(s.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _date(s: str) -> bool:
    if _DATE.fullmatch(s) is None:
        return False
    try:
        _dt.date.fromisoformat(s)
    except ValueError:
        return False
    return True


def _time(s: str) -> bool:
    m = _TIME.fullmatch(s)
    if m is None:
        return False
    h, mi, sec, oh, om = m.groups()
    return int(h) < 24 and int(mi) < 60 and int(sec) < 61 and (oh is None or (
        int(oh) < 24 and int(om) < 60))


def _local(name: str) -> Callable[[str], bool]:
    pattern = _LOCAL[name]

    def check(s: str) -> bool:
        return pattern.fullmatch(s) is not None

    return check


def _regex(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    def check(s: str) -> bool:
        return pattern.fullmatch(s) is not None

    return check


#: Checked in this order; the first format every value matches wins.
FORMATS: dict[str, Callable[[str], bool]] = {
    "date-time": _date_time,
    "date": _date,
    "time": _time,
    "uuid": _regex(_UUID),
    "ipv4": _regex(_IPV4),
    "email": _regex(_EMAIL),
    "uri": _regex(_URI),
    "local-date-time": _local("local-date-time"),
    "local-time": _local("local-time"),
}


def detect_format(distinct: Iterable[str]) -> str | None:
    """The first format that every string matches, or ``None``.

    Only the formats the first value matches are tried on the rest, so the common case
    (no format) costs one pass of cheap regexes over a single value.

    >>> detect_format(["2024-01-01", "2024-02-29"])
    'date'
    >>> detect_format(["2024-01-01", "soon"]) is None
    True
    """
    values = distinct if isinstance(distinct, list) else list(distinct)
    if not values or max(map(len, values)) > MAX_FORMAT_LEN:
        return None  # the longest valid value of any format here is far shorter
    it = iter(values)
    first = next(it)
    candidates = [name for name, check in FORMATS.items() if check(first)]
    for value in it:
        if not candidates:
            return None
        candidates = [name for name in candidates if FORMATS[name](value)]
    return candidates[0] if candidates else None


def looks_numeric(s: str) -> bool:
    """Whether a string reads as a number (codes like ``"007"`` are not enum material)."""
    return _NUMERIC.fullmatch(s) is not None
