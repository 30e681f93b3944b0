"""Scale: one plan of N agents (bench/planner.py's layered random DAG) run to the end, with the
history of the plan workflow and of every AgentBatchWorkflow child counted.

One throwaway dev server (in memory, free port) and one worker in this process (pee.runtime.worker.
build_worker: PlanWorkflow, AgentBatchWorkflow, the agent activities). Agents are the planner's
`simulate` agents, their estimated durations x --time-scale. It prints agents, groups, wall
time, the plan workflow's events (the largest of its runs: it continues as new when Temporal
suggests it, and `runs` lists each run's events), events per agent, the children, their
largest history, the largest history of all (the bound: 10,240 events per workflow, Temporal's
default warning limit is 10,240 and hard limit 51,200), and the compressed size of the largest
run input (a continuation's carries the run so far) and of the report.

    .venv/bin/python bench/scale.py [--agents 5000 [10000]] [--chunk 100] [--window 16]
                                    [--flush 1.0] [--local 10] [--split 10] [--time-scale 0.005]
                                    [--no-batch] [--no-ledger]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from temporalio.client import Client  # noqa: E402

from bench.harness import DevServer, connect  # noqa: E402
from bench.planner import generate_plan  # noqa: E402
from pee.engine.compile.graph import compile_plan  # noqa: E402
from pee.engine.compile.load import build_plan  # noqa: E402
from pee.engine.compiled import CompiledPlan  # noqa: E402
from pee.engine.language.yamlsrc import SourceMap  # noqa: E402
from pee.runtime.inspect import run_histories  # noqa: E402
from pee.runtime.report_assembly import assemble  # noqa: E402
from pee.runtime.worker import build_worker  # noqa: E402
from pee.stores.runs import RunStore  # noqa: E402
from pee.workflows.plan_workflow import PlanWorkflow  # noqa: E402
from pee.workflows.types import (  # noqa: E402
    LOCAL_AGENT_S,
    SPLIT_GAIN_S,
    BatchSpec,
    LedgerSpec,
    PlanRunInput,
    task_timeout,
)

HISTORY_BOUND = 10_240


def layered_plan(agents: int, seed: int = 0) -> CompiledPlan:
    return compile_plan(build_plan(generate_plan(agents, seed), SourceMap()))


@dataclass
class HistoryCount:
    """Events of each run of a plan workflow (it continues as new when Temporal suggests it)
    and of each child those runs started."""

    # run id -> events of that run's history, oldest run first
    runs: dict[str, int]
    children: dict[str, int]
    # the parent's events by kind over all its runs, most frequent first
    parent_kinds: dict[str, int] = field(default_factory=dict)
    # the largest single history event of them all, in bytes (an upper bound of any payload
    # in it, as stored: after lz4, External Storage references instead of large payloads)
    largest_event_bytes: int = 0

    @property
    def parent(self) -> int:
        """The largest history of the plan workflow's runs (the one the bound is about)."""
        return max(self.runs.values())

    @property
    def parent_total(self) -> int:
        return sum(self.runs.values())

    @property
    def largest(self) -> int:
        return max([self.parent, *self.children.values()])

    @property
    def total(self) -> int:
        return self.parent_total + sum(self.children.values())


async def count_events(
    client: Client, workflow_id: str, chain: list[tuple[str, Any]] | None = None
) -> HistoryCount:
    """Events of every run of the plan workflow (``chain``: run_histories, when already
    fetched) and of every child they started."""
    runs: dict[str, int] = {}
    found: Counter[str] = Counter()
    child_ids: list[str] = []
    largest = 0
    for run_id, history in chain or await run_histories(client, workflow_id):
        runs[run_id] = len(history.events)
        largest = max([largest, *(e.ByteSize() for e in history.events)])
        child_ids += [
            e.start_child_workflow_execution_initiated_event_attributes.workflow_id
            for e in history.events
            if e.HasField("start_child_workflow_execution_initiated_event_attributes")
        ]
        found.update(
            (e.WhichOneof("attributes") or "").removesuffix("_event_attributes")
            for e in history.events
        )
    children: dict[str, int] = {}
    for child_id in child_ids:
        child = await client.get_workflow_handle(child_id).fetch_history()
        children[child_id] = len(child.events)
        largest = max([largest, *(e.ByteSize() for e in child.events)])
    return HistoryCount(runs, children, dict(found.most_common()), largest)


