"""``python -m execctx_nb.lab``: persistent embedded Valkey with the demo for two tenants."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_lab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VALKEY_URL", "EXECCTX_COLD_STORE")}
    return subprocess.run(
        [sys.executable, "-m", "execctx_nb.lab", "--no-lab", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_lab_loads_demo_for_two_tenants_and_keeps_it(tmp_path: Path) -> None:
    data = tmp_path / "valkey"
    first = run_lab("--data-dir", str(data), cwd=tmp_path)
    assert "demo data for tenant 'acme': wrote orders-2024-05-01, orders-2024-05-02" in first.stdout
    assert "demo data for tenant 'globex': wrote" in first.stdout
    assert f"embedded, data in {data}" in first.stdout
    # Kernels get the lab's own cold tier (not ~/.cache): `make lab-reset` removes it all.
    assert f"cold tier: {(data / 'cold').resolve()}" in first.stdout
    # The server persisted (AOF): a second start finds the demo and writes nothing.
    second = run_lab("--data-dir", str(data), "--tenants", "acme", cwd=tmp_path)
    assert "demo data for tenant 'acme': already loaded" in second.stdout


def test_lab_port_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from execctx_nb.lab import _parse

    monkeypatch.setenv("EXECCTX_LAB_PORT", "9123")
    assert _parse([]).port == 9123
    assert _parse(["--port", "9999"]).port == 9999


def test_lab_bad_port_is_a_usage_error() -> None:
    from execctx_nb.lab import _parse

    with pytest.raises(SystemExit):
        _parse(["--port", "eighty"])


def test_lab_settings_turn_news_and_update_checks_off(tmp_path: Path) -> None:
    from jupyterlab_server.settings_utils import _get_overrides

    from execctx_nb.lab import jupyterlab_offline_args

    args = jupyterlab_offline_args(tmp_path / "settings")
    assert f"--LabApp.app_settings_dir={(tmp_path / 'settings').resolve()}" in args
    # Read back the way JupyterLab's server reads it (the browser test sees no toast).
    overrides, error = _get_overrides(str(tmp_path / "settings"))
    assert error == ""
    assert overrides["@jupyterlab/apputils-extension:notification"] == {
        "checkForUpdates": False,
        "fetchNews": "false",
    }
    assert overrides["@jupyterlab/notebook-extension:tracker"] == {"windowingMode": "none"}


@pytest.mark.parametrize("value", ["abc", "0", "70000"])
def test_a_bad_lab_port_is_a_usage_error(
    value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from execctx_nb import lab

    monkeypatch.setenv("EXECCTX_LAB_PORT", value)
    with pytest.raises(SystemExit) as info:
        lab._parse([])
    assert info.value.code == 2
    assert f"expected a port number 1-65535, got {value!r}" in capsys.readouterr().err
    monkeypatch.setenv("EXECCTX_LAB_PORT", "9999")
    assert lab._parse([]).port == 9999


def test_the_labs_tutorials_are_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import nbformat
    from nbformat.sign import NotebookNotary

    from execctx_nb.lab import trust_notebooks

    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    root = tmp_path / "nbs"
    shutil.copytree(Path(__file__).resolve().parents[1] / "notebooks", root)
    nb = nbformat.read(root / "01-getting-started.ipynb", as_version=4)
    assert not NotebookNotary().check_signature(nb)
    assert trust_notebooks(root) == 5
    assert NotebookNotary().check_signature(nb)


def test_the_url_is_printed_once_the_server_answers() -> None:
    import http.server
    import threading

    from execctx_nb.lab import wait_until_serving

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        url = f"http://127.0.0.1:{server.server_port}/"
        assert not wait_until_serving(url, sleeper, timeout=0.5)  # nothing answers yet
        threading.Thread(target=server.serve_forever, daemon=True).start()
        assert wait_until_serving(url, sleeper, timeout=10)
        sleeper.kill()
        sleeper.wait()
        assert not wait_until_serving(url + "x", sleeper, timeout=10)  # the lab exited
    finally:
        server.shutdown()
        server.server_close()
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()
