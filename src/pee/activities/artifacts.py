"""Claim-check artifact store: large context values live in files, the context holds a reference.

Temporal payloads above 2 MiB fail and every value an agent returns is copied into the history
(and into every later reader's activity input), so an agent's output or shared write whose
canonical JSON is above the plan's `large_value_threshold` (default 256 KiB) is written here and
replaced by a small reference, which is what the workflow, its context and the report carry:

    {"$artifact": "sha256:<hex of the canonical JSON>", "size": <bytes of that JSON>,
     "preview": "<its first 200 characters>"}

Content-addressed: the same value is stored once, wherever it comes from, and a file is never
rewritten. Files above 10 KB are lz4-compressed (`<hex>.json.lz4`, else `<hex>.json`) under
`<dir>/sha256/<first two hex digits>/`. The directory is PEE_ARTIFACT_DIR, else `artifacts/` in
the runtime's state directory (PEE_STATE_DIR, else `.temporal/`): local by default, so workers
on several machines must share it (a mounted volume) to read each other's artifacts.

Before a backend runs, `resolve` swaps every reference in the agent's input snapshot for its
value, so agents never see references.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lz4.frame

from pee.engine.canonical import canonical_bytes
from pee.paths import state_dir

REF_KEY = "$artifact"
SCHEME = "sha256:"
DEFAULT_THRESHOLD = 256 * 1024
# compress stored files above this many bytes (the design's "lz4 above 10 KB")
COMPRESS_ABOVE = 10 * 1024
PREVIEW_CHARS = 200


class ArtifactError(RuntimeError):
    """An artifact cannot be read back: missing (another machine's store?) or corrupt."""


def artifact_dir() -> Path:
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


@dataclass
class ArtifactStore:
    root: Path

    @classmethod
    def default(cls) -> ArtifactStore:
        return cls(artifact_dir())

    def _path(self, digest: str, compressed: bool) -> Path:
        suffix = ".json.lz4" if compressed else ".json"
        return self.root / "sha256" / digest[:2] / f"{digest}{suffix}"

    def put(self, value: Any, data: bytes | None = None) -> dict[str, Any]:
        """Store ``value`` (idempotent) and return its reference; ``data``: its `encode`, when
        the caller has it already."""
        data = encode(value) if data is None else data
        digest = hashlib.sha256(data).hexdigest()
        compressed = len(data) > COMPRESS_ABOVE
        path = self._path(digest, compressed)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            body = lz4.frame.compress(data) if compressed else data
            # write then rename: a reader (or a concurrent writer of the same value) never sees
            # half a file
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{digest[:8]}-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(body)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return {REF_KEY: f"{SCHEME}{digest}", "size": len(data), "preview": preview(value)}

    def get(self, reference: dict[str, Any]) -> Any:
        """The value a reference stands for; ArtifactError when missing or corrupt."""
        digest = str(reference[REF_KEY])[len(SCHEME) :]
        for compressed in (True, False):
            path = self._path(digest, compressed)
            try:
                body = path.read_bytes()
            except FileNotFoundError:
                continue
            try:
                data = lz4.frame.decompress(body) if compressed else body
            except RuntimeError as err:
                raise ArtifactError(
                    f"artifact {SCHEME}{digest} at {path} is corrupt: {err}"
                ) from None
            if hashlib.sha256(data).hexdigest() != digest:
                raise ArtifactError(
                    f"artifact {SCHEME}{digest} at {path} is corrupt: its "
                    "content does not match its hash"
                )
            return json.loads(data)
        raise ArtifactError(
            f"artifact {SCHEME}{digest} not found in {self.root}: every worker must share the "
            "artifact directory (PEE_ARTIFACT_DIR)"
        )

    # ---- what run_agent uses -----------------------------------------------------------

    def offload(self, values: dict[str, Any], threshold: int) -> dict[str, Any]:
        """``values`` with each value whose canonical JSON exceeds ``threshold`` bytes replaced
        by its reference (references themselves are left alone)."""
        out: dict[str, Any] = {}
        for name, value in values.items():
            out[name] = value
            if not is_reference(value):
                # encoded once: measured here, hashed and stored by put
                data = encode(value)
                if len(data) > threshold:
                    out[name] = self.put(value, data)
        return out

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
