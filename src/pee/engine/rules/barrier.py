"""The smart barrier's decision table, as pure functions of what the workflow has recorded.

The workflow asks ``decide`` when a group starts, each time one of its agents finishes and when
the group deadline passes, then carries the decision out (wait, move the deadline, cancel and fill
defaults, or cancel and re-run the unfinished agents one at a time). After such a sequential
fallback it asks ``decide_after_fallback`` whether the group passes, continues on defaults or fails
the run. No Temporal here: every input is recorded history (agent states, the times at which the
workflow saw progress signals, ``workflow.now()``), so a replay makes the same decisions, and every
row of the table is a unit test.

Rows of ``decide``, first match wins:

1. every agent succeeded                                           -> all_completed
2. an agent failed with a critical (non-retryable) error           -> abort_and_fallback
3. agents unfinished, deadline not reached                         -> wait
4a. deadline reached, the server was asked (``observed``) and a running agent's activity has
   not been started by a worker yet, or has ended with its outcome
   not yet seen by the workflow                                    -> postpone_deadline
4b. deadline reached, observed, and a worker started a running agent's first attempt
   ``lag_s`` (at least MIN_LAG_S) after the run handed it over or
   was behind that long while it ran, with the deadline moved
   by that lag not reached yet                                     -> postpone_deadline
4. deadline reached, a running agent reported progress within the
   progress window (observed: heartbeat within the window or the
   heartbeat timeout), an extension left                           -> extend_timeout
5. deadline reached or every remaining agent failed, >= 1 success
   and the success criteria met                                    -> continue_with_partial
6. otherwise (none succeeded, or the criteria unmet)               -> abort_and_fallback
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pee.engine.states import (
    ACTIVITY_NOT_THE_AGENTS,
    BARRIER_UNFINISHED,
    ActivityState,
    BarrierAction,
    BarrierStatus,
)

# Agent states the barrier distinguishes (pee.engine.states.BarrierStatus): "pending" = not
# started yet (sequential groups); a timed-out agent is "failed"; "critical_failed" = a
# non-retryable error. Module-level names kept for the decision table's readability.
PENDING = BarrierStatus.PENDING
RUNNING = BarrierStatus.RUNNING
SUCCEEDED = BarrierStatus.SUCCEEDED
FAILED = BarrierStatus.FAILED
CRITICAL_FAILED = BarrierStatus.CRITICAL_FAILED

# Decisions of `decide`
ALL_COMPLETED = BarrierAction.ALL_COMPLETED
WAIT = BarrierAction.WAIT
EXTEND_TIMEOUT = BarrierAction.EXTEND_TIMEOUT
POSTPONE_DEADLINE = BarrierAction.POSTPONE_DEADLINE
CONTINUE_WITH_PARTIAL = BarrierAction.CONTINUE_WITH_PARTIAL
ABORT_AND_FALLBACK = BarrierAction.ABORT_AND_FALLBACK

# Outcomes of `decide_after_fallback`
FALLBACK_SUCCEEDED = BarrierAction.FALLBACK_SUCCEEDED
CONTINUE_WITH_DEFAULTS = BarrierAction.CONTINUE_WITH_DEFAULTS
FAIL = BarrierAction.FAIL

# the seed: "extend once, by at most 5 minutes"
MAX_EXTENSION_S = 300.0

# row 4b: worker lag below this is the jitter of any timer and task queue, not a worker that
# is behind; giving it back would only add decisions
MIN_LAG_S = 0.1

# partial_failure_handling values that let a group whose fallback failed continue on defaults
DEFAULTS_POLICIES = ("continue_with_defaults", "use_defaults", "fill_with_defaults")


@dataclass(frozen=True)
class AgentView:
    status: BarrierStatus = PENDING
    # run-relative seconds at which the workflow last received a progress signal from the agent
    last_progress_s: float | None = None
    attempts: int = 0
    # what the server said about its activity at the deadline (BarrierView.observed), else None
    activity: ActivityState | None = None


@dataclass(frozen=True)
class BarrierView:
    """What the barrier knows about one group at one moment (times in run-relative seconds)."""

    group: str
    # in the group's declared order; every list in a decision keeps this order
    agents: Sequence[str]
    states: Mapping[str, AgentView]
    now_s: float
    # None = no group deadline (a lone agent bounded by its own timeout)
    deadline_s: float | None = None
    extensions_used: int = 0
    max_extensions: int = 1
    extension_s: float = MAX_EXTENSION_S
    # a progress signal at most this old counts as "still making progress"
    progress_window_s: float = 30.0
    # batch mode: agents send no progress signals, so the workflow marks running agents whose
    # activities heartbeat as seen now; the extension's reason then says so
    liveness_by_heartbeat: bool = False
    # the server was asked at this deadline (pee.activities.liveness): running agents carry
    # their activity's state, and last_progress_s is their last heartbeat
    observed: bool = False
    # observed: a heartbeat this old still counts (the SDK sends them every 0.8 x this timeout)
    heartbeat_timeout_s: float = 0.0
    # observed: the longest time between the run handing a running agent's first attempt to a
    # worker and a worker starting it (the server's start time), less what earlier
    # postponements of this group already gave back; 0 = none, or runs before it was counted
    lag_s: float = 0.0
    # CompiledGroup.success_criteria: "all" | "at_least_one" | "at_least" (+ count)
    criteria: str = "at_least_one"
    count: int = 1
    # CompiledGroup.quality_impact: the level recorded when the group continues without some agents
    quality_impact: str = "medium"
    # CompiledGroup.partial_failure_handling (used after a failed fallback)
    partial_failure_handling: str = "continue_with_available_results"
    # what ``agents`` names in the reasons: "agent", or "item" when a group-level fan-out's
    # barrier judges whole items (each a chain of agents)
    unit: str = "agent"


@dataclass(frozen=True)
class BarrierDecision:
    action: BarrierAction
    reason: str
    # agents to cancel (running, or never started)
    cancel: list[str] = field(default_factory=list)
    # agents whose declared defaults fill their missing outputs
    fill_defaults: list[str] = field(default_factory=list)
    # agents to re-run one at a time (abort_and_fallback)
    fallback: list[str] = field(default_factory=list)
    # extend_timeout: the new group deadline (run-relative seconds)
    new_deadline_s: float | None = None
    quality_impact: str | None = None
    # abort_and_fallback / continue_with_defaults: what to tell the operator
    alert: str | None = None
    # postpone_deadline by row 4b: the worker lag this decision gave back to the group
    lag_s: float = 0.0


def required_successes(criteria: str, count: int, total: int) -> int:
    if criteria == "all":
        return total
    if criteria == "at_least":
        return max(1, min(count, total))
    return min(1, total)


def describe_criteria(criteria: str, count: int, unit: str = "agent") -> str:
    if criteria == "all":
        return f"all {unit}s succeed"
    if criteria == "at_least":
        return f"at least {count} {unit}(s) succeed"
    return f"at least one {unit} succeeds"


def _with(view: BarrierView, status: BarrierStatus | tuple[BarrierStatus, ...]) -> list[str]:
    wanted = (status,) if isinstance(status, str) else status
    return [a for a in view.agents if _status(view, a) in wanted]


def _status(view: BarrierView, agent_id: str) -> BarrierStatus:
    state = view.states.get(agent_id)
    return state.status if state is not None else PENDING


def _quality(view: BarrierView, missing: list[str]) -> str:
    return (
        f"{view.quality_impact}: {len(missing)} of {len(view.agents)} {view.unit}(s) "
        f"without their own results ({', '.join(missing)}); declared defaults used where given"
    )


def _abort(cancel: list[str], rerun: list[str]) -> str:
    cancelling = f"cancelling {cancel}, " if cancel else ""
    return f"{cancelling}re-running {rerun} one at a time"


def _seconds(value: float) -> str:
    return f"{value:g}s"


def decide(view: BarrierView) -> BarrierDecision:
    # runs at every wake-up of a group (each agent's end): one pass over the agents, and no
    # list-membership scans (a 200-agent group spent most of its barrier time on those)
    total = len(view.agents)
    succeeded: list[str] = []
    critical: list[str] = []
    failed: list[str] = []
    running: list[str] = []
    unfinished: list[str] = []
    not_succeeded: list[str] = []
    for a in view.agents:
        status = _status(view, a)
        if status == SUCCEEDED:
            succeeded.append(a)
            continue
        not_succeeded.append(a)
        if status == CRITICAL_FAILED:
            critical.append(a)
            failed.append(a)
        elif status == FAILED:
            failed.append(a)
        elif status in BARRIER_UNFINISHED:
            unfinished.append(a)
            if status == RUNNING:
                running.append(a)
    need = required_successes(view.criteria, view.count, total)

    if len(succeeded) == total:
        return BarrierDecision(ALL_COMPLETED, f"all {total} {view.unit}(s) succeeded")

    if critical:
        plan = _abort(unfinished, not_succeeded)
        reason = f"critical (non-retryable) error in {critical}; {plan}"
        return BarrierDecision(
            ABORT_AND_FALLBACK,
            reason,
            cancel=unfinished,
            fallback=not_succeeded,
            alert=f"group '{view.group}': {reason}",
        )

    deadline_reached = view.deadline_s is not None and view.now_s >= view.deadline_s
    if unfinished and not deadline_reached:
        until = (
            ""
            if view.deadline_s is None
            else (f"; deadline in {_seconds(round(view.deadline_s - view.now_s, 3))}")
        )
        return BarrierDecision(WAIT, f"waiting for {unfinished}{until}")

    if unfinished:
        assert view.deadline_s is not None
        extension = min(view.extension_s, MAX_EXTENSION_S)
        if view.observed:
            lagging = [a for a in running if view.states[a].activity in ACTIVITY_NOT_THE_AGENTS]
            if lagging:
                return _postpone(view, lagging, extension)
            if view.lag_s >= MIN_LAG_S and view.now_s < view.deadline_s + view.lag_s:
                return _give_back_lag(view, running)
        window = (
            max(view.progress_window_s, view.heartbeat_timeout_s)
            if view.observed
            else view.progress_window_s
        )
        progressing = [
            a
            for a in running
            if (seen := view.states[a].last_progress_s) is not None
            and view.now_s - seen <= window
            and (not view.observed or view.states[a].activity == ActivityState.STARTED)
        ]
        if progressing and view.extensions_used < view.max_extensions and extension > 0:
            if view.observed:
                seen_how = f"heartbeat within the last {_seconds(window)}"
            elif view.liveness_by_heartbeat:
                seen_how = (
                    "still running, kept alive by heartbeats (batch mode: no progress signals)"
                )
            else:
                seen_how = f"reported progress within the last {_seconds(view.progress_window_s)}"
            reason = (
                f"deadline reached; {progressing} {seen_how}; extension "
                f"{view.extensions_used + 1} of {view.max_extensions} by {_seconds(extension)}"
            )
            return BarrierDecision(
                EXTEND_TIMEOUT, reason, new_deadline_s=round(view.deadline_s + extension, 3)
            )

    cause = (
        f"deadline reached with {unfinished} unfinished"
        if unfinished
        else f"every remaining {view.unit} failed ({failed})"
    )
    criteria = describe_criteria(view.criteria, view.count, view.unit)
    score = f"{len(succeeded)}/{total} succeeded, {criteria}"
    if succeeded and len(succeeded) >= need:
        reason = f"{cause}; {score}: continuing without {not_succeeded}"
        return BarrierDecision(
            CONTINUE_WITH_PARTIAL,
            reason,
            cancel=unfinished,
            fill_defaults=not_succeeded,
            quality_impact=_quality(view, not_succeeded),
        )

    unmet = "none succeeded" if not succeeded else "success criteria unmet"
    reason = f"{cause}; {score}: {unmet}; {_abort(unfinished, not_succeeded)}"
    return BarrierDecision(
        ABORT_AND_FALLBACK,
        reason,
        cancel=unfinished,
        fallback=not_succeeded,
        alert=f"group '{view.group}': {reason}",
    )


def _postpone(view: BarrierView, lagging: list[str], extension: float) -> BarrierDecision:
    """Row 4a: the agents' own time has not started (no worker took the activity) or has ended
    (the outcome is on its way), or cannot be told from ended (a local activity whose worker
    holds its batch child's task, and with it the outcomes): the deadline moves, no extension
    is used. Each agent's own activity timeout still bounds how often this can happen."""
    states = [view.states[a].activity for a in lagging]
    why = [
        "not started by a worker yet"
        if state == ActivityState.WAITING_TO_START
        else "running as a local activity, its outcome held by its worker's task"
        if state == ActivityState.LOCAL
        else "outcome on its way"
        for state in states
    ]
    causes = "; ".join(sorted(set(why)))
    by = max(extension, view.heartbeat_timeout_s, 1.0)
    reason = (
        f"deadline reached; {lagging} {causes} (engine/worker lag is not the agents' time); "
        f"deadline postponed by {_seconds(by)}"
    )
    return BarrierDecision(POSTPONE_DEADLINE, reason, new_deadline_s=round(view.now_s + by, 3))


def _give_back_lag(view: BarrierView, running: list[str]) -> BarrierDecision:
    """Row 4b: the deadline counts the agents' time, and a worker started one of them lag_s
    after the run handed it over (a busy worker or task queue): that time is given back, no
    extension used. The agents' own activity timeouts still bound them."""
    assert view.deadline_s is not None
    new_deadline = round(view.deadline_s + view.lag_s, 3)
    reason = (
        f"deadline reached; a worker started {running} up to {_seconds(round(view.lag_s, 3))} "
        "after the run handed them over (engine/worker lag is not the agents' time); "
        f"deadline moved by that to {_seconds(new_deadline)}"
    )
    return BarrierDecision(POSTPONE_DEADLINE, reason, new_deadline_s=new_deadline, lag_s=view.lag_s)


def decide_after_fallback(view: BarrierView) -> BarrierDecision:
    """Judge a group once its sequential fallback has run (no agent is unfinished any more)."""
    total = len(view.agents)
    succeeded = _with(view, SUCCEEDED)
    not_succeeded = [a for a in view.agents if a not in succeeded]
    need = required_successes(view.criteria, view.count, total)
    criteria = describe_criteria(view.criteria, view.count, view.unit)
    score = f"{len(succeeded)}/{total} succeeded, {criteria}"

    if total == 0 or (succeeded and len(succeeded) >= need):
        if not not_succeeded:
            return BarrierDecision(FALLBACK_SUCCEEDED, f"sequential fallback: {score}")
        return BarrierDecision(
            FALLBACK_SUCCEEDED,
            f"sequential fallback: {score}; continuing without {not_succeeded}",
            fill_defaults=not_succeeded,
            quality_impact=_quality(view, not_succeeded),
        )

    if view.partial_failure_handling in DEFAULTS_POLICIES:
        reason = (
            f"sequential fallback failed too ({score}); partial_failure_handling "
            f"'{view.partial_failure_handling}': continuing with the defaults of {not_succeeded}"
        )
        return BarrierDecision(
            CONTINUE_WITH_DEFAULTS,
            reason,
            fill_defaults=not_succeeded,
            quality_impact=_quality(view, not_succeeded),
            alert=f"group '{view.group}': {reason}",
        )

    return BarrierDecision(
        FAIL, f"sequential fallback failed too ({score}); failed: {not_succeeded}"
    )
