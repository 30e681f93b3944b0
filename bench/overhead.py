"""Engine overhead: N no-op agents as one parallel group, engine vs a hand-written workflow.

The engine side is a native plan of N `simulate` agents with duration 0 in one explicit parallel
group, loaded and compiled like any plan (pee.engine.compile.load.loads_plan +
pee.engine.compile.graph.compile_plan) and run by PlanWorkflow. The baseline
(bench/handwritten.py NoopGatherWorkflow) gathers N activities that do nothing (`noop_activity`,
not the engine's run_agent): what a person would write by hand. Same dev server, same worker;
the two alternate round by round (the first round of each is a discarded warm-up). Wall time is
from the client's start request to the result. The goal (issue 17) is engine/hand-written <= 1.15
at 20 and at 200 agents; several --agents sizes run one after another on the same server.
`--run-agent` adds a third contender, bench/handwritten.py HandWrittenWorkflow: a hand-written
gather of the engine's own `run_agent` with the engine's task, result and activity options,
which splits the gap into what the agent's activity costs and what the engine's workflow adds.

    .venv/bin/python bench/overhead.py [--agents 20 [200]] [--rounds 20] [--run-agent]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import importlib.util
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

# runnable as `python bench/overhead.py` from the repository root
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.api.history.v1 import HistoryEvent  # noqa: E402
from temporalio.client import Client, WorkflowHistory  # noqa: E402
from temporalio.worker import Replayer  # noqa: E402

from bench.handwritten import (  # noqa: E402
    HandWrittenInput,
    HandWrittenWorkflow,
    NoopGatherInput,
    NoopGatherWorkflow,
)
from bench.harness import DevServer, bench_worker, connect, median  # noqa: E402
from pee.activities.types import AgentTask  # noqa: E402
from pee.engine.compile.graph import compile_plan  # noqa: E402
from pee.engine.compile.load import loads_plan  # noqa: E402
from pee.engine.compiled import CompiledPlan  # noqa: E402
from pee.runtime.codec import data_converter  # noqa: E402
from pee.runtime.sandbox_runner import LeanSandboxedWorkflowRunner  # noqa: E402
from pee.workflows import plan_workflow  # noqa: E402
from pee.workflows.plan_workflow import PlanWorkflow  # noqa: E402
from pee.workflows.types import PlanRunInput  # noqa: E402

GOAL = 1.15
TIMEOUT_S = 60.0
HEARTBEAT_TIMEOUT_S = 10.0
# a broken workflow retries its task forever: fail the bench instead of hanging
RUN_TIMEOUT = timedelta(seconds=120)


def plan_text(agents: int) -> str:
    names = [f"noop{i:02d}" for i in range(1, agents + 1)]
    lines = [
        "name: overhead",
        # room for every agent at once: admission control must not be what is measured
        "resource_manager:",
        "  resource_pool:",
        "    computational: {total_cpu_units: 10000, total_memory_units: 10000, "
        f"concurrent_agent_limit: {agents}}}",
        "agents:",
        *[
            f"  {name}: {{kind: simulate, duration: 0s, outputs: [out], timeout: {TIMEOUT_S:g}s, "
            "resource_requirements: {cpu: 1, memory: 1}}"
            for name in names
        ],
        "groups:",
        f"  all: {{agents: [{', '.join(names)}], parallel: true, timeout: {TIMEOUT_S:g}s}}",
    ]
    return "\n".join(lines) + "\n"


async def run_engine(client: Client, task_queue: str, plan: CompiledPlan) -> tuple[float, str]:
    workflow_id = f"overhead-engine-{uuid.uuid4()}"
    started = time.perf_counter()
    await client.execute_workflow(
        PlanWorkflow.run,
        PlanRunInput(plan=plan, heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S),
        id=workflow_id,
        task_queue=task_queue,
        execution_timeout=RUN_TIMEOUT,
    )
    return time.perf_counter() - started, workflow_id


async def run_handwritten(client: Client, task_queue: str, plan: CompiledPlan) -> tuple[float, str]:
    workflow_id = f"overhead-hand-{uuid.uuid4()}"
    started = time.perf_counter()
    result = await client.execute_workflow(
        NoopGatherWorkflow.run,
        NoopGatherInput([agent.id for agent in plan.agents], timeout_s=TIMEOUT_S),
        id=workflow_id,
        task_queue=task_queue,
        execution_timeout=RUN_TIMEOUT,
    )
    assert len(result) == len(plan.agents)
    return time.perf_counter() - started, workflow_id


async def run_agent_gather(
    client: Client, task_queue: str, plan: CompiledPlan
) -> tuple[float, str]:
    """The plan's agents as engine tasks, gathered by a hand-written workflow with the engine's
    activity options: the agent's activity without the engine around it."""
    workflow_id = f"overhead-run-agent-{uuid.uuid4()}"
    tasks = [
        AgentTask(agent=agent, group=agent.group, time_scale=1.0, progress_interval_s=0.0)
        for agent in plan.agents
    ]
    started = time.perf_counter()
    await client.execute_workflow(
        HandWrittenWorkflow.run,
        HandWrittenInput(
            tasks=tasks,
            timeout_s=TIMEOUT_S,
            heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S,
            max_attempts=1,
        ),
        id=workflow_id,
        task_queue=task_queue,
        execution_timeout=RUN_TIMEOUT,
    )
    return time.perf_counter() - started, workflow_id


