"""Human and machine views of an analysed plan: text, JSON, Mermaid flowchart, Graphviz dot."""

from __future__ import annotations

import json
import re
from typing import Any

from pee.engine.compile.references import CONTEXT, DATA, FAN_OUT, VALIDATION
from pee.engine.compiled import CompiledAgent, CompiledGroup, CompiledPlan, FanOut
from pee.engine.language.fan_out import DEFAULT_ITEMS_ESTIMATE, FanOutLevel
from pee.engine.language.plan import Plan
from pee.engine.language.units import format_seconds


def direct_dependencies(compiled: CompiledPlan) -> dict[str, list[str]]:
    """Group dependencies without those implied by others (a transitive reduction), for display;
    groups come in execution order, so one pass over ancestor bitsets suffices."""
    index = {g.id: i for i, g in enumerate(compiled.groups)}
    ancestors: dict[str, int] = {}
    direct: dict[str, list[str]] = {}
    for group in compiled.groups:
        implied = 0
        for dependency in group.depends_on:
            implied |= ancestors[dependency]
        direct[group.id] = [d for d in group.depends_on if not implied >> index[d] & 1]
        mask = implied
        for dependency in group.depends_on:
            mask |= 1 << index[dependency]
        ancestors[group.id] = mask
    return direct


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 60:
        minutes, rest = divmod(seconds, 60)
        return f"{int(minutes)}m{int(rest):02d}s" if rest else f"{int(minutes)}m"
    return format_seconds(round(seconds, 3))


def _speedup(compiled: CompiledPlan) -> float:
    if compiled.estimated_makespan_s <= 0:
        return 1.0
    return compiled.sequential_s / compiled.estimated_makespan_s


def instance_label(agent: CompiledAgent) -> str:
    """`dev[i]` for an agent that runs once per item, its id otherwise."""
    return f"{agent.id}[i]" if agent.fan_out is not None else agent.id


def fan_out_text(fan_out: FanOut) -> str:
    """'for each sm.stories (~10 items, default; 5 at a time)'."""
    items = f"~{fan_out.items_estimate} items" + (
        "" if fan_out.items_estimate_declared else ", default"
    )
    bound = f"; {fan_out.max_parallel} at a time" if fan_out.max_parallel else ""
    return f"for each {fan_out.source} ({items}{bound})"


def _fan_out_dict(fan_out: FanOut | None) -> dict[str, Any] | None:
    if fan_out is None:
        return None
    return {
        "level": str(fan_out.level),
        "owner": fan_out.owner,
        "source": fan_out.source,
        "members": list(fan_out.members),
        "max_parallel": fan_out.max_parallel,
        "items_estimate": fan_out.items_estimate,
        "items_estimate_declared": fan_out.items_estimate_declared,
    }


def _fan_out_groups(compiled: CompiledPlan) -> list[CompiledGroup]:
    return [g for g in compiled.groups if g.fan_out is not None]


def summary(compiled: CompiledPlan) -> str:
    parallel = sum(1 for g in compiled.groups if len(g.agents) > 1)
    fan_outs = len(_fan_out_groups(compiled))
    return (
        f"valid plan '{compiled.name}': {len(compiled.agents)} agents in "
        f"{len(compiled.groups)} groups ({parallel} parallel"
        + (f", {fan_outs} fan-out{'s' if fan_outs != 1 else ''}" if fan_outs else "")
        + "); critical path "
        f"{' -> '.join(compiled.critical_path)}; "
        f"estimated {_duration(compiled.estimated_makespan_s)}"
        f" vs {_duration(compiled.sequential_s)} sequential ({_speedup(compiled):.2f}x)"
    )


