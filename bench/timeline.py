"""Where a batch run's wall time goes: one `scale.py` run in which the worker records every
agent's real start and end and the child that ran it, set against when the plan workflow
started the agent and when it learned of its end (the report's times), overall and along the
run's realised critical chain of groups.

    .venv/bin/python bench/timeline.py [--agents 2000] [--chunk 100] [--window 16]
                                       [--local 10] [--split 10] [--time-scale 0.005]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from temporalio import activity  # noqa: E402

from bench.harness import DevServer, connect  # noqa: E402
from bench.scale import layered_plan, run_plan  # noqa: E402
from pee.activities import agents as agent_activities  # noqa: E402
from pee.engine.compiled import CompiledPlan  # noqa: E402
from pee.workflows.types import (  # noqa: E402
    LOCAL_AGENT_S,
    SPLIT_GAIN_S,
    BatchSpec,
    LedgerSpec,
)


@dataclass
class Seen:
    """What the worker saw of each agent's last attempt (epoch seconds)."""

    real: dict[str, tuple[float, float]] = field(default_factory=dict)
    # agent id -> the workflow that ran it (its batch child, for a local activity)
    chunk: dict[str, str] = field(default_factory=dict)


def record_simulate(seen: Seen) -> None:
    """Wrap the `simulate` backend so each attempt's start, end and workflow are recorded."""
    inner: Callable[..., Awaitable[Any]] = agent_activities.BACKENDS["simulate"]

    async def timed(task: Any, progress: Any, scale: float) -> Any:
        started = time.time()
        seen.chunk[task.agent.id] = activity.info().workflow_id or ""
        try:
            return await inner(task, progress, scale)
        finally:
            seen.real[task.agent.id] = (started, time.time())

    agent_activities.BACKENDS["simulate"] = timed


def _epoch(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text).timestamp()


def spread(name: str, values: list[float]) -> str:
    if not values:
        return f"{name}: none"
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return (
        f"{name}: mean {statistics.fmean(ordered):.3f} median {at(0.5):.3f} "
        f"p90 {at(0.9):.3f} max {ordered[-1]:.3f} (n {len(ordered)})"
    )


def analyse(plan: CompiledPlan, report: dict[str, Any], seen: Seen, t0: float) -> list[str]:
    groups = {g.id: g for g in plan.groups}
    g_start = {g: _epoch(report["groups"][g]["started_at"]) for g in groups}
    g_end = {g: _epoch(report["groups"][g]["finished_at"]) for g in groups}
    started: dict[str, float] = {}
    learned: dict[str, float] = {}
    for agent_id, row in report["agents"].items():
        s, f = _epoch(row["started_at"]), _epoch(row["finished_at"])
        if s is not None and f is not None and agent_id in seen.real:
            started[agent_id], learned[agent_id] = s, f
    real = seen.real
    chunks: dict[str, list[str]] = {}
    for agent_id in started:
        chunks.setdefault(seen.chunk[agent_id], []).append(agent_id)
    last_end = {c: max(real[a][1] for a in members) for c, members in chunks.items()}
    lines = [
        spread("chunk size", [float(len(m)) for m in chunks.values()]),
        spread("started -> real start (dispatch)", [real[a][0] - started[a] for a in started]),
        spread("real run", [real[a][1] - real[a][0] for a in started]),
        spread(
            "real end -> chunk's last real end (mates)",
            [last_end[seen.chunk[a]] - real[a][1] for a in started],
        ),
        spread(
            "chunk's last real end -> learned (report)",
            [learned[a] - last_end[seen.chunk[a]] for a in started],
        ),
    ]
    # the realised critical chain: from the group that ended last, back through the
    # dependency that ended last; per group, the agent it waited for (learned last)
    gid: str | None = max((g for g in groups if g_end[g] is not None), key=lambda g: g_end[g] or 0)
    chain: list[str] = []
    while gid is not None:
        chain.append(gid)
        deps = [d for d in groups[gid].depends_on if g_end[d] is not None]
        gid = max(deps, key=lambda d: g_end[d] or 0) if deps else None
    parts = dict.fromkeys(("ready", "dispatch", "run", "mates", "report"), 0.0)
    before = t0
    for gid in reversed(chain):
        start, end = g_start[gid] or before, g_end[gid] or before
        parts["ready"] += start - before
        mine = [a for a in groups[gid].agents if a in learned]
        if mine:
            a = max(mine, key=lambda x: learned[x])
            parts["dispatch"] += real[a][0] - start
            parts["run"] += real[a][1] - real[a][0]
            parts["mates"] += last_end[seen.chunk[a]] - real[a][1]
            parts["report"] += end - last_end[seen.chunk[a]]
        before = end
    span = before - t0
    lines.append(
        f"critical chain: {len(chain)} groups, {span:.1f} s: "
        + ", ".join(f"{k} {v:.1f} s ({100 * v / span:.0f}%)" for k, v in parts.items())
    )
    return lines


async def measure(args: argparse.Namespace) -> list[str]:
    seen = Seen()
    record_simulate(seen)
    batch = BatchSpec(
        args.chunk, args.window, local_s=max(0.0, args.local), split_gain_s=max(0.0, args.split)
    )
    with DevServer() as server:
        client = await connect(server.address)
        plan = layered_plan(args.agents)
        t0 = time.time()
        report, _workflow_id, wall = await run_plan(
            client, plan, time_scale=args.time_scale, batch=batch, ledger=LedgerSpec()
        )
    ok = sum(1 for a in report["agents"].values() if a["status"] == "succeeded")
    head = (
        f"agents {args.agents} local {args.local:g} s split {args.split:g} s "
        f"succeeded {ok} wall {wall:.1f} s"
    )
    return [head, *analyse(plan, report, seen, t0)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--chunk", type=int, default=BatchSpec.chunk_size)
    parser.add_argument("--window", type=int, default=BatchSpec.window)
    parser.add_argument("--local", type=float, default=LOCAL_AGENT_S)
    parser.add_argument("--split", type=float, default=SPLIT_GAIN_S)
    parser.add_argument("--time-scale", type=float, default=0.005)
    for text in asyncio.run(measure(parser.parse_args(argv))):
        print(text, flush=True)
    return 0


if __name__ == "__main__":
    from pee.runtime.exit import run_entry

    run_entry(lambda: main())
