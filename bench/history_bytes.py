"""History bytes of bench/overhead.py's runs: engine against hand-written, by event kind.

Runs one engine run and one hand-written run of N no-op agents (overhead.py's plan and
baseline) on a throwaway dev server, fetches both histories and prints, per contender, the
bytes of each event kind (`ByteSize()` of the HistoryEvent), the payload bytes of the
activities' inputs, results and Web UI summaries, and for the engine the bytes of one agent's
task by field (its JSON row as the worker reads it). The server stores and sends every byte of
these, so this is the share of the server's per-run work that payload size decides.

    .venv/bin/python bench/history_bytes.py [--agents 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.api.history.v1 import HistoryEvent  # noqa: E402
from temporalio.client import WorkflowHistory  # noqa: E402

from bench.harness import DevServer, bench_worker, connect  # noqa: E402
from bench.overhead import plan_text, run_engine, run_handwritten  # noqa: E402
from pee.engine.compile.graph import compile_plan  # noqa: E402
from pee.engine.compile.load import loads_plan  # noqa: E402


def kind(event: HistoryEvent) -> str:
    return EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").lower()


def payload_bytes(history: WorkflowHistory) -> dict[str, int]:
    """Payload bytes (data + metadata, as stored) by role."""
    sums: Counter[str] = Counter()
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            attrs = event.activity_task_scheduled_event_attributes
            sums["activity input"] += sum(p.ByteSize() for p in attrs.input.payloads)
            # fields of the schedule besides the input (ids, type, queue, timeouts, retry)
            sums["schedule without input"] += attrs.ByteSize() - attrs.input.ByteSize()
        if event.HasField("user_metadata"):
            meta = event.user_metadata
            sums["summaries (user metadata)"] += meta.summary.ByteSize() + meta.details.ByteSize()
        if event.HasField("activity_task_completed_event_attributes"):
            result = event.activity_task_completed_event_attributes.result
            sums["activity result"] += sum(p.ByteSize() for p in result.payloads)
        if event.HasField("workflow_execution_started_event_attributes"):
            started = event.workflow_execution_started_event_attributes
            sums["workflow input"] += sum(p.ByteSize() for p in started.input.payloads)
        if event.HasField("workflow_execution_completed_event_attributes"):
            completed = event.workflow_execution_completed_event_attributes
            sums["workflow result"] += sum(p.ByteSize() for p in completed.result.payloads)
        if event.HasField("marker_recorded_event_attributes"):
            sums["markers"] += event.ByteSize()
    return dict(sums)


def by_kind(history: WorkflowHistory) -> dict[str, tuple[int, int]]:
    """event kind -> (count, bytes)."""
    count: Counter[str] = Counter()
    size: Counter[str] = Counter()
    for event in history.events:
        count[kind(event)] += 1
        size[kind(event)] += event.ByteSize()
    return {name: (count[name], size[name]) for name in size}


def first_task_fields(history: WorkflowHistory) -> dict[str, int]:
    """One agent task's JSON bytes by field (the agent's fields as `agent.<name>`)."""
    for event in history.events:
        if not event.HasField("activity_task_scheduled_event_attributes"):
            continue
        attrs = event.activity_task_scheduled_event_attributes
        if attrs.activity_type.name != "run_agent":
            continue
        row = json.loads(attrs.input.payloads[0].data)
        fields: dict[str, int] = {}
        for name, value in row.items():
            if name == "agent" and isinstance(value, dict):
                for inner, each in value.items():
                    fields[f"agent.{inner}"] = len(json.dumps(each, separators=(",", ":")))
            else:
                fields[name] = len(json.dumps(value, separators=(",", ":")))
        fields["(whole payload data)"] = len(attrs.input.payloads[0].data)
        return fields
    return {}


def show(name: str, history: WorkflowHistory) -> int:
    total = sum(event.ByteSize() for event in history.events)
    print(f"{name}: {len(history.events)} events, {total} bytes")
    for each, (count, size) in sorted(by_kind(history).items(), key=lambda kv: -kv[1][1]):
        print(f"  {each:<40} {count:>5} events {size:>8} bytes ({size / total:5.1%})")
    print("  payloads:")
    for role, size in sorted(payload_bytes(history).items(), key=lambda kv: -kv[1]):
        print(f"    {role:<38} {size:>8} bytes")
    return total


async def measure(address: str, agents: int) -> None:
    client = await connect(address)
    task_queue = f"bench-history-{uuid.uuid4()}"
    plan = compile_plan(loads_plan(plan_text(agents), file="<overhead>"))
    async with bench_worker(client, task_queue):
        _, engine_id = await run_engine(client, task_queue, plan)
        _, hand_id = await run_handwritten(client, task_queue, plan)
        engine = await client.get_workflow_handle(engine_id).fetch_history()
        hand = await client.get_workflow_handle(hand_id).fetch_history()
    engine_total = show("engine", engine)
    hand_total = show("hand-written", hand)
    print(f"history bytes engine/hand-written: {engine_total / hand_total:.2f}")
    print("one agent's task (run_agent input), JSON bytes by field:")
    for field, size in sorted(first_task_fields(engine).items(), key=lambda kv: -kv[1]):
        print(f"  {field:<40} {size:>5}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200)
    args = parser.parse_args(argv)
    with DevServer() as server:
        asyncio.run(measure(server.address, args.agents))
    return 0


if __name__ == "__main__":
    sys.exit(main())
