"""The context snapshot cache (seed `caching_system.cache_levels.context_snapshot_cache`).

After a group passes its barrier the workflow hands the context values to the
`store_context_snapshot` local activity, which keeps them here: key = "<group id>#<sha256 of the
values' canonical JSON>" (the seed's `workflow_step_plus_content_hash`), so two runs that reach
the same state share one entry. It lives in the agent output cache's database (table
`snapshots`; PEE_CACHE_URL, else PEE_CACHE_PATH or .temporal/cache.db), values lz4-compressed
above the compression threshold (10 KB), at most `size_limit` bytes (200 MB): past it the least
recently used snapshots go first. TTL `session_lifetime` keeps a snapshot until it is evicted or
cleared (the run it belongs to may be resumed at any time); a number of seconds lets it expire.

`run --resume-from` reads the snapshot the earlier run's report names (src/pee/runtime/resume.py).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from temporalio import activity

from pee.activities.sqlite_store import DEFAULT_THRESHOLD, SharedCache, pack, unpack
from pee.activities.types import SnapshotStored, SnapshotTask
from pee.stores.sql import DatabaseError

DEFAULT_SIZE_LIMIT = 200 * 1024 * 1024
MISSING: Any = object()

# held while a store makes room (see output_cache.EVICTION_LOCK)
EVICTION_LOCK = "pee-snapshot-cache"

SCHEMA = (
    """
create table if not exists snapshots (
    key text primary key,
    workflow_id text not null,
    run_id text not null,
    plan text not null,
    group_id text not null,
    expires_at {float},
    size {int} not null,
    raw_size {int} not null,
    compressed {int} not null,
    value {blob} not null,
    last_used {float} not null
)""",
)


@dataclass
class Stored:
    """What one put did: the bytes kept, the bytes lz4 saved, keys evicted for room."""

    size: int
    bytes_saved: int
    evicted: list[str]
    stored: bool = True


@dataclass
class SnapshotStats:
    entries: int
    bytes: int
    bytes_saved_by_compression: int


class SnapshotCache(SharedCache):
    SCHEMA = SCHEMA
    SCHEMA_NAME = "snapshot_cache"
    DEFAULT_SIZE_LIMIT = DEFAULT_SIZE_LIMIT

    def put(
        self,
        key: str,
        values: dict[str, Any],
        *,
        workflow_id: str,
        run_id: str,
        plan: str,
        group_id: str,
        ttl_s: float | None = None,
        now: float | None = None,
    ) -> Stored:
        now = time.time() if now is None else now
        packed = pack(values, self.threshold)
        size = packed.size
        if size > self.size_limit:
            return Stored(size, 0, [], stored=False)
        evicted: list[str] = []
        with self._db(lock=EVICTION_LOCK) as db:
            db.execute("delete from snapshots where key = ?", (key,))
            used = int(db.execute("select coalesce(sum(size), 0) from snapshots").fetchone()[0])
            while used + size > self.size_limit:
                victim = db.execute(
                    "select key, size from snapshots order by last_used limit 1"
                ).fetchone()
                db.execute("delete from snapshots where key = ?", (victim[0],))
                evicted.append(victim[0])
                used -= int(victim[1])
            db.execute(
                "insert into snapshots(key, workflow_id, run_id, plan, group_id, expires_at, size,"
                " raw_size, compressed, value, last_used) values(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    workflow_id,
                    run_id,
                    plan,
                    group_id,
                    None if ttl_s is None else now + ttl_s,
                    size,
                    packed.raw_size,
                    packed.compressed,
                    packed.data,
                    now,
                ),
            )
        return Stored(size, packed.saved, evicted)

    def get(self, key: str, now: float | None = None) -> Any:
        """The snapshot's context values, or MISSING (never stored, evicted or expired)."""
        now = time.time() if now is None else now
        with self._db() as db:
            row = db.execute(
                "select value, compressed, expires_at from snapshots where key = ?", (key,)
            ).fetchone()
            if row is None or (row[2] is not None and row[2] <= now):
                return MISSING
            db.execute("update snapshots set last_used = ? where key = ?", (now, key))
        return unpack(bytes(row[0]), row[1])

    def stats(self) -> SnapshotStats:
        with self._db() as db:
            entries, total, saved = db.execute(
                "select count(*), coalesce(sum(size), 0), coalesce(sum(raw_size - size), 0) "
                "from snapshots"
            ).fetchone()
        return SnapshotStats(int(entries), int(total), int(saved))

    def clear(self, plan: str | None = None) -> int:
        with self._db() as db:
            if plan is None:
                return db.execute("delete from snapshots").rowcount
            return db.execute("delete from snapshots where plan = ?", (plan,)).rowcount


@activity.defn
async def store_context_snapshot(task: SnapshotTask) -> SnapshotStored:
    """Keep the context at a group's barrier (a local activity). A store that cannot be written
    costs a later resume its snapshot (it falls back to the context query), never this run."""

    def put() -> Stored:
        # opened in the thread too: opening may wait on the file's lock
        cache = SnapshotCache(
            size_limit=task.size_limit,
            threshold=(
                DEFAULT_THRESHOLD
                if task.compression_threshold is None
                else task.compression_threshold
            ),
        )
        return cache.put(
            task.key,
            task.values,
            workflow_id=task.workflow_id,
            run_id=task.run_id,
            plan=task.plan_name,
            group_id=task.group_id,
            ttl_s=task.ttl_s,
        )

    try:
        stored = await asyncio.to_thread(put)
    except (OSError, DatabaseError) as err:
        activity.logger.warning("context snapshot %s not stored: %s", task.key, err)
        return SnapshotStored(task.key, stored=False)
    return SnapshotStored(task.key, stored.stored, stored.size, stored.bytes_saved)
