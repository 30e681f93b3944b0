"""pee.runtime.sandbox_runner keeps the SDK sandbox's protection: restricted calls still fail
the workflow, module state does not leak between runs, and payloads still get the serialization
context of their command (the calls this runner makes without `exec`)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowFailureError
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
)
from temporalio.worker import Replayer, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import (
    RestrictedWorkflowAccessError,
    SandboxedWorkflowRunner,
)

from pee.runtime.codec import data_converter
from pee.runtime.sandbox_runner import LeanSandboxedWorkflowRunner
from pee.workflows.agent_batch import AgentBatchWorkflow
from pee.workflows.plan_workflow import PlanWorkflow
from tests.helpers import TemporalHarness
from tests.sandbox_probe import CallsAnActivity, CountsRuns, ReadsTheClock, echo
from tests.test_replay import load

RUNNERS = {"sdk": SandboxedWorkflowRunner(), "lean": LeanSandboxedWorkflowRunner()}


async def _run(
    temporal: TemporalHarness, runner: WorkflowRunner, workflow: Any, *args: Any, **worker: Any
) -> Any:
    queue = f"sandbox-{uuid.uuid4()}"
    async with Worker(
        worker.pop("client", temporal.client),
        task_queue=queue,
        workflows=[ReadsTheClock, CountsRuns, CallsAnActivity],
        activities=[echo],
        workflow_runner=runner,
        workflow_failure_exception_types=[RestrictedWorkflowAccessError],
    ) as running:
        client = running.client
        results = []
        for _ in range(worker.pop("times", 1)):
            results.append(
                await client.execute_workflow(
                    workflow, *args, id=f"probe-{uuid.uuid4()}", task_queue=queue
                )
            )
        return results


@pytest.mark.parametrize("runner", list(RUNNERS))
def test_restricted_calls_still_fail_the_workflow(temporal: TemporalHarness, runner: str) -> None:
    with pytest.raises(WorkflowFailureError) as failed:
        temporal.run(_run(temporal, RUNNERS[runner], ReadsTheClock.run))
    assert "datetime.datetime.now" in str(failed.value.cause)


@pytest.mark.parametrize("runner", list(RUNNERS))
def test_module_state_does_not_leak_between_runs(temporal: TemporalHarness, runner: str) -> None:
    # the module is imported afresh for each run inside the sandbox
    assert [1, 1, 1] == temporal.run(_run(temporal, RUNNERS[runner], CountsRuns.run, times=3))


class _RecordingCodec(PayloadCodec, WithSerializationContext):
    """Passes payloads through, noting each encoded payload's data and the serialization context
    it was encoded with."""

    def __init__(self, seen: list[tuple[bytes, Any]], context: Any = None) -> None:
        self.seen = seen
        self.context = context

    def with_context(self, context: SerializationContext) -> _RecordingCodec:
        return _RecordingCodec(self.seen, context)

    async def encode(self, payloads: Any) -> list[Payload]:
        self.seen.extend((p.data, self.context) for p in payloads)
        return list(payloads)

    async def decode(self, payloads: Any) -> list[Payload]:
        return list(payloads)


def test_activity_payloads_get_the_activity_context(temporal: TemporalHarness) -> None:
    """The activity's input, encoded by the workflow's worker, gets the activity's context (the
    workflow's task encodes it; the activity's own result is encoded by the activity worker)."""
    seen: list[tuple[bytes, Any]] = []
    client = temporal.client
    config = client.config()
    config["data_converter"] = dataclasses.replace(
        DataConverter.default, payload_codec=_RecordingCodec(seen)
    )
    recording = type(client)(**config)
    result = temporal.run(
        _run(temporal, RUNNERS["lean"], CallsAnActivity.run, "hello", client=recording)
    )
    assert ["HELLO"] == result
    # the workflow's input arrives from the client; the activity's input is encoded once more
    inputs = [context for data, context in seen if data == b'"hello"']
    activity = [c for c in inputs if isinstance(c, ActivitySerializationContext)]
    assert 1 == len(activity), seen
    assert ("echo", False) == (activity[0].activity_type, activity[0].is_local)


@pytest.mark.parametrize("name", ["plain", "fan_out_batches", "conflict_signal"])
def test_committed_histories_replay_under_the_lean_runner(name: str) -> None:
    """The worker's runner replays what the SDK's runner recorded (tests/test_replay.py replays
    every history under the SDK's default runner)."""
    history = load(name)
    replayer = Replayer(
        workflows=[PlanWorkflow, AgentBatchWorkflow],
        data_converter=data_converter(),
        workflow_runner=LeanSandboxedWorkflowRunner(),
    )
    assert asyncio.run(replayer.replay_workflow(history)).replay_failure is None
