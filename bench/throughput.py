"""Throughput: K concurrent runs of a 10-agent no-op plan over W worker processes, engine vs a
hand-written workflow.

One throwaway dev server (in memory, free port) and W worker processes on one task queue, each
hosting PlanWorkflow, the hand-written baseline (bench/handwritten.py) and the run_agent
activity. A round starts K runs of one contender at once and waits for all of them; wall time
is from the first start request to the last result. The contenders alternate round by round
(who goes first alternates too) after one discarded warm-up round each. It prints runs/minute,
agents/second and history events per agent for both, then the ratio of the engine's throughput
to the hand-written one's (goal, issue 9: >= 0.8).

    .venv/bin/python bench/throughput.py [--runs 20] [--workers 2] [--agents 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

# runnable as `python bench/throughput.py` from the repository root
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from temporalio.client import Client  # noqa: E402

from bench.handwritten import HandWrittenInput, HandWrittenResult, HandWrittenWorkflow  # noqa: E402
from bench.harness import DevServer, bench_worker, connect, median  # noqa: E402
from bench.overhead import HEARTBEAT_TIMEOUT_S, RUN_TIMEOUT, TIMEOUT_S, plan_text  # noqa: E402
from pee.activities.types import AgentTask  # noqa: E402
from pee.engine.compile.graph import compile_plan  # noqa: E402
from pee.engine.compile.load import loads_plan  # noqa: E402
from pee.engine.compiled import CompiledPlan  # noqa: E402
from pee.workflows.plan_workflow import PlanWorkflow  # noqa: E402
from pee.workflows.types import PlanRunInput  # noqa: E402

GOAL = 0.8
READY_LINE = "bench worker polling"


async def start_engine(client: Client, task_queue: str, plan: CompiledPlan, tag: str) -> str:
    handle = await client.start_workflow(
        PlanWorkflow.run,
        PlanRunInput(plan=plan, heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S),
        id=f"throughput-engine-{tag}-{uuid.uuid4()}",
        task_queue=task_queue,
        execution_timeout=RUN_TIMEOUT,
    )
    report = await handle.result()
    assert "completed" == report["status"], report["status"]
    return handle.id


async def start_handwritten(client: Client, task_queue: str, plan: CompiledPlan, tag: str) -> str:
    tasks = [AgentTask(agent=agent, group=agent.group, time_scale=1.0) for agent in plan.agents]
    handle = await client.start_workflow(
        HandWrittenWorkflow.run,
        HandWrittenInput(tasks=tasks, timeout_s=TIMEOUT_S, heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S),
        id=f"throughput-hand-{tag}-{uuid.uuid4()}",
        task_queue=task_queue,
        result_type=HandWrittenResult,
        execution_timeout=RUN_TIMEOUT,
    )
    result = await handle.result()
    assert len(result.results) == len(plan.agents)
    return handle.id


CONTENDERS = {"engine": start_engine, "hand": start_handwritten}
LABELS = {"engine": "engine (PlanWorkflow)", "hand": "hand-written workflow"}


async def one_round(
    client: Client, task_queue: str, plan: CompiledPlan, name: str, runs: int, tag: str
) -> tuple[float, list[str]]:
    started = time.perf_counter()
    ids = await asyncio.gather(
        *(CONTENDERS[name](client, task_queue, plan, f"{tag}-{i}") for i in range(runs))
    )
    return time.perf_counter() - started, list(ids)


async def events_per_agent(client: Client, workflow_id: str, agents: int) -> float:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return len(history.events) / agents


async def measure(
    address: str, task_queue: str, plan: CompiledPlan, args: argparse.Namespace
) -> None:
    client = await connect(address)
    walls: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    last: dict[str, str] = {}
    for round_number in range(args.rounds + 1):
        order = ["engine", "hand"] if round_number % 2 == 0 else ["hand", "engine"]
        for name in order:
            wall, ids = await one_round(
                client, task_queue, plan, name, args.runs, f"r{round_number}"
            )
            last[name] = ids[-1]
            if round_number > 0:  # round 0 warms up workers, caches and the server
                walls[name].append(wall)
    agents = len(plan.agents)
    events = {name: await events_per_agent(client, last[name], agents) for name in CONTENDERS}
    print(
        f"throughput: {args.runs} concurrent runs of {agents} no-op agents (simulate, "
        f"duration 0, one parallel group) on {args.workers} worker process(es); "
        f"{args.rounds} rounds alternating after 1 warm-up round each; same server and workers"
    )
    throughput = {}
    for name in CONTENDERS:
        wall = median(walls[name])
        throughput[name] = args.runs / wall
        print(
            f"  {LABELS[name]:<24} runs/min {60 * args.runs / wall:8.1f}  "
            f"agents/s {args.runs * agents / wall:7.1f}  median wall {wall:.3f} s  "
            f"(min {min(walls[name]):.3f}, max {max(walls[name]):.3f})  "
            f"history {events[name]:.1f} events/agent"
        )
    ratio = throughput["engine"] / throughput["hand"]
    verdict = "met" if ratio >= GOAL else "NOT met"
    print(f"ratio engine/hand-written throughput: {ratio:.2f} (goal >= {GOAL}: {verdict})")


def start_workers(
    address: str, task_queue: str, count: int, slots: int
) -> list[subprocess.Popen[str]]:
    processes = []
    for _ in range(count):
        process = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--serve",
                address,
                task_queue,
                "--slots",
                str(slots),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
    for process in processes:
        assert process.stdout is not None
        line = process.stdout.readline()
        if READY_LINE not in line:
            raise SystemExit(f"a bench worker did not start: {line!r}")
    return processes


def stop_workers(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def serve(address: str, task_queue: str, slots: int) -> None:
    """One worker process: both contenders' workflows and the activity, until SIGTERM."""
    import signal

    client = await connect(address)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with bench_worker(client, task_queue, max_concurrent_activities=slots):
        print(READY_LINE, flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="concurrent runs per round (K)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (W)")
    parser.add_argument("--agents", type=int, default=10, help="no-op agents per plan")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per contender")
    parser.add_argument(
        "--slots", type=int, default=200, help="concurrent activities per worker process"
    )
    parser.add_argument(
        "--serve", nargs=2, metavar=("ADDRESS", "TASK_QUEUE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(*args.serve, args.slots))
        return 0
    if min(args.runs, args.workers, args.agents, args.rounds, args.slots) < 1:
        parser.error("--runs, --workers, --agents, --rounds and --slots must be at least 1")
    plan = compile_plan(loads_plan(plan_text(args.agents), file="<throughput>"))
    task_queue = f"bench-throughput-{uuid.uuid4()}"
    with DevServer() as server:
        workers = start_workers(server.address, task_queue, args.workers, args.slots)
        try:
            asyncio.run(measure(server.address, task_queue, plan, args))
        finally:
            stop_workers(workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
