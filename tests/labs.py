"""A real JupyterLab server for browser tests (the same offline lab as `make lab`)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from execctx_nb.lab import jupyterlab_offline_args
from tests.servers import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium(pw: Any, profile: Path) -> Any:
    """Debian's chromium, headless, in a fresh profile (a Playwright browser context)."""
    return pw.chromium.launch_persistent_context(
        str(profile),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1400, "height": 1100},
    )


@contextmanager
def jupyterlab(root: Path, work: Path, env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """JupyterLab on ``root`` (state under ``work``); yields ``(base URL, token)``."""
    port, token = free_port(), secrets.token_hex(12)
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        *jupyterlab_offline_args(work / "lab-settings"),  # the same lab as `make lab`
        "--LabApp.expose_app_in_browser=True",
        f"--ServerApp.runtime_dir={work / 'runtime'}",
        "--allow-root",
    ]
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(work / "config"), **env}
    log_path = work / "lab.log"
    log = log_path.open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError as exc:
                if isinstance(exc, urllib.error.HTTPError):
                    exc.close()  # answered, not ready: its response holds a socket
                if time.monotonic() > end or proc.poll() is not None:
                    raise RuntimeError(
                        "JupyterLab did not start:\n" + log_path.read_text()
                    ) from None
                time.sleep(0.2)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