def as_json_dict(compiled: CompiledPlan) -> dict[str, Any]:
    return {
        "name": compiled.name,
        "source": compiled.source,
        "groups": [
            {
                "id": g.id,
                "name": g.name,
                "agents": g.agents,
                "depends_on": g.depends_on,
                "parallel": g.parallel,
                "explicit": g.explicit,
                "timeout_s": g.timeout_s,
                "estimated_s": g.estimated_s,
                "fan_out": _fan_out_dict(g.fan_out),
            }
            for g in compiled.groups
        ],
        "agents": [
            {
                "id": a.id,
                "role": a.role,
                "kind": a.kind,
                "group": a.group,
                "inputs": a.inputs,
                "optional_inputs": a.optional_inputs,
                "outputs": a.outputs,
                "validates": a.validates,
                "priority": a.priority,
                "estimated_s": a.estimated_s,
                "on_critical_path": a.on_critical_path,
                "fan_out": _fan_out_dict(a.fan_out),
            }
            for a in compiled.agents
        ],
        "critical_path": compiled.critical_path,
        "estimated_makespan_s": compiled.estimated_makespan_s,
        "sequential_s": compiled.sequential_s,
        "group_by_group_s": compiled.group_by_group_s,
        "agent_level_s": compiled.agent_level_s,
        "speedup_vs_sequential": round(_speedup(compiled), 3),
        "parallel_opportunities": [
            {
                "kind": o.kind,
                "group": o.group,
                "agents": o.agents,
                "saving_s": o.saving_s,
                "message": o.message,
            }
            for o in compiled.parallel_opportunities
        ],
        "resource_contention": [
            {"group": c.group, "agents": list(c.agents), "reason": c.reason}
            for c in compiled.resources.contention
        ],
        "inputs": sorted(compiled.inputs),
    }


def as_json(compiled: CompiledPlan) -> str:
    return json.dumps(as_json_dict(compiled), indent=2)


def as_text(compiled: CompiledPlan) -> str:
    lines = [f"plan {compiled.name}" + (f" ({compiled.source})" if compiled.source else ""), ""]
    lines.append("groups, in execution order:")
    agents = {a.id: a for a in compiled.agents}
    direct = direct_dependencies(compiled)
    for index, group in enumerate(compiled.groups, 1):
        mode = (
            "parallel"
            if group.parallel and len(group.agents) > 1
            else ("sequential" if len(group.agents) > 1 else "single")
        )
        if group.fan_out is not None:
            mode = f"fan-out {fan_out_text(group.fan_out)}"
        after = f" after {', '.join(direct[group.id])}" if group.depends_on else ""
        deadline = f", barrier {_duration(group.timeout_s)}" if group.timeout_s else ""
        lines.append(
            f"  {index}. {group.id} [{mode}, ~{_duration(group.estimated_s)}{deadline}]{after}"
        )
        for agent_id in group.agents:
            agent = agents[agent_id]
            mark = "*" if agent.on_critical_path else " "
            estimate = _duration(agent.estimated_s)
            lines.append(
                f"     {mark} {instance_label(agent):<24} {agent.kind:<9} ~{estimate:<8}"
                f" priority {agent.priority}"
            )
    lines += [
        "",
        f"critical path (*): {' -> '.join(compiled.critical_path)}",
        f"estimated makespan: {_duration(compiled.estimated_makespan_s)} (eager DAG)",
        f"  group by group:   {_duration(compiled.group_by_group_s)}",
        f"  sequential:       {_duration(compiled.sequential_s)}",
        f"  lower bound:      {_duration(compiled.agent_level_s)} (agents, no barriers)",
        f"  speed-up vs sequential: {_speedup(compiled):.2f}x",
    ]
    fan_out_groups = _fan_out_groups(compiled)
    if fan_out_groups:
        lines += ["", "fan-out (agent[i]: one instance per item, known only at run time):"]
        for group in fan_out_groups:
            fan_out = group.fan_out
            assert fan_out is not None
            members = " -> ".join(f"{m}[i]" for m in fan_out.members)
            what = "a sub-pipeline per item" if fan_out.level is FanOutLevel.GROUP else "per item"
            lines.append(
                f"  - {fan_out.owner}: {members} ({what}), {fan_out_text(fan_out)}; "
                f"estimated ~{_duration(group.estimated_s)}"
            )
        lines.append(
            "  estimates assume each fan-out's items_estimate (default "
            f"{DEFAULT_ITEMS_ESTIMATE}); `pee run` cannot execute a fan-out yet"
        )
    if compiled.parallel_opportunities:
        lines += ["", "parallel opportunities:"]
        lines += [f"  - {o.message}" for o in compiled.parallel_opportunities]
    contention = compiled.resources.contention
    if contention:
        lines += ["", "resource contention (admission control will serialise):"]
        lines += [f"  - {c.group}: {c.reason}" for c in contention]
    if compiled.inputs:
        lines += ["", f"plan inputs: {', '.join(sorted(compiled.inputs))}"]
    return "\n".join(lines)


