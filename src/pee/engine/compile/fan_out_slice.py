"""A fan-out at run time, once its list is known: the instances `agent[i]` of an agent-level
fan-out and the group that runs them, as plain compiled data (pure: the workflow builds them from
recorded values, so a replay builds the same).

An instance is its template agent under the id `agent[i]`, without the `item`/`index` inputs
(they are no context keys: the instance is given them directly). The group keeps its id, deadline
and barrier settings; its agents become the instances and its success criteria count items
(pee.engine.rules.fan_out_barrier.item_criteria). The design: design-notes/fan-out.md, section 4.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pee.engine.compiled import CompiledAgent, CompiledGroup, FanOut, SuccessCriteria
from pee.engine.language.fan_out import INDEX, ITEM, ITEM_INPUTS
from pee.engine.rules.fan_out_barrier import item_criteria


@dataclass(frozen=True)
class Expansion:
    """An agent-level fan-out over a known list."""

    template: CompiledAgent
    # one per item, in item order
    instances: tuple[CompiledAgent, ...]
    # the group with the instances as its agents
    group: CompiledGroup
    # instance id -> what it is given besides its declared inputs
    item_inputs: dict[str, dict[str, Any]]


def expand_agent(template: CompiledAgent, group: CompiledGroup, items: list[Any]) -> Expansion:
    """The instances of `template` (an agent-level fan-out, alone in `group`) over `items`."""
    fan_out = template.fan_out
    assert fan_out is not None, f"agent '{template.id}' does not fan out"
    inputs = [key for key in template.inputs if key not in ITEM_INPUTS]
    optional = [key for key in template.optional_inputs if key not in ITEM_INPUTS]
    instances = tuple(
        replace(
            template,
            id=FanOut.instance_id(template.id, index),
            inputs=list(inputs),
            optional_inputs=list(optional),
        )
        for index in range(len(items))
    )
    criteria = item_criteria(group.success_criteria.kind, group.success_criteria.count, len(items))
    expanded = replace(
        group,
        agents=[instance.id for instance in instances],
        success_criteria=SuccessCriteria(criteria.kind, criteria.count),
    )
    item_inputs = {
        instance.id: {ITEM: item, INDEX: index}
        for index, (instance, item) in enumerate(zip(instances, items, strict=True))
    }
    return Expansion(template, instances, expanded, item_inputs)


def is_expanded(group: CompiledGroup) -> bool:
    """The group runs a fan-out's instances already (its agents are no longer the members)."""
    return group.fan_out is not None and list(group.agents) != list(group.fan_out.members)


def template_of(agent_id: str) -> tuple[str, int] | None:
    """("dev", 3) for the instance id "dev[3]"; None for any other id."""
    if not agent_id.endswith("]") or "[" not in agent_id:
        return None
    head, _, rest = agent_id.rpartition("[")
    number = rest[:-1]
    if not head or not number.isdigit():
        return None
    return head, int(number)
