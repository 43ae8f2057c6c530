"""``infer_schema``: dispatch on the input kind, sample, walk, render."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from execctx_nb.errors import SchemaInferenceError
from execctx_nb.inference._sample import block_ranges, even_indices, sample_iterable
from execctx_nb.inference._sources import native_frame, pushed_down_sample
from execctx_nb.inference._spec import Spec
from execctx_nb.inference._strategies import EnumRule, Node, ObjectStrategy

__all__ = ["DIALECT", "Options", "infer_schema", "make_options", "schema_from_rows"]

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SAMPLED = "x-execctx-sampled"
ROWS = "x-execctx-rows"
_MAX_DEPTH_LIMIT = 200  # keeps the (depth-bounded) walkers far from Python's recursion limit


@dataclass(frozen=True, slots=True)
class Options:
    sample_size: int
    max_depth: int
    rule: EnumRule
    seed: int
    lazy_blocks: int


def infer_schema(
    obj: Any,
    *,
    sample_size: int = 200,
    max_depth: int = 8,
    enum_max: int = 16,
    enum_min_count: int = 10,
    seed: int = 0,
    lazy_blocks: int = 2,
) -> dict[str, Any]:
    """Infer a JSON Schema 2020-12 for one row of ``obj`` from a sample of its rows.

    Parameters
    ----------
    obj
        A pyarrow Table, RecordBatch, RecordBatchReader, Array or ChunkedArray; anything
        with ``__arrow_c_stream__`` or ``__arrow_c_array__``; a Polars DataFrame,
        LazyFrame or Series; a list (or iterator) of JSON rows; or one JSON document.
        A frame or a list of rows gives the schema of a row; an array or Series gives
        the schema of its values.
    sample_size
        At most this many rows are read (spread over the input, deterministically).
    max_depth
        Nesting levels walked (the row itself is level 1); deeper containers become a
        permissive schema marked ``x-execctx-cut``.
    enum_max, enum_min_count
        The enum rule: strings become an enum only with at least ``enum_min_count``
        values, at most ``min(enum_max, sqrt(count))`` distinct ones, and a closed domain:
        at least 100 values, each seen 3 times or more (see docs/inference.md, "Enums").
    seed
        Seeds the reservoir used for streams and iterators of unknown length.
    lazy_blocks
        Contiguous runs read from a LazyFrame (each run costs about one row group).

    Returns
    -------
    dict
        The schema, with ``x-execctx-*`` annotations (see docs/inference.md).

    Examples
    --------
    >>> s = infer_schema([{"id": 1, "tag": None}, {"id": 2, "tag": "a"}])
    >>> s["properties"]["tag"]["type"], s["required"]
    (['null', 'string'], ['id', 'tag'])
    """
    opts = make_options(sample_size, max_depth, enum_max, enum_min_count, seed, lazy_blocks)
    obj = native_frame(obj)
    module = type(obj).__module__ or ""
    try:
        pushed = pushed_down_sample(obj, sample_size, lazy_blocks)
    except Exception as exc:  # the engine's own error (a failing query, a missing file)
        raise _translate(exc, f"the {module.split('.')[0]} input") from exc
    if pushed is not None:
        return _arrow(pushed[0], opts, total=pushed[1])
    if module.startswith("polars"):
        return _polars(obj, opts)
    if (
        module.startswith("pyarrow")
        or hasattr(obj, "__arrow_c_stream__")
        or hasattr(obj, "__arrow_c_array__")
    ):
        return _arrow(obj, opts)
    if isinstance(obj, (list, tuple)):
        idx = even_indices(len(obj), sample_size)
        return schema_from_rows([obj[i] for i in idx], len(obj), opts)
    if isinstance(obj, Iterator):
        rows, total = sample_iterable(obj, sample_size, seed)
        return schema_from_rows(rows, total, opts)
    if isinstance(obj, (Mapping, str, int, float, bool)) or obj is None:
        return schema_from_rows([obj], 1, opts)
    raise SchemaInferenceError(
        f"Cannot infer a schema: expected an Arrow or Polars frame, a list of rows or a JSON "
        f"document, got `{type(obj).__name__}` - at `infer_schema(obj)`"
    )


def make_options(
    sample_size: int = 200,
    max_depth: int = 8,
    enum_max: int = 16,
    enum_min_count: int = 10,
    seed: int = 0,
    lazy_blocks: int = 2,
) -> Options:
    """Checked :class:`Options` (raises :class:`SchemaInferenceError` naming the argument)."""
    for name, value, low, high in (
        ("sample_size", sample_size, 1, None),
        ("max_depth", max_depth, 0, _MAX_DEPTH_LIMIT),
        ("enum_max", enum_max, 0, None),
        ("enum_min_count", enum_min_count, 1, None),
        ("lazy_blocks", lazy_blocks, 1, None),
    ):
        if type(value) is not int or value < low or (high is not None and value > high):
            bound = f"{low}..{high}" if high is not None else f">= {low}"
            raise SchemaInferenceError(
                f"Invalid {name} {value!r}: expected an int {bound} - at `infer_schema({name}=...)`"
            )
    return Options(sample_size, max_depth, EnumRule(enum_max, enum_min_count), seed, lazy_blocks)


def _render(root: Node, sampled: int, total: int) -> dict[str, Any]:
    return {"$schema": DIALECT, **root.to_schema(), SAMPLED: sampled, ROWS: total}


def schema_from_rows(rows: list[Any], total: int, opts: Options) -> dict[str, Any]:
    """Schema of already sampled plain rows (``total``: rows in the whole input)."""
    from execctx_nb.inference._rows import RowWalker

    root = RowWalker(opts.max_depth, opts.rule).node(rows, 1)
    return _render(root, len(rows), total)


def _table_root(columns: list[tuple[str, Any, Spec]], opts: Options) -> Node:
    """The row node of a frame: an object whose properties are the columns."""
    from execctx_nb.inference._columns import ColumnWalker

    root = Node()
    if opts.max_depth < 1:
        root.cut = True
        return root
    walker = ColumnWalker(opts.rule)
    obj: ObjectStrategy = root.get(ObjectStrategy)
    obj.add_record()
    obj.add_required(name for name, _, _ in columns)
    for name, arr, spec in columns:
        obj.properties[name] = walker.node(arr, spec)
    return root


def _translate(exc: Exception, what: str) -> SchemaInferenceError:
    return SchemaInferenceError(
        f"Cannot read {what}: expected a readable frame, got {type(exc).__name__}: {exc} - "
        f"at `infer_schema(obj)`; check the source (file, query) and retry"
    )


def _polars(obj: Any, opts: Options) -> dict[str, Any]:
    import polars as pl
    import pyarrow as pa  # the Arrow export can fail on dtypes pyarrow cannot import

    from execctx_nb.inference._polars import exportable_dtype, spec_from_polars

    k = opts.sample_size
    full_nulls: dict[str, int] = {}
    try:
        if isinstance(obj, pl.Series):
            total = obj.len()
            sample = obj.gather(even_indices(total, k)) if total > k else obj
            spec = spec_from_polars(sample.dtype, 1, opts.max_depth)
            from execctx_nb.inference._columns import ColumnWalker

            cast = exportable_dtype(sample.dtype)
            arr = (sample if cast is None else sample.cast(cast)).to_arrow()
            node = ColumnWalker(opts.rule).node(arr, spec)
            _whole_column_nulls(node, obj.null_count())
            return _render(node, sample.len(), total)
        if isinstance(obj, pl.LazyFrame):
            schema = obj.collect_schema()
            total = int(obj.select(pl.len()).collect().item())
            ranges = block_ranges(total, k, opts.lazy_blocks)
            parts = [obj.slice(offset, length) for offset, length in ranges]
            frame = pl.concat(parts).collect() if parts else obj.head(0).collect()
        elif isinstance(obj, pl.DataFrame):
            schema, total = obj.schema, obj.height
            frame = obj[even_indices(total, k)] if total > k else obj
            if total > k:  # an eager frame knows each column's null count: no sampling needed
                full_nulls = dict(zip(obj.columns, obj.null_count().row(0), strict=True))
        else:
            raise SchemaInferenceError(
                f"Cannot infer a schema: expected a Polars DataFrame, LazyFrame or Series, got "
                f"`{type(obj).__name__}` - at `infer_schema(obj)`"
            )
        casts: dict[Any, Any] = {
            name: new
            for name, dtype in frame.schema.items()
            if (new := exportable_dtype(dtype)) is not None
        }
        table = (frame.cast(casts) if casts else frame).to_arrow()
    except (pl.exceptions.PolarsError, pa.ArrowException, OSError) as exc:
        raise _translate(exc, "the Polars input") from exc
    columns = [
        (name, _one_chunk(table.column(name)), spec_from_polars(dtype, 2, opts.max_depth))
        for name, dtype in schema.items()
    ]
    return _render(_with_nulls(_table_root(columns, opts), full_nulls), table.num_rows, total)


def _arrow(obj: Any, opts: Options, total: int | None = None) -> dict[str, Any]:
    """Schema of an Arrow input; with ``total``, ``obj`` is a sample of that many rows."""
    import pyarrow as pa

    from execctx_nb.inference._arrow import spec_from_arrow
    from execctx_nb.inference._columns import ColumnWalker

    k = opts.sample_size
    full_nulls: dict[str, int] = {}
    try:
        if not isinstance(
            obj, (pa.Table, pa.RecordBatch, pa.Array, pa.ChunkedArray, pa.RecordBatchReader)
        ):
            obj = _from_stream(obj) if hasattr(obj, "__arrow_c_stream__") else pa.array(obj)
        if isinstance(obj, pa.RecordBatchReader):
            table, total = _sample_stream(obj, k, opts.seed)
        elif isinstance(obj, (pa.Array, pa.ChunkedArray)):
            total = len(obj)
            arr = obj.take(even_indices(total, k)) if total > k else obj
            arr = _one_chunk(arr)
            spec = spec_from_arrow(arr.type, 1, opts.max_depth)
            node = ColumnWalker(opts.rule).node(arr, spec)
            _whole_column_nulls(node, obj.null_count)
            return _render(node, len(arr), total)
        elif total is not None:  # sampled where it lives
            table = obj
        else:
            total = obj.num_rows
            table = _without_views(obj).take(even_indices(total, k)) if total > k else obj
            if total > k:  # Arrow keeps each column's null count: no sampling needed
                full_nulls = {f.name: obj.column(i).null_count for i, f in enumerate(obj.schema)}
    except (pa.ArrowException, OSError) as exc:
        raise _translate(exc, "the Arrow input") from exc
    columns = []
    for i, field in enumerate(table.schema):
        columns.append(
            (
                field.name,
                _one_chunk(table.column(i)),
                spec_from_arrow(field.type, 2, opts.max_depth),
            )
        )
    return _render(_with_nulls(_table_root(columns, opts), full_nulls), table.num_rows, total)


def _without_views(table: Any) -> Any:
    """``table`` with string/binary view columns as large types: pyarrow has no ``take``
    kernel for views (``pa.table(polars_frame)`` makes them)."""
    import pyarrow as pa

    def plain(t: Any) -> Any:
        if pa.types.is_string_view(t):
            return pa.large_string()
        if pa.types.is_binary_view(t):
            return pa.large_binary()
        if pa.types.is_struct(t):
            return pa.struct([f.with_type(plain(f.type)) for f in t])
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            return pa.large_list(t.value_field.with_type(plain(t.value_type)))
        if pa.types.is_list_view(t) or pa.types.is_large_list_view(t):
            return pa.large_list(t.value_field.with_type(plain(t.value_type)))
        return t

    schema = pa.schema([f.with_type(plain(f.type)) for f in table.schema], table.schema.metadata)
    return table if schema.equals(table.schema) else table.cast(schema)


def _whole_column_nulls(node: Node, nulls: int) -> None:
    # Nullability from the whole column, the rest from the sample: a null outside the
    # sample must not make a row of the data fail its own schema. (The nulls annotation
    # still counts the sample's.)
    if nulls and not node.has_null and not node.cut:
        node.has_null = True


def _with_nulls(root: Node, full_nulls: dict[str, int]) -> Node:
    """Mark the top-level columns the whole eager frame has nulls in as nullable."""
    if full_nulls and not root.cut:
        properties = root.get(ObjectStrategy).properties
        for name, nulls in full_nulls.items():
            if name in properties:
                _whole_column_nulls(properties[name], nulls)
    return root


def _from_stream(obj: Any) -> Any:
    """A RecordBatchReader for a stream of struct batches, else a ChunkedArray of values.

    The C stream protocol carries no flag saying which one a producer sends, and pyarrow
    only reads struct streams as batches: a plain array stream (a Series, a column) is
    asked for again and read as a ChunkedArray, like ``pa.chunked_array`` does.
    """
    import pyarrow as pa

    try:
        return pa.RecordBatchReader.from_stream(obj)
    except pa.ArrowInvalid as exc:
        if "non-struct" not in str(exc):
            raise
    return pa.chunked_array(obj)


def _one_chunk(col: Any) -> Any:
    """A contiguous Array (a single chunk is used as it is: combining would copy it)."""
    import pyarrow as pa

    if not isinstance(col, pa.ChunkedArray):
        return col
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()


def _sample_stream(reader: Any, k: int, seed: int) -> tuple[Any, int]:
    """Reservoir-sample a RecordBatchReader without holding more than ``k`` rows."""
    import pyarrow as pa

    from execctx_nb.inference._sample import Reservoir

    res = Reservoir(k, seed)
    slots: list[Any] = []
    for batch in reader:
        picks = res.offer(batch.num_rows)
        if not picks:
            continue
        taken = batch.take([offset for _, offset in picks])
        for j, (slot, _) in enumerate(picks):
            row = taken.slice(j, 1)
            if slot == len(slots):
                slots.append(row)
            else:
                slots[slot] = row
    rows = [slots[i] for i in res.order()]
    table = (
        pa.Table.from_batches(rows, schema=reader.schema) if rows else reader.schema.empty_table()
    )
    return table, res.seen
