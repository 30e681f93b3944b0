"""Fuzzing the plan loader: any text or data either loads into a Plan that compiles to a JSON
compiled plan, or fails with a PlanError; no other exception ever escapes."""

from __future__ import annotations

import json
from functools import cache
from typing import Any, Literal, get_args, get_origin

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from engine import render
from engine.compiled import CompiledPlan
from engine.errors import PlanError
from engine.graph import compile_plan
from engine.models import (
    AGENT_KINDS,
    AgentSpec,
    CrossValidation,
    EnhancedStep,
    GroupSpec,
    ResourceRequirements,
    StepAgent,
    SynchronizationStrategy,
)
from engine.plan import SECTION_MODELS, Plan, build_plan, loads_plan
from engine.units import parse_duration, parse_size, parse_units
from engine.yamlsrc import SourceMap

FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)
HUGE = 10**400  # YAML reads it as an int that no float can hold

# ---- leaves ----------------------------------------------------------------------------------

keys = st.one_of(st.text(max_size=8), st.integers(-3, 3), st.none(), st.booleans(),
                 st.sampled_from(["agents", "inputs", "x", "a.b", "completion", ""]))
leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
    st.sampled_from([HUGE, -HUGE, 0, -1, float("nan"), float("inf"), "", "none", "true"]),
)
json_values = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)
scalars = st.one_of(leaves, st.text(max_size=6))

DURATION_TEXT = [
    "1s", "500ms", "10m", "1h30m", "2m30s", "3-5_minutes", "5-3_minutes", "10_minutes",
    "10_minutes_maximum", "1_hour", "1.5 h", "90", "0", "0s", "-1s", "abc", "", "1h30",
    "9" * 400 + "s", "9" * 400 + "h1s", "1" + "0" * 400 + "ms", "3-" + "9" * 400 + "_minutes",
    "1e5s", "1 weeks", "nan", "inf", " 2 minutes ",
]
durations = st.one_of(
    st.sampled_from(DURATION_TEXT),
    st.integers(-10, 10**6),
    st.floats(),
    st.sampled_from([HUGE, True, None]),
    st.from_regex(r"\A[0-9]{1,4}(\.[0-9]{1,2})?(-[0-9]{1,3})?[ _]?"
                  r"(ms|s|m|h|d|min|minutes|hours|days|weeks)?(_maximum)?\Z"),
    st.fixed_dictionaries({}, optional={"min": st.sampled_from(["1s", 5, "2m", -1, "x"]),
                                        "max": st.sampled_from(["3s", 10, "1m", HUGE, []])}),
    st.text(max_size=8),
    json_values,
)
units = st.one_of(
    st.sampled_from(["low", "medium", "high", "very_high", "Very-High", " medium ", "30", "nan",
                     "inf", "1e999", "-5", "huge", HUGE, -1, 0, 30, 250.5, float("inf"), True]),
    st.floats(), st.integers(), st.text(max_size=6), json_values,
)
sizes = st.one_of(
    st.sampled_from(["50MB", "1.5GB", "10kb", "1024", "12 KiB", "9" * 400 + "GB", "-1MB", "MB",
                     HUGE, -5, 0, 100, 1.5, True]),
    st.from_regex(r"\A[0-9]{1,5}(\.[0-9])? ?(b|kb|kib|mb|mib|gb|gib|k|m|g|tb)?\Z"),
    json_values,
)

# agent ids: mostly valid names from a small pool (so references hit and derived group names
# collide), some invalid ones the loader must reject with a message
GOOD_IDS = ["a", "b", "c", "d", "a_group", "b_group", "pm", "qa", "ux-expert", "_x", "A1",
            "completion", "agents"]
WEIRD_IDS = ["a.b", "", "1a", "-a", "a b", "a+b", "ü", "é1", "x\n", "a:b", "[a]"]
agent_ids = st.one_of(
    st.sampled_from(GOOD_IDS),
    st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_-]{0,5}\Z"),
    st.sampled_from(WEIRD_IDS),
    st.text(max_size=4),
    st.integers(-2, 2), st.none(), st.booleans(),
)
OUTPUT_NAMES = ["x", "y", "z", "out", "prd.md", "a.b.c", "completion", "", "x y"]
output_names = st.one_of(st.sampled_from(OUTPUT_NAMES), st.text(max_size=5))
SHARED_KEYS = ["shared", "design_doc", "arch.md", "k"]


def listish(element: st.SearchStrategy[Any], max_size: int = 4) -> st.SearchStrategy[Any]:
    """Lists mostly; sometimes the bare string form the models accept, sometimes junk."""
    return st.one_of(st.lists(element, max_size=max_size), element, json_values)


# ---- models to dicts -------------------------------------------------------------------------


