"""A JSON Schema as a readable tree: types, nullability, enums, formats, cardinality.

:class:`SchemaView` wraps the schema dict (the dict stays the data; the view only displays
it). HTML is a collapsible ``<details>`` tree, text/plain an indented tree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from execctx_nb.display._html import CSS, clip, esc
from execctx_nb.inference._check import schema_problem
from execctx_nb.inference._formats import LOCAL_PATTERNS

__all__ = ["SchemaNode", "SchemaView", "schema_tree"]

# Keywords the tree shows in their own place; every other keyword is listed as a note so
# nothing a producer put in the schema (x-cardinality, minimum, ...) is hidden.
_STRUCTURAL = {
    "$schema",
    "$id",
    "type",
    "properties",
    "required",
    "items",
    "prefixItems",
    "anyOf",
    "oneOf",
    "enum",
    "format",
    "additionalProperties",
    "title",
    "description",
}
_MAX_ENUM = 8


class SchemaNode(msgspec.Struct, frozen=True):
    """One line of the tree: a name, its type text, tags and notes, and its children."""

    name: str
    type_text: str
    nullable: bool = False
    required: bool | None = None
    tags: tuple[str, ...] = ()
    children: tuple[SchemaNode, ...] = ()


def _invalid_node(name: str, problem: str) -> SchemaNode:
    return SchemaNode(name, "invalid schema", tags=(problem,))


def _types(schema: Mapping[str, Any]) -> tuple[list[str], bool]:
    raw = schema.get("type")
    types = [raw] if isinstance(raw, str) else list(raw or [])
    nullable = "null" in types
    for branch in schema.get("anyOf", []) or schema.get("oneOf", []):
        if isinstance(branch, Mapping) and branch.get("type") == "null":
            nullable = True
    return [t for t in types if t != "null"], nullable


def _fmt(value: Any) -> str:
    try:
        return clip(msgspec.json.encode(value).decode(), 80)
    except (TypeError, ValueError, OverflowError, RecursionError, msgspec.EncodeError):
        return clip(repr(value), 80)  # not JSON, or nested beyond what an encoder walks


_X = "x-execctx-"
_NOTES = {"cardinality": "{} distinct", "nulls": "{} null", "dtype": "dtype {}"}


# The patterns inference writes for zone-less datetimes and times read as what they mean.
_LOCAL = {pattern: name.replace("-", " ", 1) for name, pattern in LOCAL_PATTERNS.items()}


def _note(key: str, value: Any) -> str:
    """A keyword as a short note; inference's own ``x-execctx-*`` annotations read plainly."""
    if key == "pattern" and isinstance(value, str) and value in _LOCAL:
        return _LOCAL[value]
    if key.startswith(_X):
        name = key[len(_X) :]
        if name in _NOTES and isinstance(value, int | str) and not isinstance(value, bool):
            text = _NOTES[name].format(f"{value:,}" if isinstance(value, int) else value)
            return text + ("s" if name == "nulls" and value != 1 else "")
        return f"{name} {_fmt(value)}"
    return f"{key} {_fmt(value)}"


def schema_tree(
    schema: Mapping[str, Any], name: str = "(root)", required: bool | None = None
) -> SchemaNode:
    """Turn a JSON Schema (2020-12) into a :class:`SchemaNode` tree (check it first with
    :func:`schema_problem`: this reads the keywords as a valid schema has them)."""
    if isinstance(schema, bool):
        return SchemaNode(name, "any" if schema else "nothing", required=required)
    types, nullable = _types(schema)
    children: list[SchemaNode] = []
    tags: list[str] = []
    if "format" in schema:
        tags.append(f"format {schema['format']}")
    if "enum" in schema:
        values = [v for v in schema["enum"] if v is not None]
        shown = ", ".join(_fmt(v) for v in values[:_MAX_ENUM])
        more = f", … +{len(values) - _MAX_ENUM}" if len(values) > _MAX_ENUM else ""
        tags.append(f"enum [{shown}{more}]")
        if None in schema["enum"]:
            nullable = True
    for key in sorted(schema):
        if key not in _STRUCTURAL:
            tags.append(_note(key, schema[key]))
    props = schema.get("properties")
    if isinstance(props, Mapping):
        req = set(schema.get("required", []))
        children.extend(schema_tree(sub, str(key), key in req) for key, sub in props.items())
        if not types:
            types = ["object"]
    if isinstance(schema.get("prefixItems"), list):
        children.extend(schema_tree(sub, f"[{i}]") for i, sub in enumerate(schema["prefixItems"]))
    items = schema.get("items")
    if isinstance(items, Mapping | bool) and items and items is not True:
        child = schema_tree(items, "[]")
        children.append(child)
        if types == ["array"]:
            types = [f"array of {child.type_text}"]
    branches = [
        b
        for b in (schema.get("anyOf") or schema.get("oneOf") or [])
        if isinstance(b, Mapping) and b.get("type") != "null"
    ]
    if len(branches) == 1 and not types:
        inner = schema_tree(branches[0], name, required)
        return SchemaNode(
            name, inner.type_text, True, required, inner.tags + tuple(tags), inner.children
        )
    for i, branch in enumerate(branches):
        children.append(schema_tree(branch, f"option {i + 1}"))
    if branches and not types:
        types = ["any of " + " | ".join(c.type_text for c in children[-len(branches) :])]
    if types:
        type_text = " | ".join(types)
    elif "enum" in schema or "const" in schema:
        type_text = "enum" if "enum" in schema else "const"
    else:
        type_text = "null" if nullable else "any"
    return SchemaNode(name, type_text, nullable, required, tuple(tags), tuple(children))


