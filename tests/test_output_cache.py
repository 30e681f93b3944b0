"""The agent output cache: lineage-aware keys, session vs cross-run TTL, compression, eviction
by priority boosting, stats and clearing; each on SQLite and on PostgreSQL (the `database`
fixture, tests/pg_support.py), and two processes storing and evicting at once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pee.activities.output_cache import MISS, OutputCache, gdsf_priority
from pee.activities.snapshot_cache import SnapshotCache
from pee.engine.rules.cache_key import cache_key
from pee.stores import sql
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


def test_session_entries_serve_only_their_run(database: Path | str) -> None:
    """TTL session_lifetime: the run that wrote it hits, another run misses."""
    cache = OutputCache(database)
    cache.put("k", {"x": 1}, plan="p", agent="a", cost_s=1.0, run_id="run-1")
    assert {"x": 1} == cache.get("k", "run-1")
    assert MISS is cache.get("k", "run-2")


def test_cross_run_entries_expire(database: Path | str) -> None:
    """A TTL in seconds opts in to reuse by later runs until it expires."""
    cache = OutputCache(database)
    cache.put("k", "doc", plan="p", agent="a", cost_s=1.0, run_id="run-1", ttl_s=60, now=1000)
    assert "doc" == cache.get("k", "run-2", now=1030)
    assert MISS is cache.get("k", "run-2", now=1061)


def test_large_values_are_compressed(database: Path | str) -> None:
    """Above the threshold values are stored lz4-compressed; stats count the bytes saved."""
    cache = OutputCache(database, threshold=1024)
    document = {"markdown": "# PRD\n" + "As a user I want things.\n" * 2000}
    cache.put("k", document, plan="p", agent="pm", cost_s=5.0, run_id="r")
    assert document == cache.get("k", "r")
    stats = cache.stats()
    assert stats.bytes < 5000 and stats.bytes_saved_by_compression > 40_000


def test_eviction_keeps_expensive_outputs(database: Path | str) -> None:
    """Past the size limit, cheap entries go before an expensive one of the same size."""
    cache = OutputCache(database, size_limit=300)
    cache.put("slow", "s" * 90, plan="p", agent="architect", cost_s=600, run_id="r")
    cache.put("quick1", "q" * 90, plan="p", agent="qa", cost_s=1, run_id="r")
    cache.put("quick2", "r" * 90, plan="p", agent="qa", cost_s=1, run_id="r")
    # equal size and cost: the least recently used of the cheap ones goes
    assert ["quick1"] == cache.put("quick3", "t" * 90, plan="p", agent="qa", cost_s=1, run_id="r")
    assert MISS is not cache.get("slow", "r")


def test_stats_and_clear(database: Path | str) -> None:
    """Hits and misses are counted; clear removes by agent, by plan, or everything."""
    cache = OutputCache(database)
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


def starter_cache(env: dict[str, str], *args: str) -> str:
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "starter.py", "cache", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    return done.stdout


def test_cache_commands(tmp_path: Path) -> None:
    """`starter.py cache stats --json` and `cache clear --agent` work on a given file."""
    import json
    import os

    path = tmp_path / "c.db"
    cache = OutputCache(path)
    cache.put("a", 1, plan="p", agent="pm", cost_s=1, run_id="r")
    cache.put("b", 2, plan="p", agent="qa", cost_s=1, run_id="r")
    env = {k: v for k, v in os.environ.items() if k != "PEE_CACHE_URL"}

    def starter(*args: str) -> str:
        return starter_cache(env, *args, "--path", str(path))

    assert 2 == json.loads(starter("stats", "--json"))["entries"]
    assert "removed 1 entry of agent pm" in starter("clear", "--agent", "pm")
    assert 1 == json.loads(starter("stats", "--json"))["entries"]
    SnapshotCache(path).put("g#h", {"v": 1}, workflow_id="w", run_id="r", plan="p", group_id="g")
    assert 1 == json.loads(starter("stats", "--json"))["context_snapshots"]["entries"]
    assert "removed 1 context snapshot" in starter("clear", "--plan", "p")
    assert 0 == json.loads(starter("stats", "--json"))["context_snapshots"]["entries"]
    assert f"store:             {path}" in starter("stats")


def test_cache_commands_on_postgresql_name_the_store_without_its_password(pg_url: str) -> None:
    """With PEE_CACHE_URL set, `cache stats` and `cache clear` read and clear that database and
    say which one it is, the password masked."""
    import json
    import os

    from tests.pg_support import PASSWORD

    cache = OutputCache(pg_url)
    cache.put("a", 1, plan="p", agent="pm", cost_s=1, run_id="r")
    cache.put("b", 2, plan="q", agent="qa", cost_s=1, run_id="r")
    SnapshotCache(pg_url).put("g#h", {"v": 1}, workflow_id="w", run_id="r", plan="p", group_id="g")
    env = {**os.environ, "PEE_CACHE_URL": pg_url}
    stats = json.loads(starter_cache(env, "stats", "--json"))
    assert (2, 1) == (stats["entries"], stats["context_snapshots"]["entries"])
    masked = pg_url.replace(PASSWORD, "***")
    assert masked == stats["store"]
    text = starter_cache(env, "stats")
    cleared = starter_cache(env, "clear", "--plan", "p")
    assert f"store:             {masked}" in text
    assert "removed 1 entry of plan p" in cleared and "removed 1 context snapshot" in cleared
    assert PASSWORD not in text + cleared + json.dumps(stats)
    assert 1 == json.loads(starter_cache(env, "stats", "--json"))["entries"]


def test_a_bad_cache_url_is_a_clear_error(tmp_path: Path) -> None:
    """PEE_CACHE_URL that is not a database URL: the command says which setting and shows an
    example, and exits non-zero."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PEE_CACHE_URL": "mysql://db/pee"}
    done = subprocess.run(
        [sys.executable, "starter.py", "cache", "stats"],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert 0 != done.returncode
    assert "PEE_CACHE_URL" in done.stderr and "postgresql://" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


# ---- eviction (lru_with_priority_boosting) against the real store ---------------------------

UNIT = 100  # bytes of stored JSON per size unit; no compression below the default threshold


def store(cache: OutputCache, key: str, units: int, cost_s: float) -> list[str]:
    """A value whose stored JSON is exactly ``units`` × UNIT bytes (a string and its quotes)."""
    return cache.put(key, "x" * (units * UNIT - 2), plan="p", agent="a", cost_s=cost_s, run_id="r")


def test_the_priority_formula() -> None:
    """clock + frequency × cost / size, finite for a zero cost or size."""
    assert 10.0 + 3 * 5.0 / 2 == gdsf_priority(10.0, 3, 5.0, 2)
    assert 1e-6 == gdsf_priority(0.0, 1, 0.0, 0)


def test_boosting_keeps_frequently_used_entries(database: Path | str) -> None:
    """Equal cost and size: the entry used more often stays."""
    cache = OutputCache(database, size_limit=2 * UNIT)
    store(cache, "popular", 1, 1.0)
    store(cache, "once", 1, 1.0)
    for _ in range(3):
        assert MISS is not cache.get("popular", "r")
    assert ["once"] == store(cache, "new", 1, 1.0)


def test_boosting_prefers_evicting_large_entries(database: Path | str) -> None:
    """Equal cost and use: the large entry goes first, it frees the most for the least."""
    cache = OutputCache(database, size_limit=10 * UNIT)
    store(cache, "big", 8, 5.0)
    store(cache, "small", 1, 5.0)
    assert ["big"] == store(cache, "other", 2, 5.0)


def test_aging_lets_stale_valuable_entries_go(database: Path | str) -> None:
    """The clock rises with each eviction, so a once-valuable entry nobody uses ages out."""
    cache = OutputCache(database, size_limit=2 * UNIT)
    store(cache, "old_gold", 1, 5.0)
    evicted: list[str] = []
    for index in range(50):
        evicted += store(cache, f"k{index}", 1, 1.0)
        cache.get(f"k{index}", "r")
    assert "old_gold" in evicted


def test_a_value_larger_than_the_cache_is_not_stored(database: Path | str) -> None:
    """Nothing is evicted for a value that could never fit."""
    cache = OutputCache(database, size_limit=5 * UNIT)
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
    opened: list[str] = []
    real = sql.SqliteDatabase.transaction

    @contextmanager
    def counting(self: sql.SqliteDatabase, lock: str | None = None) -> Iterator[sql.Cursor]:
        with real(self, lock) as db:
            opened.append("open")
            yield db

    monkeypatch.setattr(sql.SqliteDatabase, "transaction", counting)
    assert {"x": 1} == OutputCache(path).get("k", "r")
    assert ["open"] == opened  # the get's own transaction, no table creation
    path.unlink()
    assert MISS is OutputCache(path).get("k", "r")


# ---- two processes at once ------------------------------------------------------------------

WORKER = """
import sys
from pee.activities.output_cache import MISS, OutputCache
target, name, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
cache = OutputCache(target, size_limit=20 * 100)
gets = 0
for n in range(rounds):
    cache.put(f"{name}-{n}", "x" * 98, plan="p", agent=name, cost_s=1.0, run_id="r")
    for key in (f"{name}-{n}", f"{name}-{n - 1}", "shared"):
        cache.get(key, "r")
        gets += 1
    if n % 5 == 0:
        cache.put("shared", "s" * 98, plan="p", agent="both", cost_s=9.0, run_id="r")
print(gets)
"""


def test_two_processes_storing_and_evicting_at_once_lose_no_count(database: Path | str) -> None:
    """Two worker processes put, hit and evict in the same store at the same time: every
    lookup is counted (hits + misses = lookups made: no lost increment), the entries stay within
    the size limit, and neither process fails on the other's lock."""
    import subprocess
    import sys

    OutputCache(database)  # the schema exists before both start
    rounds = 40
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(database), name, str(rounds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("one", "two")
    ]
    lookups = 0
    for worker in workers:
        out, err = worker.communicate(timeout=240)
        assert 0 == worker.returncode, err
        lookups += int(out)
    stats = OutputCache(database).stats()
    assert lookups == stats.hits + stats.misses
    assert stats.hits > 0 and stats.misses > 0
    assert stats.bytes <= 20 * 100
