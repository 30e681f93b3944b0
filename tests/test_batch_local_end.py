"""A batch run that ends while a local chunk still holds agents that finished but are not
recorded yet (the worker holds the child's workflow task open while any of its local agents
runs: docs/guides/large-plans.md). The parent fails, or is cancelled; its REQUEST_CANCEL reaches
the child at its next workflow task heartbeat, which cancels the agents still running and ends
the chunk. Every history involved, the parent's and the child's, replays."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import PendingWorkflowTaskState
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowHistory,
)
from temporalio.service import RPCError
from temporalio.worker import Replayer

from pee.engine.compiled import CompiledPlan
from pee.runtime.codec import data_converter
from pee.runtime.inspect import run_histories
from pee.runtime.worker import build_worker
from pee.workflows.agent_batch import SIGNAL_TASK_PATCH, AgentBatchWorkflow
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.types import BatchSpec, PlanRunInput
from tests.helpers import TemporalHarness, async_eventually, compiled_plan
from tests.histories.record import batch_local_failed

Handle = WorkflowHandle[Any, Any]

# chunks of two local agents (every test agent's timeout is under local_s)
SPEC = BatchSpec(chunk_size=2, window=4, local_s=1000.0)
HISTORIES = Path(__file__).resolve().parent / "histories"


def plan(bad: bool) -> CompiledPlan:
    """record.batch_local_failed (g2's quick and slow in one local chunk, agents-1; g1's bad
    failing every attempt, its fallback too), or g2 alone."""
    failing = batch_local_failed()
    if bad:
        return failing
    return compiled_plan(
        [a for a in failing.agents if a.group == "g2"],
        [g for g in failing.groups if g.id == "g2"],
        name="batch-local-cancelled",
    )


def kinds(history: Any) -> list[str]:
    return [event.WhichOneof("attributes") or "" for event in history.events]


async def local_chunk_held(temporal: TemporalHarness, child_id: str) -> None:
    """Once a worker holds the local chunk's workflow task (its agents run)."""
    child = temporal.client.get_workflow_handle(child_id)

    async def held() -> bool:
        pending = (await child.describe()).raw_description.pending_workflow_task
        return pending.state == PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_STARTED

    await async_eventually(
        held, what=f"{child_id} held by a worker", timeout_s=60.0, ignore=(RPCError,)
    )


async def closed(temporal: TemporalHarness, child_id: str) -> WorkflowExecutionStatus | None:
    async def ended() -> WorkflowExecutionStatus | None:
        status = (await temporal.client.get_workflow_handle(child_id).describe()).status
        return None if status == WorkflowExecutionStatus.RUNNING else status

    # the cancel request reaches a held chunk at its next workflow task heartbeat (~8 s)
    return await async_eventually(ended, what=f"{child_id} closed", timeout_s=90.0)


async def replay_all(temporal: TemporalHarness, workflow_id: str, child_id: str) -> None:
    replayer = Replayer(
        workflows=[PlanWorkflow, AgentBatchWorkflow], data_converter=data_converter()
    )
    for _run_id, history in await run_histories(temporal.client, workflow_id):
        await replayer.replay_workflow(history)
    await replayer.replay_workflow(
        await temporal.client.get_workflow_handle(child_id).fetch_history()
    )


