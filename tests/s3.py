"""A real S3-protocol server for tests: moto's ThreadedMotoServer, started on a free port."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.server import ThreadedMotoServer

REGION = "us-east-1"


class S3Server:
    """One moto server; :meth:`bucket` creates a bucket with a real CreateBucket request."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"

    def bucket(self, name: str) -> str:
        request = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        with urllib.request.urlopen(request, timeout=5) as reply:
            assert reply.status == 200
        return name

    def env(self) -> dict[str, str]:
        """What obstore's ``from_url`` reads to reach this server (as a user would set)."""
        return {
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing-secret",
            "AWS_REGION": REGION,
        }

    def store(self, bucket: str, prefix: str) -> Any:
        """An obstore S3Store on this server (a store object, not a URL)."""
        import obstore.store

        return obstore.store.S3Store(
            bucket,
            prefix=prefix,
            endpoint=self.endpoint,
            region=REGION,
            access_key_id="testing",
            secret_access_key="testing-secret",
            client_options={"allow_http": True},
        )

    def stop(self) -> None:
        self._server.stop()


@contextmanager
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    try:
        yield server
    finally:
        server.stop()
