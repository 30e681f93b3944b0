"""The context snapshot store: content-keyed entries, lz4 above the threshold, a size limit that
evicts the least recently used snapshot, TTL, clearing by plan; each on SQLite and on PostgreSQL
(the `database` fixture, tests/pg_support.py)."""

from __future__ import annotations

from pathlib import Path

from pee.activities.snapshot_cache import MISSING, SnapshotCache


def put(cache: SnapshotCache, key: str, values: dict, **fields) -> object:
    return cache.put(
        key,
        values,
        workflow_id="wf",
        run_id="r",
        plan=fields.pop("plan", "p"),
        group_id=key.split("#")[0],
        **fields,
    )


def test_a_large_snapshot_is_stored_compressed_and_reads_back_equal(database: Path | str) -> None:
    """Above the threshold the stored bytes are lz4 (fewer than the JSON); get returns the
    values unchanged."""
    cache = SnapshotCache(database, threshold=1024)
    values = {"pm.prd": "requirement " * 2000, "topic": "x"}
    stored = put(cache, "g1#h", values)
    assert stored.stored and stored.bytes_saved > 0
    assert values == cache.get("g1#h")
    small = put(cache, "g2#h", {"topic": "x"})
    assert 0 == small.bytes_saved
    assert stored.bytes_saved == cache.stats().bytes_saved_by_compression


def test_past_the_size_limit_the_least_recently_used_snapshot_goes(database: Path | str) -> None:
    """Three 100-byte snapshots in room for two: the one not read since goes first."""
    cache = SnapshotCache(database, size_limit=250)
    put(cache, "g1#a", {"v": "a" * 90}, now=1)
    put(cache, "g2#b", {"v": "b" * 90}, now=2)
    cache.get("g1#a", now=3)
    stored = put(cache, "g3#c", {"v": "c" * 90}, now=4)
    assert ["g2#b"] == stored.evicted
    assert MISSING is cache.get("g2#b", now=5)
    assert MISSING is not cache.get("g1#a", now=5)


def test_a_ttl_expires_and_clear_removes_a_plans_snapshots(database: Path | str) -> None:
    """ttl_s 60: found at +30 s, gone at +61 s; session_lifetime (None) stays; clear by plan."""
    cache = SnapshotCache(database)
    put(cache, "g1#a", {"v": 1}, ttl_s=60, now=1000)
    put(cache, "g2#b", {"v": 2}, plan="other", now=1000)
    assert {"v": 1} == cache.get("g1#a", now=1030)
    assert MISSING is cache.get("g1#a", now=1061)
    assert {"v": 2} == cache.get("g2#b", now=10**9)
    assert 1 == cache.clear(plan="other")
    assert 1 == cache.stats().entries
