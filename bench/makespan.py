"""Makespan: how close the engine's schedule comes to the best one the dependencies allow.

Runs, on a throwaway dev server:
- the seed plan (plans/seed.yaml) with --simulate, time-scaled so it takes a few seconds: each
  built-in role agent takes its estimated duration x the scale;
- seeded random layered DAGs of `simulate` agents lasting 0.2-2 s each (no explicit groups, so
  grouping is derived by the analyser).

For each it prints the makespan the workflow measured against
- the critical-path lower bound: the agent-level longest path (CompiledPlan.agent_level_s: every
  agent starts the moment its own inputs exist, no group barriers); simulated durations are exact,
  so nothing can finish sooner. Goal (issue 3): makespan / lower bound <= 1.10;
- a level-by-level schedule (CompiledPlan.group_by_group_s: each generation of groups waits for
  the slowest group of the one before), what a naive engine would do.

    .venv/bin/python bench/makespan.py [--dags 4] [--layers 4] [--width 4] [--seed 0]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

# runnable as `python bench/makespan.py` from the repository root
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from temporalio.client import Client  # noqa: E402

from bench.harness import DevServer, bench_worker, connect, median  # noqa: E402
from pee.engine.compile.graph import compile_plan  # noqa: E402
from pee.engine.compile.load import load_plan, loads_plan  # noqa: E402
from pee.engine.compiled import CompiledPlan  # noqa: E402
from pee.workflows.plan_workflow import PlanWorkflow  # noqa: E402
from pee.workflows.types import PlanRunInput  # noqa: E402

GOAL = 1.10
RUN_TIMEOUT = timedelta(seconds=300)


def dag_text(
    rng: random.Random, name: str, layers: int, width: int, min_s: float, max_s: float
) -> str:
    """A native plan: `layers` layers of 1..`width` agents; each agent after the first layer
    reads 1-2 outputs of the layer before and sometimes one of an older layer."""
    lines = [
        f"name: {name}",
        "resource_manager:",
        "  resource_pool:",
        "    computational: {total_cpu_units: 10000, total_memory_units: 10000, "
        "concurrent_agent_limit: 1000}",
        "agents:",
    ]
    previous: list[list[str]] = []
    for layer in range(layers):
        names = [f"l{layer}a{i}" for i in range(rng.randint(1, width))]
        for agent in names:
            reads: list[str] = []
            if previous:
                last = previous[-1]
                reads = rng.sample(last, k=min(len(last), rng.randint(1, 2)))
                older = [a for level in previous[:-1] for a in level]
                if older and rng.random() < 0.3:
                    reads.append(rng.choice(older))
            duration = round(rng.uniform(min_s, max_s), 1)
            inputs = f", inputs: [{', '.join(f'{r}.out' for r in reads)}]" if reads else ""
            lines.append(
                f"  {agent}: {{kind: simulate, duration: {duration}s, outputs: [out]"
                f"{inputs}, resource_requirements: {{cpu: 1, memory: 1}}}}"
            )
        previous.append(names)
    return "\n".join(lines) + "\n"


def simulated_seed(plan: CompiledPlan) -> tuple[CompiledPlan, bool]:
    """The seed's role agents, made to take their estimates: by --simulate when the workflow
    supports it, else by turning them into simulate agents of that duration."""
    fields = {f.name for f in dataclasses.fields(PlanRunInput)}
    if "simulate" in fields:
        return plan, True
    agents = [
        dataclasses.replace(a, kind="simulate", settings={"duration": a.estimated_s})
        for a in plan.agents
    ]
    return dataclasses.replace(plan, agents=agents), False


async def run_plan(
    client: Client, task_queue: str, plan: CompiledPlan, **input_fields: Any
) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    report = await client.execute_workflow(
        PlanWorkflow.run,
        PlanRunInput(plan=plan, **input_fields),
        id=f"makespan-{plan.name}-{uuid.uuid4()}",
        task_queue=task_queue,
        execution_timeout=RUN_TIMEOUT,
    )
    return report, time.perf_counter() - started


COLUMNS = (
    "plan",
    "agents",
    "groups",
    "lower_bound_s",
    "level_by_level_s",
    "makespan_s",
    "wall_s",
    "makespan/lower_bound",
    "makespan/level_by_level",
    "parallel_efficiency",
)
FORMAT = "  {:<18} {:>6} {:>6} {:>13} {:>16} {:>10} {:>6} {:>20} {:>23} {:>19}"


def row(
    label: str, plan: CompiledPlan, scale: float, report: dict[str, Any], wall: float
) -> tuple[str, float, float]:
    lower = plan.agent_level_s * scale
    levels = plan.group_by_group_s * scale
    makespan = float(report["makespan_s"])
    efficiency = report.get("parallel_efficiency")
    text = FORMAT.format(
        label,
        len(plan.agents),
        len(plan.groups),
        f"{lower:.2f}",
        f"{levels:.2f}",
        f"{makespan:.2f}",
        f"{wall:.2f}",
        f"{makespan / lower:.3f}",
        f"{makespan / levels:.3f}",
        f"{efficiency:.3f}" if isinstance(efficiency, (int, float)) else "-",
    )
    if report.get("status") not in ("completed", "succeeded"):
        text += f"  status {report.get('status')}"
    return text, makespan / lower, makespan / levels


async def measure(address: str, args: argparse.Namespace) -> None:
    client = await connect(address)
    task_queue = f"bench-makespan-{uuid.uuid4()}"
    to_lower: list[float] = []
    to_levels: list[float] = []
    print(
        "makespan: measured by the workflow, against the agent-level critical path (lower "
        "bound) and a level-by-level schedule"
    )
    print(FORMAT.format(*COLUMNS))
    async with bench_worker(client, task_queue):
        if not args.no_seed:
            seed = compile_plan(load_plan(ROOT / "plans" / "seed.yaml"))
            seed, by_flag = simulated_seed(seed)
            scale = args.seed_seconds / seed.agent_level_s
            extra = {"simulate": True} if by_flag else {}
            report, wall = await run_plan(client, task_queue, seed, time_scale=scale, **extra)
            how = "--simulate" if by_flag else "as simulate agents"
            text, lower, levels = row(f"seed x{scale:.5f}", seed, scale, report, wall)
            print(f"{text}  ({how})")
            to_lower.append(lower)
            to_levels.append(levels)
        rng = random.Random(args.seed)
        for index in range(args.dags):
            text_plan = dag_text(
                rng, f"dag{index}", args.layers, args.width, args.min_duration, args.max_duration
            )
            plan = compile_plan(loads_plan(text_plan, file=f"<dag{index}>"))
            report, wall = await run_plan(client, task_queue, plan, time_scale=1.0)
            text, lower, levels = row(f"random dag {index}", plan, 1.0, report, wall)
            print(text)
            to_lower.append(lower)
            to_levels.append(levels)
    ratio = median(to_lower)
    verdict = "met" if max(to_lower) <= GOAL else "NOT met"
    print(
        f"median makespan/lower_bound: {ratio:.3f} (worst {max(to_lower):.3f}; goal <= {GOAL}: "
        f"{verdict})"
    )
    print(
        f"median makespan/level_by_level: {median(to_levels):.3f} "
        f"(below 1 = faster than running level by level)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dags", type=int, default=4, help="random layered DAGs to run")
    parser.add_argument("--layers", type=int, default=4, help="layers per random DAG")
    parser.add_argument("--width", type=int, default=4, help="most agents in a layer")
    parser.add_argument("--min-duration", type=float, default=0.2, help="shortest agent, s")
    parser.add_argument("--max-duration", type=float, default=2.0, help="longest agent, s")
    parser.add_argument("--seed", type=int, default=0, help="random seed for the DAGs")
    parser.add_argument(
        "--seed-seconds",
        type=float,
        default=4.0,
        help="the seed plan's critical path is scaled to this many seconds",
    )
    parser.add_argument("--no-seed", action="store_true", help="skip the seed plan")
    args = parser.parse_args(argv)
    if args.layers < 1 or args.width < 1 or not 0 < args.min_duration <= args.max_duration:
        parser.error("need --layers >= 1, --width >= 1 and 0 < --min-duration <= --max-duration")
    if args.no_seed and args.dags < 1:
        parser.error("nothing to run: --no-seed with --dags 0")
    with DevServer() as server:
        asyncio.run(measure(server.address, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
