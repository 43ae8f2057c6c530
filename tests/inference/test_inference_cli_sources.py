"""``execctx infer`` over globs, hive directories, object-store URLs and standard input, and
the package's own entry points (``--version``, ``python -m execctx_nb``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import obstore
import polars as pl
import pytest

import execctx_nb
from execctx_nb.cli import main

FRAME = pl.DataFrame({"id": list(range(40)), "kind": ["ab"[i % 2] for i in range(40)]})


def infer(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code = main(["infer", *argv, "--compact"])
    out, err = capsys.readouterr()
    assert code == 0, err
    schema: dict[str, Any] = json.loads(out)["schema"]
    return schema


def test_a_glob_reads_every_matching_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(3):
        FRAME.write_parquet(tmp_path / f"part-{i}.parquet")
    (tmp_path / "notes.txt").write_text("not data")
    schema = infer(capsys, str(tmp_path / "*.parquet"))
    assert schema["x-execctx-rows"] == 120
    assert set(schema["properties"]) == {"id", "kind"}


def test_a_hive_directory_gives_its_partition_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for year in (2025, 2026):
        part = tmp_path / "events" / f"year={year}"
        part.mkdir(parents=True)
        FRAME.write_parquet(part / "data.parquet")
    (tmp_path / "events" / "_SUCCESS").write_text("")
    schema = infer(capsys, str(tmp_path / "events"))
    assert schema["x-execctx-rows"] == 80
    assert schema["properties"]["year"]["type"] == "integer"


def test_an_empty_glob_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["infer", str(tmp_path / "*.parquet")])
    assert code == 2
    assert "No data files" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["parquet", "ndjson", "csv", "json"])
def test_standard_input_is_read_and_its_format_sniffed(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"data.{kind}"
    if kind == "parquet":
        FRAME.write_parquet(path)
    elif kind == "ndjson":
        FRAME.write_ndjson(path)
    elif kind == "csv":
        FRAME.write_csv(path)
    else:
        path.write_text(json.dumps(FRAME.to_dicts()))
    with path.open("rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-m", "execctx_nb", "infer", "-", "--hash-only"],
            stdin=stdin,
            capture_output=True,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    file_hash = subprocess.run(
        [sys.executable, "-m", "execctx_nb", "infer", str(path), "--hash-only"],
        capture_output=True,
        check=True,
    ).stdout
    assert done.stdout == file_hash and len(done.stdout.strip()) == 64


def test_an_s3_url_is_scanned(s3: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bucket = s3.bucket(f"cli{uuid.uuid4().hex[:8]}")
    FRAME.write_parquet(tmp_path / "f.parquet")
    obstore.put(s3.store(bucket, "lake"), "f.parquet", (tmp_path / "f.parquet").read_bytes())
    env = {**os.environ, **s3.env(), "AWS_ENDPOINT_URL": s3.endpoint}
    done = subprocess.run(
        [sys.executable, "-m", "execctx_nb", "infer", f"s3://{bucket}/lake/f.parquet", "--compact"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["schema"]["x-execctx-rows"] == 40


def test_version_and_module_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "execctx_nb", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == f"execctx {execctx_nb.__version__}"
