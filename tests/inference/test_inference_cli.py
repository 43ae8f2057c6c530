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
    for i in range(120)
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
    assert schema["x-execctx-rows"] == 120
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


def _hostile_files(tmp_path: Path) -> list[Path]:
    import io
    import random

    import polars as pl

    files = {
        "deep.json": "[" * 100_000 + "]" * 100_000,
        "deep-object.json": '{"a":' * 50_000 + "1" + "}" * 50_000,
        "deep-row.ndjson": '{"a": 1}\n' + "[" * 100_000 + "]" * 100_000 + "\n",
        "garbage.parquet": b"PAR1" + bytes(range(256)) * 4 + b"PAR1",
        "truncated.arrow": b"ARROW1\x00\x00" + b"\xff" * 64,
        "binary.csv": bytes(range(256)) * 8,
    }
    out = []
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        out.append(path)
    # Mutated Parquet: some make Polars' Rust reader panic (PanicException).
    buf = io.BytesIO()
    pl.DataFrame({"a": list(range(50)), "s": [f"x{i}" for i in range(50)]}).write_parquet(buf)
    base = buf.getvalue()
    for seed in range(30):  # with polars 1.x, seed 24 aborts the reader
        rng = random.Random(seed)
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        path = tmp_path / f"mutated-{seed}.parquet"
        path.write_bytes(bytes(data))
        out.append(path)
    return out


@pytest.mark.slow
def test_every_bad_file_exits_2_with_one_line_naming_it(tmp_path: Path) -> None:
    # As a command, in its own process: some damaged Parquet makes Polars panic, and some
    # makes it abort the process (a corrupt page header asks for exabytes); neither may
    # show more than one line, or anything but exit status 2.
    from concurrent.futures import ThreadPoolExecutor

    def run(path: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
        cmd = [sys.executable, "-m", "execctx_nb.cli", "infer", str(path), "--hash-only"]
        return path, subprocess.run(cmd, capture_output=True, text=True, check=False)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, _hostile_files(tmp_path)))
    bad = 0
    for path, done in results:
        if done.returncode == 0:
            assert len(done.stdout.strip()) == 64, path.name  # a mutation that reads fine
            continue
        bad += 1
        assert done.returncode == 2, (path.name, done.returncode, done.stderr[-300:])
        assert done.stderr.count("\n") == 1 and str(path) in done.stderr, (
            path.name,
            done.stderr[:400],
        )
        assert done.stderr.startswith("execctx infer: error: Cannot read"), done.stderr
    assert bad >= 6
