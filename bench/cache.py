"""Caching, measured side by side: eviction policies, the rerun of an unchanged plan, lz4.

1. eviction: a recorded access trace through the agent output cache itself (OutputCache on a
   throwaway file: lru_with_priority_boosting, as it ships) and a plain LRU baseline kept here,
   at several capacities: both hit ratios and the compute seconds each saves.
2. rerun: an unchanged plan of N agents (simulate, each working --agent-duration seconds, 5
   layers, opted in to the agent output cache with a TTL) run once cold and then again, on one
   throwaway dev server with a throwaway cache file: both wall times and their ratio (goal:
   the rerun >= 10x faster), and how many agents the rerun served from the cache.
3. lz4: generated BMAD-style documents (the built-in PRD, architecture and brief templates
   rendered from seeded stories) compressed one document at a time as the caches store them:
   compression ratio and MB/s compressing and decompressing.

    .venv/bin/python bench/cache.py [--length 20000] [--seed 7] [--agents 20]
                                    [--agent-duration 1.0] [--reruns 3] [--lz4-mb 8]
                                    [--parts eviction,rerun,lz4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import lz4.frame  # noqa: E402

from pee.activities.output_cache import MISS, OutputCache  # noqa: E402

RERUN_GOAL = 10.0
LAYER_COUNT = 5


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
            steps.append(
                (
                    f"render{int(rng.paretovariate(0.8)) % 500}",
                    rng.randint(1, 3),
                    rng.uniform(0.1, 2),
                )
            )
        else:
            steps.append((f"scan{step}", 1, 0.5))  # one-off values that pollute an LRU
    return steps


# bytes of stored JSON per size unit of the trace: values stay below the compression threshold,
# so the store's sizes (packed bytes) are exactly units x UNIT
UNIT = 100


class Lru:
    """The baseline: plain least-recently-used over the same sizes."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.entries: dict[str, int] = {}  # key -> size, oldest use first
        self.used = 0

    def get(self, key: str) -> bool:
        if key not in self.entries:
            return False
        self.entries[key] = self.entries.pop(key)  # most recently used now
        return True

    def put(self, key: str, size: int, cost: float) -> None:
        if size > self.capacity:
            return
        self.used -= self.entries.pop(key, 0)
        while self.used + size > self.capacity:
            self.used -= self.entries.pop(next(iter(self.entries)))
        self.entries[key] = size
        self.used += size


class Boosted:
    """The agent output cache as it ships, on a throwaway file."""

    def __init__(self, capacity: int, path: Path) -> None:
        self.cache = OutputCache(path, size_limit=capacity * UNIT, threshold=capacity * UNIT + 1)

    def get(self, key: str) -> bool:
        return self.cache.get(key, "bench", now=0.0) is not MISS

    def put(self, key: str, size: int, cost: float) -> None:
        value = "x" * (size * UNIT - 2)  # JSON: the string and its two quotes
        self.cache.put(key, value, plan="bench", agent=key, cost_s=cost, run_id="bench", now=0.0)


def run(cache: Lru | Boosted, steps: list[tuple[str, int, float]]) -> tuple[float, float]:
    saved = 0.0
    hits = 0
    for key, size, cost in steps:
        if cache.get(key):
            hits += 1
            saved += cost
        else:
            cache.put(key, size, cost)
    return hits / max(len(steps), 1), saved


def eviction(length: int, seed: int) -> None:
    steps = trace(seed, length)
    print(f"eviction: trace of {len(steps)} accesses, seed {seed}")
    for capacity in (20, 50, 100, 200):
        lru_ratio, lru_saved = run(Lru(capacity), steps)
        # in memory where the host has it: this part measures the policy, not the disk
        memory = "/dev/shm" if Path("/dev/shm").is_dir() else None
        with tempfile.TemporaryDirectory(dir=memory) as folder:
            gdsf_ratio, gdsf_saved = run(Boosted(capacity, Path(folder) / "cache.db"), steps)
        print(
            f"  capacity={capacity:<4} hit ratio lru={lru_ratio:.3f} boosted={gdsf_ratio:.3f} "
            f"({gdsf_ratio / max(lru_ratio, 1e-9):.2f}x); compute saved lru={lru_saved:,.0f}s "
            f"boosted={gdsf_saved:,.0f}s ({gdsf_saved / max(lru_saved, 1e-9):.2f}x)"
        )


