"""The workflow side of the seed's adaptive_resource_allocation actions (pee.engine.rules.adaptive):
applies what the pure rules decide to the run's state and records each application as an event
and a warning alert. PlanWorkflow calls `after_agent` when an agent that ran finishes and
`deadline_shift` when a group starts; every other plan gets None for each rule and issues
exactly the commands it always did.

modify_timeout_values, increase_cpu_allocation and enable_aggressive_caching change commands
(timers, start order, cache lookups) of plans that listed them before they were applied, so they
sit behind `revision.patched(PATCH)`, asked only when the plan enables one: a run recorded
before them replays without them. (adjust_parallel_group_sizes predates the patch.)"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pee.engine.compiled import CompiledPlan
from pee.engine.rules.adaptive import AggressiveCaching, CpuBoost, GroupThrottle, TimeoutStretch
from pee.engine.states import AGENT_UNFINISHED, AgentStatus, GroupStatus
from pee.workflows import revision
from pee.workflows.carry import AdaptiveRules
from pee.workflows.state import Decision, RunState

PATCH = "adaptive-allocation-actions"
TIMEOUT_ADAPTED = "timeout_adapted"


@dataclass
class Adaptation:
    plan: CompiledPlan
    run: RunState
    throttle: GroupThrottle | None
    timeouts: TimeoutStretch | None
    cpu: CpuBoost | None
    caching: AggressiveCaching | None
    # the workflow's recorders: (event, id), (group id, level, message), run-relative now
    event: Callable[[str, str], None]
    alert: Callable[[str, str, str], None]
    elapsed: Callable[[], float]

    @classmethod
    def from_plan(
        cls,
        plan: CompiledPlan,
        run: RunState,
        time_scale: float,
        plan_cache_ttl_s: float | None,
        caching_on: bool,
        event: Callable[[str, str], None],
        alert: Callable[[str, str, str], None],
        elapsed: Callable[[], float],
    ) -> Adaptation:
        timeouts = TimeoutStretch.from_plan(plan, time_scale)
        cpu = CpuBoost.from_plan(plan, time_scale)
        caching = (
            AggressiveCaching.from_plan(plan, time_scale, plan_cache_ttl_s) if caching_on else None
        )
        if any(rule is not None for rule in (timeouts, cpu, caching)) and not revision.patched(
            PATCH
        ):
            timeouts = cpu = caching = None
        return cls(
            plan,
            run,
            GroupThrottle.from_plan(plan, time_scale),
            timeouts,
            cpu,
            caching,
            event,
            alert,
            elapsed,
        )

    def rules(self) -> AdaptiveRules:
        """The rules' learned state, as a continuation carries it."""
        return AdaptiveRules(self.throttle, self.timeouts, self.cpu, self.caching)

    def restore(self, rules: AdaptiveRules) -> None:
        """A continuation's carried rules, in place: the collaborators read them live."""
        self.throttle, self.timeouts = rules.throttle, rules.timeouts
        self.cpu, self.caching = rules.cpu, rules.caching

    @property
    def looks_up_cache(self) -> bool:
        """Aggressive caching looks agent outputs up from the start, so a rerun reuses them."""
        return self.caching is not None

    def cache_store_ttl_s(self) -> float | None:
        return None if self.caching is None else self.caching.store_ttl_s()

    def after_agent(self, agent_id: str, response_time_s: float) -> None:
        agent = self.plan.agent(agent_id)
        if self.throttle is not None:
            running = sum(
                1
                for a in self.plan.group(agent.group).agents
                if self.run.agents[a].status == AgentStatus.RUNNING
            )
            change = self.throttle.observe(agent.group, agent_id, response_time_s, running)
            if change is not None:
                self.event("group_throttled", agent.group)
                self.alert(agent.group, "warning", change)
        if self.timeouts is not None:
            self._stretch(agent_id, response_time_s)
        if self.cpu is not None:
            outcome = self.cpu.observe(agent_id, response_time_s, self.run.admission.pool)
            if outcome is not None:
                pool, why = outcome
                if pool is None:
                    self.event("cpu_allocation_not_applied", agent.group)
                else:
                    # the finished agent released its units: the admitter runs once the
                    # activation settles and hands the larger pool out
                    self.run.admission.pool = pool
                    self.event("cpu_allocation_raised", agent.group)
                self.alert(agent.group, "warning", why)
        if self.caching is not None:
            switched_on = self.caching.observe(agent_id, response_time_s)
            if switched_on is not None:
                self.event("aggressive_caching_enabled", agent.group)
                self.alert(agent.group, "warning", switched_on)

    def _stretch(self, agent_id: str, response_time_s: float) -> None:
        assert self.timeouts is not None
        agent = self.plan.agent(agent_id)
        own = self.run.groups[agent.group]
        # its own group only while the deadline still matters: others of it not finished yet
        waiting = any(
            self.run.agents[a].status in AGENT_UNFINISHED
            for a in self.plan.group(agent.group).agents
            if a != agent_id
        )
        running = (
            agent.group
            if own.status == GroupStatus.RUNNING and own.deadline_s is not None and waiting
            else None
        )
        later = [
            g.id
            for g in self.plan.groups
            if self.run.groups[g.id].status == GroupStatus.PENDING
            and g.timeout_s is not None
            and any(self.plan.agent(a).role == agent.role for a in g.agents if a != agent_id)
        ]
        for group_id, shift, why in self.timeouts.observe(
            agent_id, agent.role, response_time_s, running, later
        ):
            state = self.run.groups[group_id]
            if group_id == running and state.deadline_s is not None:
                state.deadline_s = round(state.deadline_s + shift, 3)
                state.history.append(Decision(self.elapsed(), TIMEOUT_ADAPTED, why))
            self.event(TIMEOUT_ADAPTED, group_id)
            self.alert(group_id, "warning", why)

    def deadline_shift(self, group_id: str) -> float:
        """Seconds a starting group's deadline moves later for slow agents of its roles seen
        before it started; each move goes into its barrier history."""
        if self.timeouts is None:
            return 0.0
        total = 0.0
        for shift, why in self.timeouts.take(group_id):
            self.run.groups[group_id].history.append(Decision(self.elapsed(), TIMEOUT_ADAPTED, why))
            total += shift
        return round(total, 3)
