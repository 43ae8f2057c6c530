"""``validate(obj, schema)``: every row of a frame or of plain rows against a JSON Schema."""

from __future__ import annotations

from typing import Any

from execctx_nb.contracts._compile import Check, compile_row
from execctx_nb.contracts._report import PathViolations, ValidationReport
from execctx_nb.errors import InvalidArgumentError

__all__ = ["validate"]

SHOWN = 5  # offending rows kept per path
_ROW = "__execctx_row"
_BITS = 63  # failed checks per UInt64 mask column


def validate(obj: Any, schema: Any) -> ValidationReport:
    """Check every row of ``obj`` against ``schema`` (JSON Schema 2020-12, a row's schema).

    Parameters
    ----------
    obj
        A Polars DataFrame or LazyFrame, an Arrow table, batch or reader, a pandas frame,
        a DuckDB relation, anything with ``__arrow_c_stream__``, or a list of JSON rows.
    schema
        The schema of one row (an inferred schema, or a stored step's ``envelope.schema``).

    Raises
    ------
    InvalidArgumentError
        ``schema`` is not a JSON Schema, or ``obj`` is not something rows can be read from.
    """
    import polars as pl

    from execctx_nb._frames import data_kind, step_data
    from execctx_nb.inference._check import schema_problem

    if not isinstance(schema, dict | bool) or (
        isinstance(schema, dict) and (problem := schema_problem(schema)) is not None
    ):
        what = problem if isinstance(schema, dict) else f"a {type(schema).__name__}"
        raise InvalidArgumentError(
            f"Invalid JSON Schema: {what} - at `validate(schema=...)`; pass a schema as"
            " infer_schema returns it, or a step's envelope.schema"
        )
    if isinstance(obj, list):
        return _rows(obj, schema)
    data = step_data(obj, where="validate(obj)")
    kind = data_kind(data)
    if kind == "arrow":
        data = pl.from_arrow(data)
    elif kind is None:
        return _rows(data if isinstance(data, list) else [data], schema)
    lazy = data if isinstance(data, pl.LazyFrame) else data.lazy()
    return _frame(lazy, schema)


