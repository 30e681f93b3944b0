"""The one activity every agent runs as: `run_agent` dispatches on the agent's kind."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import simulate
from activities.types import AgentResult, AgentTask

Backend = Callable[[AgentTask, float], Awaitable[AgentResult]]

BACKENDS: dict[str, Backend] = {"simulate": simulate.run}
# declared in the plan format, backends still to come: fail clearly rather than "unknown"
PLANNED_KINDS = ("template", "command", "python", "http")


def time_scale(task: AgentTask) -> float:
    if task.time_scale is not None:
        return float(task.time_scale)
    return float(os.environ.get("PEE_TIME_SCALE", "1") or 1)


@activity.defn
async def run_agent(task: AgentTask) -> AgentResult:
    kind = task.agent.kind
    attempt = activity.info().attempt
    backend = BACKENDS.get(kind)
    if backend is None:
        if kind in PLANNED_KINDS:
            message = f"agent '{task.agent.id}': kind '{kind}' has no backend yet; use 'simulate'"
        else:
            known = sorted([*BACKENDS, *PLANNED_KINDS])
            message = f"agent '{task.agent.id}': unknown kind '{kind}'; expected one of {known}"
        # retrying cannot help: the plan itself is wrong
        raise ApplicationError(
            message, {"attempt": attempt}, type="UnknownAgentKind", non_retryable=True
        )
    try:
        return await backend(task, time_scale(task))
    except ApplicationError as err:
        # the attempt number travels to the workflow's report
        raise ApplicationError(
            err.message,
            {"attempt": attempt},
            type=err.type,
            non_retryable=err.non_retryable,
            next_retry_delay=err.next_retry_delay,
            category=err.category,
        ) from err
    except Exception as err:
        # keep the class name as the error type so RetrySpec.non_retryable can match it
        raise ApplicationError(
            f"agent '{task.agent.id}': {err}", {"attempt": attempt}, type=type(err).__name__
        ) from err


ACTIVITIES = [run_agent]
