"""The SQLite file the host-local caches keep their values in, and how a value is packed there.

The agent output cache and the context snapshot cache share this: a file that several workers
and commands on one host open at once (so every call is one short IMMEDIATE transaction, waiting
up to 30 s for a writer), values stored as canonical JSON, lz4-compressed above a threshold.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lz4.frame

from pee.engine.canonical import canonical_json
from pee.paths import state_dir

# values whose JSON is longer than this are lz4-compressed
DEFAULT_THRESHOLD = 10 * 1024


def default_path() -> Path:
    """PEE_CACHE_PATH, else cache.db in the state directory (PEE_STATE_DIR or .temporal/)."""
    if os.environ.get("PEE_CACHE_PATH"):
        return Path(os.environ["PEE_CACHE_PATH"])
    return state_dir() / "cache.db"


# (file, schema) -> the file's inode once this process has created the schema in it: a cache is
# opened for every lookup and store, and creating its tables takes the file's write lock
_CREATED: dict[tuple[Path, str], int] = {}


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


class SqliteFile:
    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        created = _CREATED.get((path, schema))
        # the same file as when we created the tables (not deleted or replaced since): done
        if created is not None and created == _inode(path):
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.transaction() as db:
            db.executescript(schema)
        inode = _inode(path)
        if inode is not None:
            _CREATED[(path, schema)] = inode

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level="IMMEDIATE")
        try:
            yield db
            db.commit()
        finally:
            db.close()


class SqliteCache:
    """What the output and snapshot caches share: their file (`default_path` unless given, its
    tables from the subclass's ``SCHEMA``), a size limit in stored bytes, a compression
    threshold, and ``_db()``: one short transaction per call."""

    SCHEMA: str
    DEFAULT_SIZE_LIMIT: int

    def __init__(
        self,
        path: Path | str | None = None,
        size_limit: int | None = None,
        threshold: int = DEFAULT_THRESHOLD,
    ) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.size_limit = self.DEFAULT_SIZE_LIMIT if size_limit is None else size_limit
        self.threshold = threshold
        self._db = SqliteFile(self.path, self.SCHEMA).transaction


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