def _parts(annotation: Any, metadata: list[Any]) -> list[Any]:
    """Every type, Literal value set and validator mentioned by a field annotation."""
    found: list[Any] = list(metadata)
    stack = [annotation]
    while stack:
        item = stack.pop()
        found.append(item)
        if get_origin(item) is not Literal:
            stack.extend(get_args(item))
    return found


def _value_for(annotation: Any, metadata: list[Any], depth: int) -> st.SearchStrategy[Any]:
    parts = _parts(annotation, metadata)
    validators = {getattr(p, "func", None) for p in parts}
    options: list[st.SearchStrategy[Any]] = []
    if parse_duration in validators:
        options.append(durations)
    if parse_units in validators:
        options.append(units)
    if parse_size in validators:
        options.append(sizes)
    for part in parts:
        if get_origin(part) is Literal:
            options.append(st.sampled_from(get_args(part)))
        elif isinstance(part, type) and issubclass(part, BaseModel) and depth < 5:
            inner = model_dicts(part, depth + 1)
            options.append(inner)
            if any(get_origin(p) is dict for p in parts):
                options.append(st.dictionaries(st.text(max_size=6) | keys, inner, max_size=3))
        elif part is bool:
            options.append(st.booleans())
        elif part is int:
            options.append(st.integers(-3, 120))
        elif part is float:
            options.append(st.floats(-5, 500))
        elif part is str:
            options.append(st.text(max_size=8))
        elif get_origin(part) is list:
            options.append(st.lists(st.text(max_size=6), max_size=3))
    options.append(json_values)
    return st.one_of(options)


@cache
def _field_strategies(model: type[BaseModel], depth: int) -> dict[str, st.SearchStrategy[Any]]:
    return {name: _value_for(info.annotation, info.metadata, depth)
            for name, info in model.model_fields.items()}


def model_dicts(model: type[BaseModel], depth: int = 0,
                **overrides: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[Any, Any]]:
    """Mappings with a random subset of the model's keys (plausible or junk values), sometimes a
    misspelt extra key."""
    fields = {**_field_strategies(model, depth), **overrides}
    known = st.fixed_dictionaries({}, optional=fields)
    extra = st.dictionaries(keys, json_values, max_size=1)
    return st.one_of(known, known, known, st.builds(lambda a, b: {**a, **b}, known, extra))


# ---- plans -----------------------------------------------------------------------------------


