"""The blob store: where large payloads (External Storage, pee.stores.payloads) and the legacy
`$artifact` values (pee.activities.artifacts) live.

`PEE_ARTIFACT_URL` chooses it:

    unset                  a folder on this host: PEE_ARTIFACT_DIR, else <state dir>/artifacts
    file:///srv/pee/blobs  a folder (on one host, or a volume every host mounts)
    s3://BUCKET            an S3 bucket (AWS, MinIO, any S3 API): endpoint and credentials from
                           AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION

Keys are relative paths (`payloads/sha256/ab/<hex>`, `sha256/ab/<hex>.json.lz4`): the same key
names the same bytes in a folder and in a bucket, so `aws s3 sync .temporal/artifacts
s3://BUCKET/` moves a host's blobs to a cluster. Stores are synchronous and thread-safe; async
callers use asyncio.to_thread.
"""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from pee.paths import state_dir
from pee.stores.urls import StoreConfigError

ENV = "PEE_ARTIFACT_URL"
S3_EXAMPLE = "s3://BUCKET"
FILE_EXAMPLE = "file:///absolute/folder"


class BlobMissing(LookupError):
    """No blob under that key (the caller says what it was and what to configure)."""


class BlobStoreError(OSError):
    """The blob store answered with an error (not "missing"): unreachable, refused, ... An
    OSError, as a folder's failures are, so callers handle both alike."""


class BlobStore(Protocol):
    # the folder or s3://bucket (with its endpoint), for messages
    display: str

    def get(self, key: str) -> bytes: ...

    def put(self, key: str, data: bytes) -> None: ...

    def exists(self, key: str) -> bool: ...


class FsBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.display = str(root)

    def _path(self, key: str) -> Path:
        return self.root / key

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise BlobMissing(key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def put(self, key: str, data: bytes) -> None:
        """Idempotent: content-addressed keys never change, so an existing file is kept."""
        path = self._path(key)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # write, then rename: a reader (or a concurrent writer of the same key) never sees half
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:8]}-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            # readable like any other file (mkstemp makes it private): hosts and users that
            # share the folder read what another wrote
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    endpoint: str | None
    region: str | None

    @property
    def display(self) -> str:
        return f"s3://{self.bucket}" + (f" at {self.endpoint}" if self.endpoint else "")


# boto3 clients are thread-safe and slow to build: one per settings per process
_S3_CLIENTS: dict[S3Settings, Any] = {}
_S3_LOCK = threading.Lock()


def s3_client(settings: S3Settings) -> Any:
    with _S3_LOCK:
        client = _S3_CLIENTS.get(settings)
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.session.Session().client(
                "s3",
                endpoint_url=settings.endpoint,
                region_name=settings.region or "us-east-1",
                # MinIO and moto serve buckets by path, not as subdomains of the endpoint
                config=Config(
                    s3={"addressing_style": "path" if settings.endpoint else "auto"},
                    retries={"max_attempts": 3, "mode": "standard"},
                    connect_timeout=10,
                    read_timeout=60,
                ),
            )
            _S3_CLIENTS[settings] = client
        return client


def not_found(err: Exception) -> bool:
    """Whether a botocore ClientError means "no such key" (as opposed to a failure)."""
    code = str(getattr(err, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


class S3BlobStore:
    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.display = settings.display

    @property
    def client(self) -> Any:
        return s3_client(self.settings)

    def _fail(self, action: str, key: str, err: Exception) -> BlobStoreError:
        return BlobStoreError(f"cannot {action} {key} in {self.display}: {err}")

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
            return bytes(answer["Body"].read())
        except ClientError as err:
            if not_found(err):
                raise BlobMissing(key) from None
            raise self._fail("read", key, err) from None
        except BotoCoreError as err:
            raise self._fail("read", key, err) from None

    def exists(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if not_found(err):
                return False
            raise self._fail("look up", key, err) from None
        except BotoCoreError as err:
            raise self._fail("look up", key, err) from None
        return True

    def put(self, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        if self.exists(key):
            return
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        except (ClientError, BotoCoreError) as err:
            raise self._fail("write", key, err) from None

    def check(self) -> None:
        """Raise StoreConfigError, saying bucket, endpoint and fix, when the bucket cannot be
        reached (a worker checks at start rather than failing its first large payload)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as err:
            raise StoreConfigError(
                f"{ENV}={S3_EXAMPLE.replace('BUCKET', self.bucket)}: cannot reach the bucket "
                f"({self.display}): {err}; create the bucket, and set AWS_ENDPOINT_URL (for "
                "MinIO or another S3 API), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and "
                "AWS_REGION where this process runs"
            ) from None


def s3_settings() -> S3Settings | None:
    """The S3 bucket PEE_ARTIFACT_URL names, or None (blobs stay in a local folder)."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme == "s3":
        if not parts.netloc or parts.path.strip("/"):
            raise StoreConfigError(
                f"{ENV}={raw!r}: expected {S3_EXAMPLE} (a bucket, no key prefix: the SDK's S3 "
                "driver writes its own keys)"
            )
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        return S3Settings(parts.netloc, endpoint or None, region or None)
    if parts.scheme == "file":
        return None
    raise StoreConfigError(
        f"{ENV}={raw!r} is not a blob store this project can use; expected {S3_EXAMPLE} "
        f"(shared by the workers of several hosts) or {FILE_EXAMPLE}; unset it to keep blobs "
        "in the state directory"
    )


def local_root() -> Path:
    """The local blob folder: PEE_ARTIFACT_URL=file:///..., PEE_ARTIFACT_DIR, or
    <state dir>/artifacts (where the artifact store always kept its files)."""
    raw = os.environ.get(ENV, "").strip()
    if raw.startswith("file:"):
        path = urlsplit(raw).path
        if not path.startswith("/"):
            raise StoreConfigError(f"{ENV}={raw!r}: expected {FILE_EXAMPLE}")
        return Path(path)
    return Path(os.environ.get("PEE_ARTIFACT_DIR") or state_dir() / "artifacts")


def configured_store() -> FsBlobStore | S3BlobStore:
    """The blob store PEE_ARTIFACT_URL (or its default) names."""
    settings = s3_settings()
    return S3BlobStore(settings) if settings is not None else FsBlobStore(local_root())
