"""The statuses of agents, groups, runs and barrier views, and their named sets, defined once.

Every status is a ``str`` enum whose value is the string the reports, events, search attributes
and committed histories have always carried, so ``status == "running"``, JSON encoding and the
Temporal payload converter all see the same text as before. The sets are tuples, not frozensets:
membership reads the same, and iterating one in workflow code never depends on PYTHONHASHSEED.
"""

from __future__ import annotations

from enum import Enum


class StrEnum(str, Enum):
    """A str enum whose str() and f-string are its value, on Python 3.10 as on 3.11+.

    On 3.11 an f-string of a plain ``(str, Enum)`` member gives "AgentStatus.RUNNING"; the
    workflow builds event names as ``f"agent_{status}"``, so that would change every event.
    (``enum.StrEnum`` needs 3.11; requires-python is >=3.10.)
    """

    # the member is a str holding its value: str's own methods read it without going through
    # Enum's `value` descriptor (these run for every event and details line of a run)
    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(self, spec)


class AgentStatus(StrEnum):
    PENDING = "pending"  # waiting for its group (or, in a sequential group, its turn)
    BLOCKED = "blocked"  # ready, waiting for a conflict on one of its inputs to resolve
    QUEUED = "queued"  # ready, waiting for admission (resources)
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    DEFAULTED = "defaulted"  # cut short, its outputs filled with defaults
    SKIPPED = "skipped"  # never started, its group ended first


# the workflow has stopped watching it
AGENT_FINISHED = (
    AgentStatus.SUCCEEDED,
    AgentStatus.FAILED,
    AgentStatus.TIMED_OUT,
    AgentStatus.CANCELLED,
    AgentStatus.DEFAULTED,
    AgentStatus.SKIPPED,
)
# the complement of AGENT_FINISHED: still to run, or running (tests assert the partition)
AGENT_UNFINISHED = (
    AgentStatus.PENDING,
    AgentStatus.BLOCKED,
    AgentStatus.QUEUED,
    AgentStatus.RUNNING,
)
# not started yet: waiting for its group, or (blocked) for a conflict on one of its inputs;
# "queued" (ready, waiting for resources) is left out: it took no snapshot yet either, but it
# does not wait for conflicts opened after it was queued
AGENT_NOT_STARTED = (AgentStatus.PENDING, AgentStatus.BLOCKED)
# ready and waiting to start: for a conflict (blocked) or for resources (queued)
AGENT_WAITING = (AgentStatus.BLOCKED, AgentStatus.QUEUED)
# ended in an error (trace spans mark these as errors)
AGENT_ERROR = (AgentStatus.FAILED, AgentStatus.TIMED_OUT)
# stopped before producing its own outputs (the bottleneck report's "cut short")
AGENT_CUT_SHORT = (AgentStatus.CANCELLED, AgentStatus.DEFAULTED, AgentStatus.TIMED_OUT)
# ended and ran (the progress view's "done" count: neither cut short nor skipped)
AGENT_RAN = (AgentStatus.SUCCEEDED, AgentStatus.FAILED, AgentStatus.TIMED_OUT)


class GroupStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    VALIDATING = "validating"  # its agents ended, its cross-validation runs
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"  # passed on partial results or defaults
    FAILED = "failed"
    CANCELLED = "cancelled"


# the run moves on past it
GROUP_PASSED = (GroupStatus.SUCCEEDED, GroupStatus.PARTIAL)
# the group the run is in now (search attribute PeeGroup)
GROUP_CURRENT = (GroupStatus.RUNNING, GroupStatus.VALIDATING)


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


RUN_FINAL = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)


class BarrierStatus(StrEnum):
    """An agent as the smart barrier sees it (AgentState.barrier_view maps AgentStatus here):
    blocked and queued agents are "pending", a timed-out one "failed", and a non-retryable
    failure "critical_failed"."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CRITICAL_FAILED = "critical_failed"


# not judged yet: the barrier waits for these (a narrower vocabulary than AGENT_UNFINISHED)
BARRIER_UNFINISHED = (BarrierStatus.PENDING, BarrierStatus.RUNNING)


class BarrierAction(StrEnum):
    """What the smart barrier decided for a group (pee.engine.rules.barrier), recorded in the
    group's decision history and as the event ``barrier_<action>``."""

    # decide
    ALL_COMPLETED = "all_completed"
    WAIT = "wait"
    EXTEND_TIMEOUT = "extend_timeout"
    # the deadline passed while an agent's activity waited for a worker (or its outcome for the
    # workflow): engine or worker lag, so the deadline moves and no extension is used
    POSTPONE_DEADLINE = "postpone_deadline"
    CONTINUE_WITH_PARTIAL = "continue_with_partial"
    ABORT_AND_FALLBACK = "abort_and_fallback"
    # decide_after_fallback
    FALLBACK_SUCCEEDED = "fallback_succeeded"
    CONTINUE_WITH_DEFAULTS = "continue_with_defaults"
    FAIL = "fail"
    # not the barrier's: the group passed in the run this one resumes (run --resume-from)
    RESUMED = "resumed"


class ActivityState(StrEnum):
    """An agent's activity as the server describes it at a group deadline
    (pee.activities.liveness): the barrier counts only time a worker had the agent."""

    STARTED = "started"  # a worker is running it
    WAITING_TO_START = "waiting_to_start"  # scheduled, first attempt, no worker took it yet
    RETRYING = "retrying"  # scheduled again after a failed attempt
    CANCEL_REQUESTED = "cancel_requested"
    ABSENT = "absent"  # not pending: ended (its outcome on its way) or not scheduled yet
    # a local activity of a batch child whose workflow task a worker holds: running, or ended
    # with its outcome held until that worker completes the task (BatchSpec.local_s)
    LOCAL = "local"


# the agent's own time has not started, or has ended, or (a local activity) cannot be told
# from ended: engine or worker lag, not the agent's; its own timeout still bounds it
ACTIVITY_NOT_THE_AGENTS = (
    ActivityState.WAITING_TO_START,
    ActivityState.ABSENT,
    ActivityState.LOCAL,
)
