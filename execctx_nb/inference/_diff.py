"""``schema_diff``: what changed between two schemas, and whether readers break.

A change is *breaking* when data valid under ``new`` may be invalid under ``old``, i.e. a
reader written against ``old`` can meet something it did not expect: a field removed or no
longer always present, a value newly null, a type widened or changed (``integer`` to
``number`` breaks, ``number`` to ``integer`` does not), a format or enum relaxed. Added
fields and narrowed types are listed but do not break.

Paths are JSON-pointer-like: ``/user/name``; list items add ``/[]``, map values ``/{}``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from execctx_nb.errors import InvalidArgumentError
from execctx_nb.inference._check import schema_problem

__all__ = ["SchemaDiff", "schema_diff"]

_ANY = None  # a permissive schema: accepts every type


class SchemaDiff(msgspec.Struct, frozen=True, kw_only=True):
    """The result of :func:`schema_diff` (a plain immutable record).

    Attributes
    ----------
    added, removed, retyped, newly_nullable, newly_optional
        Field paths, sorted.
    breaking
        Whether a reader of the old schema can be surprised by data of the new one.
    changes
        One readable line per change (what ``str(diff)`` prints).
    """

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    retyped: tuple[str, ...] = ()
    newly_nullable: tuple[str, ...] = ()
    newly_optional: tuple[str, ...] = ()
    breaking: bool = False
    changes: tuple[str, ...] = ()
    breaking_changes: tuple[str, ...] = ()
    """The lines of ``changes`` a reader of the old schema can be surprised by."""

    def __bool__(self) -> bool:
        return bool(self.changes)

    def __str__(self) -> str:
        if not self.changes:
            return "no schema change"
        head = "breaking schema change" if self.breaking else "compatible schema change"
        return "\n".join(
            [f"{head} ({len(self.changes)} change(s)):", *(f"  {c}" for c in self.changes)]
        )


def _types(schema: Any) -> set[str] | None:
    if not isinstance(schema, dict):
        return _ANY
    t = schema.get("type")
    if t is None:
        return _ANY
    types = {t} if isinstance(t, str) else set(t)
    enum = schema.get("enum")
    if isinstance(enum, list) and None in enum:
        types.add("null")
    return types


def _covers(old: set[str], new: set[str]) -> bool:
    """Every type in ``new`` is accepted by ``old``."""
    return all(t in old or (t == "integer" and "number" in old) for t in new)


class _Differ:
    def __init__(self) -> None:
        self.lists: dict[str, list[str]] = {
            k: [] for k in ("added", "removed", "retyped", "newly_nullable", "newly_optional")
        }
        self.lines: list[tuple[str, str]] = []
        self.breaking_lines: set[str] = set()
        self.breaking = False

    def note(self, kind: str, path: str, line: str, breaking: bool) -> None:
        self.lists[kind].append(path or "/")
        self.lines.append((path or "/", line))
        self.breaking = self.breaking or breaking
        if breaking:
            self.breaking_lines.add(line)

    def walk(self, old: Any, new: Any, path: str) -> None:
        ot, nt = _types(old), _types(new)
        if ot is _ANY:
            return  # the old reader accepted anything here
        p = path or "/"
        if nt is _ANY:
            self.note("retyped", path, f"~ {p}: {_show(ot)} -> any", True)
            return
        if "null" in nt and "null" not in ot:
            self.note("newly_nullable", path, f"? {p}: now nullable", True)
        o, n = ot - {"null"}, nt - {"null"}
        if o != n and n:  # a field seen only as null says nothing about its type
            self.note("retyped", path, f"~ {p}: {_show(o)} -> {_show(n)}", not _covers(o, n))
        elif "string" in n:
            self._strings(old, new, path)
        if "object" in o and "object" in n:
            self._objects(old, new, path)
        if "array" in o and "array" in n:
            self.walk(old.get("items"), new.get("items"), f"{path}/[]")

    def _strings(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        p = path or "/"
        for key in ("format", "pattern"):
            if old.get(key) is not None and old.get(key) != new.get(key):
                self.note("retyped", path, f"~ {p}: {key} {old[key]!r} -> {new.get(key)!r}", True)
        oe, ne = old.get("enum"), new.get("enum")
        if isinstance(oe, list) and oe != ne:
            gained = _ANY if not isinstance(ne, list) else [v for v in ne if v not in oe]
            if gained is _ANY or gained:
                what = "enum dropped" if gained is _ANY else f"enum gained {gained!r}"
                self.note("retyped", path, f"~ {p}: {what}", True)

    def _objects(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        op, np_ = old.get("properties") or {}, new.get("properties") or {}
        oreq, nreq = set(old.get("required") or ()), set(new.get("required") or ())
        for key in sorted(op.keys() - np_.keys()):
            self.note("removed", f"{path}/{key}", f"- {path}/{key}", True)
        for key in sorted(np_.keys() - op.keys()):
            types = _types(np_[key])
            shown = "any" if types is _ANY else _show(types or set())
            self.note("added", f"{path}/{key}", f"+ {path}/{key}: {shown}", False)
        for key in sorted(op.keys() & np_.keys()):
            if key in oreq and key not in nreq:
                self.note("newly_optional", f"{path}/{key}", f"? {path}/{key}: now optional", True)
            self.walk(op[key], np_[key], f"{path}/{key}")
        oa, na = old.get("additionalProperties"), new.get("additionalProperties")
        if isinstance(oa, dict) and isinstance(na, dict):
            self.walk(oa, na, f"{path}/{{}}")


def _show(types: set[str]) -> str:
    return "|".join(sorted(types)) or "nothing"


def schema_diff(old: dict[str, Any], new: dict[str, Any]) -> SchemaDiff:
    """Fields added, removed, retyped, newly nullable or optional from ``old`` to ``new``.

    >>> from execctx_nb import infer_schema
    >>> d = schema_diff(infer_schema([{"a": 1, "b": 1}]), infer_schema([{"a": None, "c": 1}]))
    >>> d.removed, d.added, d.newly_nullable, d.breaking
    (('/b',), ('/c',), ('/a',), True)
    """
    for name, schema in (("old", old), ("new", new)):
        problem = None if schema is None else schema_problem(schema)  # None: no schema
        if problem is not None:
            raise InvalidArgumentError(
                f"Invalid JSON Schema: {problem} - at `{name}`; compare schemas as inferred or"
                " as JSON Schema 2020-12 defines them"
            )
    differ = _Differ()
    differ.walk(old, new, "")
    lists = {k: tuple(sorted(v)) for k, v in differ.lists.items()}
    changes = tuple(line for _, line in sorted(differ.lines))
    return SchemaDiff(
        **lists,
        breaking=differ.breaking,
        changes=changes,
        breaking_changes=tuple(c for c in changes if c in differ.breaking_lines),
    )
