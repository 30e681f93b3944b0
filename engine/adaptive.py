"""The seed's `adaptive_resource_allocation` inside a run: `adjust_parallel_group_sizes`.

When a plan says `adaptive: true` and lists `adjust_parallel_group_sizes` among
`performance_monitoring.performance_optimization.adaptive_resource_allocation.actions`, an agent
finishing with a response time over the `response_time` alert threshold (scaled like every
duration) lowers its group's concurrency by one: from the number of its agents that were running
(the finished one included) to at least 1. From then on, queued agents of that group start only
while fewer than the limit run; the others are withheld from admission (they keep their place
and their age). Slow answers from a shared backend (a model server, a build host) are the usual
reason, and fewer agents at once is the remedy the seed names.

The other seed actions (`increase_cpu_allocation`, `modify_timeout_values`,
`enable_aggressive_caching`) are not applied inside a run; adaptive deadlines come from learned
durations at compile time (engine.learning).

Pure and deterministic: the workflow calls `observe` when an agent finishes and `apply` before
each admission round.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from engine.compiled import CompiledPlan
from engine.monitoring import Settings
from engine.scheduler import Admission, Request

ADJUST_GROUP_SIZES = "adjust_parallel_group_sizes"


def enabled_actions(plan: CompiledPlan) -> list[str]:
    """The seed actions an `adaptive: true` plan lists (none for other plans)."""
    if plan.adaptive_margin is None:
        return []
    optimisation = (plan.monitoring or {}).get("performance_optimization") or {}
    allocation = optimisation.get("adaptive_resource_allocation") or {}
    actions = allocation.get("actions") if isinstance(allocation, dict) else None
    return [str(a) for a in actions] if isinstance(actions, list) else []


@dataclass
class GroupThrottle:
    threshold_s: float
    # group id -> how many of its agents may run at once
    limits: dict[str, int] = field(default_factory=dict)
    # queued requests of limited groups, withheld from admission until their group has room
    held: list[Request] = field(default_factory=list)

    @classmethod
    def from_plan(cls, plan: CompiledPlan, time_scale: float) -> GroupThrottle | None:
        """A throttle when the plan enables adjust_parallel_group_sizes and sets a response_time
        threshold; None otherwise (the run then issues exactly the commands it always did)."""
        if ADJUST_GROUP_SIZES not in enabled_actions(plan):
            return None
        threshold = Settings.from_resources(plan.resources, time_scale).thresholds.response_time
        return None if threshold is None else cls(threshold)

    def observe(self, group_id: str, agent_id: str, response_time_s: float,
                running_in_group: int) -> str | None:
        """An agent of `group_id` finished after `response_time_s`, with `running_in_group` of
        its agents still running. Returns what changed, or None."""
        if response_time_s <= self.threshold_s:
            return None
        current = self.limits.get(group_id, running_in_group + 1)
        lowered = max(1, current - 1)
        if lowered >= current:
            return None
        self.limits[group_id] = lowered
        return (f"adaptive allocation: group '{group_id}' now runs at most {lowered} agent(s) at "
                f"once (was {current}): '{agent_id}' took {response_time_s:g} s, over the "
                f"response_time threshold {self.threshold_s:g} s")

    def apply(self, admission: Admission, group_of: Mapping[str, str], now: float,
              still_queued: Callable[[str], bool]) -> None:
        """Before an admission round: of each limited group's queued agents, only as many as
        it has room for stay eligible (best ranked first); the rest wait here. Withheld agents
        that stopped waiting (cancelled) are dropped."""
        if not self.limits:
            return
        candidates = [r for r in admission.waiting + self.held if still_queued(r.agent_id)]
        room = {g: limit - sum(1 for a in admission.running if group_of.get(a) == g)
                for g, limit in self.limits.items()}
        eligible: list[str] = []
        for request in sorted(candidates, key=lambda r: admission.rank(r, now)):
            group_id = group_of.get(request.agent_id, "")
            if group_id not in room:
                eligible.append(request.agent_id)
            elif room[group_id] > 0:
                room[group_id] -= 1
                eligible.append(request.agent_id)
        admission.waiting = [r for r in candidates if r.agent_id in eligible]
        self.held = [r for r in candidates if r.agent_id not in eligible]
