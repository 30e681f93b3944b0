"""Which agents run once per item, found in a plan: the language's fan-out rules
(pee.engine.language.fan_out) applied to a whole Plan. Here, in the compile stage, because the
Plan imports the BMAD reader, which uses the language's fan-out names: kept in the language
module, this walk made the two import each other."""

from __future__ import annotations

from pee.engine.language.fan_out import FanOutLevel, FanOutScope
from pee.engine.language.plan import Plan


def fan_out_scopes(plan: Plan) -> dict[str, FanOutScope]:
    """Agent id -> the fan-out it runs in; agents outside every fan-out are absent. A group's
    for_each wins over a member's own (the nesting is reported by the checks)."""
    scopes: dict[str, FanOutScope] = {}
    for agent_id, spec in plan.agents.items():
        if spec.for_each is not None:
            scopes[agent_id] = FanOutScope(agent_id, FanOutLevel.AGENT, spec.for_each, (agent_id,))
    for group_id, group in plan.groups.items():
        if group.for_each is None:
            continue
        members: list[str] = []
        for name in group.agents:
            agent_id = plan.aliases.get(name, name)
            if agent_id in plan.agents and agent_id not in members:
                members.append(agent_id)
        scope = FanOutScope(group_id, FanOutLevel.GROUP, group.for_each, tuple(members))
        for agent_id in members:
            scopes[agent_id] = scope
    return scopes
