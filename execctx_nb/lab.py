"""``python -m execctx_nb.lab``: JupyterLab on the tutorials, with a Valkey full of demo data.

What ``make lab`` runs. It starts a persistent embedded Valkey (``.execctx/lab``, AOF, so
a restart finds the data again), loads the demo flow for two tenants, exports
``VALKEY_URL`` so every notebook kernel talks to that server, and starts JupyterLab on
``notebooks/`` without opening a browser: it prints the URL to open instead, so it works
on a headless machine or over SSH (forward the port).

Options: ``--port`` (default ``$EXECCTX_LAB_PORT`` or 8888), ``--ip`` (default 127.0.0.1),
``--notebooks`` (default ``./notebooks``), ``--data-dir`` (default ``./.execctx/lab``),
``--tenants`` (default ``acme globex``). An existing ``$VALKEY_URL`` is used instead of
the embedded server.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = [
    "LAB_SETTINGS_OVERRIDES",
    "jupyterlab_offline_args",
    "main",
    "trust_notebooks",
    "wait_until_serving",
]

DEFAULT_TENANTS = ("acme", "globex")

#: JupyterLab settings overrides (``overrides.json``) for an offline lab: no news feed, no
#: update check, and so no "get notified about official Jupyter news?" toast either (the
#: server flags below stop the requests, but only these settings stop the question).
LAB_SETTINGS_OVERRIDES: dict[str, dict[str, object]] = {
    "@jupyterlab/apputils-extension:notification": {
        "checkForUpdates": False,
        "fetchNews": "false",
    },
    # Every cell stays rendered: with windowing, a widget scrolled out of view is detached
    # and its view rebuilt on return (the tutorials are short; a live tail should not blink).
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
}


def jupyterlab_offline_args(settings_dir: Path) -> list[str]:
    """JupyterLab command-line flags for a lab that never goes online, news toast included.

    Writes ``settings_dir/overrides.json`` (:data:`LAB_SETTINGS_OVERRIDES`) and makes it the
    lab's application settings directory, which only holds overrides and ``page_config``:
    the user's own settings (theme, shortcuts) are untouched. Used by ``make lab`` and the
    browser test, so both start the same lab.
    """
    settings_dir.mkdir(parents=True, exist_ok=True)
    overrides = json.dumps(LAB_SETTINGS_OVERRIDES, indent=2, sort_keys=True) + "\n"
    (settings_dir / "overrides.json").write_text(overrides, encoding="utf-8")
    return [
        # No extension manager lookups on PyPI, no news feed, no update check.
        "--LabApp.extension_manager=readonly",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--LabApp.app_settings_dir={settings_dir.resolve()}",
    ]


def trust_notebooks(root: Path) -> int:
    """Sign the project's own tutorials in the user's notebook signature store, as
    ``jupyter trust`` does: JupyterLab then renders their saved outputs (the lineage SVG)
    instead of sanitising them to text. Returns how many were signed."""
    import nbformat
    from nbformat.sign import NotebookNotary

    notary: Any = NotebookNotary()  # type: ignore[no-untyped-call]
    read: Any = nbformat.read
    count = 0
    for path in sorted(root.glob("*.ipynb")):
        notary.sign(read(path, as_version=4))
        count += 1
    return count


def wait_until_serving(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> bool:
    """Poll ``url`` until it answers 200; False if ``proc`` exits or ``timeout`` passes."""
    import time
    import urllib.error
    import urllib.request

    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return True
        except urllib.error.HTTPError as exc:  # answered, not ready yet: close its response
            exc.close()
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def _port(text: str) -> int:
    """A TCP port from ``--port`` or ``$EXECCTX_LAB_PORT`` (argparse reports the error)."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(
            f"expected a port number 1-65535, got {text!r} (from --port or $EXECCTX_LAB_PORT)"
        )
    return int(text)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    # argparse applies `type` to a string default too, so a bad $EXECCTX_LAB_PORT gets the
    # same clear usage error as a bad --port.
    env_port = os.environ.get("EXECCTX_LAB_PORT") or "8888"
    p = argparse.ArgumentParser(
        prog="python -m execctx_nb.lab", description=__doc__.splitlines()[0]
    )
    p.add_argument(
        "--port", type=_port, default=env_port, help="JupyterLab port (default %(default)s)"
    )
    p.add_argument("--ip", default="127.0.0.1", help="interface to listen on (default %(default)s)")
    p.add_argument("--notebooks", type=Path, default=Path("notebooks"), help="root directory")
    p.add_argument(
        "--data-dir", type=Path, default=Path(".execctx/lab"), help="embedded Valkey data"
    )
    p.add_argument("--tenants", nargs="+", default=list(DEFAULT_TENANTS), help="demo tenants")
    p.add_argument("--no-lab", action="store_true", help="only start Valkey and load the demo")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the lab; returns JupyterLab's exit code."""
    args = _parse(argv)
    from execctx_nb._connection._common import redact_url, resolve_url
    from execctx_nb._store._session import connect
    from execctx_nb.demo import load_demo

    url = resolve_url(None, data_dir=args.data_dir)
    # The demo and every kernel write cold-tier objects into the lab's own directory (not
    # ~/.cache): `make lab-reset` removes all of the lab's data at once.
    cold = os.environ.get("EXECCTX_COLD_STORE") or str((args.data_dir / "cold").resolve())
    os.environ["EXECCTX_COLD_STORE"] = cold
    with connect(url) as store:
        for tenant in args.tenants:
            summary = load_demo(store, tenant)
            done = f"wrote {', '.join(summary.written)}" if summary.written else "already loaded"
            print(f"demo data for tenant {tenant!r}: {done}", flush=True)
    env = dict(os.environ, VALKEY_URL=url, EXECCTX_COLD_STORE=cold)
    trusted = trust_notebooks(args.notebooks)
    print(f"trusted {trusted} tutorial notebooks (their saved outputs render)", flush=True)
    where = "$VALKEY_URL" if os.environ.get("VALKEY_URL") else f"embedded, data in {args.data_dir}"
    print(f"Valkey: {redact_url(url)} ({where}); cold tier: {cold}", flush=True)
    if args.no_lab:
        return 0
    token = secrets.token_hex(16)
    host = "localhost" if args.ip in ("127.0.0.1", "0.0.0.0") else args.ip
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--ip={args.ip}",
        f"--port={args.port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={args.notebooks.resolve()}",
        f"--IdentityProvider.token={token}",
        *jupyterlab_offline_args(args.data_dir / "jupyterlab-settings"),
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers often run as root
    # SIGTERM (docker stop, timeout) unwinds like Ctrl-C, so atexit stops Valkey cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    proc = subprocess.Popen(cmd, env=env)
    try:
        # The URL is printed once the server answers: printed at start, a quick click got
        # "connection refused" for 7-10 s.
        if wait_until_serving(f"http://127.0.0.1:{args.port}/api/status?token={token}", proc):
            print(f"\nJupyterLab: http://{host}:{args.port}/lab?token={token}\n", flush=True)
        return proc.wait()
    except (KeyboardInterrupt, SystemExit):
        # Ctrl-C reaches JupyterLab too (same process group); give it time to shut down.
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return 130


if __name__ == "__main__":
    sys.exit(main())