@st.composite
def native_plans(draw: st.DrawFn) -> dict[Any, Any]:
    """Mostly plausible plans: agents referencing each other's outputs (and some ghosts),
    explicit groups, seed sections, enhanced steps and seed execution groups."""
    ids = draw(st.lists(agent_ids, max_size=7, unique=True))
    outputs = {agent_id: draw(st.lists(output_names, max_size=3)) for agent_id in ids}
    inputs = draw(st.dictionaries(st.sampled_from(["brief", "goal", "x", "a.x"]) | keys,
                                  scalars, max_size=2))
    references = [f"{a}.{o}" for a, outs in outputs.items() for o in outs]
    references += [f"{a}.completion" for a in ids if isinstance(a, str)]
    references += [str(a) for a in ids] + list(map(str, inputs)) + SHARED_KEYS
    references += ["ghost.x", "a.nope", "", "."]
    ref = st.one_of(st.sampled_from(references), st.text(max_size=5))
    member = st.one_of(st.sampled_from(ids or ["a"]), agent_ids)

    agents: dict[Any, Any] = {}
    for agent_id in ids:
        spec = draw(st.one_of(
            model_dicts(
                AgentSpec,
                kind=st.sampled_from([*AGENT_KINDS, "bogus"]) | json_values,
                inputs=listish(ref),
                optional_inputs=listish(ref),
                outputs=st.just(outputs[agent_id]) | listish(output_names),
                writes=listish(st.sampled_from(SHARED_KEYS) | st.text(max_size=3)),
                validates=listish(member),
                defaults=st.dictionaries(st.sampled_from(outputs[agent_id] or ["x"]) | keys,
                                         scalars, max_size=2) | json_values,
                duration=durations,
                estimated_duration=durations,
                timeout=durations,
                resource_requirements=model_dicts(ResourceRequirements) | json_values,
                priority=st.integers(-5, 120) | json_values,
            ),
            st.none(), json_values,
        ))
        agents[agent_id] = spec

    group_ids = st.one_of(st.sampled_from(["g1", "g2", "design", "a", "a_group", "b"]), agent_ids)
    group = model_dicts(
        GroupSpec,
        agents=listish(member),
        depends_on=listish(st.one_of(group_ids, ref)),
        timeout=durations,
        success_criteria=st.one_of(
            st.sampled_from(["all", "all_agents_succeed", "at_least_one_agent_succeeds",
                             "at_least_one", "most", 0, 1, 2, 5, -1, True]),
            st.fixed_dictionaries({"at_least": st.integers(-1, 6)}), json_values),
        cross_validation=model_dicts(CrossValidation, validation_agents=listish(member)),
    )
    step_agent = model_dicts(
        StepAgent, id=member, agent=member,
        context_requirements=st.fixed_dictionaries(
            {}, optional={"read": listish(ref), "write": listish(ref), "other": json_values}),
        inputs=listish(ref), validates=listish(member), timeout=durations,
    )
    step = model_dicts(
        EnhancedStep, id=group_ids, agents=st.lists(step_agent, max_size=3) | json_values,
        depends_on=listish(st.one_of(group_ids, ref)), timeout=durations,
        synchronization=model_dicts(SynchronizationStrategy, timeout=durations),
    )
    execution_group = st.fixed_dictionaries({}, optional={
        "agents": listish(member),
        "dependencies": listish(st.one_of(group_ids, ref)),
        "parallel_capable": st.booleans() | json_values,
        "synchronization": st.just("barrier_sync") | json_values,
        "synchronization_strategy": st.fixed_dictionaries({}, optional={
            "type": scalars, "timeout": durations, "cross_validation": scalars,
            "success_criteria": json_values, "barrier_type": scalars,
            "failure_criteria": scalars, "partial_failure_handling": scalars,
        }) | json_values,
        "estimated_duration": durations,
        "resource_requirements": model_dicts(ResourceRequirements) | json_values,
        "agent_specifications": st.dictionaries(member, model_dicts(AgentSpec, outputs=listish(
            output_names), inputs=listish(ref)) | json_values, max_size=2) | json_values,
        "timeout": durations,
    })

    optional: dict[Any, st.SearchStrategy[Any]] = {
        "name": st.sampled_from(["demo", "x"]) | scalars,
        "description": scalars,
        "version": scalars,
        "inputs": st.just(inputs) | json_values,
        "groups": st.dictionaries(group_ids, group | json_values, max_size=3) | json_values,
        "execution_groups": st.dictionaries(group_ids, execution_group, max_size=3)
        | json_values,
        "enhanced_workflow_step": step,
        "enhanced_workflow_steps": st.lists(step, max_size=2) | json_values,
        "default_agent_timeout": durations,
        "notes": listish(scalars),
        **{key: model_dicts(model) | json_values for key, model in SECTION_MODELS.items()},
    }
    plan = draw(st.fixed_dictionaries({}, optional=optional))
    if draw(st.integers(0, 9)):
        plan["agents"] = agents
    elif draw(st.booleans()):
        plan["agents"] = draw(json_values)
    if draw(st.integers(0, 9)) == 0:
        plan[draw(keys)] = draw(json_values)  # an unknown top-level key
    return plan


BMAD_AGENTS = ["analyst", "pm", "ux-expert", "architect", "po", "sm", "dev", "qa", "various"]
ARTIFACTS = ["project-brief.md", "prd.md", "front-end-spec.md", "story.md", "x (optional)",
             "all_artifacts", "sharded_docs", "PRD.md (if needed)", "a.b", ""]
CONDITIONS = ["user_wants_ai_generation", "po_checklist_issues", "flag"]


@st.composite
def bmad_plans(draw: st.DrawFn) -> dict[Any, Any]:
    """``workflow: {sequence: [...]}`` documents in the BMAD v4 shape, with junk mixed in."""
    artifacts = listish(st.sampled_from(ARTIFACTS) | st.text(max_size=5))
    step = st.fixed_dictionaries({}, optional={
        "agent": st.sampled_from(BMAD_AGENTS) | agent_ids | json_values,
        "creates": artifacts, "updates": artifacts, "requires": artifacts,
        "validates": artifacts,
        "condition": st.sampled_from(CONDITIONS) | scalars,
        "optional": st.booleans() | json_values,
        "optional_steps": listish(scalars), "notes": scalars, "step": scalars,
        "action": scalars, "uses": scalars, "repeats": scalars, "routes": json_values,
    })
    sequence = draw(st.lists(step | json_values, max_size=8))
    workflow = draw(st.fixed_dictionaries({"sequence": st.just(sequence)}, optional={
        "id": scalars, "name": scalars, "description": scalars, "type": scalars,
        "project_types": listish(scalars), "other": json_values,
    }))
    document: dict[Any, Any] = {"workflow": workflow}
    if draw(st.booleans()):
        document.update(draw(st.dictionaries(keys, json_values, max_size=2)))
    return document


variables = st.dictionaries(st.sampled_from([*CONDITIONS, "brief", "prd.md"]) | keys,
                            scalars, max_size=3)


# ---- the property --------------------------------------------------------------------------