class Phases(NamedTuple):
    """Where one run's time went, by the server's event times (seconds)."""

    # start -> the first activity scheduled: the first workflow task, on the worker and back
    first_task_s: float
    # -> the last activity completed: the agents, and the workflow tasks taking their results
    agents_s: float
    # -> the run completed: the last workflow task (the engine's report)
    last_task_s: float


def phases(events: Sequence[HistoryEvent]) -> Phases | None:
    """The run's three phases, or None for a run that scheduled or completed no activity."""

    def at(event: HistoryEvent) -> float:
        return event.event_time.ToNanoseconds() / 1e9

    scheduled = [
        at(e) for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    completed = [
        at(e) for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
    ]
    if not scheduled or not completed:
        return None
    first, last = min(scheduled), max(completed)
    return Phases(first - at(events[0]), last - first, at(events[-1]) - last)


async def fetch_histories(client: Client, workflow_ids: Sequence[str]) -> list[WorkflowHistory]:
    return [await client.get_workflow_handle(w).fetch_history() for w in workflow_ids]


def phase_line(label: str, runs: Sequence[Phases]) -> str:
    parts = [
        f"first workflow task {median([p.first_task_s for p in runs]) * 1000:.1f} ms",
        f"agents {median([p.agents_s for p in runs]) * 1000:.1f} ms",
        f"last workflow task {median([p.last_task_s for p in runs]) * 1000:.1f} ms",
    ]
    return f"  {label:<24} " + ", ".join(parts)


class TimedExecutor(concurrent.futures.ThreadPoolExecutor):
    """One workflow-task thread that adds up its own CPU time per call (`cpu_s`): the
    workflow code's CPU, apart from the event loop, the activities and other processes."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.cpu_s = 0.0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        return super().submit(self._timed, fn, *args, **kwargs)

    def _timed(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            self.cpu_s += time.thread_time() - started


async def replay_cpu(histories: dict[str, WorkflowHistory], rounds: int) -> dict[str, float]:
    """Median workflow-thread CPU seconds of replaying each history `rounds` times (after one
    warm-up), alternating: the workflow code's own cost, which other jobs on the machine
    disturb far less than a live run's (same sandbox runner and converter as the worker)."""
    executor = TimedExecutor()
    replayer = Replayer(
        workflows=[PlanWorkflow, NoopGatherWorkflow, HandWrittenWorkflow],
        data_converter=data_converter(),
        workflow_runner=LeanSandboxedWorkflowRunner(),
        workflow_task_executor=executor,
    )
    cpu: dict[str, list[float]] = {name: [] for name in histories}
    try:
        for round_number in range(rounds + 1):
            for name, history in histories.items():
                executor.cpu_s = 0.0
                await replayer.replay_workflow(history)
                if round_number > 0:
                    cpu[name].append(executor.cpu_s)
    finally:
        executor.shutdown()
    return {name: median(values) for name, values in cpu.items()}


async def measure(
    address: str,
    plan: CompiledPlan,
    rounds: int,
    server_cpu: Callable[[], float],
    run_agent: bool = False,
) -> float:
    client = await connect(address)
    task_queue = f"bench-overhead-{uuid.uuid4()}"
    runners = {"engine": run_engine, "hand": run_handwritten}
    if run_agent:
        runners["run_agent"] = run_agent_gather
    times: dict[str, list[float]] = {name: [] for name in runners}
    # this process's CPU time (the worker's, its core threads included; the server is another
    # process): what the gap is made of, and far steadier than wall time on a loaded machine
    cpu: dict[str, list[float]] = {name: [] for name in runners}
    # the server's CPU per run (another process, the other core's worth of each run's work)
    server: dict[str, list[float]] = {name: [] for name in runners}
    # every measured run's id, for where its time went (its history's event times)
    measured: dict[str, list[str]] = {name: [] for name in runners}
    async with bench_worker(client, task_queue):
        for round_number in range(rounds + 1):
            # alternate who goes first, so none always runs on a warmer server
            order = list(runners) if round_number % 2 == 0 else list(reversed(runners))
            for name in order:
                cpu_started, server_started = time.process_time(), server_cpu()
                seconds, workflow_id = await runners[name](client, task_queue, plan)
                cpu_s = time.process_time() - cpu_started
                if round_number > 0:
                    times[name].append(seconds)
                    cpu[name].append(cpu_s)
                    server[name].append(server_cpu() - server_started)
                    measured[name].append(workflow_id)
        # every measured run's history, fetched once: the phases of all, the replay of the last
        fetched = {name: await fetch_histories(client, ids) for name, ids in measured.items()}
    histories = {name: found[-1] for name, found in fetched.items()}
    split = {
        name: [p for p in map(phases, (h.events for h in found)) if p is not None]
        for name, found in fetched.items()
    }
    events = {name: len(history.events) for name, history in histories.items()}
    replayed = await replay_cpu({name: histories[name] for name in ("engine", "hand")}, rounds)
    engine, hand = median(times["engine"]), median(times["hand"])
    ratio = engine / hand
    agents = len(plan.agents)
    print(
        f"overhead: {agents} no-op agents (simulate, duration 0) in one parallel group; "
        f"{rounds} rounds alternating, after 1 warm-up round each; same server and worker"
    )
    for name, label in (("engine", "engine (PlanWorkflow)"), ("hand", "hand-written workflow")):
        print(
            f"  {label:<24} median {median(times[name]):.3f} s  "
            f"min {min(times[name]):.3f} s  max {max(times[name]):.3f} s  "
            f"history {events[name]} events"
        )
    if run_agent:
        gather = median(times["run_agent"])
        print(
            f"  {'hand-written run_agent':<24} median {gather:.3f} s  "
            f"min {min(times['run_agent']):.3f} s  max {max(times['run_agent']):.3f} s  "
            f"history {events['run_agent']} events"
        )
        print(
            f"the agent's activity: run_agent gather/hand-written {gather / hand:.2f}; "
            f"what the engine adds: engine/run_agent gather {engine / gather:.2f}"
        )
    # the engine's own work shows in its first and last workflow tasks; the agents' phase is
    # paced by the server and the activities, which both contenders share
    print("where each run's time goes (server event times, median):")
    labels = {"engine": "engine", "hand": "hand-written", "run_agent": "hand-written run_agent"}
    for name, runs in split.items():
        if runs:
            print(phase_line(labels[name], runs))
    verdict = "met" if ratio <= GOAL else "NOT met"
    engine_cpu, hand_cpu = median(cpu["engine"]), median(cpu["hand"])
    print(
        f"worker CPU per run (median): engine {engine_cpu * 1000:.0f} ms, hand-written "
        f"{hand_cpu * 1000:.0f} ms, ratio {engine_cpu / hand_cpu:.2f}"
    )
    engine_server, hand_server = median(server["engine"]), median(server["hand"])
    print(
        f"server CPU per run (median): engine {engine_server * 1000:.0f} ms, hand-written "
        f"{hand_server * 1000:.0f} ms; worker + server ratio "
        f"{(engine_cpu + engine_server) / (hand_cpu + hand_server):.2f}"
    )
    print(
        f"workflow code, replays of the last run of each (workflow thread CPU, median): engine "
        f"{replayed['engine'] * 1000:.1f} ms, hand-written {replayed['hand'] * 1000:.1f} ms, "
        f"ratio {replayed['engine'] / replayed['hand']:.2f}"
    )
    # each round's two runs ran back to back, so a swing of the machine's load between rounds
    # moves both; the spread of these says how far to trust the ratio of medians below
    paired = sorted(e / h for e, h in zip(times["engine"], times["hand"], strict=True))
    low, high = quartiles(paired)
    print(
        f"ratio of each round's pair: median {median(paired):.2f}, quartiles {low:.2f}-{high:.2f}"
    )
    print(f"ratio engine/hand-written: {ratio:.2f} (goal <= {GOAL}: {verdict})", flush=True)
    return ratio


def quartiles(values: list[float]) -> tuple[float, float]:
    """The first and third quartiles of sorted ``values`` (both the value itself for one)."""
    if len(values) < 2:
        return values[0], values[0]
    low, _, high = statistics.quantiles(values, n=4)
    return low, high


def bytecode_cached(source: str) -> bool:
    """Whether `source` has a current bytecode cache, so the worker's first run reads it instead
    of compiling the source (later runs reuse the code: pee.runtime.sandbox_code_cache)."""
    cached = importlib.util.cache_from_source(source)
    try:
        with open(cached, "rb") as file:
            header = file.read(16)
    except OSError:
        return False
    # the header's source mtime (bytes 8-12) must match, as the import system checks
    mtime = int(os.stat(source).st_mtime) & 0xFFFFFFFF
    return len(header) == 16 and int.from_bytes(header[8:12], "little") == mtime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--agents", type=int, nargs="+", default=[20], help="no-op agents in the group"
    )
    # 20: at 10 the ratio of medians moved by ~0.1 between runs of the same code (bench/README)
    parser.add_argument("--rounds", type=int, default=20, help="measured rounds per contender")
    parser.add_argument(
        "--run-agent",
        action="store_true",
        help="also time a hand-written gather of the engine's run_agent (the activity's share)",
    )
    args = parser.parse_args(argv)
    if min(args.agents) < 1 or args.rounds < 1:
        parser.error("--agents and --rounds must be at least 1")
    source = plan_workflow.__file__
    print(
        f"bytecode cache of {Path(source).name}: "
        + (
            "yes (as a pip-installed worker has)"
            if bytecode_cached(source)
            else "no (compiled once per worker process: pee.runtime.sandbox_code_cache)"
        )
    )
    ratios = []
    with DevServer() as server:
        for agents in args.agents:
            plan = compile_plan(loads_plan(plan_text(agents), file="<overhead>"))
            ratio = asyncio.run(
                measure(server.address, plan, args.rounds, server.cpu_s, args.run_agent)
            )
            ratios.append((agents, ratio))
    if len(ratios) > 1:
        print("ratios: " + ", ".join(f"{agents} agents {ratio:.2f}" for agents, ratio in ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
