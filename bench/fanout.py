"""Fan-out: a list of N items, each item's work of equal duration d, at agent level (one agent
`work[i]` per item) and at group level (a 2-agent chain per item); above `--batch-above`
instances (agent level) or `--group-above` items (group level) the items run in batch children
of `--child-agents` agents, `--children-at-once` at a time (pee.engine.rules.fan_out_batches),
below it as activities of the run (agent level) or a child per item (group level).

One throwaway dev server and one worker in this process. For each N (default 10, 100, 1,000) and
each shape it prints the run's makespan (workflow time, from its report), the ideal (the list's
maker + d, or + the chain), makespan / ideal, the parent's history length, the child workflows
and the longest child history (against Temporal's 10,240 events), measured side by side in one
run: the ratio, not the seconds, is the result (the machine may be shared). A fan-out
that ran its items one after another would show a ratio near N.

    .venv/bin/python bench/fanout.py [--items 10 100 1000] [--duration 2] [--shapes agent group]
                                      [--batch-above 200] [--group-above 20]
                                      [--child-agents 50] [--children-at-once 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from temporalio.client import Client  # noqa: E402

from bench.harness import DevServer, connect  # noqa: E402
from pee.engine.compile.graph import compile_plan  # noqa: E402
from pee.engine.compile.load import loads_plan  # noqa: E402
from pee.engine.compiled import CompiledPlan  # noqa: E402
from pee.runtime.worker import build_worker  # noqa: E402
from pee.workflows.plan_workflow import PlanWorkflow  # noqa: E402
from pee.workflows.types import FanOutBatching, PlanRunInput  # noqa: E402

SOURCE_S = 1.0


def fan_out_plan(shape: str, items: int, duration_s: float) -> CompiledPlan:
    """The list's maker, then `work[i]` (agent level) or `draft[i] -> review[i]` of d/2 each
    (group level) per item."""
    half = duration_s / 2
    per_item = {
        "agent": f"""\
  work: {{kind: simulate, duration: {duration_s}, for_each: sm.items, inputs: [item],
         outputs: [out]}}
""",
        "group": f"""\
  draft: {{kind: simulate, duration: {half}, inputs: [item], outputs: [text]}}
  review: {{kind: simulate, duration: {half}, inputs: [draft.text], outputs: [verdict]}}
groups:
  per_item: {{agents: [draft, review], for_each: sm.items}}
""",
    }[shape]
    return compile_plan(
        loads_plan(
            f"""\
name: bench-fanout-{shape}-{items}
agents:
  sm: {{kind: simulate, duration: {SOURCE_S}, outputs: [items],
       values: {{items: {json.dumps(list(range(items)))}}}}}
{per_item}"""
        )
    )


async def run(
    client: Client, plan: CompiledPlan, batching: FanOutBatching
) -> tuple[float, int, int, int]:
    """(makespan in workflow seconds, parent history events, child workflows, the longest
    child history in events)."""
    task_queue = f"bench-fanout-{uuid.uuid4()}"
    async with build_worker(client, task_queue, max_concurrent_activities=2000):
        handle = await client.start_workflow(
            PlanWorkflow.run,
            PlanRunInput(plan=plan, simulate=True, fan_out_batching=batching),
            id=f"{plan.name}-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        report: dict[str, Any] = await handle.result()
        if report["status"] != "completed":
            raise SystemExit(f"{plan.name}: {report['status']}: {report.get('error')}")
        events = (await handle.fetch_history()).events
        children = [
            e.start_child_workflow_execution_initiated_event_attributes.workflow_id
            for e in events
            if e.HasField("start_child_workflow_execution_initiated_event_attributes")
        ]
        longest = 0
        for child in children:
            history = await client.get_workflow_handle(child).fetch_history()
            longest = max(longest, len(history.events))
    return float(report["makespan_s"]), len(events), len(children), longest


async def measure(address: str, args: argparse.Namespace) -> None:
    client = await connect(address)
    print(
        f"{'shape':<8} {'items':>6} {'makespan s':>11} {'ideal s':>8} {'ratio':>6} "
        f"{'parent events':>14} {'children':>9} {'child events':>13}"
    )
    batching = FanOutBatching(
        above=args.batch_above,
        group_above=args.group_above,
        child_agents=args.child_agents,
        children_at_once=args.children_at_once,
    )
    for items in args.items:
        for shape in args.shapes:
            makespan, events, children, longest = await run(
                client, fan_out_plan(shape, items, args.duration), batching
            )
            ideal = SOURCE_S + args.duration
            print(
                f"{shape:<8} {items:>6} {makespan:>11.2f} {ideal:>8.2f} "
                f"{makespan / ideal:>6.2f} {events:>14} {children:>9} {longest:>13}",
                flush=True,
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--duration", type=float, default=2.0, help="d, seconds per item")
    parser.add_argument("--shapes", nargs="+", default=["agent", "group"])
    defaults = FanOutBatching()
    parser.add_argument(
        "--group-above",
        type=int,
        default=defaults.group_above,
        help="group-level fan-outs of more items run them in batch children",
    )
    parser.add_argument(
        "--children-at-once",
        type=int,
        default=defaults.children_at_once,
        help="batch children running at once",
    )
    parser.add_argument(
        "--batch-above",
        type=int,
        default=defaults.above,
        help="agent-level fan-outs of more instances run them in batch children",
    )
    parser.add_argument(
        "--child-agents",
        type=int,
        default=defaults.child_agents,
        help="agents per batch child",
    )
    args = parser.parse_args(argv)
    with DevServer() as server:
        asyncio.run(measure(server.address, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
