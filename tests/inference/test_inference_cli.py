"""``execctx infer PATH`` over every supported file format, through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from pyarrow import feather, ipc

from execctx_nb import schema_hash
from execctx_nb.cli import COMMANDS, main

ROWS = [
    {
        "id": i,
        "kind": "ab"[i % 2],
        "score": None if i % 3 == 0 else i / 4,
        "at": "2024-01-01T00:00:00Z",
    }
    for i in range(30)
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, kind: str) -> Path:
    df = pl.DataFrame(ROWS)
    path = tmp_path / f"data.{kind}"
    if kind == "parquet":
        df.write_parquet(path)
    elif kind == "arrow":
        with ipc.new_file(path, df.to_arrow().schema) as w:
            w.write_table(df.to_arrow())
    elif kind == "feather":
        feather.write_feather(df.to_arrow(), path)
    elif kind == "arrows":
        with ipc.new_stream(path, df.to_arrow().schema) as w:
            w.write_table(df.to_arrow())
    elif kind == "csv":
        df.write_csv(path)
    elif kind == "ndjson":
        path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    elif kind == "json":
        path.write_text(json.dumps(ROWS))
    return path


@pytest.mark.parametrize("kind", ["parquet", "arrow", "feather", "arrows", "csv", "ndjson", "json"])
def test_infer_prints_schema_and_its_hash(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "infer", str(write(tmp_path, kind)))
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    schema = doc["schema"]
    assert doc["schemaHash"] == schema_hash(schema)
    assert schema["x-execctx-rows"] == 30
    assert schema["properties"]["score"]["type"] == ["null", "number"]
    assert schema["properties"]["kind"]["enum"] == ["a", "b"]


def test_same_data_same_hash_across_formats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hashes = set()
    for kind in ("parquet", "ndjson", "json"):
        code, out, _ = run(capsys, "infer", "--hash-only", str(write(tmp_path, kind)))
        assert code == 0
        hashes.add(out.strip())
    assert len(hashes) == 1 and len(hashes.pop()) == 64


def test_errors_name_the_file_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "infer", str(tmp_path / "missing.parquet"))
    assert code == 2 and "missing.parquet" in err and "expected an existing file" in err
    odd = tmp_path / "data.xyz"
    odd.write_text("1")
    code, _, err = run(capsys, "infer", str(odd))
    assert code == 2 and "--format" in err
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    code, _, err = run(capsys, "infer", str(bad))
    assert code == 2 and "bad.json" in err and "DecodeError" in err
    code, _, err = run(capsys, "infer", "--sample-size", "0", str(write(tmp_path, "json")))
    assert code == 2 and "sample_size" in err


def test_subcommands_are_a_registry() -> None:
    assert "infer" in COMMANDS


def test_console_script_runs(tmp_path: Path) -> None:
    path = write(tmp_path, "parquet")
    script = Path(sys.executable).with_name("execctx")
    out = subprocess.run(
        [str(script), "infer", "--compact", str(path)], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout)["schema"]["type"] == "object"


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("bad.parquet", b"garbage", "parquet"),
        ("empty.parquet", b"", "parquet"),
        ("bad.arrow", b"garbage", "ipc"),
        ("empty.csv", b"", "csv"),
        ("bad.ndjson", b'{"a": 1}\n\n{"a":\n', "line 3"),
        ("rows.json", b'{"a": 1}\n{"a": 2}\n', "--format ndjson"),
    ],
)
def test_unreadable_files_of_every_format_name_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes, says: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    code, out, err = run(capsys, "infer", str(path))
    assert (code, out) == (2, "")
    assert f"at `{path}`" in err and says in err, err
    assert "infer_schema(obj)" not in err  # the user gave a file, not an object
