"""Resources: makespan under a constrained pool vs the resource-constrained lower bound.

Runs seeded random layered DAGs of `simulate` agents with mixed CPU/memory needs on a small pool
(throwaway dev server), each twice: with the engine's admission (priority, aging, longest
remaining path) and with a FIFO baseline (first ready, first admitted: PlanRunInput.admission
"fifo"). The lower bound is bench.bounds.energetic_bound: the largest of the critical path,
total CPU, memory and agent time over capacity (the simple bound, also printed), and the same
work terms over every set of agents that can start no earlier than h and leave a chain of at
least t after them (h + work + t), the big agents alone included (two 70-unit agents on 100 run
one after the other); no schedule beats it (see bench/bounds.py). `sim_s` is the engine's
admission simulated with no overhead (pee.engine.compile.admission_plan.simulate_admission), so the
gap splits into scheduling (sim_s / bound) and engine overhead (engine_s / sim_s).
Goal (issue 6): makespan / lower bound <= 1.15.

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

from bench.bounds import energetic_bound, simple_bound  # noqa: E402
from bench.harness import DevServer, bench_worker, connect, median  # noqa: E402
from pee.engine.compile.admission_plan import simulate_admission  # noqa: E402
from pee.engine.compile.graph import compile_plan  # noqa: E402
from pee.engine.compile.load import loads_plan  # noqa: E402
from pee.engine.compiled import CompiledPlan  # noqa: E402
from pee.workflows.plan_workflow import PlanWorkflow  # noqa: E402
from pee.workflows.types import PlanRunInput  # noqa: E402

GOAL = 1.15
RUN_TIMEOUT = timedelta(seconds=300)
CPU_CHOICES = (10, 20, 30, 50, 70)
MEMORY_CHOICES = (10, 20, 40)


def plan_text(
    rng: random.Random,
    name: str,
    layers: int,
    width: int,
    min_s: float,
    max_s: float,
    agents_limit: int,
) -> str:
    """A native plan: layers of 1..`width` agents, each after the first layer reading 1-2
    outputs of the layer before; mixed cpu/memory needs on a 100/100 pool."""
    lines = [
        f"name: {name}",
        "resource_manager:",
        "  resource_pool:",
        "    computational: {total_cpu_units: 100, total_memory_units: 100, "
        f"concurrent_agent_limit: {agents_limit}}}",
        "agents:",
    ]
    previous: list[str] = []
    for layer in range(layers):
        names = [f"l{layer}a{i}" for i in range(rng.randint(1, width))]
        for agent in names:
            reads = (
                rng.sample(previous, k=min(len(previous), rng.randint(1, 2))) if previous else []
            )
            inputs = f", inputs: [{', '.join(f'{r}.out' for r in reads)}]" if reads else ""
            lines.append(
                f"  {agent}: {{kind: simulate, duration: {round(rng.uniform(min_s, max_s), 1)}s, "
                f"outputs: [out]{inputs}, resource_requirements: "
                f"{{cpu: {rng.choice(CPU_CHOICES)}, memory: {rng.choice(MEMORY_CHOICES)}}}}}"
            )
        previous = names
    return "\n".join(lines) + "\n"


async def run(
    client: Client, task_queue: str, plan: CompiledPlan, admission: str
) -> dict[str, Any]:
    return await client.execute_workflow(
        PlanWorkflow.run,
        PlanRunInput(plan=plan, admission=admission),
        id=f"resources-{plan.name}-{admission}-{uuid.uuid4()}",
        task_queue=task_queue,
        execution_timeout=RUN_TIMEOUT,
    )


FORMAT = "  {:<7} {:>6} {:>8} {:>8} {:<24} {:>6} {:>6} {:>7} {:>12} {:>6} {:>10} {:>6}"


async def measure(address: str, args: argparse.Namespace) -> None:
    client = await connect(address)
    task_queue = f"bench-resources-{uuid.uuid4()}"
    ratios: dict[str, list[float]] = {"engine": [], "fifo": [], "sim": []}
    print(
        "resources: makespan against the resource-constrained lower bound (bench/bounds.py), "
        "engine admission vs FIFO"
    )
    print(
        FORMAT.format(
            "plan",
            "agents",
            "simple_s",
            "bound_s",
            "bound_by",
            "sim_s",
            "engine_s",
            "fifo_s",
            "engine/bound",
            "util_%",
            "fifo/bound",
            "sim/bound",
        )
    )
    rng = random.Random(args.seed)
    async with bench_worker(client, task_queue):
        for index in range(args.plans):
            text = plan_text(
                rng,
                f"res{index}",
                args.layers,
                args.width,
                args.min_duration,
                args.max_duration,
                args.agents,
            )
            plan = compile_plan(loads_plan(text, file=f"<res{index}>"))
            bound, by = energetic_bound(plan)
            simple, _ = simple_bound(plan)
            simulated = simulate_admission(plan)
            ratios["sim"].append(simulated / bound)
            # alternate who goes first, so neither always runs on a warmer worker
            order = ["priority", "fifo"] if index % 2 == 0 else ["fifo", "priority"]
            reports = {mode: await run(client, task_queue, plan, mode) for mode in order}
            engine, fifo = reports["priority"], reports["fifo"]
            for label, report in (("engine", engine), ("fifo", fifo)):
                if report["status"] != "completed":
                    print(f"  {plan.name} {label}: status {report['status']}")
                ratios[label].append(float(report["makespan_s"]) / bound)
            print(
                FORMAT.format(
                    plan.name,
                    len(plan.agents),
                    f"{simple:.2f}",
                    f"{bound:.2f}",
                    by,
                    f"{simulated:.2f}",
                    f"{engine['makespan_s']:.2f}",
                    f"{fifo['makespan_s']:.2f}",
                    f"{ratios['engine'][-1]:.3f}",
                    f"{engine['resources']['utilisation_percentage']:.1f}",
                    f"{ratios['fifo'][-1]:.3f}",
                    f"{ratios['sim'][-1]:.3f}",
                )
            )
    for label in ("engine", "fifo"):
        middle, worst = median(ratios[label]), max(ratios[label])
        print(
            f"{label} median makespan/lower_bound: {middle:.3f} (worst {worst:.3f}); "
            f"goal <= {GOAL}: median {'met' if middle <= GOAL else 'NOT met'}, "
            f"worst {'met' if worst <= GOAL else 'NOT met'}"
        )
    print(
        f"engine admission without overhead (sim) median {median(ratios['sim']):.3f} "
        f"(worst {max(ratios['sim']):.3f})"
    )


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
    if (
        args.plans < 1
        or args.layers < 1
        or args.width < 1
        or args.agents < 1
        or not 0 < args.min_duration <= args.max_duration
    ):
        parser.error(
            "need --plans, --layers, --width, --agents >= 1 and "
            "0 < --min-duration <= --max-duration"
        )
    with DevServer() as server:
        asyncio.run(measure(server.address, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