def _frame(lazy: Any, schema: Any) -> ValidationReport:
    import polars as pl

    columns = dict(lazy.collect_schema())
    # Compiled twice: the first time records which columns' distinct values the per-value
    # checks need, so they are collected together (one query each, run in parallel).
    wanted: list[Any] = []

    def record(expr: Any, path: str) -> Any:
        wanted.append(lazy.select(expr.drop_nulls().unique().alias("v")))
        return pl.Series("v", [])

    checks = compile_row(schema, columns, record)
    if wanted:
        found = iter(pl.collect_all(wanted, engine="streaming"))
        checks = compile_row(schema, columns, lambda expr, path: next(found)["v"])
    indexed = lazy.with_row_index(_ROW)
    total = int(lazy.select(pl.len()).collect(engine="streaming").item())  # Parquet: metadata
    if not checks:
        return ValidationReport(
            rows=total, violations=(), invalid_rows=pl.Series(_ROW, [], pl.UInt32)
        )
    # One pass; only the violating rows are collected, each as its index and the failed
    # checks as bits (63 per integer: memory bounded by the violations, a few bytes each).
    names = [f"__execctx_failed{i}" for i in range(len(checks))]
    failed = [c.expr.fill_null(True).not_().alias(n) for c, n in zip(checks, names, strict=True)]
    masks = [
        pl.sum_horizontal(
            pl.col(n).cast(pl.UInt64) * _bit(i)[1] for i, n in enumerate(names) if i // _BITS == m
        ).alias(_bit(m * _BITS)[0])
        for m in range((len(names) + _BITS - 1) // _BITS)
    ]
    bad = (
        indexed.select(pl.col(_ROW), *failed)
        .filter(pl.any_horizontal(names))
        .select(pl.col(_ROW), *masks)
        .collect(engine="streaming")
        .rechunk()
    )
    if bad.height and any(c.rescue for c in checks):
        bad = _rescue(indexed, bad, checks)
    by_path: dict[tuple[str, str], list[int]] = {}
    for i, (path, keyword, _, _) in enumerate(checks):
        hit = bad.filter(_failed(i))
        if hit.height:
            by_path[(path, keyword)] = [hit.height, *hit[_ROW].head(SHOWN).to_list()]
    values = _offending_values(indexed, columns, by_path)
    violations = tuple(
        PathViolations(
            path=path or "/",
            keyword=keyword,
            count=entry[0],
            share=entry[0] / total if total else 0.0,
            rows=tuple(entry[1:]),
            values=values.get((path, keyword), ()),
        )
        for (path, keyword), entry in sorted(by_path.items(), key=lambda kv: -kv[1][0])
    )
    return ValidationReport(rows=total, violations=violations, invalid_rows=bad[_ROW])


def _bit(i: int) -> tuple[str, int]:
    """Where check ``i``'s failure is kept: its mask column and bit."""
    return f"__execctx_mask{i // _BITS}", 1 << (i % _BITS)


def _failed(i: int) -> Any:
    """The rows of ``bad`` that failed check ``i``."""
    import polars as pl

    mask, bit = _bit(i)
    return (pl.col(mask) & bit) != 0


def _rescue(indexed: Any, bad: Any, checks: list[Check]) -> Any:
    """``bad`` without the failures of prefilter checks that jsonschema accepts: the failing
    rows' values are read (one more pass that keeps only those rows) and checked once per
    distinct value; rows left with no failed check drop out."""
    import polars as pl

    hits = {
        i: rows
        for i, c in enumerate(checks)
        if c.rescue is not None and len(rows := bad.filter(_failed(i))[_ROW])
    }
    if not hits:
        return bad
    wanted = pl.concat(list(hits.values())).unique()
    values = (
        indexed.filter(pl.col(_ROW).is_in(wanted.implode()))
        .select(_ROW, *[checks[i].rescue[0].alias(f"v{i}") for i in hits])  # type: ignore[index]
        .collect(engine="streaming")
    )
    for i, rows in hits.items():
        _, good = checks[i].rescue  # type: ignore[misc]
        mine = values.filter(pl.col(_ROW).is_in(rows.implode()))
        column = mine[f"v{i}"]
        ok = pl.Series(good(column.drop_nulls().unique().to_list()), dtype=column.dtype)
        saved = mine.filter(pl.col(f"v{i}").is_in(ok.implode()))[_ROW]
        if len(saved):
            mask, bit = _bit(i)
            is_saved = pl.col(_ROW).is_in(saved.implode())
            bad = bad.with_columns(
                pl.when(is_saved).then(pl.col(mask) - bit).otherwise(pl.col(mask)).alias(mask)
            )
    masks = [c for c in bad.columns if c != _ROW]
    return bad.filter(pl.any_horizontal(pl.col(m) != 0 for m in masks))


def _offending_values(
    indexed: Any, columns: dict[str, Any], by_path: dict[tuple[str, str], list[int]]
) -> dict[Any, Any]:
    """The top-level column values of the first offending rows, per path (one more pass
    over the input that keeps only those rows)."""
    import polars as pl

    wanted = {column for (path, _) in by_path if (column := _column(path)) in columns}
    shown = sorted({r for entry in by_path.values() for r in entry[1:]})
    if not wanted or not shown:
        return {}
    picked = (
        indexed.filter(pl.col(_ROW).is_in(shown))
        .select(_ROW, *sorted(wanted))
        .collect(engine="streaming")
    )
    index = {r: i for i, r in enumerate(picked[_ROW].to_list())}
    out: dict[Any, Any] = {}
    for (path, keyword), entry in by_path.items():
        column = _column(path)
        if column in wanted:
            out[(path, keyword)] = tuple(picked[column][index[r]] for r in entry[1:] if r in index)
    return out


def _column(path: str) -> str:
    return path.strip("/").split("/", 1)[0]


def _rows(rows: list[Any], schema: Any) -> ValidationReport:
    """Plain rows: jsonschema per row, on the rows as the envelope encoder writes them."""
    import msgspec
    import polars as pl
    from jsonschema import Draft202012Validator

    from execctx_nb._records import _ENCODER

    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    by_path: dict[tuple[str, str], list[Any]] = {}
    invalid: list[int] = []
    for i, row in enumerate(msgspec.json.decode(_ENCODER.encode(rows))):
        errors = list(validator.iter_errors(row))
        if errors:
            invalid.append(i)
        for err in errors:
            path = "/" + "/".join(str(p) for p in err.absolute_path)
            if err.validator == "required":
                path = path.rstrip("/") + "/" + str(err.message).split("'")[1]
            entry = by_path.setdefault((path.replace("//", "/"), str(err.validator)), [0, [], []])
            entry[0] += 1
            if len(entry[1]) < SHOWN:
                entry[1].append(i)
                entry[2].append(err.instance)
    total = len(rows)
    violations = tuple(
        PathViolations(
            path=p, keyword=k, count=e[0], share=e[0] / total, rows=tuple(e[1]), values=tuple(e[2])
        )
        for (p, k), e in sorted(by_path.items(), key=lambda kv: -kv[1][0])
    )
    return ValidationReport(
        rows=total, violations=violations, invalid_rows=pl.Series(_ROW, invalid, pl.UInt32)
    )