def run_to_end(
    temporal: TemporalHarness, name: str, bad: bool, cancel: bool
) -> tuple[str, dict[str, Any], WorkflowExecutionStatus | None, list[str], list[dict[str, Any]]]:
    async def go() -> Any:
        task_queue = f"{name}-{uuid.uuid4()}"
        async with build_worker(temporal.client, task_queue):
            handle = await temporal.client.start_workflow(
                PlanWorkflow.run,
                PlanRunInput(plan=plan(bad), heartbeat_timeout_s=1.0, batch=SPEC),
                id=f"{name}-{uuid.uuid4()}",
                task_queue=task_queue,
            )
            # chunks are cut in submission order: g2's two agents first
            child_id = f"{handle.id}/agents-1"
            await local_chunk_held(temporal, child_id)
            if cancel:
                # quick (0.1 s) has ended by now in all likelihood; slow runs 30 s
                await asyncio.sleep(1.0)
                await handle.cancel()
            ended = "completed"
            try:
                await handle.result()
            except WorkflowFailureError as err:
                ended = type(err.cause).__name__
            report = await handle.query(PlanWorkflow.status)
            status = await closed(temporal, child_id)
            child = temporal.client.get_workflow_handle(child_id)
            child_kinds = kinds(await child.fetch_history())
            outcomes = await child.result() if status == WorkflowExecutionStatus.COMPLETED else []
            await replay_all(temporal, handle.id, child_id)
            return ended, report, status, child_kinds, outcomes

    result: Any = temporal.run(go())
    return result  # type: ignore[no-any-return]


def test_a_run_failing_while_a_local_chunk_holds_ended_agents_replays(
    temporal: TemporalHarness,
) -> None:
    ended, report, status, child_kinds, outcomes = run_to_end(
        temporal, "local-end-failed", bad=True, cancel=False
    )
    assert "ApplicationError" == ended
    assert "failed" == report["status"]
    assert "failed" == report["agents"]["bad"]["status"]
    # the run never saw slow end: counted cancelled when the run failed
    assert "cancelled" == report["agents"]["slow"]["status"]
    assert WorkflowExecutionStatus.COMPLETED == status
    assert "workflow_execution_cancel_requested_event_attributes" in child_kinds
    by_agent = {o["agent_id"]: o for o in outcomes}
    assert by_agent["slow"]["cancelled"] is True


def test_a_run_cancelled_mid_chunk_replays(temporal: TemporalHarness) -> None:
    ended, report, status, child_kinds, outcomes = run_to_end(
        temporal, "local-end-cancelled", bad=False, cancel=True
    )
    assert "CancelledError" == ended
    assert "cancelled" == report["status"]
    assert "cancelled" == report["agents"]["slow"]["status"]
    assert WorkflowExecutionStatus.COMPLETED == status
    assert "workflow_execution_cancel_requested_event_attributes" in child_kinds
    by_agent = {o["agent_id"]: o for o in outcomes}
    assert by_agent["slow"]["cancelled"] is True


def test_the_recorded_chunk_took_the_cancel_in() -> None:
    """tests/histories/batch_children/batch_local_failed/agents-1: the parent's cancel request
    came in while the chunk's outcomes signal (quick's) was in flight; with the patch the chunk
    cancelled slow there (its result says so) instead of running it 30 s, and the history
    replays (tests/test_replay.py replays every recorded chunk)."""
    path = HISTORIES / "batch_children" / "batch_local_failed" / "agents-1.json"
    history = WorkflowHistory.from_json("agents-1", path.read_text())
    events = kinds(history)
    assert "signal_external_workflow_execution_initiated_event_attributes" in events
    assert "workflow_execution_cancel_requested_event_attributes" in events
    patches = [
        event.marker_recorded_event_attributes.details["patch-data"]
        for event in history.events
        if event.marker_recorded_event_attributes.marker_name == "core_patch"
    ]
    assert any(SIGNAL_TASK_PATCH.encode() in p.payloads[0].data for p in patches)
    completed = history.events[-1].workflow_execution_completed_event_attributes
    (outcomes,) = asyncio.run(data_converter().decode(completed.result.payloads))
    by_agent = {o["agent_id"]: o for o in outcomes}
    assert by_agent["quick"]["result"] is not None
    assert by_agent["slow"]["cancelled"] is True
    replayer = Replayer(workflows=[AgentBatchWorkflow], data_converter=data_converter())
    assert asyncio.run(replayer.replay_workflow(history)).replay_failure is None
