"""A real S3 API server for the blob store tests: moto's server mode (`moto[server]`, a test
dependency) on 127.0.0.1 on a free port, in a thread of the test process, stopped when the
session ends. Worker subprocesses reach it over HTTP like any S3 endpoint. Each test that asks
for `s3_env` gets a bucket of its own and the environment that points a process at it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

ACCESS_KEY = "pee-test-access-key"
SECRET_KEY = "pee-test-secret-key"
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def env(self, bucket: str) -> dict[str, str]:
        """What a worker, client or codec server needs to use `bucket` on this server."""
        return {
            "PEE_ARTIFACT_URL": f"s3://{bucket}",
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
        }

    def client(self) -> object:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def create_bucket(self) -> str:
        name = f"pee-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)  # type: ignore[attr-defined]
        return name


def start_server() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """An S3 API server on 127.0.0.1 for the session (one per xdist worker)."""
    yield from start_server()


@pytest.fixture
def s3_env(s3_server: S3Server) -> dict[str, str]:
    """The PEE_ARTIFACT_URL and AWS_* settings of a new empty bucket on the session's server."""
    return s3_server.env(s3_server.create_bucket())
