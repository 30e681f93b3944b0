"""Resolves what each agent reads into typed edges between agents.

A reference is one of, tried in this order:
1. a plan input name (supplied in ``inputs:`` or with ``--set``): no edge;
2. a shared context key that some agents list in ``writes``: an edge from every writer (an
   agent that writes the key too waits only for the writers that do not read it);
3. ``agent.output`` (``agent`` may be an alias from an enhanced step, ``output`` may be
   ``completion`` to wait for the agent without reading anything): an edge from that agent.

Inside a fan-out, ``item`` and ``index`` come first (the instance's own; no edge), and each
``for_each: agent.output`` is an edge of kind FAN_OUT from that agent to every agent that runs
per item.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pee.engine.compile.fan_out_scopes import fan_out_scopes
from pee.engine.language.errors import (
    FanOutError,
    MissingProducerError,
    PlanError,
    UnknownAgentError,
    suggest,
)
from pee.engine.language.fan_out import ITEM_INPUTS, FanOutLevel, FanOutScope
from pee.engine.language.models import ROLE_DEFAULT_OUTPUTS, normalise_role
from pee.engine.language.plan import Plan

DATA = "data"
CONTEXT = "context"
VALIDATION = "validation"
# the fourth kind of dependency: agents that contend for a resource are put in different
# groups by grouping.py (no edge of this kind is drawn, the name documents it)
RESOURCE = "resource"
# an agent that runs per item waits for the list it runs over (blocking, like data)
FAN_OUT = "fan_out"

COMPLETION = "completion"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str
    # the reference that created it ("pm.user_stories"), for messages and reports
    ref: str = ""
    blocking: bool = True


@dataclass
class Resolution:
    edges: list[Edge] = field(default_factory=list)
    # outputs of each agent after inference for open (seed) agents, in declaration order
    outputs: dict[str, list[str]] = field(default_factory=dict)
    # plan inputs that some agent reads
    plan_inputs: list[str] = field(default_factory=list)
    problems: list[PlanError] = field(default_factory=list)
    # agent id -> the fan-out it runs in (pee.engine.language.fan_out)
    fan_out: dict[str, FanOutScope] = field(default_factory=dict)
    # fan-out owner (agent or group id) -> its source as "agent.output", aliases resolved
    fan_out_sources: dict[str, str] = field(default_factory=dict)


def resolve(plan: Plan) -> Resolution:
    result = Resolution(
        outputs={a: list(spec.outputs) for a, spec in plan.agents.items()},
        fan_out=fan_out_scopes(plan),
    )
    open_agents = set(plan.open_agents)
    writers: dict[str, list[str]] = {}
    for agent_id, spec in plan.agents.items():
        for key in spec.writes:
            writers.setdefault(key, []).append(agent_id)
    validation_default = validation_blocks_by_default(plan)

    blocking_validations: list[tuple[str, str]] = []
    for agent_id, spec in plan.agents.items():
        for field_name, kind in (("inputs", DATA), ("optional_inputs", CONTEXT)):
            for index, ref in enumerate(getattr(spec, field_name)):
                producers = _resolve_ref(
                    plan, agent_id, ref, field_name, index, writers, open_agents, result
                )
                for producer, _output in producers:
                    if producer == agent_id:
                        result.problems.append(
                            MissingProducerError(
                                f"agent '{agent_id}' reads its own output '{ref}'",
                                value=ref,
                                location=plan.agent_location(agent_id, field_name, index),
                                expected="inputs produced by other agents",
                                fix="remove it from inputs",
                            )
                        )
                        continue
                    result.edges.append(Edge(producer, agent_id, kind, ref, blocking=kind == DATA))
        blocking = spec.validation_blocking
        if blocking is None:
            blocking = validation_default
        for index, target in enumerate(spec.validates):
            target_id = plan.aliases.get(target, target)
            if target_id not in plan.agents:
                result.problems.append(_unknown_agent(plan, agent_id, "validates", index, target))
                continue
            if target_id == agent_id:
                continue  # an agent checking its own output needs no edge
            # a validator needs the output it checks, so it always runs after its target;
            # "blocking" decides whether the target's readers also wait for the verdict
            result.edges.append(Edge(target_id, agent_id, VALIDATION, f"validates {target_id}"))
            if blocking:
                blocking_validations.append((agent_id, target_id))
    _fan_out_sources(plan, open_agents, result)
    for agent_id in plan.open_agents:
        open_spec = plan.agents.get(agent_id)
        if open_spec is not None and open_spec.resolved_kind(agent_id) == "role":
            role = normalise_role(open_spec.role or agent_id)
            outputs = result.outputs[agent_id]
            outputs += [o for o in ROLE_DEFAULT_OUTPUTS.get(role, ()) if o not in outputs]
    readers: dict[str, list[str]] = {}
    for edge in result.edges:
        if edge.kind == DATA:
            readers.setdefault(edge.source, []).append(edge.target)
    for validator, target_id in blocking_validations:
        for reader in readers.get(target_id, []):
            if reader != validator:
                result.edges.append(
                    Edge(validator, reader, VALIDATION, f"{validator} validates {target_id}")
                )
    return result


def validation_blocks_by_default(plan: Plan) -> bool:
    """The seed's dependency_types.validation_dependency.blocking (false unless a plan says)."""
    validation_type = plan.dependency_analyzer.dependency_types.get("validation_dependency")
    return bool(validation_type is not None and validation_type.blocking)


