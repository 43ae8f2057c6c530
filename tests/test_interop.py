"""Any dataframe in, any dataframe out: every input kind through infer -> from_frame -> put ->
get -> to_polars / to_arrow / to_pandas, values and dtypes checked, inline and cold."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import ibis
import narwhals as nw
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.csv
import pyarrow.dataset
import pytest
from polars.testing import assert_frame_equal

import execctx_nb as ec
from execctx_nb.errors import EnvelopeEncodeError

UTC = dt.UTC
BASE = pl.DataFrame(
    {
        "id": [1, 2, 3],
        "name": ["a", "b", None],
        "score": [0.5, 1.5, None],
        "ok": [True, False, None],
        "day": [dt.date(2026, 1, 1), dt.date(2026, 1, 2), None],
        "at": [
            dt.datetime(2026, 1, 1, 8, 30, tzinfo=UTC),
            None,
            dt.datetime(2026, 1, 3, tzinfo=UTC),
        ],
    }
)
"""What every input kind below holds (as Polars would type it)."""


def _pandas() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": pd.array([1, 2, 3], dtype="Int64"),
            "name": pd.array(["a", "b", None], dtype="string"),
            "score": [0.5, 1.5, np.nan],
            "ok": pd.array([True, False, None], dtype="boolean"),
            "day": pd.array(
                [dt.date(2026, 1, 1), dt.date(2026, 1, 2), None], dtype="date32[pyarrow]"
            ),
            "at": pd.to_datetime(["2026-01-01 08:30", None, "2026-01-03 00:00"]).tz_localize("UTC"),
        }
    )


def _duckdb() -> Any:
    con = duckdb.connect()
    con.register("base", BASE.to_arrow())
    return con.sql("select * from base order by id")


def _dataset(tmp: Path) -> Any:
    BASE.write_parquet(tmp / "part.parquet")
    return pyarrow.dataset.dataset(tmp / "part.parquet")


INPUTS: dict[str, Callable[[Path], Any]] = {
    "polars": lambda _: BASE,
    "lazyframe": lambda _: BASE.lazy(),
    "arrow": lambda _: BASE.to_arrow(),
    "arrow-views": lambda _: pa.table(BASE),  # string_view columns
    "record-batch-reader": lambda _: BASE.to_arrow().to_reader(),
    "dataset": _dataset,
    "pandas": lambda _: _pandas(),
    "pandas-from-arrow": lambda _: BASE.to_arrow().to_pandas(types_mapper=pd.ArrowDtype),
    "duckdb": lambda _: _duckdb(),
    "narwhals": lambda _: nw.from_native(BASE),
    "ibis": lambda _: ibis.memtable(BASE.to_arrow()),
}


@pytest.fixture
def store(valkey_url: str, tmp_path: Path) -> Iterator[ec.ExecutionContextStore]:
    cell = ec.connect(valkey_url, cold_store=str(tmp_path / "cold"))
    yield cell
    cell.close()


def _normalised(frame: pl.DataFrame) -> pl.DataFrame:
    """Values compared as JSON Schema types: integer widths and string layouts aside."""
    casts = {name: pl.Int64 for name, dtype in frame.schema.items() if dtype.is_integer()} | {
        name: pl.String for name, dtype in frame.schema.items() if dtype in (pl.Categorical,)
    }
    out = frame.cast(casts) if casts else frame
    zoned = [n for n, t in out.schema.items() if isinstance(t, pl.Datetime) and t.time_zone]
    out = out.with_columns(pl.col(zoned).dt.convert_time_zone("UTC"))  # DuckDB: "Etc/UTC"
    return out.with_columns(pl.col(pl.Datetime).dt.cast_time_unit("us"))


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "cold"])
@pytest.mark.parametrize("kind", list(INPUTS))
def test_every_input_kind_round_trips(
    kind: str, inline: bool, store: ec.ExecutionContextStore, tenant: str, tmp_path: Path
) -> None:
    data = INPUTS[kind](tmp_path)
    schema = ec.infer_schema(INPUTS[kind](tmp_path))
    assert schema["x-execctx-rows"] == 3
    assert set(schema["properties"]) == set(BASE.columns)
    assert schema["properties"]["day"]["format"] == "date"
    assert schema["properties"]["at"]["format"] == "date-time"
    env = ec.StepEnvelope.from_frame(data, execution_id="run-1", step_id="s")
    assert env.schema_hash == ec.schema_hash(schema)
    scope = ec.ExecutionScope(tenant, "run-1")
    if not inline:
        store.inline_limit_bytes = 1  # every frame goes to the cold tier
    stored = store.put_step(scope, env)
    lazy = kind in ("lazyframe", "dataset")
    assert (stored.data_ref is None) == (inline and not lazy), "inline unless large or lazy"
    back = store.get_step(scope, "s")
    assert back is not None and back.metadata.row_count == 3
    got = _normalised(back.to_polars())
    assert_frame_equal(got.select(BASE.columns), _normalised(BASE), check_dtypes=True)
    arrow = back.to_arrow()
    assert pa.types.is_date32(arrow.schema.field("day").type)
    assert arrow.schema.field("at").type.tz in ("UTC", "Etc/UTC")
    frame = back.to_pandas()
    assert list(frame["id"]) == [1, 2, 3]
    assert str(frame["ok"].dtype) in ("boolean", "bool[pyarrow]")  # nulls keep it boolean
    assert str(frame["at"].dt.tz) in ("UTC", "Etc/UTC")
    scanned = store.scan_step(scope, "s")
    assert isinstance(scanned, pl.LazyFrame)
    assert_frame_equal(_normalised(scanned.collect()).select(BASE.columns), _normalised(BASE))


def test_small_frames_of_any_layout_stay_inline(
    store: ec.ExecutionContextStore, tenant: str
) -> None:
    scope = ec.ExecutionScope(tenant, "run-1")
    frames = {
        "string-default": pa.table({"s": ["a", "b", "c"]}),  # pa.string, not large_string
        "pandas-metadata": pa.Table.from_pandas(pd.DataFrame({"x": [1, 2]})),
        "int32-date": pl.DataFrame(
            {"i": pl.Series([1, 2], dtype=pl.Int32), "d": [dt.date(2026, 1, 1), None]}
        ),
        "all-null": pl.DataFrame({"n": pl.Series([None, None], dtype=pl.Int64)}),
        "decimal-binary-duration": pl.DataFrame(
            {
                "dec": pl.Series([decimal.Decimal("1.20"), None], dtype=pl.Decimal(10, 2)),
                "bin": [b"\x00\xff", None],
                "dur": [dt.timedelta(days=1, microseconds=7), dt.timedelta(seconds=-3)],
                "nested": [{"a": dt.date(2026, 2, 1), "b": [1, 2]}, None],
                "local": [dt.datetime(2026, 1, 1, 1, 2, 3, 4), None],
                "t": [dt.time(1, 2, 3, 4), None],
            }
        ),
    }
    for name, frame in frames.items():
        stored = store.put_step(
            scope, ec.StepEnvelope.from_frame(frame, execution_id="run-1", step_id=name)
        )
        assert stored.data_ref is None, f"{name} went to the cold tier"
        back = store.get_step(scope, name)
        assert back is not None
        want = pl.from_arrow(frame) if isinstance(frame, pa.Table) else frame
        assert isinstance(want, pl.DataFrame)
        assert_frame_equal(_normalised(back.to_polars()), _normalised(want))


@pytest.mark.parametrize(
    "frame",
    [
        pl.DataFrame({"f": [1.0, float("nan")]}),
        pl.DataFrame({"u": pl.Series([2**64 - 1], dtype=pl.UInt64)}),
        pl.DataFrame({"ns": [dt.datetime(2026, 1, 1)]}).select(
            pl.col("ns").cast(pl.Datetime("ns")) + pl.duration(nanoseconds=1)
        ),
        pl.DataFrame({"z": [dt.datetime(2026, 1, 1)]}).with_columns(
            pl.col("z").dt.replace_time_zone("Europe/Paris")
        ),
        pl.DataFrame(
            {"big": pl.Series([decimal.Decimal("1234567890123456789.5")], dtype=pl.Decimal(38, 1))}
        ),
        pl.DataFrame(schema={"empty": pl.Int64}),
    ],
    ids=["nan", "uint64-max", "nanoseconds", "zone-name", "decimal-38", "empty"],
)
def test_what_json_cannot_hold_goes_cold_and_comes_back_exact(
    frame: pl.DataFrame, store: ec.ExecutionContextStore, tenant: str
) -> None:
    scope = ec.ExecutionScope(tenant, "run-1")
    stored = store.put_step(
        scope, ec.StepEnvelope.from_frame(frame, execution_id="run-1", step_id="s")
    )
    assert stored.data_ref is not None
    back = store.get_step(scope, "s")
    assert back is not None
    assert_frame_equal(back.to_polars(), frame)


def test_csv_timestamps_and_numpy_scalars_encode(
    store: ec.ExecutionContextStore, tenant: str, tmp_path: Path
) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("at,n\n2026-01-01 08:00:00,1\n2026-01-02 09:30:00,2\n")
    table = pyarrow.csv.read_csv(csv)
    assert pa.types.is_timestamp(table.schema.field("at").type)
    scope = ec.ExecutionScope(tenant, "run-1")
    stored = store.put_step(
        scope, ec.StepEnvelope.from_frame(table, execution_id="run-1", step_id="csv")
    )
    back = store.get_step(scope, "csv")
    assert back is not None and stored.data_ref is None
    assert back.to_polars()["at"].to_list() == [
        dt.datetime(2026, 1, 1, 8),
        dt.datetime(2026, 1, 2, 9, 30),
    ]
    records = pd.DataFrame(
        {
            "at": pd.to_datetime(["2026-01-01"]),
            "f": np.array([1.5], dtype=np.float32),
            "i": [np.int16(3)],
        }
    ).to_dict("records")
    env = ec.StepEnvelope.from_frame(records, execution_id="run-1", step_id="rows")
    store.put_step(scope, env)
    rows = store.get_step(scope, "rows")
    assert rows is not None and rows.data == [{"at": "2026-01-01T00:00:00", "f": 1.5, "i": 3}]


def test_pandas_dtypes_come_back_from_pandas(store: ec.ExecutionContextStore, tenant: str) -> None:
    df = pd.DataFrame(
        {
            "n": pd.array([1, None, 3], dtype="Int64"),
            "c": pd.Categorical(["x", "y", "x"]),
            "at": pd.to_datetime(["2026-01-01", "2026-01-02", None]).tz_localize("Europe/Paris"),
        },
        index=pd.Index(["r1", "r2", "r3"], name="key"),
    )
    scope = ec.ExecutionScope(tenant, "run-1")
    env = ec.StepEnvelope.from_frame(df, execution_id="run-1", step_id="pd")
    assert "key" in env.schema["properties"]  # a named index is kept as a column
    stored = store.put_step(scope, env)
    assert stored.data_ref is not None  # the zone name needs Parquet
    back = store.get_step(scope, "pd")
    assert back is not None
    out = back.to_pandas()
    assert list(out.columns) == ["key", "n", "c", "at"]
    assert str(out["n"].dtype) == "Int64" and isinstance(out["c"].dtype, pd.CategoricalDtype)
    assert str(out["at"].dt.tz) == "Europe/Paris"
    pd.testing.assert_frame_equal(out, df.reset_index())


def test_unknown_inputs_are_named(store: ec.ExecutionContextStore) -> None:
    with pytest.raises(EnvelopeEncodeError, match=r"collections\.OrderedDict|set") as info:
        ec.StepEnvelope.from_frame({1, 2}, execution_id="run-1", step_id="s")
    assert "pandas DataFrame" in str(info.value)


def test_schema_to_dtypes() -> None:
    schema = ec.infer_schema(
        pl.DataFrame(
            {
                "d": [dt.date(2026, 1, 1)],
                "z": [dt.datetime(2026, 1, 1, tzinfo=UTC)],
                "dec": pl.Series([decimal.Decimal("1.5")], dtype=pl.Decimal(5, 1)),
                "s": [{"a": 1, "b": ["x"]}],
            }
        )
    )
    assert ec.schema_to_polars(schema) == pl.Schema(  # in column order
        {
            "d": pl.Date(),
            "z": pl.Datetime("us", "UTC"),
            "dec": pl.Decimal(5, 1),
            "s": pl.Struct({"a": pl.Int64, "b": pl.List(pl.String)}),
        }
    )
    arrow = ec.schema_to_arrow(schema)
    assert arrow.field("z").type == pa.timestamp("us", tz="UTC")
    assert arrow.field("dec").type == pa.decimal128(5, 1)


def test_a_hive_partitioned_dataset_is_scanned_with_its_keys(
    store: ec.ExecutionContextStore, tenant: str, tmp_path: Path
) -> None:
    for year in (2025, 2026):
        part = tmp_path / "ds" / f"year={year}"
        part.mkdir(parents=True)
        BASE.write_parquet(part / "data.parquet")
    dataset = pyarrow.dataset.dataset(tmp_path / "ds", partitioning="hive")
    schema = ec.infer_schema(dataset)
    assert schema["x-execctx-rows"] == 6 and "year" in schema["properties"]
    scope = ec.ExecutionScope(tenant, "run-1")
    stored = store.put_step(
        scope, ec.StepEnvelope.from_frame(dataset, execution_id="run-1", step_id="d")
    )
    assert stored.data_ref is not None and stored.metadata.row_count == 6
    back = store.get_step(scope, "d")
    assert back is not None
    assert sorted(back.to_polars()["year"].unique().to_list()) == [2025, 2026]


def test_view_columns_past_the_sample_size_are_inferred() -> None:
    # pa.table(polars_df) makes string_view / binary_view columns; pyarrow has no take
    # kernel for views, and sampling 200 of 500 rows takes.
    frame = pl.DataFrame(
        {"s": [f"v{i}" for i in range(500)], "b": [b"x"] * 500, "l": [["a"]] * 500}
    )
    table = pa.table(frame)
    assert pa.types.is_string_view(table.schema.field("s").type)
    schema = ec.infer_schema(table)
    assert schema["x-execctx-sampled"] == 200 and schema["x-execctx-rows"] == 500
    assert schema == ec.infer_schema(frame)
