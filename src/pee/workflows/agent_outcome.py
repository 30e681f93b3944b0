"""What became of one agent's `run_agent` activity, as data: the AgentResult, or how it failed.

PlanWorkflow runs an agent's activity itself (a small plan) or has an AgentBatchWorkflow child
run it (batch mode, src/pee/workflows/agent_batch.py); either way the ActivityError is turned into
an AgentOutcome here, so the parent maps both onto exactly the same state updates. Pure functions of
the error (no Temporal commands), safe in workflow code.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    RetryState,
    TimeoutError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    from pee.activities.types import AgentResult
    from pee.engine.compiled import RetrySpec


@dataclass
class AgentOutcome:
    agent_id: str
    # batch mode: the activity id it ran under ("<agent>" or "<agent>#fallback")
    activity_id: str = ""
    # the result when the activity succeeded; None when it failed or was cancelled
    result: AgentResult | None = None
    cancelled: bool = False
    # the failure, as the report shows it ("Type: message", "timed out (...)")
    error: str | None = None
    # retrying cannot help: the barrier aborts the group at once
    critical: bool = False
    timed_out: bool = False
    # attempts the failure says were made (None: not known, count one)
    attempts: int | None = None


def outcome_from_error(agent_id: str, err: ActivityError, retry: RetrySpec) -> AgentOutcome:
    if is_cancelled_exception(err):
        return AgentOutcome(agent_id, cancelled=True)
    return AgentOutcome(
        agent_id,
        error=describe_error(err),
        critical=is_critical(err),
        timed_out=isinstance(err.cause, TimeoutError),
        attempts=failed_attempts(err, retry),
    )


def describe_error(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        text = f"{cause.type or 'Error'}: {cause.message}"
        # the SDK's own failures (no type: "Failed decoding arguments" when the agent's input
        # cannot be read, e.g. a payload blob on another host) say why only in their cause
        if not cause.type and cause.cause is not None:
            text += f": {cause.cause}"
        return text
    if isinstance(cause, TimeoutError):
        return f"timed out ({cause.type.name if cause.type else 'timeout'})"
    return str(cause or err)


def is_critical(err: ActivityError) -> bool:
    """A non-retryable failure: retrying cannot help, so the barrier aborts the group at once."""
    if err.retry_state == RetryState.NON_RETRYABLE_FAILURE:
        return True
    return isinstance(err.cause, ApplicationError) and err.cause.non_retryable


def failed_attempts(err: ActivityError, retry: RetrySpec) -> int | None:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.details:
        first = cause.details[0]
        if isinstance(first, dict) and isinstance(first.get("attempt"), int):
            return first["attempt"]
    if err.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED:
        return retry.max_attempts
    return None