# the SDK's client-side payload warning (temporalio.service PayloadLimitsConfig)
PAYLOAD_WARN_BYTES = 512 * 1024
DEADLOCK_MARKS = ("TMPRL1101", "Potential deadlock")


class DeadlockWatch(logging.Handler):
    """Counts the worker's deadlock-detector failures: the SDK logs each workflow task that did
    not yield within 2 s ("[TMPRL1101] Potential deadlock detected") with its exception."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += str(record.exc_info[1])
        if any(mark in text for mark in DEADLOCK_MARKS):
            self.count += 1

    def __enter__(self) -> DeadlockWatch:
        logging.getLogger("temporalio").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("temporalio").removeHandler(self)


def fallbacks(report: dict[str, Any]) -> int:
    """Groups whose barrier went to a sequential fallback."""
    return sum(
        1
        for group in report["groups"].values()
        if any(d["decision"] == "abort_and_fallback" for d in group["barrier"]["history"])
    )


def decisions(report: dict[str, Any]) -> tuple[dict[str, int], str | None]:
    """Barrier decisions over every group, most frequent first, and the first fallback's
    reason (None without one)."""
    found: Counter[str] = Counter()
    first = None
    for group in report["groups"].values():
        for entry in group["barrier"]["history"]:
            found[entry["decision"]] += 1
            if first is None and entry["decision"] == "abort_and_fallback":
                first = entry["reason"]
    return dict(found.most_common()), first


def payload_sizes(chain: list[tuple[str, Any]]) -> tuple[int, int]:
    """Encoded (lz4 codec) bytes of the largest run input (a continuation's carries the run so
    far) and of the result, as stored in the histories of ``chain`` (run_histories)."""
    largest, result_bytes = 0, 0
    for _run_id, history in chain:
        first = history.events[0].workflow_execution_started_event_attributes.input.payloads
        largest = max(largest, sum(p.ByteSize() for p in first))
        last = history.events[-1]
        if last.HasField("workflow_execution_completed_event_attributes"):
            result = last.workflow_execution_completed_event_attributes.result.payloads
            result_bytes = sum(p.ByteSize() for p in result)
    return largest, result_bytes


async def run_plan(
    client: Client,
    plan: CompiledPlan,
    *,
    time_scale: float,
    batch: BatchSpec | None,
    ledger: LedgerSpec | None = None,
) -> tuple[dict[str, Any], str, float]:
    task_queue = f"scale-{uuid.uuid4()}"
    async with build_worker(client, task_queue, max_concurrent_activities=400):
        started = time.perf_counter()
        run_input = PlanRunInput(plan=plan, time_scale=time_scale, batch=batch, ledger=ledger)
        handle = await client.start_workflow(
            PlanWorkflow.run,
            run_input,
            id=f"scale-{len(plan.agents)}-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
            task_timeout=task_timeout(run_input),
        )
        report = await handle.result()
        wall = time.perf_counter() - started
    # a ledger run returns a summary: the agents' rows are in the run store
    return assemble(report, RunStore(), plan), handle.id, wall


async def measure(
    server: DevServer,
    agents: int,
    time_scale: float,
    batch: BatchSpec | None,
    ledger: LedgerSpec | None = None,
) -> dict[str, Any]:
    client = await connect(server.address)
    plan = layered_plan(agents)
    with DeadlockWatch() as watch:
        # CPU seconds of the server and of this process (the worker, and the client waiting
        # for the result) over the run alone: less disturbed by other load than wall time
        server_before, worker_before = server.cpu_s(), time.process_time()
        report, workflow_id, wall = await run_plan(
            client, plan, time_scale=time_scale, batch=batch, ledger=ledger
        )
        server_cpu, worker_cpu = (
            server.cpu_s() - server_before,
            time.process_time() - worker_before,
        )
    chain = await run_histories(client, workflow_id)
    counted = await count_events(client, workflow_id, chain)
    input_bytes, report_bytes = payload_sizes(chain)
    succeeded = sum(1 for a in report["agents"].values() if a["status"] == "succeeded")
    return {
        "agents": agents,
        "groups": len(plan.groups),
        "status": report["status"],
        "succeeded": succeeded,
        "wall_s": wall,
        "server_cpu_s": server_cpu,
        "worker_cpu_s": worker_cpu,
        "parent_events": counted.parent,
        "runs": list(counted.runs.values()),
        "events_per_agent": counted.total / agents,
        "children": len(counted.children),
        "largest_child": max(counted.children.values(), default=0),
        "max_events": counted.largest,
        "parent_kinds": counted.parent_kinds,
        "input_bytes": input_bytes,
        "report_bytes": report_bytes,
        "fallbacks": fallbacks(report),
        "deadlocks": watch.count,
        "largest_event_bytes": counted.largest_event_bytes,
        "decisions": decisions(report),
    }


def line(found: dict[str, Any]) -> str:
    return (
        f"agents {found['agents']} groups {found['groups']} status {found['status']} "
        f"succeeded {found['succeeded']} wall {found['wall_s']:.1f} s "
        f"server_cpu_s {found['server_cpu_s']:.1f} worker_cpu_s {found['worker_cpu_s']:.1f} "
        f"(per agent {1000 * found['server_cpu_s'] / found['agents']:.1f} + "
        f"{1000 * found['worker_cpu_s'] / found['agents']:.1f} ms) "
        f"parent_events {found['parent_events']} runs {found['runs']} "
        f"events_per_agent {found['events_per_agent']:.2f} children {found['children']} "
        f"largest_child {found['largest_child']} max_events {found['max_events']} "
        f"(bound {HISTORY_BOUND}) input {found['input_bytes'] / 1024:.0f} KiB "
        f"report {found['report_bytes'] / 1024:.0f} KiB fallbacks {found['fallbacks']} "
        f"deadlock_warnings {found['deadlocks']} "
        f"max_payload {found['largest_event_bytes'] / 1024:.0f} KiB "
        f"(warning at {PAYLOAD_WARN_BYTES // 1024} KiB)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--agents",
        type=int,
        nargs="+",
        default=[5000],
        help="one run per size, on the same server; two sizes also print the time ratio",
    )
    parser.add_argument("--chunk", type=int, default=BatchSpec.chunk_size)
    parser.add_argument("--window", type=int, default=BatchSpec.window)
    parser.add_argument(
        "--flush",
        type=float,
        default=BatchSpec.flush_s,
        help="children send ended agents' outcomes at most this often (s)",
    )
    parser.add_argument("--time-scale", type=float, default=0.005)
    parser.add_argument(
        "--local",
        type=float,
        default=LOCAL_AGENT_S,
        help="batch mode: agents whose timeout is at most this (s, scaled) run as local "
        "activities of their child (0: none; BatchSpec.local_s)",
    )
    parser.add_argument(
        "--split",
        type=float,
        default=SPLIT_GAIN_S,
        help="batch mode: cut a chunk of local agents by expected duration where that saves "
        "at least this many seconds of waiting over its groups (0: never; "
        "BatchSpec.split_gain_s)",
    )
    parser.add_argument(
        "--no-batch",
        action="store_true",
        help="every agent an activity of the plan workflow (the baseline)",
    )
    parser.add_argument(
        "--no-ledger",
        action="store_true",
        help="keep the whole report in the run (no run store; the result grows with the plan)",
    )
    args = parser.parse_args(argv)
    batch = (
        None
        if args.no_batch
        else BatchSpec(
            args.chunk,
            args.window,
            args.flush,
            local_s=max(0.0, args.local),
            split_gain_s=args.split,
        )
    )
    ledger = None if args.no_ledger or batch is None else LedgerSpec()
    mode = (
        "no-batch "
        if batch is None
        else f"batch chunk {args.chunk} window {args.window} flush {args.flush:g} s "
        f"local {args.local:g} s split {args.split:g} s "
    ) + ("ledger " if ledger is not None else "")
    walls = []
    with DevServer() as server:
        for agents in args.agents:
            found = asyncio.run(measure(server, agents, args.time_scale, batch, ledger))
            walls.append(found["wall_s"])
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            print(mode + line(found) + f" load_average {load}", flush=True)
            counts, first_fallback = found["decisions"]
            print(
                "barrier decisions: "
                + ", ".join(f"{k} {v}" for k, v in counts.items())
                + (f"; first fallback: {first_fallback}" if first_fallback else "")
            )
            print(
                "parent events by kind: "
                + ", ".join(f"{kind} {count}" for kind, count in found["parent_kinds"].items())
            )
            within = found["max_events"] < HISTORY_BOUND
            print(f"every history under {HISTORY_BOUND} events: {'yes' if within else 'NO'}")
    if len(walls) == 2:
        print(
            f"wall {args.agents[1]}/{args.agents[0]} agents: {walls[1] / walls[0]:.2f}x "
            f"(agents {args.agents[1] / args.agents[0]:.2f}x)"
        )
    return 0


if __name__ == "__main__":
    from pee.runtime.exit import run_entry

    run_entry(lambda: main())
