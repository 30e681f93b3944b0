"""The seed's `adaptive_resource_allocation` actions inside a run.

When a plan says `adaptive: true` and lists an action among
`performance_monitoring.performance_optimization.adaptive_resource_allocation.actions`, the
seed's trigger `performance_below_threshold` applies it: an agent finishing with a response time
over the `response_time` alert threshold (scaled like every duration). Each application is an
event and a warning alert in the run's report.

- `adjust_parallel_group_sizes` (GroupThrottle): the slow agent's group runs one agent fewer at
  once, from the number of its agents that were running (the finished one included) to at least
  1. Queued agents of that group start only while fewer than the limit run; the others are
  withheld from admission (they keep their place and their age). Slow answers from a shared
  backend (a model server, a build host) are the usual reason, and fewer at once is the remedy.
- `modify_timeout_values` (TimeoutStretch): the slow agent's group deadline (when its group is
  still running) and the deadlines of groups not yet started that hold agents of the same role
  move later by the overrun (response time - threshold), in total at most
  MAX_TIMEOUT_SHIFT_S (the seed's 5-minute extension cap) x time scale per group. The group's
  barrier history gets a `timeout_adapted` entry saying why (for a later group, when it starts).
- `increase_cpu_allocation` (CpuBoost): the run's admission gets CPU_STEP x total_cpu_units more
  CPU to hand out per slow agent, up to CPU_CAP x total_cpu_units (memory never changes), so
  more queued agents fit. A shared pool (`resource_manager.resource_pool.shared`) is other
  runs' too: there the action does not apply, and the run says so once.
- `enable_aggressive_caching` (AggressiveCaching): agent outputs are looked up in the agent
  output cache from the run's start, and from the first slow agent on, agents that start store
  their outputs for AGGRESSIVE_CACHE_TTL_S (1 h) even when the plan's TTL is
  session_lifetime, so a rerun of the plan reuses them. A plan with a numeric TTL already
  caches across runs: there nothing changes.

Plans without `adaptive: true`, or without an action, issue exactly the commands they always
did. Pure and deterministic: the workflow calls `observe` when an agent finishes (and
GroupThrottle.apply before each admission round).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from pee.engine.compiled import CompiledPlan
from pee.engine.rules.monitoring import Settings
from pee.engine.rules.scheduler import Admission, Pool, Request

ADJUST_GROUP_SIZES = "adjust_parallel_group_sizes"
MODIFY_TIMEOUTS = "modify_timeout_values"
INCREASE_CPU = "increase_cpu_allocation"
AGGRESSIVE_CACHING = "enable_aggressive_caching"

# the seed's cap on a barrier extension (5 minutes), scaled: the most a group's deadline moves
MAX_TIMEOUT_SHIFT_S = 300.0
# per slow agent, the run's CPU grows by this share of total_cpu_units, up to CPU_CAP x it
CPU_STEP = 0.1
CPU_CAP = 1.5
# how long outputs stored by aggressive caching stay reusable by later runs
AGGRESSIVE_CACHE_TTL_S = 3600.0


def enabled_actions(plan: CompiledPlan) -> list[str]:
    """The seed actions an `adaptive: true` plan lists (none for other plans)."""
    if plan.adaptive_margin is None:
        return []
    return list(plan.monitoring.actions)


def response_threshold(plan: CompiledPlan, time_scale: float) -> float | None:
    """The scaled `response_time` alert threshold, the trigger of every action (None: unset)."""
    return Settings.from_resources(plan.resources, time_scale).thresholds.response_time


def _threshold_for(plan: CompiledPlan, action: str, time_scale: float) -> float | None:
    if action not in enabled_actions(plan):
        return None
    return response_threshold(plan, time_scale)


def _slow(threshold_s: float, agent_id: str, response_time_s: float) -> str:
    return (
        f"'{agent_id}' took {response_time_s:g} s, over the response_time threshold "
        f"{threshold_s:g} s"
    )


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
        threshold = _threshold_for(plan, ADJUST_GROUP_SIZES, time_scale)
        return None if threshold is None else cls(threshold)

    def observe(
        self, group_id: str, agent_id: str, response_time_s: float, running_in_group: int
    ) -> str | None:
        """An agent of `group_id` finished after `response_time_s`, with `running_in_group` of
        its agents still running. Returns what changed, or None."""
        if response_time_s <= self.threshold_s:
            return None
        current = self.limits.get(group_id, running_in_group + 1)
        lowered = max(1, current - 1)
        if lowered >= current:
            return None
        self.limits[group_id] = lowered
        return (
            f"adaptive allocation: group '{group_id}' now runs at most {lowered} agent(s) at "
            f"once (was {current}): '{agent_id}' took {response_time_s:g} s, over the "
            f"response_time threshold {self.threshold_s:g} s"
        )

    def apply(
        self,
        admission: Admission,
        group_of: Mapping[str, str],
        now: float,
        still_queued: Callable[[str], bool],
    ) -> None:
        """Before an admission round: of each limited group's queued agents, only as many as
        it has room for stay eligible (best ranked first); the rest wait here. Withheld agents
        that stopped waiting (cancelled) are dropped."""
        if not self.limits:
            return
        candidates = [r for r in admission.waiting + self.held if still_queued(r.agent_id)]
        room = {
            g: limit - sum(1 for a in admission.running if group_of.get(a) == g)
            for g, limit in self.limits.items()
        }
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


@dataclass
class TimeoutStretch:
    threshold_s: float
    # the most any one group's deadline moves in a run
    cap_s: float
    # group id -> seconds its deadline has been moved (or promised to move) so far
    moved: dict[str, float] = field(default_factory=dict)
    # groups not started yet -> (seconds, why) to add to their deadline when they start
    pending: dict[str, list[tuple[float, str]]] = field(default_factory=dict)

    @classmethod
    def from_plan(cls, plan: CompiledPlan, time_scale: float) -> TimeoutStretch | None:
        threshold = _threshold_for(plan, MODIFY_TIMEOUTS, time_scale)
        if threshold is None:
            return None
        return cls(threshold, MAX_TIMEOUT_SHIFT_S * time_scale)

    def observe(
        self,
        agent_id: str,
        role: str,
        response_time_s: float,
        running_group: str | None,
        later_groups: Sequence[str],
    ) -> list[tuple[str, float, str]]:
        """A slow agent finished: `running_group` is its group when that still waits on a
        deadline, `later_groups` the groups not started yet holding agents of its `role`.
        Returns (group, seconds later, why) for each deadline that moves; later groups' moves
        are also kept in `pending` until `take` hands them to the group's start."""
        if response_time_s <= self.threshold_s:
            return []
        overrun = response_time_s - self.threshold_s
        changes: list[tuple[str, float, str]] = []
        targets = ([running_group] if running_group is not None else []) + [
            g for g in later_groups if g != running_group
        ]
        for group_id in targets:
            shift = round(min(overrun, self.cap_s - self.moved.get(group_id, 0.0)), 3)
            if shift <= 0:
                continue
            self.moved[group_id] = round(self.moved.get(group_id, 0.0) + shift, 3)
            whose = "its" if group_id == running_group else f"a '{role}' agent's"
            why = (
                f"adaptive allocation: deadline of group '{group_id}' moved {shift:g} s "
                f"later ({whose} agent {_slow(self.threshold_s, agent_id, response_time_s)};"
                f" at most {self.cap_s:g} s per group)"
            )
            if group_id != running_group:
                self.pending.setdefault(group_id, []).append((shift, why))
            changes.append((group_id, shift, why))
        return changes

    def take(self, group_id: str) -> list[tuple[float, str]]:
        """The moves promised to a group that starts now (empty for most)."""
        return self.pending.pop(group_id, [])


