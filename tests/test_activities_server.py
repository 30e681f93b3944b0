"""run_agent on a real dev server: progress signals reach the workflow, heartbeats keep a long
agent alive past its heartbeat timeout, and a silent agent is stopped by that timeout."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, TimeoutError, TimeoutType
from temporalio.worker import Worker

from bench.handwritten import HandWrittenInput, HandWrittenResult, HandWrittenWorkflow
from pee.activities.agents import ACTIVITIES
from pee.activities.types import AgentTask
from pee.engine.compiled import CompiledAgent, RetrySpec
from tests.helpers import TemporalHarness


def agent(agent_id: str, duration: float, **settings: Any) -> CompiledAgent:
    return CompiledAgent(
        id=agent_id,
        role=agent_id,
        kind="simulate",
        group="g",
        outputs=["out"],
        retry=RetrySpec(max_attempts=1),
        settings={"duration": duration, **settings},
    )


def execute(temporal: TemporalHarness, input: HandWrittenInput) -> HandWrittenResult:
    async def go() -> HandWrittenResult:
        task_queue = f"agents-{uuid.uuid4()}"
        async with Worker(
            temporal.client,
            task_queue=task_queue,
            workflows=[HandWrittenWorkflow],
            activities=ACTIVITIES,
        ):
            return await temporal.client.execute_workflow(
                HandWrittenWorkflow.run,
                input,
                id=f"agents-{uuid.uuid4()}",
                task_queue=task_queue,
                result_type=HandWrittenResult,
            )

    return temporal.run(go())


def test_progress_signals_reach_the_workflow(temporal: TemporalHarness) -> None:
    """A 1.5 s agent reporting every 0.3 s sends its workflow a few agent_progress signals with
    a growing fraction; an instant agent sends none."""
    result = execute(
        temporal,
        HandWrittenInput(
            tasks=[
                AgentTask(agent=agent("slow", 1.5), progress_interval_s=0.3),
                AgentTask(agent=agent("instant", 0.0), progress_interval_s=0.3),
            ]
        ),
    )
    assert ["slow", "instant"] == [r.agent_id for r in result.results]
    assert {"slow"} == {p.agent_id for p in result.progress}
    assert 3 <= len(result.progress) <= 6
    fractions = [p.fraction or 0.0 for p in result.progress]
    assert fractions == sorted(fractions)
    assert 0.0 < fractions[0] < fractions[-1] <= 1.0


def test_heartbeats_keep_an_agent_alive_past_its_heartbeat_timeout(
    temporal: TemporalHarness,
) -> None:
    """A 4 s agent under a 1 s heartbeat timeout finishes: it heartbeats every ~0.33 s."""
    result = execute(
        temporal,
        HandWrittenInput(tasks=[AgentTask(agent=agent("steady", 4.0))], heartbeat_timeout_s=1.0),
    )
    assert ["out"] == list(result.results[0].outputs)


def test_a_silent_agent_is_stopped_by_its_heartbeat_timeout(temporal: TemporalHarness) -> None:
    """heartbeat: false under a 1 s heartbeat timeout: the server times it out (HEARTBEAT)."""
    with pytest.raises(WorkflowFailureError) as caught:
        execute(
            temporal,
            HandWrittenInput(
                tasks=[AgentTask(agent=agent("silent", 30.0, heartbeat=False))],
                heartbeat_timeout_s=1.0,
                timeout_s=20.0,
                max_attempts=1,
            ),
        )
    cause = caught.value.cause
    assert isinstance(cause, ActivityError)
    assert isinstance(cause.cause, TimeoutError)
    assert TimeoutType.HEARTBEAT == cause.cause.type