# ---- 2. rerun of an unchanged plan ----------------------------------------------------------


def rerun_plan_text(agents: int, duration_s: float) -> str:
    """N simulate agents in LAYER_COUNT layers; each reads one output of the layer before."""
    width = max(1, -(-agents // LAYER_COUNT))
    names = [f"agent{i:02d}" for i in range(agents)]
    lines = [
        f"name: cache-rerun-{uuid.uuid4().hex[:8]}",
        "caching_system:",
        "  cache_levels:",
        "    agent_output_cache: {ttl: 1h}",
        "agents:",
    ]
    for index, name in enumerate(names):
        upstream = index - width
        inputs = f", inputs: [{names[upstream]}.out]" if upstream >= 0 else ""
        lines.append(
            f"  {name}: {{kind: simulate, duration: {duration_s * 1000:g}ms, "
            f"outputs: [out]{inputs}}}"
        )
    return "\n".join(lines) + "\n"


async def timed_run(client: object, task_queue: str, plan: object) -> tuple[float, dict]:
    from pee.workflows.plan_workflow import PlanWorkflow
    from pee.workflows.types import PlanRunInput

    started = time.perf_counter()
    report = await client.execute_workflow(  # type: ignore[attr-defined]
        PlanWorkflow.run,
        PlanRunInput(plan=plan),
        id=f"bench-cache-{uuid.uuid4()}",
        task_queue=task_queue,
        execution_timeout=timedelta(minutes=10),
    )
    return time.perf_counter() - started, report


async def measure_rerun(address: str, agents: int, duration_s: float, reruns: int) -> None:
    from bench.harness import bench_worker, connect
    from pee.engine.compile.graph import compile_plan
    from pee.engine.compile.load import loads_plan

    plan = compile_plan(loads_plan(rerun_plan_text(agents, duration_s), file="<cache-bench>"))
    client = await connect(address)
    task_queue = f"bench-cache-{uuid.uuid4()}"
    async with bench_worker(client, task_queue):
        first_s, first = await timed_run(client, task_queue, plan)
        again = [await timed_run(client, task_queue, plan) for _ in range(reruns)]
    rerun_s = statistics.median(seconds for seconds, _ in again)
    cached = min(
        sum(1 for entry in report["agents"].values() if entry["cached"]) for _, report in again
    )
    ratio = first_s / rerun_s
    print(
        f"rerun: {agents} agents (simulate, {duration_s:g} s each, {LAYER_COUNT} layers), "
        "agent_output_cache ttl 1h, one throwaway dev server and cache file"
    )
    print(
        f"  first run  {first_s:.3f} s  (makespan {first['makespan_s']:.3f} s, "
        f"cache misses {first['cache']['agent_output']['misses']})"
    )
    print(
        f"  rerun      {rerun_s:.3f} s  median of {reruns} (cached {cached}/{agents} agents, "
        f"hit ratio {again[-1][1]['cache']['agent_output']['hit_ratio']:.3f})"
    )
    verdict = "met" if ratio >= RERUN_GOAL else "NOT met"
    print(f"ratio first/rerun: {ratio:.1f}x (goal >= {RERUN_GOAL:g}x: {verdict})")


def rerun(agents: int, duration_s: float, reruns: int) -> None:
    from bench.harness import DevServer

    with DevServer() as server:
        asyncio.run(measure_rerun(server.address, agents, duration_s, reruns))


# ---- 3. lz4 on BMAD-style documents ---------------------------------------------------------


def bmad_documents(seed: int, total_bytes: int) -> list[bytes]:
    """Rendered built-in BMAD templates (PRD, architecture, brief) as the caches store them
    (canonical JSON of the document), from seeded stories, until ``total_bytes``."""
    from pee.activities.template_backend import BUILTINS, render, variables
    from pee.engine.canonical import canonical_json

    rng = random.Random(seed)
    words = [
        "user",
        "account",
        "order",
        "payment",
        "report",
        "search",
        "dashboard",
        "export",
        "invoice",
        "team",
        "role",
        "permission",
        "audit",
        "notification",
        "schedule",
        "upload",
        "review",
        "approve",
        "cancel",
        "refund",
        "latency",
        "throughput",
        "cache",
        "queue",
        "worker",
        "retry",
        "timeout",
        "barrier",
        "context",
    ]

    def phrase(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    documents: list[bytes] = []
    size = 0
    while size < total_bytes:
        stories = [
            {
                "id": f"S{i}",
                "title": phrase(3),
                "as_a": phrase(1),
                "i_want": phrase(6),
                "so_that": phrase(8),
            }
            for i in range(rng.randint(10, 40))
        ]
        inputs = {
            "project_name": phrase(2),
            "summary": phrase(60),
            "problem": phrase(80),
            "target_users": [phrase(4) for _ in range(6)],
            "technical_constraints": [phrase(7) for _ in range(5)],
            "requirements": [phrase(12) for _ in range(rng.randint(10, 30))],
            "user_stories": stories,
            "user_personas": [{"name": phrase(1), "goal": phrase(6)} for _ in range(4)],
            "system_architecture": phrase(200),
            "technology_stack": [
                {"category": phrase(1), "technology": phrase(2)} for _ in range(8)
            ],
            "api_specifications": [
                f"{rng.choice(['GET', 'POST', 'PUT'])} /{phrase(1)}/{{id}}: {phrase(8)}"
                for _ in range(15)
            ],
            "project_brief": {"title": phrase(5)},
        }
        for template in BUILTINS.values():
            document, _missing = render(template, variables(inputs))
            data = canonical_json(document).encode()
            documents.append(data)
            size += len(data)
    return documents


def lz4_bench(seed: int, megabytes: float) -> None:
    documents = bmad_documents(seed, int(megabytes * 1024 * 1024))
    raw = sum(len(d) for d in documents)
    rounds = 3
    compress_s, decompress_s = [], []
    compressed: list[bytes] = []
    for _ in range(rounds):
        started = time.perf_counter()
        compressed = [lz4.frame.compress(d) for d in documents]
        compress_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        restored = [lz4.frame.decompress(c) for c in compressed]
        decompress_s.append(time.perf_counter() - started)
        assert restored == documents
    packed = sum(len(c) for c in compressed)
    mb = raw / 1024 / 1024
    print(
        f"lz4: {len(documents)} BMAD-style documents (PRD, architecture, brief), "
        f"{mb:.1f} MB of canonical JSON, mean {raw // len(documents):,} bytes, seed {seed}"
    )
    print(f"  compression ratio {raw / packed:.2f}x ({raw:,} -> {packed:,} bytes)")
    print(
        f"  compress {mb / min(compress_s):.0f} MB/s  decompress {mb / min(decompress_s):.0f} "
        f"MB/s (best of {rounds})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=20000, help="eviction trace length")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--agents", type=int, default=20, help="agents in the rerun plan")
    parser.add_argument(
        "--agent-duration",
        type=float,
        default=1.0,
        help="seconds each rerun-plan agent works (default 1)",
    )
    parser.add_argument("--reruns", type=int, default=3, help="reruns measured (median)")
    parser.add_argument("--lz4-mb", type=float, default=8.0, help="MB of documents for lz4")
    parser.add_argument(
        "--parts", default="eviction,rerun,lz4", help="comma-separated: eviction, rerun, lz4"
    )
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in ("eviction", "rerun", "lz4")]
    if unknown:
        parser.error(f"--parts: unknown {unknown}; choose from eviction, rerun, lz4")
    if args.agents < 1 or args.reruns < 1:
        parser.error("--agents and --reruns must be at least 1")
    if "eviction" in parts:
        eviction(args.length, args.seed)
    if "rerun" in parts:
        # a throwaway cache file: the bench never reads or fills the user's .temporal/cache.db
        os.environ["PEE_CACHE_PATH"] = str(
            Path(tempfile.mkdtemp(prefix="bench-cache-")) / "cache.db"
        )
        rerun(args.agents, args.agent_duration, args.reruns)
    if "lz4" in parts:
        lz4_bench(args.seed, args.lz4_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
