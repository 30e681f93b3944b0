"""Resources: makespan under a constrained pool vs the resource-constrained lower bound.

Runs seeded random layered DAGs of `simulate` agents with mixed CPU/memory needs on a small pool
(throwaway dev server), each twice: with the engine's admission (priority, aging, longest
remaining path) and with a FIFO baseline (first ready, first admitted: PlanRunInput.admission
"fifo"). The lower bound is the largest of
- the critical path (CompiledPlan.agent_level_s: every agent starts when its inputs exist),
- total CPU x time / CPU capacity (total_cpu_units x cpu_oversubscription),
- total memory x time / memory capacity, and total agent time / concurrent_agent_limit;
no schedule beats any of them. Goal (issue 6): makespan / lower bound <= 1.15.

    .venv/bin/python bench/resources.py [--plans 3] [--layers 4] [--width 6] [--seed 0]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

# runnable as `python bench/resources.py` from the repository root
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from temporalio.client import Client  # noqa: E402

from bench.harness import DevServer, bench_worker, connect, median  # noqa: E402
from engine.compiled import CompiledPlan  # noqa: E402
from engine.graph import compile_plan  # noqa: E402
from engine.plan import loads_plan  # noqa: E402
from engine.scheduler import Pool  # noqa: E402
from workflows.plan_workflow import PlanWorkflow  # noqa: E402
from workflows.types import PlanRunInput  # noqa: E402

GOAL = 1.15
RUN_TIMEOUT = timedelta(seconds=300)
CPU_CHOICES = (10, 20, 30, 50, 70)
MEMORY_CHOICES = (10, 20, 40)


def plan_text(rng: random.Random, name: str, layers: int, width: int, min_s: float,
              max_s: float, agents_limit: int) -> str:
    """A native plan: layers of 1..`width` agents, each after the first layer reading 1-2
    outputs of the layer before; mixed cpu/memory needs on a 100/100 pool."""
    lines = [f"name: {name}",
             "resource_manager:",
             "  resource_pool:",
             "    computational: {total_cpu_units: 100, total_memory_units: 100, "
             f"concurrent_agent_limit: {agents_limit}}}",
             "agents:"]
    previous: list[str] = []
    for layer in range(layers):
        names = [f"l{layer}a{i}" for i in range(rng.randint(1, width))]
        for agent in names:
            reads = rng.sample(previous, k=min(len(previous), rng.randint(1, 2))) if previous \
                else []
            inputs = f", inputs: [{', '.join(f'{r}.out' for r in reads)}]" if reads else ""
            lines.append(
                f"  {agent}: {{kind: simulate, duration: {round(rng.uniform(min_s, max_s), 1)}s, "
                f"outputs: [out]{inputs}, resource_requirements: "
                f"{{cpu: {rng.choice(CPU_CHOICES)}, memory: {rng.choice(MEMORY_CHOICES)}}}}}")
        previous = names
    return "\n".join(lines) + "\n"


def lower_bound(plan: CompiledPlan) -> tuple[float, str]:
    """The resource-constrained lower bound (seconds) and which term sets it."""
    pool = Pool.from_resources(plan.resources)
    terms = {
        "critical path": plan.agent_level_s,
        "cpu": sum(a.cpu * a.estimated_s for a in plan.agents) / pool.cpu,
        "memory": sum(a.memory * a.estimated_s for a in plan.agents) / pool.memory,
        "agents": sum(a.estimated_s for a in plan.agents) / pool.max_agents,
    }
    name = max(terms, key=terms.__getitem__)
    return terms[name], name


async def run(client: Client, task_queue: str, plan: CompiledPlan, admission: str
              ) -> dict[str, Any]:
    return await client.execute_workflow(
        PlanWorkflow.run, PlanRunInput(plan=plan, admission=admission),
        id=f"resources-{plan.name}-{admission}-{uuid.uuid4()}", task_queue=task_queue,
        execution_timeout=RUN_TIMEOUT)


FORMAT = "  {:<8} {:>6} {:>13} {:>14} {:>11} {:>15} {:>11} {:>15} {:>9}"


async def measure(address: str, args: argparse.Namespace) -> None:
    client = await connect(address)
    task_queue = f"bench-resources-{uuid.uuid4()}"
    ratios: dict[str, list[float]] = {"engine": [], "fifo": []}
    print("resources: makespan against max(critical path, work / capacity), engine admission "
          "vs FIFO")
    print(FORMAT.format("plan", "agents", "lower_bound_s", "bound_by", "engine_s",
                        "engine/bound", "fifo_s", "fifo/bound", "util_%"))
    rng = random.Random(args.seed)
    async with bench_worker(client, task_queue):
        for index in range(args.plans):
            text = plan_text(rng, f"res{index}", args.layers, args.width, args.min_duration,
                             args.max_duration, args.agents)
            plan = compile_plan(loads_plan(text, file=f"<res{index}>"))
            bound, by = lower_bound(plan)
            # alternate who goes first, so neither always runs on a warmer worker
            order = ["priority", "fifo"] if index % 2 == 0 else ["fifo", "priority"]
            reports = {mode: await run(client, task_queue, plan, mode) for mode in order}
            engine, fifo = reports["priority"], reports["fifo"]
            for label, report in (("engine", engine), ("fifo", fifo)):
                if report["status"] != "completed":
                    print(f"  {plan.name} {label}: status {report['status']}")
                ratios[label].append(float(report["makespan_s"]) / bound)
            print(FORMAT.format(
                plan.name, len(plan.agents), f"{bound:.2f}", by, f"{engine['makespan_s']:.2f}",
                f"{ratios['engine'][-1]:.3f}", f"{fifo['makespan_s']:.2f}",
                f"{ratios['fifo'][-1]:.3f}",
                f"{engine['resources']['utilisation_percentage']:.1f}"))
    for label in ("engine", "fifo"):
        worst = max(ratios[label])
        verdict = "met" if worst <= GOAL else "NOT met"
        print(f"{label} median makespan/lower_bound: {median(ratios[label]):.3f} "
              f"(worst {worst:.3f}; goal <= {GOAL}: {verdict})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=3, help="random plans to run")
    parser.add_argument("--layers", type=int, default=4, help="layers per plan")
    parser.add_argument("--width", type=int, default=6, help="most agents in a layer")
    parser.add_argument("--agents", type=int, default=4, help="concurrent_agent_limit")
    parser.add_argument("--min-duration", type=float, default=0.3, help="shortest agent, s")
    parser.add_argument("--max-duration", type=float, default=1.5, help="longest agent, s")
    parser.add_argument("--seed", type=int, default=0, help="random seed for the plans")
    args = parser.parse_args(argv)
    if (args.plans < 1 or args.layers < 1 or args.width < 1 or args.agents < 1
            or not 0 < args.min_duration <= args.max_duration):
        parser.error("need --plans, --layers, --width, --agents >= 1 and "
                     "0 < --min-duration <= --max-duration")
    with DevServer() as server:
        asyncio.run(measure(server.address, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
