"""The agent output cache: a database shared by the workers (a SQLite file per host, or the
PostgreSQL database of PEE_CACHE_URL shared by several hosts; pee.stores.sql).

Entries are keyed by pee.engine.rules.cache_key (agent definition + inputs + upstream keys). Values
are canonical JSON, lz4-compressed above the compression threshold. TTL ``session_lifetime`` binds
an entry to the run that wrote it; a number of seconds lets later runs reuse it. When the
entries grow past the size limit, entries are evicted by ``lru_with_priority_boosting``, a
GreedyDual-Size-Frequency score (``gdsf_priority``): an entry is worth keeping in proportion to
how often it was used and how long it took to compute, in inverse proportion to its stored size.
The lowest priority goes first, the least recently used among equals. An aging ``clock`` rises
to the priority of each evicted entry, so entries that stop being used age out even if they were
once valuable. bench/cache.py measures this store against plain LRU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pee.activities.sqlite_store import SharedCache, pack, unpack
from pee.stores.sql import Cursor

DEFAULT_SIZE_LIMIT = 100 * 1024 * 1024
MISS: Any = object()
# the transaction-scoped lock a store holds while it makes room: two workers evicting at once
# would each count the other's entry as still there
EVICTION_LOCK = "pee-output-cache"

SCHEMA = (
    """
create table if not exists entries (
    key text primary key,
    plan text not null,
    agent text not null,
    run_scope text,
    expires_at {float},
    size {int} not null,
    compressed {int} not null,
    value {blob} not null,
    cost {float} not null,
    frequency {int} not null default 1,
    priority {float} not null,
    last_used {int} not null,
    created_at {float} not null
)""",
    "create table if not exists meta (name text primary key, number {float} not null)",
)


def gdsf_priority(clock: float, frequency: int, cost_s: float, size: int) -> float:
    """clock + frequency × cost / size; a zero cost or size still gives a finite score."""
    return clock + frequency * max(cost_s, 1e-6) / max(size, 1)


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


class OutputCache(SharedCache):
    SCHEMA = SCHEMA
    SCHEMA_NAME = "output_cache"
    DEFAULT_SIZE_LIMIT = DEFAULT_SIZE_LIMIT
    # bytes lz4 saved on the last put (what the run report's bytes_saved adds up)
    last_saved = 0

    @staticmethod
    def _meta(db: Cursor, name: str) -> float:
        row = db.execute("select number from meta where name = ?", (name,)).fetchone()
        return float(row[0]) if row else 0.0

    @staticmethod
    def _set_meta(db: Cursor, name: str, number: float) -> None:
        db.execute(
            "insert into meta(name, number) values(?, ?) on conflict(name) "
            "do update set number = excluded.number",
            (name, number),
        )

    @staticmethod
    def _add_meta(db: Cursor, name: str, number: float) -> float:
        """Add to a counter in one statement (concurrent adds never lose one); the new value."""
        row = db.execute(
            "insert into meta(name, number) values(?, ?) on conflict(name) "
            "do update set number = meta.number + excluded.number returning number",
            (name, number),
        ).fetchone()
        return float(row[0])

    def _tick(self, db: Cursor) -> int:
        return int(self._add_meta(db, "tick", 1))

    def get(self, key: str, run_id: str, now: float | None = None) -> Any:
        """The cached value, or MISS (expired entries and other runs' session entries miss)."""
        now = time.time() if now is None else now
        with self._db() as db:
            row = db.execute(
                "select value, compressed, run_scope, expires_at from entries where key = ?",
                (key,),
            ).fetchone()
            usable = (
                row is not None
                and (row[2] is None or row[2] == run_id)
                and (row[3] is None or row[3] > now)
            )
            if not usable:
                self._add_meta(db, "misses", 1)
                return MISS
            value, compressed = bytes(row[0]), row[1]
            # incremented in place: two workers hitting the same entry both count. The entry's
            # row is locked before the counters' rows, as in put: the other order deadlocks
            # against an eviction on PostgreSQL
            used = db.execute(
                "update entries set frequency = frequency + 1 where key = ? "
                "returning frequency, cost, size",
                (key,),
            ).fetchone()
            if used is not None:
                frequency, cost, size = used
                priority = gdsf_priority(self._meta(db, "clock"), frequency, cost, size)
                db.execute(
                    "update entries set priority = ?, last_used = ? where key = ?",
                    (priority, self._tick(db), key),
                )
            self._add_meta(db, "hits", 1)
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
        with self._db(lock=EVICTION_LOCK) as db:
            db.execute("delete from entries where key = ?", (key,))
            used = int(db.execute("select coalesce(sum(size), 0) from entries").fetchone()[0])
            while used + size > self.size_limit:
                victim = db.execute(
                    "select key, priority, size from entries order by priority, last_used limit 1"
                ).fetchone()
                self._set_meta(db, "clock", victim[1])
                db.execute("delete from entries where key = ?", (victim[0],))
                evicted.append(victim[0])
                used -= int(victim[2])
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
            self._add_meta(db, "saved", packed.saved)
        return evicted

    def stats(self) -> CacheStats:
        with self._db() as db:
            entries, total = db.execute(
                "select count(*), coalesce(sum(size), 0) from entries"
            ).fetchone()
            return CacheStats(
                int(entries),
                int(total),
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