def _quote(text: str, replacement: str) -> str:
    """Plan and group names are free text; keep their double quotes from closing a label."""
    return text.replace('"', replacement)


def _node_id(name: str) -> str:
    return "n_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _graph_edges(plan: Plan, compiled: CompiledPlan) -> list[tuple[str, str, str]]:
    edges: list[tuple[str, str, str]] = []
    for edge in plan.resolution.edges:
        kind = edge.kind if edge.blocking or edge.kind != VALIDATION else "validation"
        item = (edge.source, edge.target, kind if edge.blocking or kind != DATA else CONTEXT)
        if item not in edges:
            edges.append(item)
    return edges


def as_mermaid(plan: Plan, compiled: CompiledPlan) -> str:
    lines = ["flowchart LR"]
    for group in compiled.groups:
        title = _quote(group.name, "#quot;")
        if group.fan_out is not None:
            title += f"<br/>{fan_out_text(group.fan_out)}"
        lines.append(f'  subgraph {_node_id("g_" + group.id)}["{title}"]')
        if len(group.agents) > 1:
            lines.append("    direction TB")
        for agent_id in group.agents:
            agent = compiled.agent(agent_id)
            label = f"{instance_label(agent)}<br/>~{_duration(agent.estimated_s)}"
            lines.append(f'    {_node_id(agent_id)}["{label}"]')
        lines.append("  end")
    linked_groups: list[tuple[str, str]] = []
    group_of = {a.id: a.group for a in compiled.agents}
    for source, target, kind in _graph_edges(plan, compiled):
        arrow = {
            DATA: "-->",
            CONTEXT: "-.->",
            VALIDATION: "-. validates .->",
            FAN_OUT: "==>|for each|",
        }.get(kind, "-->")
        if kind == VALIDATION:
            lines.append(f"  {_node_id(target)} {arrow} {_node_id(source)}")
        else:
            lines.append(f"  {_node_id(source)} {arrow} {_node_id(target)}")
        if kind in (DATA, FAN_OUT):
            linked_groups.append((group_of[source], group_of[target]))
    direct = direct_dependencies(compiled)
    for group in compiled.groups:
        for dependency in direct[group.id]:
            if (dependency, group.id) not in linked_groups:
                lines.append(f"  {_node_id('g_' + dependency)} --> {_node_id('g_' + group.id)}")
    lines.append("  classDef critical fill:#fde2e1,stroke:#c0392b,stroke-width:2px")
    if compiled.critical_path:
        lines.append(
            "  class " + ",".join(_node_id(a) for a in compiled.critical_path) + " critical"
        )
    return "\n".join(lines)


def as_dot(plan: Plan, compiled: CompiledPlan) -> str:
    lines = [
        f'digraph "{_quote(compiled.name, chr(92) + chr(34))}" {{',
        "  rankdir=LR;",
        "  node [shape=box];",
    ]
    critical = set(compiled.critical_path)
    for group in compiled.groups:
        lines.append(f'  subgraph "cluster_{group.id}" {{')
        lines.append(f'    label="{_quote(group.name, chr(92) + chr(34))}";')
        for agent_id in group.agents:
            agent = compiled.agent(agent_id)
            style = ', color="#c0392b", penwidth=2' if agent_id in critical else ""
            label = f"{instance_label(agent)}\\n~{_duration(agent.estimated_s)}"
            lines.append(f'    "{agent_id}" [label="{label}"{style}];')
        lines.append("  }")
    for source, target, kind in _graph_edges(plan, compiled):
        style = {
            CONTEXT: ' [style=dashed, label="context"]',
            VALIDATION: ' [style=dotted, label="validates"]',
            FAN_OUT: ' [style=bold, label="for each"]',
        }.get(kind, "")
        lines.append(f'  "{source}" -> "{target}"{style};')
    group_agents = {g.id: g.agents for g in compiled.groups}
    edges = {(s, t) for s, t, _ in _graph_edges(plan, compiled)}
    direct = direct_dependencies(compiled)
    for group in compiled.groups:
        for dependency in direct[group.id]:
            source, target = group_agents[dependency][-1], group.agents[0]
            if not any((s, t) in edges for s in group_agents[dependency] for t in group.agents):
                lines.append(
                    f'  "{source}" -> "{target}" [ltail="cluster_{dependency}", '
                    f'lhead="cluster_{group.id}"];'
                )
    lines.append("}")
    return "\n".join(lines)
