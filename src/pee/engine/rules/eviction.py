"""Cache eviction: the seed's ``lru_with_priority_boosting`` next to plain LRU.

Priority boosting is a GreedyDual-Size-Frequency score: an entry is worth keeping in proportion
to how often it was used and how long it took to compute, and in inverse proportion to its size:

    priority = clock + frequency × cost / size

``clock`` rises to the priority of each evicted entry, so entries that stop being used age out
even if they were once valuable. Ties go to the least recently used. Pure and deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Entry:
    key: str
    size: int
    # seconds the value took to compute (the agent's measured duration)
    cost: float
    frequency: int = 1
    priority: float = 0.0
    last_used: int = 0


@dataclass
class LruCache:
    """Plain least-recently-used, the baseline."""

    capacity: int
    entries: dict[str, Entry] = field(default_factory=dict)
    used: int = 0
    tick: int = 0
    hits: int = 0
    misses: int = 0

    def get(self, key: str) -> bool:
        self.tick += 1
        entry = self.entries.get(key)
        if entry is None:
            self.misses += 1
            return False
        self.hits += 1
        entry.frequency += 1
        entry.last_used = self.tick
        self._touched(entry)
        return True

    def put(self, key: str, size: int, cost: float) -> list[str]:
        """Store a value; returns the keys evicted to make room (a value larger than the whole
        cache is not stored)."""
        if size > self.capacity:
            return []
        if key in self.entries:
            self.used -= self.entries.pop(key).size
        self.tick += 1
        entry = Entry(key, size, cost, last_used=self.tick)
        self._admitted(entry)
        evicted: list[str] = []
        while self.used + size > self.capacity:
            victim = self._victim()
            evicted.append(victim.key)
            self._evicted(victim)
            self.used -= self.entries.pop(victim.key).size
        self.entries[key] = entry
        self.used += size
        return evicted

    @property
    def hit_ratio(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    # hooks the boosted policy overrides
    def _touched(self, entry: Entry) -> None:
        pass

    def _admitted(self, entry: Entry) -> None:
        pass

    def _evicted(self, entry: Entry) -> None:
        pass

    def _victim(self) -> Entry:
        return min(self.entries.values(), key=lambda e: e.last_used)


@dataclass
class BoostedCache(LruCache):
    """``lru_with_priority_boosting``: GreedyDual-Size-Frequency, LRU among equals."""

    clock: float = 0.0

    def _score(self, entry: Entry) -> float:
        return self.clock + entry.frequency * max(entry.cost, 1e-6) / max(entry.size, 1)

    def _touched(self, entry: Entry) -> None:
        entry.priority = self._score(entry)

    def _admitted(self, entry: Entry) -> None:
        entry.priority = self._score(entry)

    def _evicted(self, entry: Entry) -> None:
        self.clock = entry.priority

    def _victim(self) -> Entry:
        return min(self.entries.values(), key=lambda e: (e.priority, e.last_used))


def replay(cache: LruCache, trace: list[tuple[str, int, float]]) -> float:
    """Run an access trace of (key, size, cost) through a cache: a miss computes and stores the
    value. Returns the hit ratio."""
    for key, size, cost in trace:
        if not cache.get(key):
            cache.put(key, size, cost)
    return cache.hit_ratio
