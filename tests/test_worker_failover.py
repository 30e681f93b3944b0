"""A worker process killed (SIGKILL) in the middle of a parallel group loses nothing: the
server hands the agents to a second worker process and the run completes with every output."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from typing import Any

from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import WorkflowHandle

from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.types import PlanRunInput
from tests.helpers import PROJECT_ROOT, TemporalHarness, async_eventually, compiled_plan, group, sim

AGENT_S = 4.0


def start_worker(address: str, task_queue: str) -> tuple[subprocess.Popen[str], str]:
    """A `python worker.py` process and its identity (from its first line)."""
    process = subprocess.Popen(
        [sys.executable, "worker.py", "--address", address, "--task-queue", task_queue],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "on task queue" in line, line
    return process, line.split()[1]


async def wait_until_started(handle: WorkflowHandle[Any, Any], count: int) -> str:
    """Until `count` agents have been picked up by a worker; returns that worker's identity."""

    async def identity() -> str | None:
        description = await handle.describe()
        started = [
            activity
            for activity in description.raw_description.pending_activities
            if activity.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        ]
        return started[0].last_worker_identity if len(started) == count else None

    return await async_eventually(identity, what=f"{count} agents started", timeout_s=20)


async def last_runner_of_each_agent(handle: WorkflowHandle[Any, Any]) -> dict[str, str]:
    """Activity id -> identity of the worker that started its final attempt."""
    scheduled: dict[int, str] = {}
    runner: dict[str, str] = {}
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_id
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attributes = event.activity_task_started_event_attributes
            runner[scheduled[attributes.scheduled_event_id]] = attributes.identity
    return runner


def test_sigkilled_worker_mid_group_loses_no_agent_output(temporal: TemporalHarness) -> None:
    """Worker 1 runs the parallel group a|b|c and is SIGKILLed mid-way; worker 2 finishes the
    run: every agent succeeded once, every output is in the context, d saw all three."""
    plan = compiled_plan(
        [
            sim("a", "work", AGENT_S),
            sim("b", "work", AGENT_S),
            sim("c", "work", AGENT_S),
            sim("d", "join", 0.2, inputs=["a.out", "b.out", "c.out"]),
        ],
        [group("work", ["a", "b", "c"]), group("join", ["d"], ["work"])],
        name="failover",
    )
    task_queue = f"failover-{uuid.uuid4()}"
    first, first_identity = start_worker(temporal.address, task_queue)
    second = None
    try:

        async def go() -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
            nonlocal second
            handle = await temporal.client.start_workflow(
                PlanWorkflow.run,
                # a dead worker's agents time out after 1 s without a heartbeat and move on
                PlanRunInput(plan=plan, heartbeat_timeout_s=1.0),
                id=f"failover-{uuid.uuid4()}",
                task_queue=task_queue,
            )
            assert first_identity == await wait_until_started(handle, 3)
            await asyncio.sleep(1.0)
            first.kill()
            first.wait(timeout=10)
            second, _identity = start_worker(temporal.address, task_queue)
            report = await asyncio.wait_for(handle.result(), timeout=90)
            context = await handle.query(PlanWorkflow.context)
            return report, context, await last_runner_of_each_agent(handle)

        report, context, runners = temporal.run(go())
        second_identity = f"{second.pid}@" + first_identity.split("@", 1)[1] if second else ""
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()

    assert "completed" == report["status"]
    assert {agent_id: "succeeded" for agent_id in "abcd"} == {
        agent_id: agent["status"] for agent_id, agent in report["agents"].items()
    }
    for agent_id in "abc":
        # the first attempt died with worker 1; the one that counted ran on worker 2
        assert report["agents"][agent_id]["attempts"] >= 2
        assert second_identity == runners[agent_id]
    assert ["out"] == report["agents"]["d"]["outputs"]
    outputs = [key for key in context if key.endswith(".out")]
    assert ["a.out", "b.out", "c.out", "d.out"] == sorted(outputs)
    finished = [event["id"] for event in report["events"] if event["event"] == "agent_succeeded"]
    assert ["a", "b", "c", "d"] == sorted(finished)
