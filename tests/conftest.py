"""Shared fixtures: one real Valkey server per session (embedded, or VALKEY_URL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import valkey

from execctx_nb._connection._embedded import EmbeddedServer


@pytest.fixture(scope="session")
def valkey_url() -> Iterator[str]:
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


@pytest.fixture
def valkey_client(valkey_url: str) -> Iterator[valkey.Valkey]:
    client = valkey.Valkey.from_url(valkey_url, socket_timeout=5)
    yield client
    client.close()


@pytest.fixture
def tenant() -> str:
    """A fresh tenant id per test, so tests sharing the server never see each other's keys."""
    return f"t{uuid.uuid4().hex[:12]}"
