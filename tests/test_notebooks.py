"""The tutorials run top to bottom and reproduce their checked-in outputs (nbval).

nbval runs in a child pytest so its collection and kernel options stay out of this session;
its report is shown when it fails. Volatile values are listed in notebooks/sanitize.cfg.
Every kernel gets its own embedded server, as in notebooks/regenerate.py: with a shared
``$VALKEY_URL`` the tutorials would see each other's data (04 writes ``orders-live`` for
tenant ``acme``, which 01-03 then list).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))


def test_there_are_five_tutorials() -> None:
    names = [p.stem for p in NOTEBOOKS]
    assert names == [
        "01-getting-started",
        "02-step-outputs-and-schemas",
        "03-schema-drift",
        "04-live-monitoring-and-lineage",
        "05-data-contracts",
    ]


def nbval_env() -> dict[str, str]:
    """The child's environment: no ``VALKEY_URL``, so each kernel starts a fresh server."""
    return {k: v for k, v in os.environ.items() if k != "VALKEY_URL"}


def test_notebooks_never_share_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VALKEY_URL", "redis://127.0.0.1:6379/0")
    assert "VALKEY_URL" not in nbval_env()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_outputs_match(notebook: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "--nbval",
        "--nbval-current-env",
        "--nbval-sanitize-with",
        str(ROOT / "notebooks" / "sanitize.cfg"),
        "-q",
        "-p",
        "no:cacheprovider",
        str(notebook),
    ]
    done = subprocess.run(
        cmd, check=False, cwd=ROOT, env=nbval_env(), capture_output=True, text=True, timeout=240
    )
    if done.returncode != 0:
        # The whole nbval report (cell diffs) for CI artifacts; the assertion shows its end.
        artifacts = ROOT / "test-artifacts"
        artifacts.mkdir(exist_ok=True)
        (artifacts / f"nbval-{notebook.stem}.log").write_text(done.stdout + done.stderr)
    assert done.returncode == 0, (
        f"nbval failed for {notebook.name}:\n{done.stdout[-6000:]}{done.stderr[-2000:]}"
    )
