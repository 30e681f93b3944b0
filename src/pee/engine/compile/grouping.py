"""Execution groups: explicit ones checked, the rest derived.

Derived groups follow DESIGN.md's auto-grouping rule: agents whose blocking predecessors and
blocking successors are identical form one parallel group (the seed's ux_expert ‖ architect).
Such agents start at the same moment under agent-level scheduling and their successors wait for
all of them anyway, so grouping them can never lengthen the critical path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pee.engine.compile.references import COMPLETION, Edge
from pee.engine.language.errors import GroupError, PlanError, UnknownAgentError, suggest
from pee.engine.language.models import GroupSpec
from pee.engine.language.plan import Plan


@dataclass
class GroupInfo:
    id: str
    agents: list[str]
    depends_on: list[str] = field(default_factory=list)
    # the subset the plan declared (depends_on / seed dependencies), not derived from data
    declared: list[str] = field(default_factory=list)
    parallel: bool = True
    explicit: bool = False
    spec: GroupSpec | None = None


@dataclass
class Grouping:
    groups: dict[str, GroupInfo] = field(default_factory=dict)
    agent_group: dict[str, str] = field(default_factory=dict)
    problems: list[PlanError] = field(default_factory=list)
    # (every agent's predecessors, their topological order or None on a cycle), computed once
    # by pee.engine.compile.checks.ordered_agents: the cycle check and the compiler both need them
    agent_order: tuple[dict[str, list[str]], list[str] | None] | None = None


def build_groups(plan: Plan, edges: list[Edge]) -> Grouping:
    result = Grouping()
    _explicit_groups(plan, result)
    _derive_groups(plan, edges, result)
    _group_dependencies(plan, edges, result)
    return result


def _explicit_groups(plan: Plan, result: Grouping) -> None:
    for group_id, spec in plan.groups.items():
        members: list[str] = []
        for index, name in enumerate(spec.agents):
            agent_id = plan.aliases.get(name, name)
            if agent_id not in plan.agents:
                close = suggest(name, plan.agents)
                result.problems.append(
                    UnknownAgentError(
                        f"group '{group_id}' lists agent '{name}', which the plan does not define",
                        value=name,
                        location=plan.group_location(group_id, "agents", index),
                        expected=f"one of {list(plan.agents)}",
                        found=repr(name),
                        fix=f"did you mean '{close}'?" if close else "define the agent first",
                    )
                )
                continue
            if agent_id in result.agent_group:
                other = result.agent_group[agent_id]
                if other == group_id:
                    continue
                result.problems.append(
                    GroupError(
                        f"agent '{agent_id}' is in two groups: '{other}' and '{group_id}'",
                        value=agent_id,
                        location=plan.group_location(group_id, "agents", index),
                        expected="each agent in exactly one group",
                        fix=f"remove '{agent_id}' from one of them",
                    )
                )
                continue
            result.agent_group[agent_id] = group_id
            members.append(agent_id)
        if not spec.agents:
            result.problems.append(
                GroupError(
                    f"group '{group_id}' has no agents",
                    value=group_id,
                    location=plan.group_location(group_id),
                    expected="at least one agent",
                    fix="list its agents under agents:, or remove the group",
                )
            )
        parallel = spec.parallel if spec.parallel is not None else True
        result.groups[group_id] = GroupInfo(
            group_id, members, parallel=parallel, explicit=True, spec=spec
        )


def _derive_groups(plan: Plan, edges: list[Edge], result: Grouping) -> None:
    ungrouped = [a for a in plan.agents if a not in result.agent_group]
    if not ungrouped:
        return
    predecessors: dict[str, list[str]] = {a: [] for a in plan.agents}
    successors: dict[str, list[str]] = {a: [] for a in plan.agents}
    for edge in edges:
        if edge.blocking:
            predecessors[edge.target].append(edge.source)
            successors[edge.source].append(edge.target)
    # an explicit group's members wait for the groups it depends on, so ungrouped agents that
    # depend on a group member see the whole group as one predecessor
    by_signature: dict[tuple[tuple[str, ...], ...], list[str]] = {}
    for agent_id in ungrouped:
        # a fan-out agent's group barrier counts its items: it shares the group with nobody
        alone = (agent_id,) if plan.agents[agent_id].for_each is not None else ()
        signature = (
            tuple(sorted(set(predecessors[agent_id]))),
            tuple(sorted(set(successors[agent_id]))),
            alone,
        )
        by_signature.setdefault(signature, []).append(agent_id)
    for members in by_signature.values():
        group_id = members[0] if len(members) == 1 else "+".join(members)
        # a name already given to a group, or another agent's id (whose own group may come
        # later), gets '_group' appended until it is free: two groups with one id would lose
        # the first group's agents
        while group_id in result.groups or (group_id in plan.agents and members != [group_id]):
            group_id = f"{group_id}_group"
        for agent_id in members:
            result.agent_group[agent_id] = group_id
        result.groups[group_id] = GroupInfo(group_id, members, parallel=True)
    # keep groups in the order their first agent was declared: the tie-breaker everywhere
    order = {agent_id: index for index, agent_id in enumerate(plan.agents)}
    result.groups = dict(
        sorted(
            result.groups.items(),
            key=lambda item: min((order[a] for a in item[1].agents), default=len(order)),
        )
    )


def resolve_group_ref(plan: Plan, ref: str, result: Grouping) -> str | None:
    if ref in result.groups:
        return ref
    if ref in plan.aliases and plan.aliases[ref] in result.groups:
        return plan.aliases[ref]
    name = ref[: -len(f".{COMPLETION}")] if ref.endswith(f".{COMPLETION}") else ref
    name = plan.aliases.get(name, name)
    return result.agent_group.get(name)


def _group_dependencies(plan: Plan, edges: list[Edge], result: Grouping) -> None:
    # sets beside the lists (which keep the order found): one group may wait for thousands
    waits_for: dict[str, set[str]] = {group_id: set() for group_id in result.groups}
    # positions in sequential groups, looked up per edge inside one
    positions: dict[str, dict[str, int]] = {}
    for group_id, info in result.groups.items():
        if info.spec is None:
            continue
        for index, ref in enumerate(info.spec.depends_on):
            target = resolve_group_ref(plan, ref, result)
            if target is None:
                close = suggest(ref, [*result.groups, *plan.agents])
                result.problems.append(
                    UnknownAgentError(
                        f"group '{group_id}' depends on '{ref}', which is neither a group nor an "
                        "agent",
                        value=ref,
                        location=plan.group_location(group_id, "depends_on", index),
                        expected="a group id, an agent id or 'agent.completion'",
                        found=repr(ref),
                        fix=f"did you mean '{close}'?" if close else "fix the name",
                    )
                )
            elif target == group_id:
                result.problems.append(
                    GroupError(
                        f"group '{group_id}' depends on itself through '{ref}'",
                        value=ref,
                        location=plan.group_location(group_id, "depends_on", index),
                        fix="remove the dependency",
                    )
                )
            elif target not in waits_for[group_id]:
                waits_for[group_id].add(target)
                info.depends_on.append(target)
                info.declared.append(target)
    for edge in edges:
        if not edge.blocking:
            continue
        source_group = result.agent_group.get(edge.source)
        target_group = result.agent_group.get(edge.target)
        if source_group is None or target_group is None:
            continue
        if source_group == target_group:
            # a fan-out group is a per-item sub-pipeline: in a parallel one its agents' own
            # edges order each item's chain (the list order does in a sequential one)
            info = result.groups[target_group]
            fan_out = info.spec is not None and info.spec.for_each is not None
            if info.parallel and not fan_out:
                result.problems.append(
                    GroupError(
                        f"agent '{edge.target}' needs '{edge.ref}' from '{edge.source}', but both "
                        f"are in parallel group '{target_group}', whose agents start together",
                        value=edge.ref,
                        location=plan.agent_location(edge.target, "inputs"),
                        expected="blocking inputs from earlier groups",
                        fix=f"move '{edge.source}' to an earlier group, make the input "
                        "optional_inputs, or set parallel: false on the group",
                    )
                )
            elif not info.parallel and _position(positions, info, edge.source) > _position(
                positions, info, edge.target
            ):
                result.problems.append(
                    GroupError(
                        f"sequential group '{target_group}' runs '{edge.target}' before "
                        f"'{edge.source}', whose '{edge.ref}' it needs",
                        value=edge.ref,
                        location=plan.group_location(target_group, "agents"),
                        expected="agents listed in dependency order",
                        fix=f"list '{edge.source}' before '{edge.target}'",
                    )
                )
            continue
        if source_group not in waits_for[target_group]:
            waits_for[target_group].add(source_group)
            result.groups[target_group].depends_on.append(source_group)


def _position(positions: dict[str, dict[str, int]], info: GroupInfo, agent_id: str) -> int:
    """Where ``agent_id`` runs in sequential group ``info`` (its positions computed once)."""
    if info.id not in positions:
        positions[info.id] = {a: i for i, a in enumerate(info.agents)}
    return positions[info.id][agent_id]
