"""The graph a run's actual critical path is taken over once fan-outs have expanded (pure).

At run time a fan-out's instances (`dev[i]`, or `story[i]`, `implement[i]`, `review[i]` per
item of a group) join the plan as copies of their template, dependencies and all: `implement[2]`
still names `story`, and the agent after the fan-out (`summary`) names `review`. Taken as they
are, the templates (which do no work themselves) stand in for the items and the path skips
them: `po -> story[0] -> summary`. Here every expanded template leaves the graph, an instance's
dependency on a member of its own fan-out becomes the same item's instance (`implement[2]` waits
for `story[2]`), and anyone else's dependency on a template becomes one on all its instances
(`summary` waits for every `review[i]`), so the path runs through the slowest item's chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from pee.engine.compiled import CompiledAgent, CompiledGroup, FanOut


def expanded_graph(agents: Sequence[CompiledAgent]) -> list[CompiledAgent]:
    """`agents` without the expanded templates, dependencies moved to their instances (a plan
    without fan-outs, or whose fan-outs have not started, comes back as it is)."""
    instances: dict[str, list[str]] = {}
    for agent in agents:
        found = FanOut.template_of(agent.id)
        if found is not None:
            instances.setdefault(found[0], []).append(agent.id)
    templates = {a.id: a for a in agents if a.fan_out is not None and a.id in instances}
    if not templates:
        return list(agents)
    graph = []
    for agent in agents:
        if agent.id in templates:
            continue
        found = FanOut.template_of(agent.id)
        own = templates.get(found[0]) if found is not None else None
        depends: list[str] = []
        for dep in agent.depends_on:
            template = templates.get(dep)
            if template is None:
                depends.append(dep)
            elif (
                own is not None
                and found is not None
                and own.fan_out is not None
                and dep in own.fan_out.members
            ):
                depends.append(FanOut.instance_id(dep, found[1]))
            else:
                depends += instances[dep]
        # inputs naming a template would bring it back (pee.engine.dag.agent_dependencies
        # reads agent.output inputs too): they are covered by depends_on above
        inputs = [key for key in agent.inputs if key.split(".", 1)[0] not in templates]
        graph.append(replace(agent, depends_on=depends, inputs=inputs))
    return graph


def expanded_groups(groups: Sequence[CompiledGroup]) -> list[CompiledGroup]:
    """The groups as the graph sees them: a fan-out group runs its items in parallel whatever
    its `parallel` says (that orders the members within an item, already in depends_on)."""
    return [replace(g, parallel=True) if g.fan_out is not None else g for g in groups]
