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

from pee.engine.compiled import (
    CompiledAgent,
    CompiledGroup,
    CompiledPlan,
    FanOut,
    SuccessCriteria,
)
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


def group_instances(
    agents: list[CompiledAgent], group: CompiledGroup, items: int
) -> tuple[tuple[CompiledAgent, ...], CompiledGroup]:
    """A group-level fan-out's rows in the parent run: `member[i]` for every item and member
    (item by item, members in order), and the group with them as its agents, its criteria
    counting items."""
    instances = tuple(
        replace(agent, id=FanOut.instance_id(agent.id, index))
        for index in range(items)
        for agent in agents
    )
    criteria = item_criteria(group.success_criteria.kind, group.success_criteria.count, items)
    expanded = replace(
        group,
        agents=[instance.id for instance in instances],
        success_criteria=SuccessCriteria(criteria.kind, criteria.count),
    )
    return instances, expanded


def item_plan(
    plan: CompiledPlan,
    group: CompiledGroup,
    index: int,
    item: Any,
    upstream: dict[str, Any],
) -> CompiledPlan:
    """The plan one item of a group-level fan-out runs as (a child PlanWorkflow): the group's
    members only, each in a group of its own, so each item's chain advances on its own data
    (item 3's review never waits for item 1's implementation); a `parallel: false` group keeps
    its list order. What the members read from before the group (`upstream`, "agent.output" ->
    value) and the item's `item`/`index` are plan inputs."""
    members = [plan.agent(agent_id) for agent_id in group.agents]
    names = [agent.id for agent in members]
    agents = [
        replace(
            agent,
            depends_on=[d for d in agent.depends_on if d in names],
            fan_out=None,
            admission_rank=0,
        )
        for agent in members
    ]
    groups = []
    for position, agent in enumerate(agents):
        after = list(agent.depends_on)
        if not group.parallel and position > 0 and names[position - 1] not in after:
            after.append(names[position - 1])
        groups.append(_group_of_one(agent.id, after, group, agent.estimated_s))
    total = sum(agent.estimated_s for agent in agents)
    name = f"{plan.name}/{FanOut.instance_id(group.id, index)}"
    inputs = {**upstream, ITEM: item, INDEX: index}
    return _child_plan(plan, name, agents, groups, total, total, inputs)


def _group_of_one(
    agent_id: str, after: list[str], group: CompiledGroup, estimated_s: float
) -> CompiledGroup:
    """The group one member (of one item) runs in inside a slice: it passes when its agent
    does, and keeps the fan-out group's extensions and failure handling."""
    return CompiledGroup(
        id=agent_id,
        agents=[agent_id],
        depends_on=after,
        success_criteria=SuccessCriteria("all", 0),
        max_extensions=group.max_extensions,
        extension_s=group.extension_s,
        quality_impact=group.quality_impact,
        partial_failure_handling=group.partial_failure_handling,
        estimated_s=estimated_s,
    )


def upstream_keys(plan: CompiledPlan, group: CompiledGroup) -> list[str]:
    """The context keys a group's members read from outside the group (not item/index)."""
    members = list(group.agents)
    keys: list[str] = []
    for agent_id in members:
        agent = plan.agent(agent_id)
        for key in [*agent.inputs, *agent.optional_inputs]:
            if key in ITEM_INPUTS or key.split(".", 1)[0] in members or key in keys:
                continue
            keys.append(key)
    return keys


def is_expanded(group: CompiledGroup) -> bool:
    """The group runs a fan-out's instances already (its agents are no longer the members)."""
    return group.fan_out is not None and list(group.agents) != list(group.fan_out.members)


def template_of(agent_id: str) -> tuple[str, int] | None:
    """("dev", 3) for the instance id "dev[3]"; None for any other id."""
    return FanOut.template_of(agent_id)