def _unknown_agent(
    plan: Plan, agent_id: str, field_name: str, index: int, name: str
) -> UnknownAgentError:
    close = suggest(name, plan.agents)
    return UnknownAgentError(
        f"agent '{agent_id}' refers to agent '{name}', which the plan does not define",
        value=name,
        location=plan.agent_location(agent_id, field_name, index),
        expected=f"one of {list(plan.agents)}",
        found=repr(name),
        fix=f"did you mean '{close}'?" if close else "define the agent or fix the name",
    )


def _resolve_ref(
    plan: Plan,
    agent_id: str,
    ref: str,
    field_name: str,
    index: int,
    writers: dict[str, list[str]],
    open_agents: set[str],
    result: Resolution,
) -> list[tuple[str, str]]:
    if ref in ITEM_INPUTS and agent_id in result.fan_out:
        return []
    if ref in plan.inputs:
        # few plan inputs, read by many agents: the list stays short
        if ref not in result.plan_inputs:
            result.plan_inputs.append(ref)
        return []
    if ref in writers:
        if agent_id in writers[ref]:
            # read-modify-write: wait for the key's creators (writers that do not read it), not
            # for the other modifiers, which run alongside and are merged on commit
            readers_of = [
                w
                for w in writers[ref]
                if w != agent_id
                and ref not in plan.agents[w].inputs
                and ref not in plan.agents[w].optional_inputs
            ]
            return [(writer, ref) for writer in readers_of]
        return [(writer, ref) for writer in writers[ref]]
    if "." not in ref:
        if ref in plan.agents or ref in plan.aliases:
            producer = plan.aliases.get(ref, ref)
            return [(producer, COMPLETION)]
        if ref in ITEM_INPUTS:
            result.problems.append(
                FanOutError(
                    f"agent '{agent_id}' reads '{ref}', which only the instances of a fan-out "
                    "receive",
                    value=ref,
                    location=plan.agent_location(agent_id, field_name, index),
                    expected="an agent with for_each, or an agent in a group with for_each",
                    found=repr(ref),
                    fix=f"add for_each: AGENT.OUTPUT to '{agent_id}' or its group, or remove "
                    f"'{ref}'",
                )
            )
            return []
        known_keys = sorted(writers) + sorted(plan.inputs)
        close = suggest(ref, [*known_keys, *plan.agents])
        result.problems.append(
            MissingProducerError(
                f"agent '{agent_id}' reads '{ref}', but no agent writes it and no plan input "
                "supplies it",
                value=ref,
                location=plan.agent_location(agent_id, field_name, index),
                expected=(
                    "'agent.output', a shared key listed in some agent's writes, or a plan input"
                ),
                found=repr(ref),
                fix=(f"did you mean '{close}'? " if close else "")
                + f"supply it with --set {ref}=VALUE, add it under inputs:, or list it in the "
                "writes of the agent that produces it",
            )
        )
        return []
    producer, output = ref.split(".", 1)
    producer = plan.aliases.get(producer, producer)
    if producer not in plan.agents:
        result.problems.append(
            _unknown_agent(plan, agent_id, field_name, index, ref.split(".", 1)[0])
        )
        return []
    if output == COMPLETION:
        return [(producer, output)]
    if not _declares(result, open_agents, producer, output):
        outputs = result.outputs[producer]
        close = suggest(output, outputs)
        result.problems.append(
            MissingProducerError(
                f"agent '{agent_id}' reads '{ref}', but no agent writes it; writers: "
                f"{[f'{producer}.{o}' for o in outputs]}",
                value=ref,
                location=plan.agent_location(agent_id, field_name, index),
                expected=f"one of {producer}'s outputs",
                found=repr(output),
                fix=(
                    f"did you mean '{producer}.{close}'?"
                    if close
                    else f"add '{output}' to {producer}'s outputs"
                ),
            )
        )
        return []
    return [(producer, output)]


