"""What the agent output cache and the context snapshot cache share: their database and how a
value is packed there.

The database is a SQLite file per host by default, or the PostgreSQL database of PEE_CACHE_URL
that the workers of several hosts share (pee.stores.sql). Several workers and commands use it at
once, so every call is one short transaction. Values are stored as canonical JSON,
lz4-compressed above a threshold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lz4.frame

from pee.engine.canonical import canonical_json
from pee.stores.sql import connect
from pee.stores.urls import target

# values whose JSON is longer than this are lz4-compressed
DEFAULT_THRESHOLD = 10 * 1024


class SharedCache:
    """What the output and snapshot caches share: their database (the configured one unless a
    SQLite file or a database URL is given; tables from the subclass's ``SCHEMA``, created on
    first use), a size limit in stored bytes, a compression threshold, and ``_db``: one short
    transaction per call."""

    SCHEMA: tuple[str, ...]
    SCHEMA_NAME: str
    DEFAULT_SIZE_LIMIT: int

    def __init__(
        self,
        path: Path | str | None = None,
        size_limit: int | None = None,
        threshold: int = DEFAULT_THRESHOLD,
    ) -> None:
        self.database = connect(target(path, "cache"))
        self.size_limit = self.DEFAULT_SIZE_LIMIT if size_limit is None else size_limit
        self.threshold = threshold
        self.database.ensure_schema(self.SCHEMA_NAME, self.SCHEMA)
        self._db = self.database.transaction

    @property
    def display(self) -> str:
        """Which database: the SQLite file, or the PostgreSQL URL without its password."""
        return self.database.display


@dataclass(frozen=True)
class Packed:
    """A value as stored: ``data`` (lz4 frame when ``compressed``) and its JSON's length."""

    data: bytes
    compressed: int
    raw_size: int

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def saved(self) -> int:
        return self.raw_size - self.size


def pack(value: Any, threshold: int) -> Packed:
    raw = canonical_json(value).encode()
    if len(raw) > threshold:
        return Packed(lz4.frame.compress(raw), 1, len(raw))
    return Packed(raw, 0, len(raw))


def unpack(data: bytes, compressed: int) -> Any:
    return json.loads(lz4.frame.decompress(data) if compressed else data)
