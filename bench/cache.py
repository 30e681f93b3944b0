"""Cache eviction on recorded access traces: lru_with_priority_boosting vs plain LRU.

Prints, for several cache capacities, both hit ratios and the compute seconds each policy saves
(hits weighted by the agent's cost), measured side by side on the same trace.

    .venv/bin/python bench/cache.py [--length 20000] [--seed 7]

(The rerun-speed and lz4 parts of the caching issue come with the agent output cache.)
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.eviction import BoostedCache, LruCache  # noqa: E402


def trace(seed: int, length: int) -> list[tuple[str, int, float]]:
    """Pipeline-like: a few expensive agent outputs reused often, many cheap renders, a scan."""
    rng = random.Random(seed)
    expensive = [(f"agent{i}", rng.randint(2, 6), rng.uniform(60, 600)) for i in range(12)]
    steps: list[tuple[str, int, float]] = []
    for step in range(length):
        roll = rng.random()
        if roll < 0.3:
            steps.append(expensive[int(rng.paretovariate(1.2)) % len(expensive)])
        elif roll < 0.9:
            steps.append((f"render{int(rng.paretovariate(0.8)) % 500}", rng.randint(1, 3),
                          rng.uniform(0.1, 2)))
        else:
            steps.append((f"scan{step}", 1, 0.5))  # one-off values that pollute an LRU
    return steps


def run(cache: LruCache, steps: list[tuple[str, int, float]]) -> tuple[float, float]:
    saved = 0.0
    for key, size, cost in steps:
        if cache.get(key):
            saved += cost
        else:
            cache.put(key, size, cost)
    return cache.hit_ratio, saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=20000, help="trace length")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    steps = trace(args.seed, args.length)
    print(f"trace: {len(steps)} accesses, seed {args.seed}")
    for capacity in (20, 50, 100, 200):
        lru_ratio, lru_saved = run(LruCache(capacity), steps)
        gdsf_ratio, gdsf_saved = run(BoostedCache(capacity), steps)
        print(f"capacity={capacity:<4} hit ratio lru={lru_ratio:.3f} boosted={gdsf_ratio:.3f} "
              f"({gdsf_ratio / max(lru_ratio, 1e-9):.2f}x); compute saved lru={lru_saved:,.0f}s "
              f"boosted={gdsf_saved:,.0f}s ({gdsf_saved / max(lru_saved, 1e-9):.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
