"""Any dataframe in: what step data the store keeps, from what a user has.

The store keeps four kinds of step data: JSON rows, a Polars DataFrame, a Polars LazyFrame
(sunk to the cold tier as Parquet, streaming) and a pyarrow Table. Everything else is turned
into one of them here, once, at the boundary (``StepEnvelope.from_frame``, ``put_step``,
``infer_schema``), so the schema inferred is the schema of what is stored:

- pandas DataFrames become Arrow tables with pandas' own metadata (``to_pandas`` gives the
  dtypes back: nullable integers, categoricals, zones). A default RangeIndex is dropped; any
  other index becomes columns (``reset_index``), named or ``index``.
- pyarrow RecordBatches and RecordBatchReaders become Tables; a pyarrow Dataset becomes a
  LazyFrame over it (``pl.scan_pyarrow_dataset``), so it is written without being read whole.
- DuckDB relations, narwhals and ibis frames, and anything else with the Arrow C stream
  (``__arrow_c_stream__``), are read through that stream into a Table.

No library is imported unless the object comes from it.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from execctx_nb.errors import EnvelopeEncodeError

__all__ = [
    "ACCEPTED",
    "arrow_to_pandas",
    "data_kind",
    "dataset_scan",
    "polars_scan",
    "encode_scalar",
    "step_data",
]

ACCEPTED = (
    "JSON rows, a Polars DataFrame or LazyFrame, a pyarrow Table, RecordBatch, "
    "RecordBatchReader or Dataset, a pandas DataFrame, a DuckDB relation, a narwhals or "
    "ibis frame, or any object with __arrow_c_stream__"
)


def data_kind(data: Any) -> str | None:
    """``"polars"``, ``"lazy"``, ``"arrow"`` or None (JSON rows) for normalised step data."""
    cls = type(data)
    module, name = cls.__module__, cls.__name__
    if module.startswith("polars"):
        if name == "DataFrame":
            return "polars"
        if name == "LazyFrame":
            return "lazy"
    if module.startswith("pyarrow") and name == "Table":
        return "arrow"
    return None


def step_data(obj: Any, *, where: str = "envelope.data") -> Any:
    """``obj`` as step data the store keeps (see the module docstring).

    Raises
    ------
    EnvelopeEncodeError
        ``obj`` is none of the accepted kinds, or its library could not convert it; the
        message names the type given.
    """
    if obj is None or isinstance(obj, (list, dict, str, int, float, bool)):
        return obj
    if data_kind(obj) is not None:
        return obj
    module = type(obj).__module__ or ""
    name = type(obj).__name__
    try:
        if module.startswith("pandas") and name == "DataFrame":
            return _from_pandas(obj)
        if module.startswith("narwhals"):
            import narwhals as nw

            return step_data(nw.to_native(obj), where=where)
        if module.startswith("pyarrow"):
            import pyarrow as pa

            if isinstance(obj, pa.RecordBatch):
                return pa.Table.from_batches([obj])
            if isinstance(obj, pa.RecordBatchReader):
                return obj.read_all()
            if module.startswith("pyarrow._dataset") or name.endswith("Dataset"):
                return dataset_scan(obj)
        if module.startswith("polars") and name == "Series":
            return obj.to_frame()
        if hasattr(obj, "__arrow_c_stream__"):  # DuckDB relations, ibis tables, ...
            import pyarrow as pa

            return pa.RecordBatchReader.from_stream(obj).read_all()
    except EnvelopeEncodeError:
        raise
    except Exception as exc:  # the converting library's own error, named below
        raise EnvelopeEncodeError(
            f"Cannot take step data from a {module}.{name}: {type(exc).__name__}: {exc}"
            f" - at `{where}`; pass {ACCEPTED}"
        ) from exc
    raise EnvelopeEncodeError(
        f"Cannot take step data from a {module}.{name} - at `{where}`; pass {ACCEPTED}"
    )


def dataset_scan(dataset: Any) -> Any:
    """A Polars LazyFrame over a pyarrow Dataset.

    Local Parquet files (plain or hive-partitioned) are scanned by Polars itself, which
    skips to the pages a slice needs: 7 ms for 100 rows at the end of a 3M-row file, against
    180-300 ms for ``Dataset.take``/``head`` or ``pl.scan_pyarrow_dataset``. Any other
    dataset goes through ``pl.scan_pyarrow_dataset``.
    """
    import polars as pl

    native = polars_scan(dataset)
    return native if native is not None else pl.scan_pyarrow_dataset(dataset)


def polars_scan(dataset: Any) -> Any:
    """Polars' own scan of a Dataset of local Parquet files (plain or hive-partitioned), or
    None when Polars cannot read it by itself."""
    import polars as pl
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    partitioning = getattr(dataset, "partitioning", None)
    keyed = partitioning is not None and len(partitioning.schema) > 0
    hive = keyed and type(partitioning).__name__ == "HivePartitioning"
    if (
        isinstance(dataset, ds.FileSystemDataset)
        and isinstance(dataset.format, ds.ParquetFileFormat)
        and isinstance(dataset.filesystem, pafs.LocalFileSystem)
        and (hive or not keyed)
        and dataset.files
    ):
        return pl.scan_parquet(list(dataset.files), hive_partitioning=hive)
    return None


def _from_pandas(df: Any) -> Any:
    import pandas as pd
    import pyarrow as pa

    index = df.index
    default = (
        isinstance(index, pd.RangeIndex)
        and index.start == 0
        and index.step == 1
        and index.name is None
    )
    if not default:
        df = df.reset_index()
    if not all(isinstance(c, str) for c in df.columns):
        df = df.rename(columns=str)  # JSON rows and Parquet want text column names
    return pa.Table.from_pandas(df, preserve_index=False)


def encode_scalar(obj: Any) -> Any:
    """JSON form of a numpy or pandas scalar inside rows (``df.to_dict("records")``).

    Returns ``NotImplemented`` for anything else, so the caller raises its own error.
    """
    module = type(obj).__module__ or ""
    if module.startswith("numpy"):
        import numpy as np

        if isinstance(obj, np.datetime64):
            if np.isnat(obj):
                return None
            import pandas as pd

            return pd.Timestamp(obj).to_pydatetime()
        if isinstance(obj, np.timedelta64):
            return None if np.isnat(obj) else dt.timedelta(microseconds=int(obj // 1000))
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, np.generic):
            value = obj.item()
            if isinstance(value, float) and math.isnan(value):
                return None  # NaN, as pandas writes a missing float
            return value
    if module.startswith("pandas"):
        import pandas as pd

        if obj is pd.NaT or obj is pd.NA:
            return None
        if isinstance(obj, pd.Timestamp):
            if obj.nanosecond:
                raise EnvelopeEncodeError(
                    f"Cannot encode {obj!r} as JSON: expected microsecond precision, got"
                    " nanoseconds - at `envelope.data`; round it (ts.floor('us')) or store"
                    " the frame, which keeps nanoseconds in the cold tier"
                )
            return obj.to_pydatetime()
        if isinstance(obj, pd.Timedelta):
            return obj.to_pytimedelta()
    return NotImplemented


def arrow_to_pandas(table: Any) -> Any:
    """A pandas DataFrame of ``table`` (see ``StepEnvelope.to_pandas``)."""
    try:
        import pandas as pd
    except ImportError as exc:
        raise EnvelopeEncodeError(
            "to_pandas() needs pandas: pip install pandas (or use to_polars() / to_arrow())"
        ) from exc
    import pyarrow as pa

    if table.schema.pandas_metadata is not None:
        return table.to_pandas()  # written from pandas: its metadata restores its dtypes
    nullable = {
        pa.int8(): pd.Int8Dtype(),
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.uint8(): pd.UInt8Dtype(),
        pa.uint16(): pd.UInt16Dtype(),
        pa.uint32(): pd.UInt32Dtype(),
        pa.uint64(): pd.UInt64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }
    holes = {
        f.name
        for f, col in zip(table.schema, table.columns, strict=True)
        if f.type in nullable and col.null_count
    }
    # Only the columns with nulls take pandas' nullable dtypes: pyarrow would make them
    # floats (or objects); the others keep numpy's int64/bool, as pandas users expect.
    df = table.select([c for c in table.column_names if c not in holes]).to_pandas()
    for name in holes:
        df[name] = table.column(name).to_pandas(types_mapper=nullable.get)
    return df[table.column_names]
