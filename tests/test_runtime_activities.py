"""The run_agent activity and its simulate backend, run in an ActivityEnvironment."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.agents import run_agent
from activities.types import AgentResult, AgentTask
from tests.conftest import sim


def run(task: AgentTask, attempt: int = 1, env: ActivityEnvironment | None = None) -> AgentResult:
    env = env or ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt)
    return asyncio.run(env.run(run_agent, task))


def test_simulate_returns_named_outputs_and_writes() -> None:
    """Outputs come from output_values when given, else a value naming agent and inputs."""
    agent = sim("pm", "g", 0.0, outputs=["prd", "stories"], output_values={"prd": "PRD"})
    agent.writes = ["requirements"]
    result = run(AgentTask(agent=agent, inputs={"analyst.brief": "b"}))
    assert result.outputs == {
        "prd": "PRD",
        "stories": {"agent": "pm", "output": "stories", "inputs": ["analyst.brief"]},
    }
    assert list(result.writes) == ["requirements"]
    assert result.attempt == 1


def test_simulate_fails_the_first_fail_times_attempts() -> None:
    """fail_times=2 fails attempts 1 and 2 (retryable, attempt in details) and passes attempt 3."""
    task = AgentTask(agent=sim("flaky", "g", 0.0, fail_times=2))
    for attempt in (1, 2):
        with pytest.raises(ApplicationError) as caught:
            run(task, attempt)
        assert (caught.value.type, caught.value.non_retryable) == ("SimulatedFailure", False)
        assert caught.value.details == ({"attempt": attempt},)
    assert run(task, 3).attempt == 3


def test_time_scale_shrinks_the_simulated_duration() -> None:
    """A 100 s agent at scale 0.001 heartbeats its way to progress 1.0 in a tenth of a second."""
    beats: list[object] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details[0])
    run(AgentTask(agent=sim("a", "g", 100.0), time_scale=0.001), env=env)
    assert beats[-1] == {"progress": 1.0}


def test_simulate_honours_cancellation() -> None:
    """Cancelling a long simulated agent ends it with CancelledError, promptly."""
    env = ActivityEnvironment()

    async def go() -> None:
        task = asyncio.ensure_future(env.run(run_agent, AgentTask(agent=sim("a", "g", 60.0))))
        await asyncio.sleep(0.3)
        env.cancel()
        await asyncio.wait_for(task, timeout=5)

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(go())


@pytest.mark.parametrize(("kind", "words"), [("http", "no backend yet"), ("zap", "unknown kind")])
def test_kinds_without_a_backend_fail_non_retryably(kind: str, words: str) -> None:
    """Planned-but-unbuilt and unknown kinds fail once with a message that says which."""
    with pytest.raises(ApplicationError) as caught:
        run(AgentTask(agent=sim("a", "g", 0.0, kind=kind)))
    assert caught.value.non_retryable
    assert words in caught.value.message
