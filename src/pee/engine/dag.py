"""Run-report arithmetic: the actual critical path and parallel efficiency of a run.

Pure and deterministic (lists and plan order, no set iteration) because the workflow computes them
for its `status` query and its result. The lower bound is the agent-level DAG (blocking inputs,
shared keys, validations, the order of sequential groups, and group dependencies the plan declares
without any data behind them) with each agent weighted by how long it actually ran: what a
scheduler with no group barriers and no overhead would have achieved with the same agents.
``parallel_efficiency`` = that bound / the real makespan.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from pee.engine.compiled import CompiledAgent, CompiledGroup


def agent_dependencies(
    agents: Sequence[CompiledAgent], groups: Sequence[CompiledGroup]
) -> dict[str, list[str]]:
    """agent id -> the agents it must wait for, each list in plan order, no duplicates."""
    ids = [agent.id for agent in agents]
    # positions: membership and plan order in O(1), a 5,000-agent plan runs this in a workflow
    # task (under its 2 s deadlock limit)
    position = {agent_id: index for index, agent_id in enumerate(ids)}
    previous: dict[str, str] = {}
    for group in groups:
        if not group.parallel:
            for before, after in zip(group.agents, group.agents[1:], strict=False):
                previous[after] = before

    deps: dict[str, list[str]] = {}
    for agent in agents:
        # the analyser's list; a hand-built plan without one still has its agent.output inputs
        found: list[str] = list(agent.depends_on)
        for ref in agent.inputs:
            if "." in ref and ref.split(".", 1)[0] in position:
                found.append(ref.split(".", 1)[0])
        found += [v for v in agent.validates if v in position]
        if agent.id in previous:
            found.append(previous[agent.id])
        unique = {a: position[a] for a in found if a in position and a != agent.id}
        deps[agent.id] = sorted(unique, key=unique.__getitem__)

    # A group dependency with no agent-level edge behind it was declared by the plan author
    # (the seed's "depends_on: [group_1]"): every member waits for every member of that group.
    # A derived one is already covered by the data edges it came from.
    members = {group.id: list(group.agents) for group in groups}
    for group in groups:
        for dependency in group.depends_on:
            waited_on = members.get(dependency, [])
            linked = any(d in waited_on for a in group.agents for d in deps.get(a, []))
            if not linked:
                for agent_id in group.agents:
                    if agent_id in deps:
                        deps[agent_id] = [a for a in ids if a in deps[agent_id] or a in waited_on]
    return deps


def topological_order(ids: Sequence[str], deps: Mapping[str, Sequence[str]]) -> list[str]:
    """Kahn's algorithm, ties broken by position in `ids`; agents on a cycle are left out."""
    rank = {node: index for index, node in enumerate(ids)}
    predecessors = {node: [d for d in deps.get(node, ()) if d in rank] for node in ids}
    return ranked_order(predecessors, rank)


def ranked_order(predecessors: Mapping[str, Collection[str]], rank: Mapping[str, int]) -> list[str]:
    """Every node after its predecessors (each one a key too), the lowest ``rank`` first among
    the ready ones; nodes on a cycle, and those after them, are left out. A heap of the ready
    ones: taking the earliest by a scan was O(ready) per node (half a second for 10,000 agents,
    in the first workflow task)."""
    successors: dict[str, list[str]] = {node: [] for node in predecessors}
    waiting: dict[str, int] = {}
    for node, before in predecessors.items():
        waiting[node] = len(before)
        for predecessor in before:
            successors[predecessor].append(node)
    ready = [(rank[node], node) for node, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, node = heapq.heappop(ready)
        order.append(node)
        for successor in successors[node]:
            waiting[successor] -= 1
            if waiting[successor] == 0:
                heapq.heappush(ready, (rank[successor], successor))
    return order


@dataclass(frozen=True)
class AgentGraph:
    """An agent-level DAG (agent_dependencies) and its topological order, built once for a
    report's critical path and its bottleneck analysis (inside a workflow activation)."""

    ids: list[str]
    deps: dict[str, list[str]]
    order: list[str]


def agent_graph(agents: Sequence[CompiledAgent], groups: Sequence[CompiledGroup]) -> AgentGraph:
    ids = [agent.id for agent in agents]
    deps = agent_dependencies(agents, groups)
    return AgentGraph(ids, deps, topological_order(ids, deps))


def longest_path(
    ids: Sequence[str],
    deps: Mapping[str, Sequence[str]],
    durations: Mapping[str, float],
    order: Sequence[str] | None = None,
) -> tuple[float, list[str]]:
    """Length and nodes of the longest duration-weighted path (earliest in `ids` on ties).
    ``order``: topological_order(ids, deps), when the caller has it."""
    if order is None:
        order = topological_order(ids, deps)
    if not order:
        return 0.0, []
    rank = {node: index for index, node in enumerate(ids)}
    finish: dict[str, float] = {}
    for node in order:
        start = max((finish[d] for d in deps.get(node, ()) if d in finish), default=0.0)
        finish[node] = start + max(0.0, durations.get(node, 0.0))
    node = max(order, key=lambda n: (finish[n], -rank[n]))
    length = finish[node]
    path = [node]
    while True:
        before = [d for d in deps.get(node, ()) if d in finish]
        if not before:
            break
        node = max(before, key=lambda d: (finish[d], -rank[d]))
        path.append(node)
    return round(length, 3), path[::-1]


def actual_critical_path(
    agents: Sequence[CompiledAgent],
    groups: Sequence[CompiledGroup],
    durations: Mapping[str, float],
) -> tuple[float, list[str]]:
    """The lower bound (seconds) and the agents on it, from actual agent durations."""
    return longest_path(
        [agent.id for agent in agents], agent_dependencies(agents, groups), durations
    )


def parallel_efficiency(lower_bound_s: float, makespan_s: float) -> float:
    """lower bound / makespan, in [0, 1]; 1.0 = no scheduling overhead (and for empty runs)."""
    if makespan_s <= 0:
        return 1.0
    return round(min(1.0, max(0.0, lower_bound_s / makespan_s)), 3)


def utilisation_percentage(cpu_seconds: float, capacity: float, makespan_s: float) -> float:
    """Mean CPU units in use over the makespan, as a percentage of the capacity (0 when the
    run took no time)."""
    if makespan_s <= 0 or capacity <= 0:
        return 0.0
    return round(100.0 * cpu_seconds / (capacity * makespan_s), 1)


def iso_at(start: datetime, offset_s: float | None) -> str | None:
    """ISO 8601 time `offset_s` seconds after `start` (None stays None)."""
    if offset_s is None:
        return None
    # the zone and fold too: equal datetimes in other zones (or folds) are written otherwise
    return _iso_at(start, start.tzinfo, start.fold, offset_s)


@functools.lru_cache(maxsize=4096)
def _iso_at(start: datetime, zone: tzinfo | None, fold: int, offset_s: float) -> str:
    # a run's report writes 3-4 times per agent, most of them the same few instants (agents
    # started and ended together): each written once (pure, so a cache is safe)
    return (start + timedelta(seconds=offset_s)).isoformat(timespec="milliseconds")
