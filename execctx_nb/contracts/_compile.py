"""JSON Schema (2020-12) keywords compiled to Polars expressions over a frame's columns.

Each check is ``(path, keyword, expr)`` where ``expr`` is True for the rows whose value at
``path`` satisfies ``keyword``, computed on the whole column: the value a row has *as the
envelope encoder writes it* (a datetime is an RFC 3339 string, NaN is null, 2.0 is an
integer in JSON Schema's sense). Three kinds of checks:

- **native** expressions: ``type`` (from the dtype, plus value checks where the dtype is
  wider than the schema: whole floats are integers, NaN is null), nullability, ``required``
  and ``additionalProperties: false`` (columns and struct fields), numeric bounds, string
  lengths, ``minItems``/``maxItems``, ``properties`` of structs, ``items`` of lists;
- **per distinct value**: keywords whose semantics only a validator knows exactly (``enum``,
  ``const``, ``format``, ``pattern``, ``multipleOf``, ``anyOf``/``oneOf``/``not`` on scalars,
  and any other keyword at a scalar): the column's distinct values are encoded as the
  envelope encoder writes them and checked once each with ``jsonschema`` (so ``pattern``
  is Python's ``re.search``, formats are jsonschema's checkers), then rows are matched back
  with ``is_in``: exact, and linear in the rows;
- keywords that cannot apply to a dtype are no-ops (``minLength`` on an integer).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["Check", "compile_row"]


class Check(NamedTuple):
    """``expr`` is True for the rows whose value at ``path`` satisfies ``keyword``.

    ``rescue``, when set, is ``(values, good)``: ``expr`` is only sure where it is True (a
    vectorised prefilter), and a failing row is valid after all when its value of the
    expression ``values`` is in ``good(distinct values)`` (jsonschema's verdict)."""

    path: str
    keyword: str
    expr: Any
    rescue: tuple[Any, Callable[[list[Any]], list[Any]]] | None = None


Distinct = Callable[[Any, str], Any]  # (column expression, path) -> its distinct values

_NATIVE = {
    "type", "properties", "required", "additionalProperties", "items", "minItems",
    "maxItems", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
    "maxLength", "$schema", "$id", "title", "description", "default", "examples",
    "contentEncoding", "contentMediaType", "$comment", "deprecated", "readOnly", "writeOnly",
}  # fmt: skip


def _json_kind(dtype: Any) -> str:
    import polars as pl

    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_integer():
        return "integer"
    if dtype.is_float():
        return "float"
    if isinstance(dtype, pl.Decimal):
        return "decimal"
    if isinstance(dtype, pl.Struct):
        return "object"
    if isinstance(dtype, pl.List | pl.Array):
        return "array"
    if dtype == pl.Null:
        return "null"
    return "string"  # strings, categoricals, temporal, binary, UUIDs: JSON strings


def _types(node: dict[str, Any]) -> set[str] | None:
    t = node.get("type")
    if t is None:
        return None
    return {t} if isinstance(t, str) else {x for x in t if isinstance(x, str)}


def _type_check(e: Any, dtype: Any, allowed: set[str]) -> Any:
    """Valid rows for ``type``; a null value is JSON null (NaN and inf too)."""
    import polars as pl

    kind = _json_kind(dtype)
    null_ok = pl.lit("null" in allowed)
    if kind == "float":
        finite = e.is_finite()
        whole = finite & (e == e.floor())
        if "number" in allowed:
            ok = finite
        elif "integer" in allowed:
            ok = whole
        else:
            ok = pl.lit(False)
        return pl.when(e.is_null() | ~finite).then(null_ok).otherwise(ok)
    if kind == "decimal":
        whole = e == e.cast(pl.Int128, strict=False).cast(dtype, strict=False)
        ok = pl.lit("number" in allowed) | (whole.fill_null(False) & pl.lit("integer" in allowed))
    else:
        fits = bool(allowed & {"integer", "number"}) if kind == "integer" else kind in allowed
        if kind == "null" or not fits:
            return e.is_null() & null_ok
        return pl.lit(True) if "null" in allowed else e.is_not_null()
    return pl.when(e.is_null()).then(null_ok).otherwise(ok)


def compile_row(schema: Any, columns: dict[str, Any], distinct: Distinct) -> list[Check]:
    """Checks of a row schema against a frame with ``columns`` (name -> dtype).

    ``distinct(expr, path)`` returns the distinct non-null values of ``expr`` (the caller
    knows whether the frame is lazy).
    """
    import polars as pl

    checks: list[Check] = []
    if schema is True or schema == {}:
        return checks
    if schema is False:
        return [Check("", "false", pl.lit(False))]
    # The row itself is an object: a frame row is never null.
    types = _types(schema)
    if types is not None and "object" not in types:
        checks.append(Check("", "type", pl.lit(False)))
    fields = {name: (pl.col(name), pl.col(name), dtype) for name, dtype in columns.items()}
    checks.extend(_object(schema, fields, "", distinct))
    return checks


def _object(
    node: dict[str, Any],
    fields: dict[str, tuple[Any, Any, Any]],
    path: str,
    distinct: Distinct,
) -> list[Check]:
    import polars as pl

    checks: list[Check] = []
    found = node.get("properties")
    props: dict[str, Any] = found if isinstance(found, dict) else {}
    for name in node.get("required") or ():
        if name not in fields:
            checks.append(Check(f"{path}/{name}", "required", pl.lit(False)))
    extra = node.get("additionalProperties")
    for name, (e, src, dtype) in fields.items():
        sub = props.get(name)
        if sub is None:
            if extra is False:
                # an extra column: its value is present (even null) in every row
                checks.append(Check(f"{path}/{name}", "additionalProperties", pl.lit(False)))
                continue
            sub = extra if isinstance(extra, dict) else None
        if sub is not None:
            checks.extend(_value(sub, e, src, dtype, f"{path}/{name}", distinct))
    return checks


def _value(node: Any, e: Any, src: Any, dtype: Any, path: str, distinct: Distinct) -> list[Check]:
    """Checks of ``node`` on the value ``e``; ``src`` is the same values as a column
    expression of the frame (for distinct values: ``e`` may be ``pl.element()``)."""
    import polars as pl

    if node is True or node == {}:
        return []
    if node is False or not isinstance(node, dict):
        return [Check(path, "false", pl.lit(False))]
    checks: list[Check] = []
    types = _types(node)
    if types is not None:
        checks.append(Check(path, "type", _type_check(e, dtype, types)))
    kind = _json_kind(dtype)
    present = e.is_not_null()
    if kind in ("integer", "float", "decimal"):
        num = e.is_finite() if kind == "float" else present
        for key, op in (("minimum", "ge"), ("maximum", "le"), ("exclusiveMinimum", "gt"),
                        ("exclusiveMaximum", "lt")):  # fmt: skip
            bound = node.get(key)
            if isinstance(bound, int | float) and not isinstance(bound, bool):
                cmp = getattr(e, op)(bound)
                checks.append(Check(path, key, (~num | cmp).fill_null(True)))
    if (kind == "string" and dtype in (pl.String, pl.Categorical)) or isinstance(dtype, pl.Enum):
        length = e.cast(pl.String).str.len_chars()
        for key, op in (("minLength", "ge"), ("maxLength", "le")):
            bound = node.get(key)
            if isinstance(bound, int) and not isinstance(bound, bool):
                checks.append(Check(path, key, getattr(length, op)(bound).fill_null(True)))
    if kind == "object" and isinstance(dtype, pl.Struct):
        fields = {
            f.name: (e.struct.field(f.name), src.struct.field(f.name), f.dtype)
            for f in dtype.fields
        }
        for c in _object(node, fields, path, distinct):
            checks.append(c._replace(expr=(~present | c.expr).fill_null(True)))
    if kind == "array":
        inner = dtype.inner
        size = e.list.len() if isinstance(dtype, pl.List) else e.arr.len()
        for key, op in (("minItems", "ge"), ("maxItems", "le")):
            bound = node.get(key)
            if isinstance(bound, int) and not isinstance(bound, bool):
                checks.append(Check(path, key, getattr(size, op)(bound).fill_null(True)))
        items = node.get("items")
        if items is not None and items is not True:
            as_list = e if isinstance(dtype, pl.List) else e.arr.to_list()
            flat = src.explode() if isinstance(dtype, pl.List) else src.arr.explode()
            for c in _value(items, pl.element(), flat, inner, f"{path}/[]", distinct):
                every = as_list.list.eval(c.expr).list.all()  # (no rescue: not row-aligned)
                checks.append(Check(c.path, c.keyword, (~present | every).fill_null(True)))
    if kind not in ("object", "array"):
        rest = {k: v for k, v in node.items() if k not in _NATIVE and not k.startswith("x-")}
        checks.extend(_scalar(rest, e, src, dtype, path, distinct))
    return [c for c in checks if not c.expr.meta.eq(pl.lit(True))]  # (no work for no-ops)


# Keywords checked one by one (each an independent assertion on the value); anything else
# left at a scalar (``anyOf``, ``if``/``then``/``else``, ...) is checked as one group.
_SEPARATE = ("enum", "const", "format", "pattern", "multipleOf")
# Values these (Rust) regexes match are valid for jsonschema's format checker: canonical
# UUIDs, dotted quads without leading zeros, and ``scheme://host[:port][/path][?query]`` in
# RFC 3986 characters without escapes (a subset of inference's sound ``uri`` rule). Values
# they do not match are checked per distinct value.
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_SURE = {
    "uuid": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    "ipv4": rf"^{_OCTET}(?:\.{_OCTET}){{3}}$",
    "uri": r"^[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9._~!$&'()*+,;=-]+(?::[0-9]*)?"
    r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@/-]*)?(?:\?[A-Za-z0-9._~!$&'()*+,;=:@/?-]*)?$",
}


def _scalar(
    rest: dict[str, Any], e: Any, src: Any, dtype: Any, path: str, distinct: Distinct
) -> list[Check]:
    groups = [{key: rest.pop(key)} for key in _SEPARATE if key in rest]
    if rest:
        groups.append(rest)
    return [_per_value(group, e, src, dtype, path, distinct) for group in groups]


def _native(keywords: dict[str, Any], dtype: Any) -> tuple[Callable[[Any], Any], bool] | None:
    """A vectorised form of one keyword on ``dtype``'s values: ``(check, exact)``. Exact:
    True exactly where jsonschema says valid; not exact: True only where it does (the rest
    is checked per distinct value). ``None``: no vectorised form."""
    import polars as pl

    stringy = dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum)
    if "enum" in keywords or "const" in keywords:
        members = keywords["enum"] if "enum" in keywords else [keywords["const"]]
        if not isinstance(members, list):
            return None
        if stringy:
            strs = [m for m in members if isinstance(m, str)]
            return (lambda x: _member(x.cast(pl.String), pl.Series(strs, dtype=pl.String))), True
        if dtype == pl.Boolean:
            flags = [m for m in members if isinstance(m, bool)]
            return (lambda x: _member(x, pl.Series(flags, dtype=pl.Boolean))), True
        if dtype.is_integer():
            # jsonschema's equality: 1 == 1.0, but True is not 1
            ints = [
                int(m)
                for m in members
                if not isinstance(m, bool)
                and (isinstance(m, int) or (isinstance(m, float) and m.is_integer()))
            ]
            try:
                allowed = pl.Series(ints, dtype=pl.Int128).cast(dtype, strict=False).drop_nulls()
            except (OverflowError, pl.exceptions.PolarsError):
                return None
            return (lambda x: _member(x, allowed)), True
        return None
    fmt = keywords.get("format")
    if fmt in ("email", "idn-email") and stringy:  # jsonschema: "@" in the value
        return (lambda x: x.cast(pl.String).str.contains("@", literal=True)), True
    if fmt in _SURE and dtype == pl.String:
        return (lambda x: x.str.contains(_SURE[fmt])), False
    in_range = isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
    if (fmt == "date-time" and in_range) or (fmt == "date" and dtype == pl.Date):
        # written as RFC 3339 with an offset / as YYYY-MM-DD (years 1-9999 only)
        return (lambda x: x.dt.year().is_between(1, 9999)), False
    return None