def _line_text(node: SchemaNode) -> str:
    parts = [node.name, node.type_text]
    if node.nullable and node.type_text != "null":
        parts.append("nullable")
    if node.required is True:
        parts.append("required")
    elif node.required is False:
        parts.append("optional")
    parts.extend(node.tags)
    return "  ".join(parts)


def _text_lines(node: SchemaNode, prefix: str = "") -> list[str]:
    lines: list[str] = []
    for i, child in enumerate(node.children):
        last = i == len(node.children) - 1
        lines.append(prefix + ("└── " if last else "├── ") + _line_text(child))
        lines.extend(_text_lines(child, prefix + ("    " if last else "│   ")))
    return lines


def _line_html(node: SchemaNode, *, heading: bool = False) -> str:
    name = f"<b>{esc(node.name)}</b>" if heading else f"<code>{esc(node.name)}</code>"
    out = [f"{name} <span class='t'>{esc(node.type_text)}</span>"]
    if node.nullable and node.type_text != "null":
        out.append(" <span class='badge b-warn'>nullable</span>")
    if node.required is False:
        out.append(" <span class='muted'>optional</span>")
    out.extend(f" <span class='muted'>· {esc(tag)}</span>" for tag in node.tags)
    return "".join(out)


def _html(node: SchemaNode, depth: int) -> str:
    if not node.children:
        return f"<div class='leaf'>{_line_html(node)}</div>"
    # The first levels start open; deeper ones stay folded so big schemas stay scannable.
    opened = " open" if depth < 2 else ""
    inner = "".join(_html(c, depth + 1) for c in node.children)
    return f"<details{opened}><summary>{_line_html(node)}</summary>{inner}</details>"


class SchemaView:
    """Display wrapper for a JSON Schema dict.

    Parameters
    ----------
    schema
        The JSON Schema (as produced by :func:`execctx_nb.inference.infer_schema`).
    title
        A heading, e.g. the step the schema belongs to.
    schema_hash
        Shown (first 12 hex digits) next to the title when given.

    Examples
    --------
    >>> view = SchemaView({"type": "object", "properties": {"a": {"type": ["string", "null"]}}})
    >>> print(view)
    schema  object  1 property
    └── a  string  nullable  optional
    """

    def __init__(
        self, schema: Mapping[str, Any], *, title: str = "schema", schema_hash: str | None = None
    ) -> None:
        self.schema = schema
        self.title = title
        self.schema_hash = schema_hash
        self.problem = schema_problem(schema)
        """Why the schema is not a drawable JSON Schema (None when it is)."""
        self.tree = (
            _invalid_node(title, self.problem) if self.problem else schema_tree(schema, title)
        )

    def _extra(self) -> list[str]:
        n = len(self.tree.children)
        bits = []
        if self.tree.type_text == "object":
            bits.append(f"{n} propert{'y' if n == 1 else 'ies'}")
        if self.schema_hash:
            bits.append(f"hash {self.schema_hash[:12]}")
        return bits

    def _heading(self) -> str:
        return "  ".join([_line_text(self.tree), *self._extra()])

    def __str__(self) -> str:
        return "\n".join([self._heading(), *_text_lines(self.tree)])

    def __repr__(self) -> str:
        return f"<SchemaView {self._heading()}>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def html_body(self, depth: int = 0) -> str:
        """The tree without the surrounding ``<div>`` and CSS (for embedding)."""
        extra = "".join(f" <span class='muted'>· {esc(bit)}</span>" for bit in self._extra())
        head = _line_html(self.tree, heading=True) + extra
        inner = "".join(_html(c, depth + 1) for c in self.tree.children)
        return f"<details{' open' if depth < 2 else ''}><summary>{head}</summary>{inner}</details>"

    def _repr_html_(self) -> str:
        return f"{CSS}<div class='execctx'>{self.html_body()}</div>"
