"""Whole-plan checks that need more than one agent at a time: references, groups, ownership,
cycles. Each returns every problem it finds instead of stopping at the first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pee.engine.compile.fan_out import check_fan_out
from pee.engine.compile.grouping import Grouping, build_groups, resolve_group_ref
from pee.engine.compile.order import topological_order
from pee.engine.compile.references import FAN_OUT, Edge, Resolution, resolve
from pee.engine.language.errors import (
    CycleError,
    GroupError,
    InvalidValueError,
    Location,
    MissingProducerError,
    OwnershipClashError,
    PlanError,
    ResourceFitError,
    UnknownAgentError,
    suggest,
)
from pee.engine.language.fan_out import FanOutLevel
from pee.engine.language.models import AtLeast
from pee.engine.language.plan import Plan
from pee.engine.language.sandbox import check_sandbox
from pee.engine.language.units import DEFAULT_UNITS

if TYPE_CHECKING:
    import networkx as nx


def check_plan(plan: Plan, skip_agents: bool = False) -> list[PlanError]:
    """All cross-agent problems. ``skip_agents``: some agents failed to parse, so references to
    them would be reported as unknown; only the checks that stay meaningful run."""
    resolution = resolve(plan)
    grouping = build_groups(plan, resolution.edges)
    plan.resolution, plan.grouping = resolution, grouping
    problems: list[PlanError] = []
    if not skip_agents:
        problems.extend(resolution.problems)
        problems.extend(grouping.problems)
    problems.extend(_check_defaults(plan, resolution))
    problems.extend(_check_ownership(plan))
    problems.extend(check_fan_out(plan, resolution, grouping))
    problems.extend(_check_success_criteria(plan, grouping, resolution))
    problems.extend(_check_resources(plan))
    problems.extend(_check_consistency_rules(plan, resolution))
    problems.extend(check_sandbox(plan))
    # the edges found so far are a subset of the real ones, so a cycle among them is real
    problems.extend(find_cycles(plan, resolution.edges, grouping))
    return problems


def _check_defaults(plan: Plan, resolution: Resolution) -> list[PlanError]:
    problems: list[PlanError] = []
    for agent_id, spec in plan.agents.items():
        outputs = resolution.outputs.get(agent_id, [])
        for key in spec.defaults:
            if key not in outputs and agent_id not in plan.open_agents:
                close = suggest(key, outputs)
                problems.append(
                    InvalidValueError(
                        f"agent '{agent_id}' gives a default for '{key}', which is not one of its "
                        "outputs",
                        value=key,
                        location=plan.agent_location(agent_id, "defaults"),
                        expected=f"one of {outputs}",
                        found=repr(key),
                        fix=f"did you mean '{close}'?" if close else f"add '{key}' to outputs",
                    )
                )
    return problems


def _check_ownership(plan: Plan) -> list[PlanError]:
    rules = plan.context_conflicts.resolution_mechanisms.conflict_prevention.ownership_rules
    path = ("context_conflicts", "resolution_mechanisms", "conflict_prevention", "ownership_rules")
    problems: list[PlanError] = []
    roles = {spec.role or agent_id: agent_id for agent_id, spec in plan.agents.items()}
    owner_of: dict[str, str] = {}
    for owner, keys in rules.items():
        if owner not in roles and owner not in plan.agents:
            close = suggest(owner, [*roles, *plan.agents])
            problems.append(
                UnknownAgentError(
                    f"ownership_rules names agent '{owner}', which the plan does not define",
                    value=owner,
                    location=plan.source.locate((*path, owner)),
                    expected=f"one of {sorted(set(roles) | set(plan.agents))}",
                    found=repr(owner),
                    fix=f"did you mean '{close}'?" if close else "fix the name or remove the rule",
                )
            )
        for index, key in enumerate(keys):
            if key in owner_of and owner_of[key] != owner:
                problems.append(
                    OwnershipClashError(
                        f"context key '{key}' is owned by both '{owner_of[key]}' and '{owner}'",
                        value=key,
                        location=plan.source.locate((*path, owner, index)),
                        expected="one owner per key",
                        fix="give the key to one agent only",
                    )
                )
            owner_of.setdefault(key, owner)
    for agent_id, spec in plan.agents.items():
        me = spec.role or agent_id
        for index, key in enumerate(spec.writes):
            key_owner = owner_of.get(key)
            if key_owner is not None and key_owner not in (me, agent_id):
                problems.append(
                    OwnershipClashError(
                        f"agent '{agent_id}' writes '{key}', which '{key_owner}' owns",
                        value=key,
                        location=plan.agent_location(agent_id, "writes", index),
                        expected=f"writes to keys '{agent_id}' owns or unowned keys",
                        fix=f"write a key of your own, or move '{key}' to {me}'s ownership_rules",
                    )
                )
    return problems


def _check_consistency_rules(plan: Plan, resolution: Resolution) -> list[PlanError]:
    """Each key a rule compares must be something the run produces: an agent's output or a
    shared key some agent writes."""
    produced = {f"{a}.{o}" for a, outputs in resolution.outputs.items() for o in outputs}
    produced |= {key for spec in plan.agents.values() for key in spec.writes}
    path = ("context_conflicts", "consistency_rules")
    problems: list[PlanError] = []
    for index, rule in enumerate(plan.context_conflicts.consistency_rules):
        for position, key in enumerate(rule.keys):
            canonical = key
            if "." in key:
                head, rest = key.split(".", 1)
                canonical = f"{plan.aliases.get(head, head)}.{rest}"
            if canonical not in produced:
                close = suggest(key, sorted(produced))
                problems.append(
                    MissingProducerError(
                        f"consistency rule {index + 1} compares '{key}', which no agent produces",
                        value=key,
                        location=plan.source.locate((*path, index, "keys", position)),
                        expected="an agent output ('agent.output') or a shared key in some writes",
                        found=repr(key),
                        fix=f"did you mean '{close}'?" if close else "fix the key or drop the rule",
                    )
                )
    return problems


def _check_resources(plan: Plan) -> list[PlanError]:
    if not plan.resource_pool_given:
        return []
    pool = plan.resource_manager.resource_pool.computational
    sharing = plan.resource_manager.allocation_strategy.resource_sharing
    capacity = {
        "cpu": pool.total_cpu_units * sharing.cpu_oversubscription,
        "memory": pool.total_memory_units,
    }
    problems: list[PlanError] = []
    for agent_id, spec in plan.agents.items():
        for name, limit in capacity.items():
            given = getattr(spec.resource_requirements, name)
            # an agent that does not say needs the default, which a small pool may not hold
            need = DEFAULT_UNITS if given is None else given
            if need > limit:
                why = (
                    "" if given is not None else " (the default: it sets no resource_requirements)"
                )
                problems.append(
                    ResourceFitError(
                        f"agent '{agent_id}' needs {name} {need:g} units{why} but the pool has "
                        f"{limit:g}, so it could never start",
                        value=need,
                        location=plan.agent_location(agent_id, "resource_requirements"),
                        expected=f"at most {limit:g} {name} units",
                        found=f"{need:g}",
                        fix=f"set its resource_requirements.{name} to at most {limit:g}, or "
                        f"raise resource_manager.resource_pool.computational.total_{name}_units",
                    )
                )
    return problems


def _check_success_criteria(
    plan: Plan, grouping: Grouping, resolution: Resolution
) -> list[PlanError]:
    problems: list[PlanError] = []
    for group_id, info in grouping.groups.items():
        if any(a in resolution.fan_out for a in info.agents):
            continue  # a fan-out group's criteria count items, known only at run time
        criteria = info.spec.success_criteria if info.spec else None
        needed = criteria.at_least if isinstance(criteria, AtLeast) else criteria
        if isinstance(needed, int) and needed > len(info.agents) and info.agents:
            problems.append(
                GroupError(
                    f"group '{group_id}' needs at least {needed} successes but has "
                    f"{len(info.agents)} agents",
                    value=needed,
                    location=plan.group_location(group_id, "success_criteria"),
                    expected=f"at most {len(info.agents)}",
                    fix="lower the number",
                )
            )
    return problems


def blocking_predecessors(
    plan: Plan, edges: list[Edge], grouping: Grouping
) -> dict[str, list[str]]:
    """Every agent's predecessors: everything it must wait for, explicit group order included,
    each once, in the order found."""
    waits: dict[str, dict[str, None]] = {agent_id: {} for agent_id in plan.agents}
    for edge in edges:
        if edge.blocking:
            waits.setdefault(edge.source, {})
            waits.setdefault(edge.target, {})[edge.source] = None
    for info in grouping.groups.values():
        # declared group dependencies make every member wait for every member of the other
        for dependency in info.declared:
            sources = grouping.groups[dependency].agents
            for target in info.agents:
                waits.setdefault(target, {}).update(dict.fromkeys(sources))
    return {agent_id: list(before) for agent_id, before in waits.items()}


def ordered_agents(
    plan: Plan, edges: list[Edge], grouping: Grouping
) -> tuple[dict[str, list[str]], list[str] | None]:
    """Every agent's predecessors (blocking_predecessors) and their topological order, the
    declaration order first among the ready ones (None when they form a cycle). Kept on the
    grouping: on a large plan each costs a few hundredths of a second, and the cycle check and
    the compiler both need them."""
    if grouping.agent_order is None:
        waits = blocking_predecessors(plan, edges, grouping)
        order = topological_order(waits, {a: i for i, a in enumerate(waits)})
        grouping.agent_order = (waits, order)
    return grouping.agent_order


def group_predecessors(grouping: Grouping) -> dict[str, list[str]]:
    return {group_id: list(info.depends_on) for group_id, info in grouping.groups.items()}


def _as_graph(predecessors: dict[str, list[str]]) -> nx.DiGraph:
    # imported only for a plan with a cycle: networkx costs a third of a second to import
    import networkx as nx

    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(predecessors)
    graph.add_edges_from((p, node) for node, before in predecessors.items() for p in before)
    return graph


def find_cycles(plan: Plan, edges: list[Edge], grouping: Grouping) -> list[PlanError]:
    """One CycleError per strongly connected knot, agent level first, then group level.

    Each is reported where one of its dependencies is written: a group's `depends_on` entry when
    the loop runs through one (the part of a loop a plan author most often got wrong), else the
    reference in the first agent's `inputs`/`validates`. A loop made only of group `depends_on`
    entries is reported as a loop between those groups."""
    problems: list[PlanError] = []
    agent_waits, ordered = ordered_agents(plan, edges, grouping)
    order = {a: i for i, a in enumerate(agent_waits)}
    # a plan that can be ordered has no cycle: the knots are looked for only when one exists
    if ordered is None:
        agents = _as_graph(agent_waits)
        for component in _knots(agents, order):
            cycle = _cycle_in(agents.subgraph(component), min(component, key=order.__getitem__))
            problems.append(_agent_cycle(plan, cycle, edges, grouping))
    if problems:
        return problems
    group_waits = group_predecessors(grouping)
    group_order = {g: i for i, g in enumerate(grouping.groups)}
    if topological_order(group_waits, group_order) is not None:
        return problems
    groups = _as_graph(group_waits)
    for component in _knots(groups, group_order):
        cycle = _cycle_in(groups.subgraph(component), min(component, key=group_order.__getitem__))
        problems.append(
            CycleError(
                cycle,
                kind="groups",
                location=_declared_at(plan, grouping, cycle[-1], cycle[0])
                or plan.group_location(cycle[0]),
            )
        )
    return problems


def _agent_cycle(plan: Plan, cycle: list[str], edges: list[Edge], grouping: Grouping) -> CycleError:
    # each step (source, target), starting with the one written at cycle[0]
    steps = list(zip([cycle[-1], *cycle[:-1]], cycle, strict=True))
    group_of = grouping.agent_group
    declared = {
        step: _declared_at(plan, grouping, group_of[step[0]], group_of[step[1]])
        for step in steps
        if group_of[step[0]] != group_of[step[1]]
    }
    declared = {step: location for step, location in declared.items() if location is not None}
    if declared and len(declared) == len(steps):
        # only group order: the loop is between the groups
        loop = [group_of[target] for _source, target in steps]
        return CycleError(loop, kind="groups", location=next(iter(declared.values())))
    if declared:
        (source, target), location = next(iter(declared.items()))
        return CycleError(
            cycle,
            kind="agents",
            location=location,
            fix=(
                f"drop group '{group_of[target]}''s depends_on on '{group_of[source]}' (this "
                "line), or make one of the agents' inputs optional_inputs"
            ),
        )
    source, target = steps[0]
    return CycleError(cycle, kind="agents", location=_edge_at(plan, edges, source, target))


def _declared_at(
    plan: Plan, grouping: Grouping, source_group: str, target_group: str
) -> Location | None:
    """Where ``target_group``'s `depends_on` names ``source_group``, or None when it does not
    (the groups' order then comes from data)."""
    info = grouping.groups[target_group]
    if source_group not in info.declared or info.spec is None:
        return None
    for index, ref in enumerate(info.spec.depends_on):
        if resolve_group_ref(plan, ref, grouping) == source_group:
            return plan.group_location(target_group, "depends_on", index)
    return plan.group_location(target_group, "depends_on")


def _edge_at(plan: Plan, edges: list[Edge], source: str, target: str) -> Location:
    """Where the plan writes that ``target`` waits for ``source``: the input reference, or the
    `validates` entry (of the target, or of the source for a validation its readers wait for)."""
    for edge in edges:
        if not (edge.blocking and edge.source == source and edge.target == target):
            continue
        spec = plan.agents[target]
        if edge.kind == FAN_OUT:
            scope = plan.resolution.fan_out[target]
            if scope.level is FanOutLevel.AGENT:
                return plan.agent_location(target, "for_each")
            return plan.group_location(scope.owner, "for_each")
        if edge.ref in spec.inputs:
            return plan.agent_location(target, "inputs", spec.inputs.index(edge.ref))
        if edge.ref == f"validates {source}":
            return plan.agent_location(target, "validates")
        return plan.agent_location(source, "validates")
    return plan.agent_location(target, "inputs")


def _knots(graph: nx.DiGraph, order: dict[str, int]) -> list[list[str]]:
    import networkx as nx

    knots = [
        sorted(c, key=order.__getitem__)
        for c in nx.strongly_connected_components(graph)
        if len(c) > 1
    ]
    return sorted(knots, key=lambda c: order[c[0]])


def _cycle_in(graph: nx.DiGraph, start: str) -> list[str]:
    import networkx as nx

    edges = nx.find_cycle(graph, source=start)
    return [source for source, _target in edges]
