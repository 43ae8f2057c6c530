"""Benchmark: validating a whole frame against its JSON Schema.

1,000,000 rows x 12 columns (integers, floats, strings with formats and enums, dates,
a struct, a list; ~1% violations), the schema inferred from a clean sample. Same run:
execctx_nb ``validate`` (eager and over a LazyFrame of the Parquet file) against
(a) ``df.to_dicts()`` + jsonschema-rs per row, (b) jsonschema (Python) per row on a
10,000-row slice, scaled. Targets (issue 17): >= 10x (a), >= 100x (b).

Run: ``.venv/bin/python benchmarks/bench_validate.py``
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
from jsonschema import Draft202012Validator

from execctx_nb import infer_schema, validate
from execctx_nb._records import _ENCODER

ROWS = 1_000_000


def frame(n: int) -> pl.DataFrame:
    i = pl.col("i")
    return pl.DataFrame({"i": pl.int_range(n, eager=True)}).select(
        i.alias("id"),
        ((i * 7) % 50).alias("qty"),
        (((i * 13) % 10_000) / 100).alias("price"),
        pl.lit(pl.Series(["ok", "failed", "retry", "skipped"])).gather(i % 4).alias("status"),
        pl.lit(pl.Series(["AT", "FR", "GB", "PT", "US"])).gather(i % 5).alias("country"),
        pl.lit(dt.date(2020, 1, 1)).alias("day"),
        pl.format("user{}@example.com", i).alias("email"),
        pl.format("https://example.com/items/{}", i % 1000).alias("url"),
        ((i % 97) / 97).alias("score"),
        (i % 3 == 0).alias("flag"),
        pl.struct(
            cid=i % 1000, tier=pl.when(i % 2 == 0).then(pl.lit("a")).otherwise(pl.lit("b"))
        ).alias("customer"),
        pl.concat_list(i % 5, i % 7).alias("tags"),
    )


def with_violations(df: pl.DataFrame) -> pl.DataFrame:
    bad = (pl.col("id") % 100) == 0  # 1%
    return df.with_columns(
        pl.when(bad).then(pl.lit("unknown")).otherwise(pl.col("status")).alias("status"),
        pl.when(bad).then(-1).otherwise(pl.col("qty")).alias("qty"),
    )


def median(fn: Any, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    clean = frame(ROWS)
    schema = infer_schema(clean)
    schema["properties"]["qty"]["minimum"] = 0
    df = with_violations(clean)
    report = validate(df, schema)
    print(f"{ROWS:,} rows x {df.width} columns: {len(report.invalid_rows):,} invalid rows")
    ours = median(lambda: validate(df, schema))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.parquet"
        df.write_parquet(path)
        lazy = median(lambda: validate(pl.scan_parquet(path), schema))
    try:
        import jsonschema_rs

        rs = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)

        def with_rs() -> int:
            rows = msgspec.json.decode(_ENCODER.encode(df))
            return sum(not rs.is_valid(r) for r in rows)

        rs_s = median(with_rs, 1)
    except ImportError:
        rs_s = None
    py = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    part = msgspec.json.decode(_ENCODER.encode(df.head(10_000)))
    py_s = median(lambda: sum(not py.is_valid(r) for r in part), 1) * (ROWS / 10_000)
    print(f"  execctx_nb validate (eager)            {ours:8.2f} s")
    print(f"  execctx_nb validate (LazyFrame, file)  {lazy:8.2f} s")
    if rs_s is not None:
        print(
            f"  to_dicts + jsonschema-rs per row       {rs_s:8.2f} s   {rs_s / ours:6.1f}x (target >= 10x)"
        )
    print(
        f"  jsonschema (Python) per row, scaled    {py_s:8.2f} s   {py_s / ours:6.1f}x (target >= 100x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
