"""The baseline for bench/overhead.py: what a person would write by hand to run N agents at once.

One workflow, one `execute_activity` per agent, gathered; the same activity, timeouts and retry
policy as the engine uses. It also accepts the `agent_progress` signal the activity sends (and
returns what it got), so tests can check that signal path on a real server.

Kept in its own module, not in the bench script: the workflow sandbox re-imports the module a
workflow is defined in, and a script's module is `__main__`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    # pee.engine.compiled too: the payload converter resolves CompiledAgent's type hints through
    # the sandbox's sys.modules, so the module must be imported here, not only transitively
    import pee.engine.compiled  # noqa: F401
    from pee.activities.agents import run_agent
    from pee.activities.types import PROGRESS_SIGNAL, AgentProgress, AgentResult, AgentTask


@dataclass
class HandWrittenInput:
    tasks: list[AgentTask]
    timeout_s: float = 60.0
    heartbeat_timeout_s: float = 10.0
    max_attempts: int = 3


@dataclass
class HandWrittenResult:
    results: list[AgentResult]
    progress: list[AgentProgress] = field(default_factory=list)


@workflow.defn
class HandWrittenWorkflow:
    def __init__(self) -> None:
        self._progress: list[AgentProgress] = []

    @workflow.run
    async def run(self, input: HandWrittenInput) -> HandWrittenResult:
        timeout = timedelta(seconds=input.timeout_s)
        results = await asyncio.gather(
            *[
                workflow.execute_activity(
                    run_agent,
                    task,
                    activity_id=task.agent.id,
                    schedule_to_close_timeout=timeout,
                    start_to_close_timeout=timeout,
                    heartbeat_timeout=timedelta(seconds=input.heartbeat_timeout_s),
                    retry_policy=RetryPolicy(maximum_attempts=input.max_attempts),
                )
                for task in input.tasks
            ]
        )
        return HandWrittenResult(results=list(results), progress=list(self._progress))

    @workflow.signal(name=PROGRESS_SIGNAL)
    def agent_progress(self, progress: AgentProgress) -> None:
        self._progress.append(progress)


@activity.defn(name="noop_activity")
async def noop_activity(agent_id: str) -> str:
    """Does nothing: the floor any workflow pays per activity (bench/overhead.py's baseline)."""
    return agent_id


@dataclass
class NoopGatherInput:
    agent_ids: list[str]
    timeout_s: float = 60.0


@workflow.defn
class NoopGatherWorkflow:
    """What a person would write by hand for N independent steps: one activity each, gathered,
    no heartbeat, no retries to speak of, nothing recorded."""

    @workflow.run
    async def run(self, input: NoopGatherInput) -> list[str]:
        timeout = timedelta(seconds=input.timeout_s)
        return list(
            await asyncio.gather(
                *[
                    workflow.execute_activity(
                        noop_activity,
                        agent_id,
                        activity_id=agent_id,
                        start_to_close_timeout=timeout,
                    )
                    for agent_id in input.agent_ids
                ]
            )
        )
