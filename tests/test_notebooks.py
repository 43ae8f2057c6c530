"""The tutorials run top to bottom and reproduce their checked-in outputs (nbval).

nbval runs in a child pytest so its collection and kernel options stay out of this session;
its report is shown when it fails. Volatile values are listed in notebooks/sanitize.cfg.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))


def test_there_are_four_tutorials() -> None:
    names = [p.stem for p in NOTEBOOKS]
    assert names == [
        "01-getting-started",
        "02-step-outputs-and-schemas",
        "03-schema-drift",
        "04-live-monitoring-and-lineage",
    ]


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
    done = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=240)
    if done.returncode != 0:
        # The whole nbval report (cell diffs) for CI artifacts; the assertion shows its end.
        artifacts = ROOT / "test-artifacts"
        artifacts.mkdir(exist_ok=True)
        (artifacts / f"nbval-{notebook.stem}.log").write_text(done.stdout + done.stderr)
    assert done.returncode == 0, (
        f"nbval failed for {notebook.name}:\n{done.stdout[-6000:]}{done.stderr[-2000:]}"
    )
