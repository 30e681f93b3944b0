"""The group barrier's decision table, as a pure function of what the workflow has recorded.

The workflow calls ``decide`` every time an agent of the group finishes and once more when the
group deadline passes; it then carries out the decision (cancel, fill defaults, fail). Keeping the
table here, free of Temporal, makes every branch testable without a server and keeps replay
deterministic: the inputs are recorded history, the output is plain data.

This is the minimal table (all done / partial at the deadline / fail). The smart barrier adds
``extend`` (agents still heartbeating, extensions left) and ``sequential_fallback`` (re-run one at
a time) as further actions without changing the workflow's shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# Agent states the barrier distinguishes. "pending" = not started yet (sequential groups).
SUCCEEDED = "succeeded"
FAILED = "failed"
RUNNING = "running"
PENDING = "pending"
UNFINISHED = (RUNNING, PENDING)

# Actions
WAIT = "wait"
PROCEED = "proceed"
CONTINUE_WITH_PARTIAL = "continue_with_partial"
FAIL = "fail"


@dataclass(frozen=True)
class BarrierView:
    """What the barrier knows about one group at one moment."""

    group: str
    # in the group's declared order; the decision lists agents in this order
    agents: Sequence[str]
    # agent id -> one of SUCCEEDED, FAILED, RUNNING, PENDING
    states: Mapping[str, str]
    deadline_reached: bool = False
    # CompiledGroup.success_criteria: "all" | "at_least_one" | "at_least" (+ count)
    criteria: str = "at_least_one"
    count: int = 1


@dataclass(frozen=True)
class BarrierDecision:
    action: str
    reason: str
    # agents to cancel (still running or never started)
    cancel: list[str] = field(default_factory=list)
    # agents whose declared defaults fill their missing outputs
    fill_defaults: list[str] = field(default_factory=list)


def required_successes(criteria: str, count: int, total: int) -> int:
    if criteria == "all":
        return total
    if criteria == "at_least":
        return max(1, min(count, total))
    return min(1, total)


def decide(view: BarrierView) -> BarrierDecision:
    succeeded = [a for a in view.agents if view.states.get(a) == SUCCEEDED]
    unfinished = [a for a in view.agents if view.states.get(a, PENDING) in UNFINISHED]
    failed = [a for a in view.agents if view.states.get(a) == FAILED]
    need = required_successes(view.criteria, view.count, len(view.agents))

    if unfinished and not view.deadline_reached:
        return BarrierDecision(WAIT, f"{len(unfinished)} agent(s) still running")

    if not unfinished and len(succeeded) == len(view.agents):
        return BarrierDecision(PROCEED, "all agents succeeded")

    missing = unfinished + failed
    # keep the group's order in the lists the workflow acts on
    missing = [a for a in view.agents if a in missing]
    if len(succeeded) >= need and succeeded:
        if unfinished:
            reason = (
                f"deadline reached with {len(succeeded)}/{len(view.agents)} succeeded; "
                f"cancelled {unfinished}"
            )
        else:
            reason = f"{len(succeeded)}/{len(view.agents)} succeeded; failed {failed}"
        return BarrierDecision(CONTINUE_WITH_PARTIAL, reason, list(unfinished), missing)

    if unfinished:
        reason = (
            f"deadline reached with {len(succeeded)} of {need} required successes; "
            f"still running {unfinished}, failed {failed}"
        )
    else:
        reason = f"{len(succeeded)} of {need} required successes; failed {failed}"
    return BarrierDecision(FAIL, reason, list(unfinished), [])