@dataclass
class CpuBoost:
    threshold_s: float
    # total_cpu_units of the plan's pool: the step and the cap are shares of it
    capacity: float
    # set for a shared pool: the action never applies, and is reported once
    shared_pool: str | None = None
    reported: bool = False

    @classmethod
    def from_plan(cls, plan: CompiledPlan, time_scale: float) -> CpuBoost | None:
        """None also for a plan without a resource pool: its admission is unlimited."""
        threshold = _threshold_for(plan, INCREASE_CPU, time_scale)
        pool = plan.resources.pool
        if threshold is None or pool is None:
            return None
        shared = plan.resources.shared
        return cls(threshold, pool.total_cpu_units, None if shared is None else shared.name)

    @property
    def cap(self) -> float:
        return round(CPU_CAP * self.capacity, 3)

    def observe(
        self, agent_id: str, response_time_s: float, pool: Pool
    ) -> tuple[Pool | None, str] | None:
        """A slow agent finished: the larger pool admission should hand out and why; (None,
        why) once for a shared pool; None when nothing changes (fast, or at the cap)."""
        if response_time_s <= self.threshold_s:
            return None
        slow = _slow(self.threshold_s, agent_id, response_time_s)
        if self.shared_pool is not None:
            if self.reported:
                return None
            self.reported = True
            return None, (
                f"adaptive allocation: increase_cpu_allocation does not apply: the "
                f"run's units come from the shared pool '{self.shared_pool}', which "
                f"other runs draw on too ({slow})"
            )
        raised = round(min(self.cap, pool.cpu + CPU_STEP * self.capacity), 3)
        if raised <= pool.cpu:
            return None
        return Pool(raised, pool.memory, pool.max_agents), (
            f"adaptive allocation: the run now hands out {raised:g} CPU units (was "
            f"{pool.cpu:g}, at most {self.cap:g}): {slow}"
        )


@dataclass
class AggressiveCaching:
    threshold_s: float
    ttl_s: float = AGGRESSIVE_CACHE_TTL_S
    # set by the first slow agent: from then on starting agents store their outputs
    storing: bool = False

    @classmethod
    def from_plan(
        cls, plan: CompiledPlan, time_scale: float, plan_ttl_s: float | None
    ) -> AggressiveCaching | None:
        """None also when the plan already caches across runs (`plan_ttl_s` a number)."""
        threshold = _threshold_for(plan, AGGRESSIVE_CACHING, time_scale)
        return None if threshold is None or plan_ttl_s is not None else cls(threshold)

    def observe(self, agent_id: str, response_time_s: float) -> str | None:
        if self.storing or response_time_s <= self.threshold_s:
            return None
        self.storing = True
        return (
            f"adaptive allocation: agents starting from now on store their outputs in the "
            f"agent output cache for {self.ttl_s:g} s, so a rerun of the plan reuses them: "
            f"{_slow(self.threshold_s, agent_id, response_time_s)}"
        )

    def store_ttl_s(self) -> float | None:
        return self.ttl_s if self.storing else None
