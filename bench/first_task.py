"""First workflow task: the CPU a PlanWorkflow run's first activation takes, and a continuation's,
for plans of N agents (bench/planner.py's layered random DAG, batch mode and the run ledger, as
bench/scale.py runs them), measured in isolation: no server, no other workflow.

A history that ends where the first workflow task starts (the start event with the encoded run
input, the task scheduled and started) is replayed: the replay runs exactly that task, input
decoding included, under the worker's sandbox runner, and the workflow thread's CPU time for
the activation is taken (time.thread_time around it), and apart from it the CPU the payload
codec spent on the worker's event loop decoding the run input ahead of the task
(pee.runtime.predecode: outside the deadlock detector's window). The continuation's input
carries a run whose first half of groups ended (their agents' rows in the run store, as a
ledger run hands them on). The SDK's deadlock detector fails a task at 2 s of wall time; this
prints CPU, which load on the machine disturbs less.

    .venv/bin/python bench/first_task.py [--agents 10000 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.api.history.v1 import History  # noqa: E402
from temporalio.client import WorkflowHistory  # noqa: E402
from temporalio.worker import Replayer  # noqa: E402

import pee.runtime.predecode as predecode  # noqa: E402
import pee.runtime.sandbox_runner as sandbox_runner  # noqa: E402
from bench.scale import layered_plan  # noqa: E402
from pee.engine.compiled import CompiledPlan  # noqa: E402
from pee.runtime.codec import data_converter  # noqa: E402
from pee.runtime.exit import run_entry  # noqa: E402
from pee.workflows.plan_workflow import PlanWorkflow  # noqa: E402
from pee.workflows.types import BatchSpec, LedgerSpec, PlanRunInput  # noqa: E402

# a fixed time for the events (the core wants one on each)
EVENT_TIME_S = 1_796_601_600


def first_task_history(run_input: PlanRunInput) -> WorkflowHistory:
    """A history that ends where the run's first workflow task starts: replaying it runs that
    task, and only it."""
    payloads = asyncio.run(data_converter(storage=None).encode([run_input]))
    history = History()
    started = history.events.add(
        event_id=1, event_type=EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    ).workflow_execution_started_event_attributes
    started.workflow_type.name = "PlanWorkflow"
    started.task_queue.name = "first-task"
    started.input.payloads.extend(payloads)
    started.original_execution_run_id = started.first_execution_run_id = str(uuid.uuid4())
    started.workflow_task_timeout.seconds = 10
    scheduled = history.events.add(
        event_id=2, event_type=EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED
    )
    scheduled.workflow_task_scheduled_event_attributes.task_queue.name = "first-task"
    history.events.add(
        event_id=3, event_type=EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
    ).workflow_task_started_event_attributes.scheduled_event_id = 2
    for event in history.events:
        event.event_time.FromSeconds(EVENT_TIME_S)
    return WorkflowHistory(f"first-task-{uuid.uuid4()}", list(history.events))


def carried_halfway(plan: CompiledPlan) -> dict[str, Any]:
    """PlanRunInput.carried of a ledger run that ended the first half of the plan's groups
    (pee.workflows.carry.encode's shape, Ledger.carry's "ledger" part)."""
    ended = plan.groups[: len(plan.groups) // 2]
    agents = {agent: "succeeded" for g in ended for agent in g.agents}
    return {
        "started": "2026-12-07T10:00:00+00:00",
        "earlier_runs": ["first"],
        "agents": {},
        "groups": {},
        "alerts": [],
        "events": [],
        "versions": {},
        "conflicts": [],
        "conflict_opened_s": {},
        "rejected_resolutions": [],
        "rejected_writes": [],
        "cache_hits": 0,
        "cache_misses": 0,
        "cache_levels": {},
        "context_snapshots": [],
        "resumed_snapshot": None,
        "resumed_from": None,
        "lock_peak": {},
        "lock_waits": {},
        "admission": {"pool": {"cpu": 100.0, "memory": 100.0, "max_agents": 3}, "waited": {}},
        "monitor_rows": [],
        "monitor_alerts": [],
        "monitor_over": [],
        "cache_keys": {},
        "adaptive": {"throttle": None, "timeouts": None, "cpu": None, "caching": None},
        "batch_children": 0,
        "batch_largest": 0,
        "ledger": {
            "frozen": {g.id: "succeeded" for g in ended},
            "agents": agents,
            "flushed": {"agent": len(agents), "group": len(ended)},
            "events_flushed": 0,
        },
    }


class ActivationClock:
    """The workflow thread's CPU time of each activation the sandbox runner runs, and the
    event loop's of the run inputs the codec decodes ahead of them (pee.runtime.predecode)."""

    def __init__(self) -> None:
        self.taken: list[float] = []
        self.ahead: list[float] = []
        self._activate = sandbox_runner._LeanInstance.activate
        self._prepare = predecode.prepare

    def __enter__(self) -> ActivationClock:
        def clocked(function: Any, into: list[float]) -> Any:
            def call(*args: Any) -> Any:
                start = time.thread_time()
                try:
                    return function(*args)
                finally:
                    into.append(time.thread_time() - start)

            return call

        sandbox_runner._LeanInstance.activate = clocked(self._activate, self.taken)  # type: ignore[method-assign]
        predecode.prepare = clocked(self._prepare, self.ahead)
        return self

    def __exit__(self, *exc: object) -> None:
        sandbox_runner._LeanInstance.activate = self._activate  # type: ignore[method-assign]
        predecode.prepare = self._prepare


def first_task_cpu(history: WorkflowHistory) -> tuple[float, float]:
    """The first activation's CPU, and the codec's ahead of it."""
    replayer = Replayer(
        workflows=[PlanWorkflow],
        data_converter=data_converter(storage=None),
        workflow_runner=sandbox_runner.LeanSandboxedWorkflowRunner(),
        # CPU is what is measured: the detector would fail a task a loaded machine made slow
        debug_mode=True,
    )
    with ActivationClock() as clock:
        result = asyncio.run(replayer.replay_workflow(history, raise_on_replay_failure=False))
    if result.replay_failure is not None:
        raise SystemExit(f"the first task failed: {result.replay_failure}")
    return clock.taken[0], sum(clock.ahead)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[10_000, 20_000])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    medians: dict[tuple[int, str], float] = {}
    for agents in args.agents:
        plan = layered_plan(agents)
        for kind in ("run", "continuation"):
            run_input = PlanRunInput(
                plan=plan,
                time_scale=0.005,
                batch=BatchSpec(),
                ledger=LedgerSpec(),
                carried=carried_halfway(plan) if kind == "continuation" else None,
            )
            history = first_task_history(run_input)
            rounds = [first_task_cpu(history) for _ in range(args.rounds)]
            taken = [task for task, _ahead in rounds]
            medians[agents, kind] = statistics.median(taken)
            ahead = statistics.median(ahead for _task, ahead in rounds)
            print(
                f"agents {agents} {kind}: first task cpu median {medians[agents, kind]:.3f} s "
                f"(rounds {' '.join(f'{t:.3f}' for t in taken)}); input decoded ahead of it "
                f"by the codec {ahead:.3f} s",
                flush=True,
            )
    if len(args.agents) >= 2:
        small, large = min(args.agents), max(args.agents)
        for kind in ("run", "continuation"):
            ratio = medians[large, kind] / medians[small, kind]
            print(f"scaling {kind}: {large}/{small} agents {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    run_entry(main)
