"""Benchmark: validating a whole frame against its JSON Schema.

1,000,000 rows x 30 columns (integers, floats, strings with formats and enums, dates and
instants, nested structs, lists of integers, strings and structs; ~1% violating rows), the
schema inferred from a clean sample plus a minimum and a pattern. Same run: execctx_nb
``validate`` (eager, and over a LazyFrame of the Parquet file) against
(a) ``df.to_dicts()`` + jsonschema-rs per row, (b) jsonschema (Python) per row on a
10,000-row slice, scaled, (c) pandera (Polars backend) on the checks it can express
(dtypes, nullability, enums, bounds, patterns and formats as regexes; not nested values).
Targets (issue 17): >= 10x (a), >= 100x (b), ahead of (c). Then the peak memory of a
LazyFrame over Parquet at 1M, 10M and 20M rows (a fresh process each): it should not grow with
the rows.

Run: ``.venv/bin/python benchmarks/bench_validate.py [--rows N] [--no-memory]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import statistics
import subprocess
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

SKU = "^SKU-[0-9]{6}$"
EMAIL = "@"  # jsonschema's email check: the value holds an "@"
UUID = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
IPV4 = r"^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$"


def _pick(values: list[str], by: Any) -> Any:
    return pl.lit(pl.Series(values)).gather(by % len(values))


def frame(n: int, offset: int = 0) -> pl.DataFrame:
    i = pl.col("i")
    start = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    return pl.DataFrame({"i": pl.int_range(offset, offset + n, eager=True)}).select(
        i.alias("id"),
        ((i * 7) % 50).alias("qty"),
        (((i * 13) % 10_000) / 100).alias("price"),
        _pick(["ok", "failed", "retry", "skipped"], i).alias("status"),
        _pick(["AT", "FR", "GB", "PT", "US"], i).alias("country"),
        pl.lit(dt.date(2020, 1, 1)).alias("day"),
        pl.format("user{}@example.com", i).alias("email"),
        pl.format("https://example.com/items/{}", i % 1000).alias("url"),
        ((i % 97) / 97).alias("score"),
        (i % 3 == 0).alias("flag"),
        pl.struct(
            cid=i % 1000,
            tier=_pick(["a", "b"], i),
            address=pl.struct(zip=pl.format("{}", 1000 + i % 9000), city=_pick(["Lx", "Po"], i)),
        ).alias("customer"),
        pl.concat_list(i % 5, i % 7).alias("tags"),
        pl.format(
            "{}-0000-4000-8000-{}", i.cast(pl.String).str.zfill(8), i.cast(pl.String).str.zfill(12)
        ).alias("order_uuid"),
        (pl.lit(start) + pl.duration(seconds=i)).alias("created_at"),
        _pick(["EUR", "USD", "GBP"], i).alias("currency"),
        _pick(["web", "app", "store", "phone"], i // 3).alias("channel"),
        pl.when(i % 4 == 0).then(None).otherwise((i % 20) / 100).alias("discount"),
        pl.when(i % 2 == 0).then(None).otherwise(pl.format("note {}", i % 50)).alias("notes"),
        ((i % 500) / 10 + 0.5).alias("weight"),
        (i % 12).alias("warehouse"),
        pl.format("SKU-{}", (i % 10_000).cast(pl.String).str.zfill(6)).alias("sku"),
        (i % 3).alias("priority"),
        pl.concat_list(
            pl.struct(sku=pl.format("SKU-{}", i % 10), n=i % 4),
            pl.struct(sku=pl.format("SKU-{}", i % 7), n=i % 3),
        ).alias("items"),
        pl.concat_list(_pick(["new", "gift"], i), _pick(["eu", "us", "uk"], i)).alias("labels"),
        _pick(["north", "south", "east", "west"], i // 7).alias("region"),
        (i % 11 == 0).alias("returned"),
        (1 + i % 5).alias("rating"),
        pl.format("s{}", i // 10).alias("session"),
        pl.format("10.{}.{}.{}", (i // 65536) % 256, (i // 256) % 256, i % 256).alias("ip"),
        (i % 4 + 1).alias("version"),
    )


def with_violations(df: pl.DataFrame) -> pl.DataFrame:
    bad = (pl.col("id") % 100) == 0  # 1% of rows, each breaking three columns
    return df.with_columns(
        pl.when(bad).then(pl.lit("unknown")).otherwise(pl.col("status")).alias("status"),
        pl.when(bad).then(-1).otherwise(pl.col("qty")).alias("qty"),
        pl.when(bad).then(pl.lit("SKU-x")).otherwise(pl.col("sku")).alias("sku"),
    )


def contract(clean: pl.DataFrame) -> dict[str, Any]:
    schema = infer_schema(clean)
    schema["properties"]["qty"]["minimum"] = 0
    schema["properties"]["sku"]["pattern"] = SKU
    return schema


def median(fn: Any, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def pandera_schema(df: pl.DataFrame, schema: dict[str, Any]) -> Any:
    """The checks pandera can express for ``schema``, column by column."""
    import pandera.polars as pa

    patterns = {"email": EMAIL, "uuid": UUID, "ipv4": IPV4}
    columns = {}
    for name, dtype in df.schema.items():
        node = schema["properties"][name]
        types = node.get("type", [])
        checks = []
        if "enum" in node:
            checks.append(pa.Check.isin([v for v in node["enum"] if v is not None]))
        if "minimum" in node:
            checks.append(pa.Check.ge(node["minimum"]))
        if "pattern" in node:
            checks.append(pa.Check.str_matches(node["pattern"]))
        if node.get("format") in patterns:
            checks.append(pa.Check.str_contains(patterns[node["format"]]))
        nullable = "null" in types if isinstance(types, list) else types == "null"
        columns[name] = pa.Column(dtype, checks=checks, nullable=nullable)
    return pa.DataFrameSchema(columns)


def expressible(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` cut to what :func:`pandera_schema` checks: top-level types, enums,
    minimums, patterns and the formats pandera can state as a regex."""
    keep = {"type", "enum", "minimum", "pattern"}
    props = {}
    for name, node in schema["properties"].items():
        cut = {k: v for k, v in node.items() if k in keep}
        if node.get("format") in ("email", "uuid", "ipv4"):
            cut["format"] = node["format"]
        props[name] = cut
    return {"type": "object", "properties": props, "required": schema.get("required", [])}


