"""The agent output cache: lineage-aware keys, session vs cross-run TTL, compression, eviction
by priority boosting, stats and clearing."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pee.activities import sqlite_store
from pee.activities.output_cache import MISS, OutputCache, gdsf_priority
from pee.activities.snapshot_cache import SnapshotCache
from pee.engine.rules.cache_key import cache_key
from tests.helpers import sim


def test_keys_follow_definition_inputs_and_lineage() -> None:
    """Same agent, inputs and upstream keys: same key; any of them changed: another key."""
    agent = sim("pm", "g", 1.0, inputs=["analyst.brief"])
    base = cache_key(agent, {"analyst.brief": "v1"}, ["k-analyst"])
    assert base == cache_key(agent, {"analyst.brief": "v1"}, ["k-analyst"])
    assert base != cache_key(agent, {"analyst.brief": "v2"}, ["k-analyst"])
    assert base != cache_key(agent, {"analyst.brief": "v1"}, ["k-analyst-changed"])
    other = sim("pm", "g", 1.0, inputs=["analyst.brief"], fail_times=1)
    assert base != cache_key(other, {"analyst.brief": "v1"}, ["k-analyst"])


def test_session_entries_serve_only_their_run(tmp_path: Path) -> None:
    """TTL session_lifetime: the run that wrote it hits, another run misses."""
    cache = OutputCache(tmp_path / "c.db")
    cache.put("k", {"x": 1}, plan="p", agent="a", cost_s=1.0, run_id="run-1")
    assert {"x": 1} == cache.get("k", "run-1")
    assert MISS is cache.get("k", "run-2")


def test_cross_run_entries_expire(tmp_path: Path) -> None:
    """A TTL in seconds opts in to reuse by later runs until it expires."""
    cache = OutputCache(tmp_path / "c.db")
    cache.put("k", "doc", plan="p", agent="a", cost_s=1.0, run_id="run-1", ttl_s=60, now=1000)
    assert "doc" == cache.get("k", "run-2", now=1030)
    assert MISS is cache.get("k", "run-2", now=1061)


def test_large_values_are_compressed(tmp_path: Path) -> None:
    """Above the threshold values are stored lz4-compressed; stats count the bytes saved."""
    cache = OutputCache(tmp_path / "c.db", threshold=1024)
    document = {"markdown": "# PRD\n" + "As a user I want things.\n" * 2000}
    cache.put("k", document, plan="p", agent="pm", cost_s=5.0, run_id="r")
    assert document == cache.get("k", "r")
    stats = cache.stats()
    assert stats.bytes < 5000 and stats.bytes_saved_by_compression > 40_000


def test_eviction_keeps_expensive_outputs(tmp_path: Path) -> None:
    """Past the size limit, cheap entries go before an expensive one of the same size."""
    cache = OutputCache(tmp_path / "c.db", size_limit=300)
    cache.put("slow", "s" * 90, plan="p", agent="architect", cost_s=600, run_id="r")
    cache.put("quick1", "q" * 90, plan="p", agent="qa", cost_s=1, run_id="r")
    cache.put("quick2", "r" * 90, plan="p", agent="qa", cost_s=1, run_id="r")
    # equal size and cost: the least recently used of the cheap ones goes
    assert ["quick1"] == cache.put("quick3", "t" * 90, plan="p", agent="qa", cost_s=1, run_id="r")
    assert MISS is not cache.get("slow", "r")


def test_stats_and_clear(tmp_path: Path) -> None:
    """Hits and misses are counted; clear removes by agent, by plan, or everything."""
    cache = OutputCache(tmp_path / "c.db")
    for plan, agent in (("p1", "pm"), ("p1", "qa"), ("p2", "pm")):
        cache.put(f"{plan}-{agent}", 1, plan=plan, agent=agent, cost_s=1, run_id="r")
    cache.get("p1-pm", "r")
    cache.get("missing", "r")
    stats = cache.stats()
    assert (3, 1, 1, 0.5) == (stats.entries, stats.hits, stats.misses, stats.hit_ratio)
    assert 1 == cache.clear(agent="pm", plan="p1")
    assert 1 == cache.clear(plan="p2")
    assert 1 == cache.clear()
    assert 0 == cache.stats().entries


def test_cache_commands(tmp_path: Path) -> None:
    """`starter.py cache stats --json` and `cache clear --agent` work on a given file."""
    import json
    import subprocess
    import sys

    path = tmp_path / "c.db"
    cache = OutputCache(path)
    cache.put("a", 1, plan="p", agent="pm", cost_s=1, run_id="r")
    cache.put("b", 2, plan="p", agent="qa", cost_s=1, run_id="r")
    root = Path(__file__).resolve().parent.parent

    def starter(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "starter.py", "cache", *args, "--path", str(path)],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout

    assert 2 == json.loads(starter("stats", "--json"))["entries"]
    assert "removed 1 entry of agent pm" in starter("clear", "--agent", "pm")
    assert 1 == json.loads(starter("stats", "--json"))["entries"]
    SnapshotCache(path).put("g#h", {"v": 1}, workflow_id="w", run_id="r", plan="p", group_id="g")
    assert 1 == json.loads(starter("stats", "--json"))["context_snapshots"]["entries"]
    assert "removed 1 context snapshot" in starter("clear", "--plan", "p")
    assert 0 == json.loads(starter("stats", "--json"))["context_snapshots"]["entries"]


# ---- eviction (lru_with_priority_boosting) against the real store ---------------------------

UNIT = 100  # bytes of stored JSON per size unit; no compression below the default threshold


def store(cache: OutputCache, key: str, units: int, cost_s: float) -> list[str]:
    """A value whose stored JSON is exactly ``units`` × UNIT bytes (a string and its quotes)."""
    return cache.put(key, "x" * (units * UNIT - 2), plan="p", agent="a", cost_s=cost_s, run_id="r")


def test_the_priority_formula() -> None:
    """clock + frequency × cost / size, finite for a zero cost or size."""
    assert 10.0 + 3 * 5.0 / 2 == gdsf_priority(10.0, 3, 5.0, 2)
    assert 1e-6 == gdsf_priority(0.0, 1, 0.0, 0)


def test_boosting_keeps_frequently_used_entries(tmp_path: Path) -> None:
    """Equal cost and size: the entry used more often stays."""
    cache = OutputCache(tmp_path / "c.db", size_limit=2 * UNIT)
    store(cache, "popular", 1, 1.0)
    store(cache, "once", 1, 1.0)
    for _ in range(3):
        assert MISS is not cache.get("popular", "r")
    assert ["once"] == store(cache, "new", 1, 1.0)


def test_boosting_prefers_evicting_large_entries(tmp_path: Path) -> None:
    """Equal cost and use: the large entry goes first, it frees the most for the least."""
    cache = OutputCache(tmp_path / "c.db", size_limit=10 * UNIT)
    store(cache, "big", 8, 5.0)
    store(cache, "small", 1, 5.0)
    assert ["big"] == store(cache, "other", 2, 5.0)


def test_aging_lets_stale_valuable_entries_go(tmp_path: Path) -> None:
    """The clock rises with each eviction, so a once-valuable entry nobody uses ages out."""
    cache = OutputCache(tmp_path / "c.db", size_limit=2 * UNIT)
    store(cache, "old_gold", 1, 5.0)
    evicted: list[str] = []
    for index in range(50):
        evicted += store(cache, f"k{index}", 1, 1.0)
        cache.get(f"k{index}", "r")
    assert "old_gold" in evicted


def test_a_value_larger_than_the_cache_is_not_stored(tmp_path: Path) -> None:
    """Nothing is evicted for a value that could never fit."""
    cache = OutputCache(tmp_path / "c.db", size_limit=5 * UNIT)
    store(cache, "a", 2, 1.0)
    assert [] == store(cache, "huge", 6, 1.0)
    assert MISS is not cache.get("a", "r")


def test_the_tables_are_created_once_per_file_and_again_when_it_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening the cache for every lookup must not take the file's write lock to create tables
    that exist; a file deleted under a running worker gets its tables again."""
    path = tmp_path / "c.db"
    OutputCache(path).put("k", {"x": 1}, plan="p", agent="a", cost_s=1.0, run_id="r")
    scripts: list[str] = []
    real = sqlite_store.SqliteFile.transaction

    @contextmanager
    def counting(self: sqlite_store.SqliteFile) -> Iterator[sqlite3.Connection]:
        with real(self) as db:
            scripts.append("open")
            yield db

    monkeypatch.setattr(sqlite_store.SqliteFile, "transaction", counting)
    assert {"x": 1} == OutputCache(path).get("k", "r")
    assert ["open"] == scripts  # the get's own transaction, no table creation
    path.unlink()
    assert MISS is OutputCache(path).get("k", "r")