def _declares(result: Resolution, open_agents: set[str], producer: str, output: str) -> bool:
    """Whether ``producer`` declares ``output``. An open agent (its outputs are known only when
    it runs) declares any name it is asked for, which then joins its outputs."""
    outputs = result.outputs[producer]
    if output in outputs:
        return True
    if producer in open_agents:
        outputs.append(output)
        return True
    return False


def _fan_out_sources(plan: Plan, open_agents: set[str], result: Resolution) -> None:
    """Resolve every for_each to the agent that outputs the list, and draw its FAN_OUT edges."""
    seen: list[str] = []
    for scope in result.fan_out.values():
        if scope.owner in seen:
            continue
        seen.append(scope.owner)
        if scope.level is FanOutLevel.AGENT:
            where, location = f"agent '{scope.owner}'", plan.agent_location(scope.owner, "for_each")
        else:
            where, location = f"group '{scope.owner}'", plan.group_location(scope.owner, "for_each")
        head, output = scope.source.split(".", 1)
        producer = plan.aliases.get(head, head)
        if producer not in plan.agents:
            close = suggest(head, plan.agents)
            result.problems.append(
                UnknownAgentError(
                    f"{where} fans out over '{scope.source}', but the plan defines no agent "
                    f"'{head}'",
                    value=scope.source,
                    location=location,
                    expected=f"'agent.output' of one of {list(plan.agents)}",
                    found=repr(head),
                    fix=f"did you mean '{close}.{output}'?" if close else "fix the agent name",
                )
            )
            continue
        if producer in scope.members:
            result.problems.append(
                FanOutError(
                    f"{where} fans out over '{scope.source}', which "
                    + (
                        "it outputs itself"
                        if scope.level is FanOutLevel.AGENT
                        else "one of its own agents outputs"
                    )
                    + ": the list must exist before the first item starts",
                    value=scope.source,
                    location=location,
                    expected="the output of an agent that runs before the fan-out",
                    found=repr(scope.source),
                    fix=f"move '{producer}' out of the group"
                    if scope.level is FanOutLevel.GROUP
                    else "fan out over another agent's output",
                )
            )
            continue
        if output == COMPLETION:
            result.problems.append(
                FanOutError(
                    f"{where} fans out over '{scope.source}', but '{COMPLETION}' only waits for "
                    f"'{producer}' and carries no list",
                    value=scope.source,
                    location=location,
                    expected=f"one of {producer}'s outputs",
                    found=repr(output),
                    fix=f"name the output of '{producer}' that holds the list",
                )
            )
            continue
        if not _declares(result, open_agents, producer, output):
            outputs = result.outputs[producer]
            close = suggest(output, outputs)
            result.problems.append(
                MissingProducerError(
                    f"{where} fans out over '{scope.source}', but '{producer}' declares no "
                    f"output '{output}'; its outputs: {outputs}",
                    value=scope.source,
                    location=location,
                    expected=f"one of {producer}'s outputs",
                    found=repr(output),
                    fix=f"did you mean '{head}.{close}'?"
                    if close
                    else f"add '{output}' to {producer}'s outputs",
                )
            )
            continue
        result.fan_out_sources[scope.owner] = f"{producer}.{output}"
        for member in scope.members:
            result.edges.append(Edge(producer, member, FAN_OUT, scope.source))
