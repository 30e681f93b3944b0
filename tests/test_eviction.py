"""Cache eviction: lru_with_priority_boosting (GreedyDual-Size-Frequency) against plain LRU."""

from __future__ import annotations

import random

from pee.engine.rules.eviction import BoostedCache, LruCache, replay


def test_lru_evicts_the_least_recently_used() -> None:
    """Plain LRU drops whatever was touched longest ago."""
    cache = LruCache(capacity=3)
    for key in "abc":
        cache.put(key, 1, 1.0)
    cache.get("a")
    assert ["b"] == cache.put("d", 1, 1.0)


def test_boosting_keeps_expensive_entries() -> None:
    """An entry that took long to compute outlives cheaper, more recent ones."""
    cache = BoostedCache(capacity=3)
    cache.put("slow_agent", 1, 300.0)
    cache.put("quick1", 1, 1.0)
    cache.put("quick2", 1, 1.0)
    assert ["quick1"] == cache.put("quick3", 1, 1.0)


def test_boosting_keeps_frequently_used_entries() -> None:
    """Equal cost and size: the entry used more often stays."""
    cache = BoostedCache(capacity=2)
    cache.put("popular", 1, 1.0)
    cache.put("once", 1, 1.0)
    for _ in range(3):
        cache.get("popular")
    assert ["once"] == cache.put("new", 1, 1.0)


def test_boosting_prefers_evicting_large_entries() -> None:
    """Equal cost and use: the large entry goes first, it frees the most for the least."""
    cache = BoostedCache(capacity=10)
    cache.put("big", 8, 5.0)
    cache.put("small", 1, 5.0)
    assert ["big"] == cache.put("other", 2, 5.0)


def test_aging_lets_stale_valuable_entries_go() -> None:
    """The clock rises with each eviction, so a once-valuable entry nobody uses ages out."""
    cache = BoostedCache(capacity=2)
    cache.put("old_gold", 1, 5.0)
    evicted = []
    for index in range(50):
        evicted += cache.put(f"k{index}", 1, 1.0)
        cache.get(f"k{index}")
    assert "old_gold" in evicted


def test_a_value_larger_than_the_cache_is_not_stored() -> None:
    """Nothing is evicted for a value that could never fit."""
    cache = LruCache(capacity=5)
    cache.put("a", 2, 1.0)
    assert [] == cache.put("huge", 6, 1.0) and "a" in cache.entries


def recorded_trace(seed: int = 7, length: int = 4000) -> list[tuple[str, int, float]]:
    """A pipeline-like trace: a few expensive agents reused often, many cheap one-offs."""
    rng = random.Random(seed)
    expensive = [(f"agent{i}", rng.randint(2, 6), rng.uniform(60, 600)) for i in range(8)]
    trace = []
    for step in range(length):
        if rng.random() < 0.35:
            trace.append(expensive[rng.randrange(len(expensive))])
        else:
            trace.append((f"render{step % 400}", rng.randint(1, 3), rng.uniform(0.1, 2)))
    return trace


def test_boosting_beats_lru_on_a_recorded_trace() -> None:
    """On the same trace and capacity, priority boosting hits more often than LRU."""
    trace = recorded_trace()
    lru = replay(LruCache(capacity=40), trace)
    boosted = replay(BoostedCache(capacity=40), trace)
    assert boosted > lru
