"""Legacy claim-check artifacts: read, never written any more.

Before External Storage (pee.stores.payloads) took large payloads out of the history, an agent's
output or shared write whose canonical JSON was above the plan's `large_value_threshold` was
written here and replaced by a small reference, which the workflow, its context and the report
carried:

    {"$artifact": "sha256:<hex of the canonical JSON>", "size": <bytes of that JSON>,
     "preview": "<its first 200 characters>"}

Histories and cached outputs from then still hold such references, so they are still resolved:
before a backend runs, `resolve` swaps every reference in the agent's input snapshot for its
value, so agents never see references. The files are content-addressed under the key
`sha256/<first two hex digits>/<hex>.json[.lz4]` (lz4 above 10 KB) in the blob store
(pee.stores.blobs): `<state dir>/artifacts` or PEE_ARTIFACT_DIR by default, where they always
were; on a cluster `aws s3 sync .temporal/artifacts s3://BUCKET/` makes them readable from the
bucket of PEE_ARTIFACT_URL. `put` remains for tests and migrations only.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import lz4.frame

from pee.engine.canonical import canonical_bytes
from pee.paths import state_dir
from pee.stores.blobs import BlobMissing, BlobStore, FsBlobStore, configured_store

REF_KEY = "$artifact"
SCHEME = "sha256:"
# what plans' `large_value_threshold` defaulted to (PEE_PAYLOAD_THRESHOLD decides now)
DEFAULT_THRESHOLD = 256 * 1024
# compress stored files above this many bytes (the design's "lz4 above 10 KB")
COMPRESS_ABOVE = 10 * 1024
PREVIEW_CHARS = 200


class ArtifactError(RuntimeError):
    """An artifact cannot be read back: missing (another host's folder?) or corrupt."""


def artifact_dir() -> Path:
    """The local folder (pee.stores.blobs.local_root without a file:// PEE_ARTIFACT_URL)."""
    return Path(os.environ.get("PEE_ARTIFACT_DIR") or state_dir() / "artifacts")


def encode(value: Any) -> bytes:
    """Canonical JSON (pee.engine.canonical): the bytes that are hashed, measured and stored;
    strict, so a value JSON cannot hold is refused rather than stored as its str()."""
    return canonical_bytes(value, strict=True)


def is_reference(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get(REF_KEY), str)
        and value[REF_KEY].startswith(SCHEME)
    )


def preview(value: Any) -> str:
    text = (
        value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    )
    return text[:PREVIEW_CHARS]


class ArtifactStore:
    def __init__(self, blobs: BlobStore | Path) -> None:
        self.blobs: BlobStore = FsBlobStore(blobs) if isinstance(blobs, Path) else blobs

    @classmethod
    def default(cls) -> ArtifactStore:
        """The configured blob store: PEE_ARTIFACT_URL, else PEE_ARTIFACT_DIR or artifacts/
        in the state directory."""
        return cls(configured_store())

    @staticmethod
    def key(digest: str, compressed: bool) -> str:
        suffix = ".json.lz4" if compressed else ".json"
        return f"sha256/{digest[:2]}/{digest}{suffix}"

    def put(self, value: Any, data: bytes | None = None) -> dict[str, Any]:
        """Store ``value`` (idempotent) and return its reference; ``data``: its `encode`, when
        the caller has it already. Tests and migrations only: agents no longer write here."""
        data = encode(value) if data is None else data
        digest = hashlib.sha256(data).hexdigest()
        compressed = len(data) > COMPRESS_ABOVE
        self.blobs.put(
            self.key(digest, compressed), lz4.frame.compress(data) if compressed else data
        )
        return {REF_KEY: f"{SCHEME}{digest}", "size": len(data), "preview": preview(value)}

    def get(self, reference: dict[str, Any]) -> Any:
        """The value a reference stands for; ArtifactError when missing or corrupt."""
        digest = str(reference[REF_KEY])[len(SCHEME) :]
        for compressed in (True, False):
            key = self.key(digest, compressed)
            try:
                body = self.blobs.get(key)
            except BlobMissing:
                continue
            where = f"{key} in {self.blobs.display}"
            try:
                data = lz4.frame.decompress(body) if compressed else body
            except RuntimeError as err:
                raise ArtifactError(
                    f"artifact {SCHEME}{digest} at {where} is corrupt: {err}"
                ) from None
            if hashlib.sha256(data).hexdigest() != digest:
                raise ArtifactError(
                    f"artifact {SCHEME}{digest} at {where} is corrupt: its "
                    "content does not match its hash"
                )
            return json.loads(data)
        raise ArtifactError(
            f"artifact {SCHEME}{digest} not found in {self.blobs.display}: workers on several "
            "hosts read artifacts from one blob store: set PEE_ARTIFACT_URL=s3://BUCKET (and copy "
            "each host's artifacts/ folder there) or share PEE_ARTIFACT_DIR"
        )

    def resolve(self, value: Any) -> Any:
        """``value`` with every reference in it (at any depth) replaced by what it stands for."""
        if is_reference(value):
            return self.get(value)
        if isinstance(value, dict):
            return {key: self.resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        return value


def contains_reference(value: Any) -> bool:
    if is_reference(value):
        return True
    if isinstance(value, dict):
        return any(contains_reference(item) for item in value.values())
    if isinstance(value, list):
        return any(contains_reference(item) for item in value)
    return False