def run_pandera(checker: Any, df: pl.DataFrame) -> int:
    import pandera.errors

    try:
        checker.validate(df, lazy=True)
    except pandera.errors.SchemaErrors as err:
        return len(err.failure_cases)
    return 0


def peak_rss_mb(path: Path, schema_path: Path) -> float:
    """Peak RSS of a fresh process that validates a LazyFrame over ``path`` (VmHWM: the
    child's own high-water mark; ru_maxrss would carry the parent's over fork + exec)."""
    code = (
        "import json, re, sys, polars as pl; from execctx_nb import validate; "
        "r = validate(pl.scan_parquet(sys.argv[1]), json.load(open(sys.argv[2]))); "
        "s = open('/proc/self/status').read(); "
        "print(re.search(r'VmHWM:\\s+(\\d+)', s).group(1), len(r.invalid_rows))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path), str(schema_path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return int(out[0]) / 1024


def write_in_chunks(path: Path, rows: int, chunk: int = 500_000) -> None:
    """One Parquet file of ``rows`` rows, written a chunk at a time (row groups of 100k)."""
    import pyarrow.parquet as pq

    writer = None
    for offset in range(0, rows, chunk):
        table = with_violations(frame(min(chunk, rows - offset), offset)).to_arrow()
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=100_000)
    if writer is not None:
        writer.close()


def memory(schema: dict[str, Any], sizes: tuple[int, ...], runs: int = 3) -> None:
    print(f"\nPeak RSS, validate(pl.scan_parquet(...)) in a fresh process (median of {runs}):")
    base = None
    per_row = frame(100_000).estimated_size() / 100_000
    with tempfile.TemporaryDirectory() as tmp:
        schema_path = Path(tmp) / "schema.json"
        schema_path.write_text(json.dumps(schema))
        for n in sizes:
            path = Path(tmp) / f"rows{n}.parquet"
            write_in_chunks(path, n)
            mb = statistics.median(peak_rss_mb(path, schema_path) for _ in range(runs))
            base = base or mb
            size = path.stat().st_size / 2**20
            data = per_row * n / 2**20
            print(
                f"  {n:>12,} rows ({size:5.0f} MB file, {data:6.0f} MB as a frame)"
                f"  {mb:6.0f} MB peak  {mb / base:5.2f}x"
            )
            path.unlink()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--no-memory", action="store_true")
    args = parser.parse_args()
    rows = args.rows
    clean = frame(rows)
    schema = contract(clean)
    df = with_violations(clean)
    report = validate(df, schema)
    print(f"{rows:,} rows x {df.width} columns: {len(report.invalid_rows):,} invalid rows")
    for v in report.violations:
        print(f"  {v.path} {v.keyword}: {v.count:,}")
    ours = median(lambda: validate(df, schema))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.parquet"
        df.write_parquet(path)
        lazy = median(lambda: validate(pl.scan_parquet(path), schema))
    import jsonschema_rs

    rs = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)

    def with_rs() -> int:
        return sum(not rs.is_valid(r) for r in msgspec.json.decode(_ENCODER.encode(df)))

    rs_s = median(with_rs, 1)
    py = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    part = msgspec.json.decode(_ENCODER.encode(df.head(10_000)))
    py_s = median(lambda: sum(not py.is_valid(r) for r in part), 1) * (rows / 10_000)
    checker = pandera_schema(df, schema)
    pa_s = median(lambda: run_pandera(checker, df))
    same = expressible(schema)
    assert len(validate(df, same).invalid_rows) == len(report.invalid_rows)
    ours_same = median(lambda: validate(df, same))
    print(f"  execctx_nb validate (eager)            {ours:8.2f} s")
    print(f"  execctx_nb validate (LazyFrame, file)  {lazy:8.2f} s")
    print(f"  to_dicts + jsonschema-rs per row       {rs_s:8.2f} s   {rs_s / ours:6.1f}x (>= 10x)")
    print(f"  jsonschema (Python) per row, scaled    {py_s:8.2f} s   {py_s / ours:6.1f}x (>= 100x)")
    print(f"  pandera (Polars), expressible checks   {pa_s:8.2f} s   {pa_s / ours:6.1f}x (> 1x)")
    print(
        f"    execctx_nb on the same checks only   {ours_same:8.2f} s   {pa_s / ours_same:6.1f}x (> 1x)"
    )
    if not args.no_memory:
        memory(schema, (rows, rows * 10, rows * 20))
    print(
        f"\n(this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB peak)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
