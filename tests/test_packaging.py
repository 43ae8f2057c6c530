"""The package installs like one: in a fresh virtualenv, ``pip install .`` (no extras) is
enough to import, infer, store on an embedded Valkey and run the CLI; the widgets say which
extra they need."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import json, subprocess, sys
    import polars as pl
    import execctx_nb as ec
    from execctx_nb.errors import MissingExtraError

    frame = pl.DataFrame({"id": [1, 2, 3], "name": ["a", "b", None]})
    schema = ec.infer_schema(frame)
    assert schema["properties"]["name"]["type"] == ["null", "string"], schema
    store = ec.create_valkey_execution_context_store()  # embedded valkey-server
    scope = ec.ExecutionScope("acme", "run-1")
    store.put_step(scope, ec.StepEnvelope.from_frame(frame, execution_id="run-1", step_id="s"))
    assert store.get_step(scope, "s").to_polars().equals(frame)
    store.close()
    svg = ec.display.lineage_svg([ec.StepEnvelope(execution_id="r", step_id="a")])
    assert svg.startswith("<svg"), svg[:40]
    try:
        import execctx_nb.widgets
    except MissingExtraError as exc:
        assert "execctx-nb[notebook]" in str(exc), exc
    else:
        raise AssertionError("widgets imported without the notebook extra")
    frame.write_parquet("f.parquet")
    bindir = sys.argv[1]
    out = subprocess.run([bindir + "/execctx", "infer", "f.parquet", "--hash-only"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == ec.schema_hash(schema), out
    print("ok", ec.__version__)
    """
)


def _interpreter(minor: str) -> str | None:
    """A Python of version ``minor`` on this machine (this one, on PATH, or pyenv's)."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == minor:
        return sys.executable
    found = [shutil.which(f"python{minor}")]
    found += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{minor}.*/bin/python")))
    for candidate in filter(None, found):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if probe.returncode == 0 and probe.stdout.strip() == minor:
            return candidate
    return None


@pytest.mark.slow
@pytest.mark.parametrize("minor", ["3.11", "3.12", "3.13"])  # the classifiers' versions
def test_a_fresh_venv_with_only_pip_install_dot(tmp_path: Path, minor: str) -> None:
    python = _interpreter(minor)
    if python is None:
        pytest.skip(f"no Python {minor} on this machine")
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True, capture_output=True)
    done = subprocess.run([*pip, str(ROOT)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True, text=True, check=True,
    ).stdout.lower()  # fmt: skip
    for extra in ("anywidget", "jupyterlab", "pytest", "pandas"):
        assert f"{extra}==" not in listed, f"{extra} came with a plain install"
    (tmp_path / "check.py").write_text(SCRIPT)
    run = subprocess.run(
        [str(venv / "bin" / "python"), "check.py", str(venv / "bin")],
        cwd=tmp_path, capture_output=True, text=True, check=False, timeout=240,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert run.stdout.startswith("ok ")
    version = subprocess.run(
        [str(venv / "bin" / "execctx"), "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("execctx ")
