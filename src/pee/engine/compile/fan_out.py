"""Fan-out at compile time: the rules a for_each must follow, the typed FanOut each agent and group
gets, and how many item waves the estimates assume.

The source edges themselves (and a source that is no earlier agent's output) are
pee.engine.compile.references' work; a cycle through a fan-out is found with every other cycle,
because its FAN_OUT edges are blocking. The design: design-notes/fan-out.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial

from pee.engine.compile.grouping import Grouping
from pee.engine.compile.references import Resolution
from pee.engine.compiled import FanOut
from pee.engine.language.errors import FanOutError, Location, PlanError
from pee.engine.language.fan_out import (
    DEFAULT_ITEMS_ESTIMATE,
    ITEM_INPUTS,
    FanOutLevel,
    FanOutScope,
    fan_out_owners,
)
from pee.engine.language.plan import Plan


def check_fan_out(plan: Plan, resolution: Resolution, grouping: Grouping) -> list[PlanError]:
    """Every problem with the plan's for_each entries besides their sources."""
    problems = _settings_without_for_each(plan)
    scopes = resolution.fan_out
    if not scopes:
        return problems
    for agent_id, scope in scopes.items():
        spec = plan.agents[agent_id]
        if scope.level is FanOutLevel.GROUP and spec.for_each is not None:
            problems.append(
                FanOutError(
                    f"agent '{agent_id}' fans out over '{spec.for_each}' inside group "
                    f"'{scope.owner}', which already fans out over '{scope.source}': a fan-out "
                    "inside a fan-out is not supported",
                    value=spec.for_each,
                    location=plan.agent_location(agent_id, "for_each"),
                    expected="for_each on the agent or on its group, not both",
                    found=repr(spec.for_each),
                    fix=f"remove for_each from '{agent_id}', or take it out of group "
                    f"'{scope.owner}' and fan it out over the group's collected list",
                )
            )
        if scope.level is FanOutLevel.AGENT:
            group = grouping.groups.get(grouping.agent_group.get(agent_id, ""))
            others = [a for a in group.agents if a != agent_id] if group else []
            if others and group is not None and group.explicit:
                problems.append(
                    FanOutError(
                        f"agent '{agent_id}' fans out, but shares group '{group.id}' with "
                        f"{others}: a fan-out agent's group barrier counts its items",
                        value=agent_id,
                        location=plan.agent_location(agent_id, "for_each"),
                        expected="a fan-out agent alone in its group",
                        fix=f"take '{agent_id}' out of group '{group.id}', or move for_each to "
                        "the group (each item then runs the group's agents as a sub-pipeline)",
                    )
                )
        if spec.writes:
            problems.append(
                FanOutError(
                    f"agent '{agent_id}' runs once per item of '{scope.source}' but writes "
                    f"shared keys {spec.writes}: every item would write the same key",
                    value=spec.writes,
                    location=plan.agent_location(agent_id, "writes"),
                    expected="no writes from an agent that runs per item",
                    fix="make them outputs: readers after the fan-out get the list of every "
                    "item's value, in item order",
                )
            )
    for scope in fan_out_owners(scopes):
        if scope.level is FanOutLevel.GROUP:
            cross = plan.groups[scope.owner].cross_validation
            if cross is not None and cross.enabled:
                problems.append(
                    FanOutError(
                        f"group '{scope.owner}' fans out and sets cross_validation, which a "
                        "fan-out group does not support yet",
                        value=scope.owner,
                        location=plan.group_location(scope.owner, "cross_validation"),
                        expected="no cross_validation on a group with for_each",
                        fix="validate the collected lists with an agent after the group "
                        "(validates: [AGENT])",
                    )
                )
    for name in ITEM_INPUTS:
        if name in plan.inputs:
            problems.append(
                FanOutError(
                    f"plan input '{name}' has the name every fan-out instance gives its own {name}",
                    value=name,
                    location=plan.source.locate(("inputs", name)),
                    expected=f"plan inputs named other than {list(ITEM_INPUTS)} in a plan "
                    "with for_each",
                    fix=f"rename the plan input '{name}'",
                )
            )
    return problems


def _settings_without_for_each(plan: Plan) -> list[PlanError]:
    problems: list[PlanError] = []
    # (who, the key, its value, where)
    owners: list[tuple[str, str, object, Location]] = []
    # agents and groups take the same keys: one walk over both
    holders = [
        (f"agent '{agent_id}'", spec, partial(plan.agent_location, agent_id))
        for agent_id, spec in plan.agents.items()
    ] + [
        (f"group '{group_id}'", group, partial(plan.group_location, group_id))
        for group_id, group in plan.groups.items()
    ]
    for where, holder, locate in holders:
        if holder.for_each is not None:
            continue
        for key in ("max_parallel", "items_estimate"):
            value = getattr(holder, key)
            if value is not None:
                owners.append((where, key, value, locate(key)))
    for where, key, value, location in owners:
        problems.append(
            FanOutError(
                f"{where} sets {key} but has no for_each: {key} only applies to a fan-out",
                value=value,
                location=location,
                expected=f"for_each: AGENT.OUTPUT beside {key}",
                fix=f"add for_each, or remove {key}",
            )
        )
    return problems


def compiled_fan_outs(plan: Plan, resolution: Resolution) -> dict[str, FanOut]:
    """Agent id -> its FanOut, for every agent that runs per item."""
    compiled: dict[str, FanOut] = {}
    for scope in fan_out_owners(resolution.fan_out):
        spec = plan.agents[scope.owner] if scope.level is FanOutLevel.AGENT else None
        group = plan.groups[scope.owner] if scope.level is FanOutLevel.GROUP else None
        settings = spec if spec is not None else group
        assert settings is not None
        fan_out = FanOut(
            owner=scope.owner,
            level=scope.level,
            source=resolution.fan_out_sources.get(scope.owner, _canonical(plan, scope)),
            members=scope.members,
            max_parallel=settings.max_parallel,
            items_estimate=(
                settings.items_estimate
                if settings.items_estimate is not None
                else DEFAULT_ITEMS_ESTIMATE
            ),
            items_estimate_declared=settings.items_estimate is not None,
        )
        for member in scope.members:
            compiled[member] = fan_out
    return compiled


def _canonical(plan: Plan, scope: FanOutScope) -> str:
    head, output = scope.source.split(".", 1)
    return f"{plan.aliases.get(head, head)}.{output}"


def waves(fan_out: FanOut, pool_limit: int | None) -> int:
    """How many rounds of items the estimate assumes: the items over what may run at once
    (max_parallel, and the pool's concurrent_agent_limit when the plan gives a pool). 0 items:
    no round at all."""
    items = fan_out.items_estimate
    if items == 0:
        return 0
    lanes = min(fan_out.max_parallel or items, pool_limit or items, items)
    return math.ceil(items / lanes)


def instance_counts(
    fan_outs: Mapping[str, FanOut], pool_limit: int | None
) -> dict[str, tuple[int, int]]:
    """Agent id -> (estimated items, waves) for the agents that run per item."""
    return {a: (f.items_estimate, waves(f, pool_limit)) for a, f in fan_outs.items()}
