"""The agent output cache: a SQLite file shared by the workers of one host.

Entries are keyed by pee.engine.rules.cache_key (agent definition + inputs + upstream keys). Values
are canonical JSON, lz4-compressed above the compression threshold. TTL ``session_lifetime`` binds
an entry to the run that wrote it; a number of seconds lets later runs reuse it. When the file
grows past its size limit, entries are evicted by ``lru_with_priority_boosting``, a
GreedyDual-Size-Frequency score (``gdsf_priority``): an entry is worth keeping in proportion to
how often it was used and how long it took to compute, in inverse proportion to its stored size.
The lowest priority goes first, the least recently used among equals. An aging ``clock`` rises
to the priority of each evicted entry, so entries that stop being used age out even if they were
once valuable. bench/cache.py measures this store against plain LRU.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pee.activities.sqlite_store import SqliteFile, pack, unpack
from pee.paths import state_dir

DEFAULT_SIZE_LIMIT = 100 * 1024 * 1024
DEFAULT_THRESHOLD = 10 * 1024
MISS: Any = object()

SCHEMA = """
create table if not exists entries (
    key text primary key,
    plan text not null,
    agent text not null,
    run_scope text,
    expires_at real,
    size integer not null,
    compressed integer not null,
    value blob not null,
    cost real not null,
    frequency integer not null default 1,
    priority real not null,
    last_used integer not null,
    created_at real not null
);
create table if not exists meta (name text primary key, number real not null);
"""


def gdsf_priority(clock: float, frequency: int, cost_s: float, size: int) -> float:
    """clock + frequency × cost / size; a zero cost or size still gives a finite score."""
    return clock + frequency * max(cost_s, 1e-6) / max(size, 1)


def default_path() -> Path:
    """PEE_CACHE_PATH, else cache.db in the state directory (PEE_STATE_DIR or .temporal/)."""
    if os.environ.get("PEE_CACHE_PATH"):
        return Path(os.environ["PEE_CACHE_PATH"])
    return state_dir() / "cache.db"


@dataclass
class CacheStats:
    entries: int
    bytes: int
    hits: int
    misses: int
    bytes_saved_by_compression: int

    @property
    def hit_ratio(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class OutputCache:
    def __init__(
        self,
        path: Path | str | None = None,
        size_limit: int = DEFAULT_SIZE_LIMIT,
        threshold: int = DEFAULT_THRESHOLD,
    ) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.size_limit = size_limit
        self.threshold = threshold
        # bytes lz4 saved on the last put (what the run report's bytes_saved adds up)
        self.last_saved = 0
        # one short transaction per call: several workers on the host share the file
        self._db = SqliteFile(self.path, SCHEMA).transaction

    @staticmethod
    def _meta(db: sqlite3.Connection, name: str) -> float:
        row = db.execute("select number from meta where name = ?", (name,)).fetchone()
        return row[0] if row else 0.0

    @staticmethod
    def _set_meta(db: sqlite3.Connection, name: str, number: float) -> None:
        db.execute(
            "insert into meta(name, number) values(?, ?) on conflict(name) "
            "do update set number = excluded.number",
            (name, number),
        )

    def _tick(self, db: sqlite3.Connection) -> int:
        tick = int(self._meta(db, "tick")) + 1
        self._set_meta(db, "tick", tick)
        return tick

    def get(self, key: str, run_id: str, now: float | None = None) -> Any:
        """The cached value, or MISS (expired entries and other runs' session entries miss)."""
        now = time.time() if now is None else now
        with self._db() as db:
            row = db.execute(
                "select value, compressed, run_scope, expires_at, frequency, cost, size "
                "from entries where key = ?",
                (key,),
            ).fetchone()
            usable = (
                row is not None
                and (row[2] is None or row[2] == run_id)
                and (row[3] is None or row[3] > now)
            )
            if not usable:
                self._set_meta(db, "misses", self._meta(db, "misses") + 1)
                return MISS
            value, compressed, _scope, _expires, frequency, cost, size = row
            frequency += 1
            priority = gdsf_priority(self._meta(db, "clock"), frequency, cost, size)
            db.execute(
                "update entries set frequency = ?, priority = ?, last_used = ? where key = ?",
                (frequency, priority, self._tick(db), key),
            )
            self._set_meta(db, "hits", self._meta(db, "hits") + 1)
        return unpack(value, compressed)

    def put(
        self,
        key: str,
        value: Any,
        *,
        plan: str,
        agent: str,
        cost_s: float,
        run_id: str,
        ttl_s: float | None = None,
        now: float | None = None,
    ) -> list[str]:
        """Store a value; ``ttl_s`` None = this run only. Returns the keys evicted for room."""
        now = time.time() if now is None else now
        packed = pack(value, self.threshold)
        size = packed.size
        self.last_saved = 0
        if size > self.size_limit:
            return []
        self.last_saved = packed.saved
        evicted: list[str] = []
        with self._db() as db:
            db.execute("delete from entries where key = ?", (key,))
            used = db.execute("select coalesce(sum(size), 0) from entries").fetchone()[0]
            while used + size > self.size_limit:
                victim = db.execute(
                    "select key, priority, size from entries order by priority, last_used limit 1"
                ).fetchone()
                self._set_meta(db, "clock", victim[1])
                db.execute("delete from entries where key = ?", (victim[0],))
                evicted.append(victim[0])
                used -= victim[2]
            # scored after the evictions above raised the clock: a new entry starts level with
            # what survived them
            priority = gdsf_priority(self._meta(db, "clock"), 1, cost_s, size)
            db.execute(
                "insert into entries(key, plan, agent, run_scope, expires_at, size, compressed, "
                "value, cost, frequency, priority, last_used, created_at) "
                "values(?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
                (
                    key,
                    plan,
                    agent,
                    run_id if ttl_s is None else None,
                    None if ttl_s is None else now + ttl_s,
                    size,
                    packed.compressed,
                    packed.data,
                    cost_s,
                    priority,
                    self._tick(db),
                    now,
                ),
            )
            self._set_meta(db, "saved", self._meta(db, "saved") + packed.saved)
        return evicted

    def stats(self) -> CacheStats:
        with self._db() as db:
            entries, total = db.execute(
                "select count(*), coalesce(sum(size), 0) from entries"
            ).fetchone()
            return CacheStats(
                entries,
                total,
                int(self._meta(db, "hits")),
                int(self._meta(db, "misses")),
                int(self._meta(db, "saved")),
            )

    def clear(self, agent: str | None = None, plan: str | None = None) -> int:
        """Remove entries (all, or those of one agent and/or plan); returns how many."""
        clauses, params = [], []
        if agent is not None:
            clauses.append("agent = ?")
            params.append(agent)
        if plan is not None:
            clauses.append("plan = ?")
            params.append(plan)
        where = f" where {' and '.join(clauses)}" if clauses else ""
        with self._db() as db:
            return db.execute(f"delete from entries{where}", params).rowcount
