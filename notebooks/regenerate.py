"""Re-run the tutorials in place so their checked-in outputs match the code.

    .venv/bin/python notebooks/regenerate.py [NOTEBOOK ...]

Each notebook runs in a fresh kernel of this interpreter, exactly as ``pytest --nbval``
runs it (tests/test_notebooks.py). Review the diff before committing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.sign import NotebookNotary

HERE = Path(__file__).parent


def main(paths: list[str]) -> int:
    notebooks = [Path(p) for p in paths] or sorted(HERE.glob("[0-9][0-9]-*.ipynb"))
    os.environ.pop("VALKEY_URL", None)  # a fresh embedded server, as in the tests
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(
            nb,
            timeout=120,
            kernel_name="python3",
            resources={"metadata": {"path": str(HERE)}},
            # No saved widget state: without it, viewers that cannot run widgets (GitHub,
            # nbconvert HTML, offline) show each widget's static text/html rendering instead
            # of an empty box that waits for widget JavaScript from a CDN.
            store_widget_state=False,
        )
        client.execute()
        nb.metadata.pop("widgets", None)
        nbformat.write(nb, path)
        NotebookNotary().sign(nb)  # ran here: trust its outputs (the lineage SVG renders)
        print(f"ran {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
