"""The run report's `cache` section: hits, misses and hit ratio per cache level, bytes saved.

Levels (docs/reference/caching.md): agent_output (the workflow's own lookups), template_render and
prefetch (counted on the workers and carried back in each AgentResult.cache), context_snapshot
(a resume that found the earlier run's snapshot is a hit, one that fell back to the context
query a miss; `stored` counts this run's snapshots). `bytes_saved_by_compression` adds up what
lz4 saved on this run's writes to the agent output and context snapshot caches. Pure and
deterministic: counters only grow by what recorded results say.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

LEVELS = ("agent_output", "template_render", "context_snapshot", "prefetch")
# counters each level reports besides hits and misses
EXTRA = {"context_snapshot": ("stored",), "prefetch": ("requests", "prefetched")}


@dataclass
class CacheCounters:
    # level -> counter -> number; only LEVELS are reported
    levels: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, counts: Mapping[str, Mapping[str, int]]) -> None:
        for level, counters in counts.items():
            into = self.levels.setdefault(level, {})
            for name, number in counters.items():
                if isinstance(number, int) and not isinstance(number, bool):
                    into[name] = into.get(name, 0) + number

    def bump(self, level: str, name: str, number: int = 1) -> None:
        self.add({level: {name: number}})

    def report(self) -> dict[str, object]:
        section: dict[str, object] = {}
        saved = 0
        for level in LEVELS:
            counters = self.levels.get(level, {})
            hits, misses = counters.get("hits", 0), counters.get("misses", 0)
            entry: dict[str, int | float] = {
                "hits": hits,
                "misses": misses,
                "hit_ratio": round(hits / max(1, hits + misses), 3),
            }
            for name in EXTRA.get(level, ()):
                entry[name] = counters.get(name, 0)
            if level in ("agent_output", "context_snapshot"):
                entry["bytes_saved"] = counters.get("bytes_saved", 0)
                saved += counters.get("bytes_saved", 0)
            section[level] = entry
        section["bytes_saved_by_compression"] = saved
        return section