def batch_plan(
    plan: CompiledPlan,
    group: CompiledGroup,
    indices: list[int],
    items: list[Any],
    upstream: dict[str, Any],
) -> CompiledPlan:
    """The plan several items of a fan-out run as in one child PlanWorkflow (the batched path,
    pee.engine.compile.fan_out_batches): every member once per item as `member[i]`, each in a
    group of its own that depends only on the same item's members, so each item's chain
    advances on its own (as in item_plan, several items side by side). An instance reads the
    same item's members as `member[i].output` and its item and index as the plan inputs
    `item[i]` / `index[i]`; it is shown them under their plain names (shown_inputs), so an
    agent sees what it sees in a one-item child and its cache key is the same."""
    members = [plan.agent(agent_id) for agent_id in group.agents]
    names = [agent.id for agent in members]

    def local(key: str, index: int) -> str:
        if key in ITEM_INPUTS:
            return FanOut.instance_id(key, index)
        head, dot, rest = key.partition(".")
        if dot and head in names:
            return f"{FanOut.instance_id(head, index)}.{rest}"
        return key

    agents: list[CompiledAgent] = []
    groups: list[CompiledGroup] = []
    inputs: dict[str, Any] = dict(upstream)
    for index in indices:
        inputs[FanOut.instance_id(ITEM, index)] = items[index]
        inputs[FanOut.instance_id(INDEX, index)] = index
        for position, agent in enumerate(members):
            instance = FanOut.instance_id(agent.id, index)
            after = [FanOut.instance_id(d, index) for d in agent.depends_on if d in names]
            if not group.parallel and position > 0:
                previous = FanOut.instance_id(names[position - 1], index)
                after += [] if previous in after else [previous]
            agents.append(
                replace(
                    agent,
                    id=instance,
                    group=instance,
                    depends_on=after,
                    inputs=[local(key, index) for key in agent.inputs],
                    optional_inputs=[local(key, index) for key in agent.optional_inputs],
                    fan_out=None,
                    admission_rank=0,
                )
            )
            groups.append(_group_of_one(instance, after, group, agent.estimated_s))
    chain = sum(agent.estimated_s for agent in members)
    first, last = (indices[0], indices[-1]) if indices else (0, -1)
    name = f"{plan.name}/{group.id}[{first}..{last}]"
    return _child_plan(plan, name, agents, groups, chain, chain * len(indices), inputs)


def _child_plan(
    plan: CompiledPlan,
    name: str,
    agents: list[CompiledAgent],
    groups: list[CompiledGroup],
    makespan_s: float,
    sequential_s: float,
    inputs: dict[str, Any],
) -> CompiledPlan:
    """The plan a child PlanWorkflow runs: the parent's settings with these agents and groups,
    its estimates from the items' chains (nothing left to analyse: no critical path or
    opportunities)."""
    return replace(
        plan,
        name=name,
        agents=agents,
        groups=groups,
        critical_path=[],
        estimated_makespan_s=makespan_s,
        sequential_s=sequential_s,
        group_by_group_s=sequential_s,
        agent_level_s=makespan_s,
        parallel_opportunities=[],
        inputs=inputs,
    )


def batch_outputs(group: CompiledGroup, plan: CompiledPlan, indices: list[int]) -> list[str]:
    """The context keys a batch child returns: every member output of every item it runs."""
    return [
        f"{FanOut.instance_id(agent_id, index)}.{name}"
        for index in indices
        for agent_id in group.agents
        for name in plan.agent(agent_id).outputs
    ]


def shown_inputs(agent_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """What instance `agent[i]` of a batch child is given (batch_plan): its item's own keys
    under their plain names (`story[3].text` -> `story.text`, `item[3]` -> `item`), every other
    key as it is."""
    found = template_of(agent_id)
    if found is None:
        return inputs
    suffix = f"[{found[1]}]"
    shown: dict[str, Any] = {}
    for key, value in inputs.items():
        head, dot, rest = key.partition(".")
        if head.endswith(suffix) and template_of(head) is not None:
            key = head[: -len(suffix)] + dot + rest
        shown[key] = value
    return shown