def _per_value(
    rest: dict[str, Any], e: Any, src: Any, dtype: Any, path: str, distinct: Distinct
) -> Check:
    """Keywords only a validator knows exactly, checked once per distinct value (values a
    vectorised form already decides are not looked at)."""
    import msgspec
    import polars as pl
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(rest, format_checker=Draft202012Validator.FORMAT_CHECKER)
    null_ok = validator.is_valid(None)
    keyword = next(iter(rest)) if len(rest) == 1 else "+".join(sorted(rest))
    native = _native(rest, dtype) if len(rest) == 1 else None
    if native is not None and native[1]:
        return Check(path, keyword, pl.when(e.is_null()).then(null_ok).otherwise(native[0](e)))

    def good(listed: list[Any]) -> list[Any]:
        pattern = rest.get("pattern") if len(rest) == 1 else None
        if isinstance(pattern, str) and all(isinstance(v, str) for v in listed):
            search = re.compile(pattern).search  # jsonschema's `pattern`: re.search
            return [v for v in listed if search(v)]
        encoded = msgspec.json.decode(msgspec.json.encode(listed, enc_hook=_enc))
        return [v for v, j in zip(listed, encoded, strict=True) if validator.is_valid(j)]

    sure = None if native is None else native[0]
    if sure is not None and src.meta.eq(e):
        # row-aligned: the prefilter is the check; its failing rows are rescued afterwards
        expr = pl.when(e.is_null()).then(null_ok).otherwise(sure(e))
        return Check(path, keyword, expr, rescue=(src, good))
    values = distinct(src if sure is None else src.filter(~sure(src)), path)
    ok = _member(e, pl.Series(values.name, good(values.to_list()), dtype=values.dtype))
    if sure is not None:
        ok = sure(e) | ok
    return Check(path, keyword, pl.when(e.is_null()).then(null_ok).otherwise(ok))


def _member(x: Any, allowed: Any) -> Any:
    """``x`` is one of the values of the Series ``allowed`` (imploded: one collection, also
    inside ``list.eval``)."""
    return x.is_in(allowed.implode())


def _enc(obj: Any) -> Any:
    from execctx_nb._frames import encode_scalar

    value = encode_scalar(obj)
    if value is NotImplemented:
        raise TypeError(f"cannot encode {type(obj).__name__}")
    return value
