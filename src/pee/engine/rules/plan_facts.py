"""What a PlanWorkflow derives from the whole plan before it starts anything, worked out once per
plan and carried with it in the run input.

A run's first workflow task (and each continuation's) runs under the SDK's 2 s deadlock
detector. Three of its steps walked every agent of the plan: the admission ranks (the longest
remaining path from each agent, over the agent-level DAG: half of a 20,000-agent run's first
task), the check that every agent fits the pool, and the check that every duration stays
representable at the run's time scale. They depend on the plan alone, so the project's payload
converter (src/pee/runtime/codec.py) writes them next to the plan as ``"facts"`` when it encodes
a run input, on the starter's side, and the workflow reads them back instead of walking the
plan. A plan decoded without them (every history recorded before, a hand-written input) gets them
computed here as before: the values, and so the commands a run issues, are the same either way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pee.engine.compiled import CompiledPlan
from pee.engine.dag import agent_dependencies
from pee.engine.rules.scheduler import remaining_paths
from pee.engine.rules.time_limits import plan_seconds

# where the facts travel in an encoded plan, and where a plan object keeps them
KEY = "facts"
_CACHED = "_facts"


@dataclass(frozen=True)
class PlanFacts:
    # how many agents the plan had when they were worked out (a fan-out adds instances at run
    # time: then they are worked out again)
    agents: int
    # agent id -> the longest estimated path from it to the end of the run (the admission
    # tie-break, pee.engine.rules.scheduler.remaining_paths over expected_s); encoded as a list
    # in the plan's agent order
    remaining: dict[str, float]
    # the largest cpu and memory need of any agent; None: some need is not a number, so the
    # workflow checks agent by agent (and says which)
    max_cpu: float | None = None
    max_memory: float | None = None
    # the least and largest duration the run scales (pee.engine.rules.time_limits); None: some
    # duration is not a finite number
    min_s: float | None = None
    max_s: float | None = None
    # every group lists known agents and depends on known groups
    consistent: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "agents": self.agents,
            # values only (the ids are the plan's): a 20,000-agent input stays ~0.2 MB smaller
            "remaining": list(self.remaining.values()),
            "max_cpu": self.max_cpu,
            "max_memory": self.max_memory,
            "min_s": self.min_s,
            "max_s": self.max_s,
            "consistent": self.consistent,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], ids: list[str]) -> PlanFacts:
        """From to_dict's form; ``ids``: the plan's agent ids, in order."""
        ranks = data["remaining"]
        if not isinstance(ranks, list) or len(ranks) != len(ids):
            raise ValueError("the facts' ranks do not match the plan's agents")
        return cls(
            agents=int(data["agents"]),
            remaining=dict(zip(ids, map(float, ranks), strict=True)),
            max_cpu=_optional(data.get("max_cpu")),
            max_memory=_optional(data.get("max_memory")),
            min_s=_optional(data.get("min_s")),
            max_s=_optional(data.get("max_s")),
            consistent=data.get("consistent") is True,
        )


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)


def facts(plan: CompiledPlan) -> PlanFacts:
    """The plan's facts: those it was decoded with, else worked out now (and kept)."""
    found = plan.__dict__.get(_CACHED)
    if isinstance(found, PlanFacts) and found.agents == len(plan.agents):
        return found
    found = compute(plan)
    plan.__dict__[_CACHED] = found
    return found


def given(plan: CompiledPlan) -> bool:
    """Whether the plan came with facts that still describe it (nothing to work out)."""
    found = plan.__dict__.get(_CACHED)
    return isinstance(found, PlanFacts) and found.agents == len(plan.agents)


def attach(plan: CompiledPlan, data: Any) -> None:
    """Keep the facts an encoded plan carried (``data``: its "facts" entry, or None). Facts
    that do not match the plan (another agent count, ranks missing) are dropped: the workflow
    then works them out itself."""
    if not isinstance(data, Mapping):
        return
    try:
        found = PlanFacts.from_dict(data, [agent.id for agent in plan.agents])
    except (KeyError, TypeError, ValueError):
        return
    if found.agents == len(plan.agents) and len(found.remaining) == found.agents:
        plan.__dict__[_CACHED] = found


def compute(plan: CompiledPlan) -> PlanFacts:
    agents = plan.agents
    remaining = remaining_paths(
        [agent.id for agent in agents],
        agent_dependencies(agents, plan.groups),
        {agent.id: agent.expected_s for agent in agents},
    )
    max_cpu = max_memory = min_s = max_s = None
    try:
        # as PlanWorkflow._check_plan reads them (a value it would refuse leaves them None)
        needs = [(float(a.cpu), float(a.memory), int(a.priority)) for a in agents]
        max_cpu = _finite_max(n[0] for n in needs)
        max_memory = _finite_max(n[1] for n in needs)
    except (TypeError, ValueError):
        pass
    try:
        seconds = [float(s) for s in plan_seconds(plan)]
        if all(math.isfinite(s) for s in seconds):
            min_s, max_s = min(seconds), max(seconds)
    except (TypeError, ValueError):
        pass
    ids = {agent.id for agent in agents}
    group_ids = {group.id for group in plan.groups}
    consistent = all(
        all(a in ids for a in group.agents) and all(d in group_ids for d in group.depends_on)
        for group in plan.groups
    )
    return PlanFacts(len(agents), remaining, max_cpu, max_memory, min_s, max_s, consistent)


def _finite_max(values: Any) -> float | None:
    found = list(values)
    if not all(math.isfinite(v) for v in found):
        return None
    return max(found, default=0.0)
