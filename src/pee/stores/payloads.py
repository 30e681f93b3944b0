"""Large payloads out of Temporal's history: the SDK's External Storage
(temporalio.converter.ExternalStorage) with the drivers this project configures.

Every payload whose size after the lz4 codec reaches `PEE_PAYLOAD_THRESHOLD` bytes (default
256 KiB) is put in the blob store (pee.stores.blobs) and the history holds a small
ExternalStorageReference naming the driver and its claim. Two drivers:

- `pee.fs` (PeeFsDriver): a folder, content-addressed (`payloads/sha256/<2 hex>/<hex>`), the
  default: right for one host. Its claim holds the hash and size, never the folder, because
  hosts may mount the same volume at different paths. The name is written into every reference:
  never rename it.
- `aws.s3driver`: the SDK's S3StorageDriver over a boto3 client, when PEE_ARTIFACT_URL is
  `s3://BUCKET`: standard references that Temporal's own tools can read. New payloads go there;
  the folder driver still reads what was stored before.

Without S3 a driver under the S3 name is registered that never stores: a reference to S3 then
fails with what to configure instead of the SDK's "no driver found". A payload missing from this
host's folder fails the same way (BlobNotFound): workers on several hosts need S3.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from temporalio.api.common.v1 import Payload
from temporalio.contrib.aws.s3driver import S3StorageDriver, S3StorageDriverClient
from temporalio.converter import (
    ExternalStorage,
    StorageDriver,
    StorageDriverClaim,
    StorageDriverRetrieveContext,
    StorageDriverStoreContext,
)

from pee.stores.blobs import (
    ENV,
    BlobMissing,
    FsBlobStore,
    S3BlobStore,
    local_root,
    not_found,
    s3_settings,
)
from pee.stores.urls import StoreConfigError

THRESHOLD_ENV = "PEE_PAYLOAD_THRESHOLD"
DEFAULT_THRESHOLD = 256 * 1024
FS_DRIVER = "pee.fs"
S3_DRIVER = "aws.s3driver"
FIX = (
    f"workers on several hosts need {ENV}=s3://BUCKET on every worker, client and codec server "
    "(with AWS_ENDPOINT_URL and credentials for MinIO or another S3 API)"
)


class BlobNotFound(RuntimeError):
    """A stored payload this process cannot read; the message says where it looked and what
    to configure."""


def payload_threshold() -> int:
    raw = os.environ.get(THRESHOLD_ENV, "").strip()
    if not raw:
        return DEFAULT_THRESHOLD
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise StoreConfigError(
            f"{THRESHOLD_ENV}={raw!r}: expected a number of bytes such as 262144 (payloads at "
            "least this large after compression go to the blob store)"
        )
    return value


def payload_key(digest: str) -> str:
    return f"payloads/sha256/{digest[:2]}/{digest}"


class PeeFsDriver(StorageDriver):
    """Payloads as files in a folder, named by the sha256 of their serialized bytes."""

    def __init__(self, store: FsBlobStore) -> None:
        self.blobs = store

    def name(self) -> str:
        return FS_DRIVER

    def type(self) -> str:
        return FS_DRIVER

    def _put(self, payload: Payload) -> StorageDriverClaim:
        data = payload.SerializeToString()
        digest = hashlib.sha256(data).hexdigest()
        self.blobs.put(payload_key(digest), data)
        return StorageDriverClaim(
            {"hash_algorithm": "sha256", "hash_value": digest, "size": str(len(data))}
        )

    def _get(self, claim: StorageDriverClaim) -> Payload:
        digest = str(claim.claim_data.get("hash_value", ""))
        try:
            data = self.blobs.get(payload_key(digest))
        except BlobMissing:
            raise BlobNotFound(
                f"payload blob sha256:{digest} is not in {self.blobs.display} (driver "
                f"{FS_DRIVER} stores on this host only): {FIX}"
            ) from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise BlobNotFound(
                f"payload blob sha256:{digest} in {self.blobs.display} is corrupt: its content "
                "does not match its hash"
            )
        payload = Payload()
        payload.ParseFromString(data)
        return payload

    async def store(
        self, context: StorageDriverStoreContext, payloads: Sequence[Payload]
    ) -> list[StorageDriverClaim]:
        return await asyncio.to_thread(lambda: [self._put(p) for p in payloads])

    async def retrieve(
        self, context: StorageDriverRetrieveContext, claims: Sequence[StorageDriverClaim]
    ) -> list[Payload]:
        return await asyncio.to_thread(lambda: [self._get(c) for c in claims])


class BotoS3Client(S3StorageDriverClient):
    """The SDK's S3 client interface over a (thread-safe, synchronous) boto3 client, called in
    a thread. Not the SDK's aioboto3 adapter: an aiobotocore client belongs to one event loop,
    and the codec server, the replayer and the tests each run their own."""

    def __init__(self, store: S3BlobStore) -> None:
        self.blobs = store

    async def put_object(self, *, bucket: str, key: str, data: bytes) -> None:
        await asyncio.to_thread(
            lambda: self.blobs.client.put_object(Bucket=bucket, Key=key, Body=data)
        )

    async def object_exists(self, *, bucket: str, key: str) -> bool:
        return await asyncio.to_thread(_exists, self.blobs, bucket, key)

    async def get_object(self, *, bucket: str, key: str) -> bytes:
        def get() -> bytes:
            answer = self.blobs.client.get_object(Bucket=bucket, Key=key)
            return bytes(answer["Body"].read())

        return await asyncio.to_thread(get)

    def describe(self) -> Mapping[str, str]:
        return {"store": self.blobs.display}


def _exists(store: S3BlobStore, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        store.client.head_object(Bucket=bucket, Key=key)
    except ClientError as err:
        if not_found(err):
            return False
        raise
    return True


class MissingS3Driver(StorageDriver):
    """Registered under the S3 driver's name when PEE_ARTIFACT_URL names no bucket: never
    selected to store; reading one of its references says what to configure."""

    def name(self) -> str:
        return S3_DRIVER

    async def store(
        self, context: StorageDriverStoreContext, payloads: Sequence[Payload]
    ) -> list[StorageDriverClaim]:
        raise BlobNotFound(f"no S3 bucket is configured here: {FIX}")

    async def retrieve(
        self, context: StorageDriverRetrieveContext, claims: Sequence[StorageDriverClaim]
    ) -> list[Payload]:
        where = ", ".join(
            f"bucket {c.claim_data.get('bucket')}, key {c.claim_data.get('key')}" for c in claims
        )
        raise BlobNotFound(
            f"this payload is in S3 ({where}), but {ENV} is not set here: set {ENV}=s3://BUCKET "
            "and the AWS_* settings as on the workers that stored it"
        )


def external_storage(threshold: int | None = None, root: Path | None = None) -> ExternalStorage:
    """The External Storage every client, worker, codec server and replayer of this process
    uses, from PEE_ARTIFACT_URL / PEE_ARTIFACT_DIR / PEE_PAYLOAD_THRESHOLD; ``root``: another
    folder for the pee.fs driver (a replay of a recorded history and its blobs)."""
    limit = payload_threshold() if threshold is None else threshold
    fs = PeeFsDriver(FsBlobStore(root or local_root()))
    settings = s3_settings()
    if settings is None:
        missing = MissingS3Driver()
        return ExternalStorage(
            drivers=[fs, missing],
            driver_selector=lambda _context, _payload: fs,
            payload_size_threshold=limit,
        )
    s3 = S3StorageDriver(client=BotoS3Client(S3BlobStore(settings)), bucket=settings.bucket)
    return ExternalStorage(
        drivers=[s3, fs],
        driver_selector=lambda _context, _payload: s3,
        payload_size_threshold=limit,
    )


def drivers(storage: ExternalStorage) -> dict[str, StorageDriver]:
    """name -> driver (the codec server retrieves references through them)."""
    return {driver.name(): driver for driver in storage.drivers}