def check_compiled(plan: Plan) -> None:
    """A loaded plan compiles; the result is consistent, JSON, and survives a round trip."""
    compiled = compile_plan(plan)
    text = compiled.to_json()
    assert CompiledPlan.from_dict(json.loads(text)).to_json() == text
    agent_ids = [a.id for a in compiled.agents]
    assert sorted(agent_ids) == sorted(plan.agents)
    members = [a for g in compiled.groups for a in g.agents]
    assert sorted(members) == sorted(agent_ids), "every agent in exactly one group"
    group_of = {a.id: a.group for a in compiled.agents}
    seen: set[str] = set()
    for group in compiled.groups:
        assert all(group_of[a] == group.id for a in group.agents)
        assert set(group.depends_on) <= seen, "groups come in dependency order"
        seen.add(group.id)
    assert len(seen) == len(compiled.groups)
    assert set(compiled.critical_path) <= set(agent_ids)
    assert compiled.agent_level_s <= compiled.estimated_makespan_s + 1e-6
    assert compiled.estimated_makespan_s <= compiled.sequential_s + 1e-6
    for view in (render.as_text(compiled), render.as_json(compiled),
                 render.as_mermaid(plan, compiled), render.as_dot(plan, compiled)):
        assert isinstance(view, str)


def load_or_reject(load: Any) -> None:
    try:
        plan = load()
    except PlanError as error:
        event(f"rejected: {type(error).__name__}")
        str(error)  # every error renders
        return
    event("loaded")
    check_compiled(plan)


@FUZZ
@given(native_plans(), variables)
def test_plausible_native_plans_load_or_raise_plan_errors(data: Any, values: Any) -> None:
    """Plan-shaped dicts either compile or fail with a PlanError."""
    load_or_reject(lambda: build_plan(data, SourceMap(), values))


@FUZZ
@given(bmad_plans(), variables)
def test_bmad_like_documents_load_or_raise_plan_errors(data: Any, values: Any) -> None:
    """BMAD-shaped documents either compile or fail with a PlanError."""
    load_or_reject(lambda: build_plan(data, SourceMap(), values))


@settings(FUZZ, max_examples=300)
@given(json_values)
def test_arbitrary_values_raise_plan_errors(data: Any) -> None:
    """Any JSON-like value (mostly not a plan at all) is rejected with a PlanError."""
    load_or_reject(lambda: build_plan(data, SourceMap()))


YAML_ALPHABET = st.sampled_from(list("ab01 :-_.[]{},&*!|>'\"%@`#?\n\t~=") + ["agents", "inputs",
                                "workflow", "sequence", "!!binary", "!!set", "2001-12-14",
                                "&x", "*x", "<<", ".nan", "1e999", "9" * 30, "- "])


@settings(FUZZ, max_examples=300)
@given(st.one_of(st.text(max_size=60), st.text(YAML_ALPHABET, max_size=40)))
def test_random_text_loads_or_raises_plan_errors(text: str) -> None:
    """Random characters, YAML punctuation and tags: a Plan or a PlanError."""
    load_or_reject(lambda: loads_plan(text, file="fuzz.yaml"))


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, default_flow_style=None, allow_unicode=True, sort_keys=False)


@settings(FUZZ, max_examples=300)
@given(st.one_of(native_plans(), bmad_plans()), st.data())
def test_plan_yaml_with_damage_loads_or_raises_plan_errors(data: Any,
                                                           draw: st.DataObject) -> None:
    """Plausible plans as YAML text, intact or with a slice cut out or replaced."""
    text = _dump(data)
    if text and draw.draw(st.booleans()):
        start = draw.draw(st.integers(0, len(text) - 1))
        end = draw.draw(st.integers(start, min(len(text), start + 20)))
        text = text[:start] + draw.draw(st.text(YAML_ALPHABET, max_size=3)) + text[end:]
    load_or_reject(lambda: loads_plan(text, file="fuzz.yaml"))


# ---- valid DAGs --------------------------------------------------------------------------------


@st.composite
def valid_dags(draw: st.DrawFn) -> dict[str, Any]:
    """Always-valid native plans: each agent reads outputs of earlier ones."""
    count = draw(st.integers(1, 12))
    agents: dict[str, Any] = {}
    for index in range(count):
        spec: dict[str, Any] = {"duration": draw(st.sampled_from(["1s", "2s", "3-5_minutes",
                                                                   10, 0.5])),
                                "outputs": ["out"]}
        if index:
            earlier = st.integers(0, index - 1).map(lambda i: f"n{i}.out")
            spec["inputs"] = draw(st.lists(earlier, max_size=3, unique=True))
            spec["optional_inputs"] = draw(st.lists(earlier, max_size=1))
        agents[f"n{index}"] = spec
    return {"name": "dag", "agents": agents}


@FUZZ
@given(valid_dags())
def test_valid_dags_always_compile(data: dict[str, Any]) -> None:
    """A plan whose agents only read earlier agents' outputs is always valid."""
    check_compiled(build_plan(data, SourceMap()))
