"""Fuzzing the plan loader: any text or data either loads into a Plan that compiles to a JSON
compiled plan, or fails with a PlanError; no other exception ever escapes."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from pydantic import BaseModel

from pee.engine.compile import render
from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import build_plan, loads_plan
from pee.engine.compiled import CompiledPlan
from pee.engine.language.errors import PlanError
from pee.engine.language.models import (
    AGENT_KINDS,
    AgentSpec,
    CrossValidation,
    EnhancedStep,
    GroupSpec,
    ResourceRequirements,
    StepAgent,
    SynchronizationStrategy,
)
from pee.engine.language.plan import SECTION_MODELS, Plan
from pee.engine.language.units import parse_duration, parse_size, parse_units
from pee.engine.language.yamlsrc import SourceMap, load_yaml

FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
HUGE = 10**400  # YAML reads it as an int that no float can hold

# ---- leaves ----------------------------------------------------------------------------------

# YAML mapping keys may be numbers, booleans or null as well as text
keys = st.one_of(
    st.text(max_size=8),
    st.integers(-3, 3),
    st.none(),
    st.booleans(),
    st.sampled_from(["agents", "inputs", "x", "a.b", "completion", ""]),
)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from([HUGE, -HUGE, 0, -1, float("nan"), float("inf"), "", "none", "true"]),
    # not JSON: YAML writes them as timestamps and !!binary
    st.dates(),
    st.binary(max_size=3),
)


def nested(max_leaves: int) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)
        ),
        max_leaves=max_leaves,
    )


# completely random YAML-like values (a whole document), and the small junk mixed into plausible
# plans
json_values = nested(16)
junk = nested(3)
scalars = st.one_of(leaves, st.text(max_size=6))


def mostly(
    good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any], odds: int = 8
) -> st.SearchStrategy[Any]:
    """Plausible values ``odds`` times as often as the others, so that many plans get past the
    first check and reach the later ones."""
    # (st.one_of picks branches about evenly however often one is repeated)
    return st.sampled_from([True] * odds + [False]).flatmap(lambda ok: good if ok else bad)


GOOD_DURATIONS = [
    "1s",
    "500ms",
    "10m",
    "1h30m",
    "2m30s",
    "3-5_minutes",
    "10_minutes",
    "10_minutes_maximum",
    "1_hour",
    "1.5 h",
    "90",
    "0",
    "0s",
    " 2 minutes ",
    1,
    2.5,
    600,
    {"min": "1s", "max": "3s"},
]
BAD_DURATIONS = [
    "5-3_minutes",
    "-1s",
    "abc",
    "",
    "1h30",
    "9" * 400 + "s",
    "9" * 400 + "h1s",
    "1" + "0" * 400 + "ms",
    "3-" + "9" * 400 + "_minutes",
    "1e5s",
    "1 weeks",
    "nan",
    "inf",
    HUGE,
    -HUGE,
    True,
    None,
    -1,
    float("nan"),
    float("inf"),
    {"min": "3s", "max": "1s"},
    {"min": HUGE},
    {"max": []},
    {"min": "x"},
    {},
]
durations = mostly(
    st.sampled_from(GOOD_DURATIONS)
    | st.from_regex(
        r"\A[0-9]{1,4}(\.[0-9]{1,2})?(-[0-9]{1,3})?[ _]?"
        r"(ms|s|m|h|d|min|minutes|hours|days|weeks)?(_maximum)?\Z"
    ),
    st.one_of(
        st.sampled_from(BAD_DURATIONS), st.floats(), st.integers(), st.text(max_size=8), junk
    ),
)
units = mostly(
    st.sampled_from(
        ["low", "medium", "high", "very_high", "Very-High", " medium ", "30", 0, 30, 250.5]
    ),
    st.one_of(
        st.sampled_from(["nan", "inf", "1e999", "-5", "huge", HUGE, -1, float("inf"), True]),
        st.floats(),
        st.integers(),
        st.text(max_size=6),
        junk,
    ),
)
sizes = mostly(
    st.sampled_from(["50MB", "1.5GB", "10kb", "1024", "12 KiB", 0, 100])
    | st.from_regex(r"\A[0-9]{1,5}(\.[0-9])? ?(b|kb|kib|mb|mib|gb|gib|k|m|g|tb)?\Z"),
    st.one_of(st.sampled_from(["9" * 400 + "GB", "-1MB", "MB", HUGE, -5, 1.5, True]), junk),
)

# agent ids: mostly valid names from a small pool (so references hit and derived group names
# collide), some invalid ones the loader must reject with a message
GOOD_IDS = [
    "a",
    "b",
    "c",
    "d",
    "a_group",
    "b_group",
    "pm",
    "qa",
    "ux-expert",
    "_x",
    "A1",
    "completion",
    "agents",
]
WEIRD_IDS = ["a.b", "", "1a", "-a", "a b", "a+b", "ü", "é1", "x\n", "a:b", "[a]"]
good_ids = st.sampled_from(GOOD_IDS) | st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_-]{0,5}\Z")
agent_ids = mostly(
    good_ids,
    st.one_of(
        st.sampled_from(WEIRD_IDS),
        st.text(max_size=4),
        st.integers(-2, 2),
        st.none(),
        st.booleans(),
    ),
    odds=12,
)
OUTPUT_NAMES = ["x", "y", "z", "out", "prd.md", "a.b.c", "completion", "", "x y"]
output_names = mostly(st.sampled_from(OUTPUT_NAMES), st.text(max_size=5))
SHARED_KEYS = ["shared", "design_doc", "arch.md", "k"]


def listish(element: st.SearchStrategy[Any], max_size: int = 4) -> st.SearchStrategy[Any]:
    """Lists mostly; sometimes the bare string form the models accept, sometimes junk."""
    return mostly(st.lists(element, max_size=max_size), element | junk)


# ---- models to dicts -------------------------------------------------------------------------


def _plausible(annotation: Any, metadata: list[Any], depth: int) -> st.SearchStrategy[Any]:
    """Values of the annotation's shape: unions, Literals, mappings, lists, nested models and
    the unit parsers' inputs (durations, resource levels, sizes)."""
    validators = {getattr(m, "func", None) for m in metadata}
    if parse_duration in validators:
        return durations
    if parse_units in validators:
        return units
    if parse_size in validators:
        return sizes
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _plausible(args[0], [*metadata, *args[1:]], depth)
    if origin in (Union, UnionType):
        return st.one_of([_plausible(arm, metadata, depth) for arm in args])
    if origin is Literal:
        return st.sampled_from(args)
    if origin is dict:
        return st.dictionaries(st.text(max_size=6), _value_for(args[1], [], depth), max_size=3)
    if origin is list:
        return st.lists(_value_for(args[0], [], depth), max_size=3)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_dicts(annotation, depth + 1) if depth < 5 else st.just({})
    simple = {
        bool: st.booleans(),
        int: st.integers(-3, 120),
        float: st.floats(-5, 500),
        str: st.text(max_size=8),
        type(None): st.none(),
    }
    return simple.get(annotation, scalars)


def _value_for(annotation: Any, metadata: list[Any], depth: int) -> st.SearchStrategy[Any]:
    return mostly(_plausible(annotation, metadata, depth), junk)


@cache
def _field_strategies(model: type[BaseModel], depth: int) -> dict[str, st.SearchStrategy[Any]]:
    return {
        name: _value_for(info.annotation, info.metadata, depth)
        for name, info in model.model_fields.items()
    }


@st.composite
def _some_keys(
    draw: st.DrawFn,
    fields: dict[str, st.SearchStrategy[Any]],
    required: tuple[str, ...],
    max_keys: int,
) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(sorted(fields)), max_size=max_keys, unique=True))
    return {name: draw(fields[name]) for name in [*required, *names] if name in fields}


def model_dicts(
    model: type[BaseModel],
    depth: int = 0,
    required: tuple[str, ...] = (),
    max_keys: int = 3,
    **overrides: st.SearchStrategy[Any],
) -> st.SearchStrategy[dict[Any, Any]]:
    """Mappings with a few of the model's keys (plausible or junk values), sometimes an unknown
    extra key. Few keys, so that one bad value does not hide the checks the others reach."""
    fields = {**_field_strategies(model, depth), **overrides}
    known = _some_keys(fields, required, max_keys)
    extra = st.dictionaries(keys, junk, max_size=1)
    return mostly(known, st.builds(lambda a, b: {**a, **b}, known, extra))


# ---- plans -----------------------------------------------------------------------------------


@st.composite
def native_plans(draw: st.DrawFn) -> dict[Any, Any]:
    """Mostly plausible plans: agents referencing each other's outputs (and some ghosts),
    explicit groups, seed sections, enhanced steps and seed execution groups."""
    ids = draw(st.lists(agent_ids, max_size=7, unique=True))
    outputs = {
        agent_id: draw(
            mostly(
                st.lists(output_names, max_size=3, unique=True), st.lists(output_names, max_size=3)
            )
        )
        for agent_id in ids
    }
    inputs = draw(
        st.dictionaries(st.sampled_from(["brief", "goal", "x", "a.x"]) | keys, scalars, max_size=2)
    )

    def refs_of(names: list[Any]) -> list[str]:
        found = [f"{a}.{o}" for a in names for o in outputs[a]]
        return found + [f"{a}.completion" for a in names] + [str(a) for a in names]

    others = [*map(str, inputs), *SHARED_KEYS, "ghost.x", "a.nope", "", "."]
    any_ref = st.one_of(st.sampled_from(refs_of(ids) + others), st.text(max_size=5))
    member = mostly(st.sampled_from(ids or ["a"]), agent_ids, odds=20)

    agents: dict[Any, Any] = {}
    for index, agent_id in enumerate(ids):
        # reading earlier agents keeps most plans acyclic; any_ref adds cycles and ghosts
        earlier = refs_of(ids[:index]) + list(map(str, inputs))
        ref = mostly(st.sampled_from(earlier), any_ref) if earlier else any_ref
        defaults = st.dictionaries(
            mostly(st.sampled_from(outputs[agent_id] or ["x"]), keys), scalars, max_size=2
        )
        overrides = {
            "kind": mostly(st.just("simulate"), st.sampled_from([*AGENT_KINDS, "bogus"]) | junk),
            "inputs": listish(ref),
            "optional_inputs": listish(ref),
            "outputs": mostly(st.just(outputs[agent_id]), listish(output_names)),
            "writes": mostly(
                st.lists(st.sampled_from(SHARED_KEYS), max_size=2, unique=True),
                listish(st.text(max_size=3)),
            ),
            "validates": listish(member, max_size=2),
            "defaults": mostly(defaults, junk),
            "duration": durations,
        }
        core = st.fixed_dictionaries({"outputs": overrides.pop("outputs")}, optional=overrides)
        full = model_dicts(
            AgentSpec,
            **overrides,
            outputs=st.just(outputs[agent_id]),
            priority=mostly(st.integers(-5, 120), junk),
        )
        agents[agent_id] = draw(mostly(core, st.one_of(full, st.none(), junk), odds=6))

    group_ids = mostly(st.sampled_from(["g1", "g2", "design", "a", "a_group", "b"]), agent_ids)
    members = mostly(
        st.lists(st.sampled_from(ids), min_size=1, max_size=2, unique=True) if ids else st.just([]),
        listish(member),
    )
    group = model_dicts(
        GroupSpec,
        required=("agents",),
        agents=members,
        depends_on=listish(st.one_of(group_ids, any_ref), max_size=2),
        timeout=durations,
        success_criteria=mostly(
            st.sampled_from(
                [
                    "all",
                    "all_agents_succeed",
                    "at_least_one_agent_succeeds",
                    "at_least_one",
                    1,
                    2,
                    {"at_least": 1},
                ]
            ),
            st.sampled_from(["most", 0, 5, -1, True, {"at_least": 0}, {"at_least": 9}]) | junk,
        ),
        cross_validation=model_dicts(CrossValidation, validation_agents=listish(member)),
    )
    # enhanced steps refine agents defined elsewhere (agent: role) or add new ones
    new_ids = st.sampled_from(["ux_parallel", "arch_parallel", "s1", "s2"])
    step_agent = model_dicts(
        StepAgent,
        required=("id",),
        max_keys=2,
        id=mostly(new_ids | st.sampled_from(ids or ["a"]), agent_ids),
        agent=member,
        context_requirements=st.fixed_dictionaries(
            {},
            optional={
                "read": listish(any_ref),
                "write": listish(st.sampled_from(SHARED_KEYS)),
                "other": junk,
            },
        ),
        inputs=listish(any_ref),
        validates=listish(member),
        timeout=durations,
        priority=mostly(st.integers(0, 100), junk),
    )
    step = model_dicts(
        EnhancedStep,
        required=("id", "agents"),
        id=mostly(st.sampled_from(["step", "design", "g1"]), group_ids),
        agents=mostly(st.lists(step_agent, min_size=1, max_size=3), junk),
        depends_on=listish(st.one_of(group_ids, any_ref), max_size=2),
        timeout=durations,
        synchronization=model_dicts(SynchronizationStrategy, timeout=durations),
    )
    execution_group = _some_keys(
        {
            "agents": mostly(
                st.lists(
                    st.sampled_from(["analyst", "pm", "ux", "architect", "dev"]),
                    min_size=1,
                    max_size=2,
                    unique=True,
                ),
                listish(member),
            ),
            "dependencies": listish(
                mostly(
                    st.sampled_from(["analyst.completion", "pm.completion", "g1", "g2"]),
                    st.one_of(group_ids, any_ref),
                ),
                max_size=2,
            ),
            "parallel_capable": mostly(st.booleans(), junk),
            "synchronization": mostly(st.just("barrier_sync"), junk),
            "synchronization_strategy": mostly(
                _some_keys(
                    {
                        "type": scalars,
                        "timeout": durations,
                        "cross_validation": scalars,
                        "success_criteria": mostly(
                            st.sampled_from(["all_agents_succeed", 1]), junk
                        ),
                        "barrier_type": scalars,
                        "failure_criteria": scalars,
                        "partial_failure_handling": scalars,
                    },
                    (),
                    3,
                ),
                junk,
            ),
            "estimated_duration": durations,
            "resource_requirements": mostly(model_dicts(ResourceRequirements), junk),
            "agent_specifications": mostly(
                st.dictionaries(
                    st.sampled_from(["analyst", "pm", "ux", "architect", "dev"]),
                    model_dicts(AgentSpec, outputs=listish(output_names), inputs=listish(any_ref)),
                    max_size=2,
                ),
                junk,
            ),
            "timeout": durations,
        },
        ("agents",),
        4,
    )

    optional: dict[Any, st.SearchStrategy[Any]] = {
        "name": st.sampled_from(["demo", "x"]) | scalars,
        "description": scalars,
        "version": scalars,
        "inputs": st.just(inputs) | junk,
        "groups": mostly(st.dictionaries(group_ids, mostly(group, junk), max_size=2), junk),
        "execution_groups": mostly(
            st.dictionaries(
                mostly(st.sampled_from(["g1", "g2", "g3"]), group_ids),
                mostly(execution_group, junk),
                max_size=3,
            ),
            junk,
        ),
        "enhanced_workflow_step": step,
        "enhanced_workflow_steps": st.lists(step, max_size=2) | junk,
        "default_agent_timeout": durations,
        "notes": listish(scalars),
        **{key: mostly(model_dicts(model), junk) for key, model in SECTION_MODELS.items()},
    }
    # a few sections per plan, so one bad value does not hide what the others would find
    plan: dict[Any, Any] = {}
    for key in draw(st.lists(st.sampled_from(list(optional)), max_size=3, unique=True)):
        plan[key] = draw(optional[key])
    if inputs and draw(mostly(st.just(True), st.just(False))):
        plan["inputs"] = inputs
    choice = draw(mostly(st.just("agents"), st.sampled_from(["none", "junk", "unknown"]), 9))
    if choice in ("agents", "unknown"):
        plan["agents"] = agents
    if choice == "junk":
        plan["agents"] = draw(junk)
    if choice == "unknown":
        plan[draw(keys)] = draw(junk)
    return plan


BMAD_AGENTS = ["analyst", "pm", "ux-expert", "architect", "po", "sm", "dev", "qa", "various"]
ARTIFACTS = [
    "project-brief.md",
    "prd.md",
    "front-end-spec.md",
    "story.md",
    "x (optional)",
    "all_artifacts",
    "sharded_docs",
    "PRD.md (if needed)",
    "a.b",
    "",
]
CONDITIONS = ["user_wants_ai_generation", "po_checklist_issues", "flag"]


@st.composite
def bmad_plans(draw: st.DrawFn) -> dict[Any, Any]:
    """``workflow: {sequence: [...]}`` documents in the BMAD v4 shape, with junk mixed in."""
    text = mostly(st.text(min_size=1, max_size=8), scalars)
    artifact = mostly(st.sampled_from(ARTIFACTS[:-2]), st.sampled_from(ARTIFACTS[-2:]) | scalars)
    artifacts = mostly(artifact, listish(artifact))
    step = st.fixed_dictionaries(
        {"agent": mostly(st.sampled_from(BMAD_AGENTS), agent_ids | junk)},
        optional={
            "creates": artifacts,
            "updates": artifacts,
            "requires": artifacts,
            "validates": artifacts,
            "condition": mostly(st.sampled_from(CONDITIONS), scalars),
            "optional": mostly(st.booleans(), junk),
            "optional_steps": mostly(st.lists(st.text(min_size=1, max_size=5), max_size=2), junk),
            "notes": text,
            "uses": text,
            "repeats": text,
        },
    )
    other = st.fixed_dictionaries(
        {},
        optional={
            "step": text,
            "action": text,
            "notes": text,
            "routes": junk,
            "agent": junk,
            "creates": artifacts,
            "junk": junk,
        },
    )
    sequence = draw(st.lists(mostly(step, st.one_of(other, junk)), max_size=8))
    workflow = draw(
        st.fixed_dictionaries(
            {"sequence": st.just(sequence)},
            optional={
                "id": text,
                "name": text,
                "description": text,
                "type": text,
                "project_types": listish(text),
                "other": junk,
            },
        )
    )
    document: dict[Any, Any] = {"workflow": workflow}
    if draw(mostly(st.just(False), st.just(True))):
        document.update(draw(st.dictionaries(keys, junk, max_size=2)))
    return document


variables = st.dictionaries(
    st.sampled_from([*CONDITIONS, "brief", "prd.md"]) | st.text(max_size=5),
    st.text(max_size=5) | st.booleans() | st.integers(),
    max_size=3,
)


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
    for view in (
        render.as_text(compiled),
        render.as_json(compiled),
        render.as_mermaid(plan, compiled),
        render.as_dot(plan, compiled),
    ):
        assert isinstance(view, str)


def _count(outcome: str) -> None:
    # shown by --hypothesis-show-statistics: how many inputs got as far as a Plan
    if currently_in_test_context():
        event(outcome)


def load_or_reject(load: Any) -> None:
    try:
        plan = load()
    except PlanError as error:
        _count(f"rejected: {type(error).__name__}")
        str(error)  # every error renders
        return
    _count("loaded")
    check_compiled(plan)


@FUZZ
@given(native_plans(), variables)
def test_plausible_native_plans_load_or_raise_plan_errors(data: Any, values: Any) -> None:
    """Plan-shaped dicts either compile or fail with a PlanError."""
    load_or_reject(lambda: build_plan(data, SourceMap(), values))


@settings(FUZZ, max_examples=300)
@given(bmad_plans(), variables)
def test_bmad_like_documents_load_or_raise_plan_errors(data: Any, values: Any) -> None:
    """BMAD-shaped documents either compile or fail with a PlanError."""
    load_or_reject(lambda: build_plan(data, SourceMap(), values))


@settings(FUZZ, max_examples=300)
@given(json_values)
def test_arbitrary_values_raise_plan_errors(data: Any) -> None:
    """Any JSON-like value (mostly not a plan at all) is rejected with a PlanError."""
    load_or_reject(lambda: build_plan(data, SourceMap()))


YAML_TOKENS = st.sampled_from(
    [
        *"ab01 :-_.[]{},&*!|>'\"%@`#?\n\t~=",
        "agents",
        "inputs",
        "workflow",
        "sequence",
        "!!binary",
        "!!set",
        "2001-12-14",
        "&x",
        "*x",
        "<<",
        ".nan",
        "1e999",
        "9" * 30,
        "- ",
        ": ",
    ]
)


def yaml_soup(max_size: int) -> st.SearchStrategy[str]:
    return st.lists(YAML_TOKENS, max_size=max_size).map("".join)


@settings(FUZZ, max_examples=300)
@given(st.one_of(st.text(max_size=60), yaml_soup(40)))
def test_random_text_loads_or_raises_plan_errors(text: str) -> None:
    """Random characters, YAML punctuation and tags: a Plan or a PlanError."""
    load_or_reject(lambda: loads_plan(text, file="fuzz.yaml"))


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, default_flow_style=None, allow_unicode=True, sort_keys=False)


@settings(FUZZ, max_examples=250)
@given(st.one_of(native_plans(), bmad_plans()), st.data())
def test_plan_yaml_with_damage_loads_or_raises_plan_errors(data: Any, draw: st.DataObject) -> None:
    """Plausible plans as YAML text, intact or with a slice cut out or replaced."""
    text = _dump(data)
    if text and draw.draw(st.booleans()):
        start = draw.draw(st.integers(0, len(text) - 1))
        end = draw.draw(st.integers(start, min(len(text), start + 20)))
        text = text[:start] + draw.draw(yaml_soup(3)) + text[end:]
    load_or_reject(lambda: loads_plan(text, file="fuzz.yaml"))


# ---- mutated example plans -------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = [
    *sorted((ROOT / "plans").glob("*.yaml")),
    *sorted((ROOT / "tests" / "plans").glob("*.yaml")),
]
CORPUS = [load_yaml(path)[0] for path in EXAMPLES]


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every value below ``data``."""
    found: list[tuple[Any, ...]] = []
    items = (
        data.items()
        if isinstance(data, dict)
        else enumerate(data)
        if isinstance(data, list)
        else ()
    )
    for key, value in items:
        found.append((*prefix, key))
        found.extend(_paths(value, (*prefix, key)))
    return found


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


@st.composite
def mutated_examples(draw: st.DrawFn) -> Any:
    """The example plans (seed, native, BMAD) with one to three edits: a value deleted, replaced
    by junk or by a value from elsewhere in the plan, a key misspelt, a list item repeated."""
    document = copy.deepcopy(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(document)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _at(document, path[:-1]), path[-1]
        action = draw(st.sampled_from(["delete", "replace", "swap", "misspell", "repeat"]))
        if action == "delete":
            del parent[key]
        elif action == "replace":
            parent[key] = draw(st.one_of(durations, units, sizes, agent_ids, output_names, junk))
        elif action == "swap":
            parent[key] = copy.deepcopy(_at(document, draw(st.sampled_from(paths))))
        elif action == "misspell" and isinstance(parent, dict):
            misspelt = str(key)[1:] + draw(st.sampled_from(["s", "_", ".x", ""]))
            parent[misspelt] = parent.pop(key)
        elif action == "repeat" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
    return document


@settings(FUZZ, max_examples=300)
@given(mutated_examples(), st.booleans())
def test_mutated_example_plans_load_or_raise_plan_errors(data: Any, as_yaml: bool) -> None:
    """The example plans, slightly broken, as data or YAML text: a Plan or a PlanError."""
    if as_yaml:
        load_or_reject(lambda: loads_plan(_dump(data), file="mutated.yaml"))
    else:
        load_or_reject(lambda: build_plan(data, SourceMap()))


# ---- what fuzzing found ------------------------------------------------------------------------

ONE = {"outputs": ["x"]}
FOUND = [
    # a 400-digit integer or number overflowed float() / int(): OverflowError
    {"agents": {"a": {"duration": HUGE}}},
    {"agents": {"a": {"resource_requirements": {"cpu": HUGE}}}},
    {"agents": {"a": {"duration": "9" * 400 + "h1s"}}},
    {"agents": {"a": ONE}, "default_agent_timeout": {"min": HUGE}},
    {
        "agents": {"a": ONE},
        "caching_system": {
            "cache_optimization": {"compression": {"compression_threshold": "9" * 400 + "GB"}}
        },
    },
    # a list among an enhanced step's cross-validation agents: TypeError (unhashable)
    {
        "agents": {"a": ONE},
        "enhanced_workflow_step": {
            "id": "s",
            "agents": [{"id": "b"}],
            "cross_validation": {"validation_agents": [[]]},
        },
    },
    # values JSON cannot carry, or mapping keys it turns into text: to_json() failed
    {"agents": {"a": {**ONE, "settings": {"x": {1: "a", "b": "c"}}}}},
    {"agents": {"a": {**ONE, "defaults": {"x": b"bytes"}}}},
    {"agents": {"a": ONE}, "inputs": {"when": {None: 1, "a": 2}}},
    # a derived group named like an explicit group or another agent replaced that group
    {
        "agents": {"a_group": {}, "a": ONE, "x": {}, "y": {"inputs": ["a.x"]}},
        "groups": {"a": {"agents": ["x"]}},
    },
    {
        "agents": {"y": {}, "a": ONE, "x": {}, "z": {"inputs": ["a.x"]}},
        "groups": {"a": {"agents": ["x"]}, "a_group": {"agents": ["y"]}},
    },
]
FOUND_YAML = [
    "agents: {a: {settings: {when: 2001-12-14}}}",  # a date: to_json() failed
    "inputs: {day: 2024-01-31}\nagents: {a: {}}",
    "agents: {a: {settings: {b: !!binary aGk=}}}",  # bytes
    "agents: {a: {settings: {s: !!set {x, y}}}}",  # a set
    "agents: {a: {duration: 1" + "0" * 400 + "}}",
]


@pytest.mark.parametrize("data", FOUND)
def test_found_by_fuzzing_data(data: Any) -> None:
    """Inputs that once escaped as other exceptions now load or raise a PlanError."""
    load_or_reject(lambda: build_plan(data, SourceMap()))


@pytest.mark.parametrize("text", FOUND_YAML)
def test_found_by_fuzzing_yaml(text: str) -> None:
    """YAML that once produced a compiled plan JSON could not carry now loads or fails cleanly."""
    load_or_reject(lambda: loads_plan(text))


# ---- group names -------------------------------------------------------------------------------

NAMES = ["a", "a_group", "a_group_group", "b", "b_group"]


@st.composite
def clashing_names(draw: st.DrawFn) -> dict[str, Any]:
    """Agents and explicit groups named from one tiny pool, so that derived group names (an
    agent's own id, or id + '_group') meet explicit group names and other agents' ids."""
    ids = draw(st.lists(st.sampled_from(NAMES), min_size=1, unique=True))
    agents: dict[str, Any] = {}
    for index, agent_id in enumerate(ids):
        reads = draw(st.lists(st.sampled_from(ids[:index]), max_size=2)) if index else []
        agents[agent_id] = {"outputs": ["out"], "inputs": [f"{r}.out" for r in reads]}
    free = list(ids)
    groups: dict[str, Any] = {}
    for group_id in draw(st.lists(st.sampled_from(NAMES), max_size=2, unique=True)):
        members = draw(st.lists(st.sampled_from(free), min_size=1, max_size=1)) if free else []
        if members:
            free.remove(members[0])
            groups[group_id] = {"agents": members}
    return {"agents": agents, "groups": groups}


@settings(FUZZ, max_examples=200)
@given(clashing_names())
def test_derived_group_names_never_clash(data: dict[str, Any]) -> None:
    """Every agent lands in exactly one group, whatever the agents and groups are called."""
    load_or_reject(lambda: build_plan(data, SourceMap()))


# ---- valid DAGs --------------------------------------------------------------------------------


@st.composite
def valid_dags(draw: st.DrawFn) -> dict[str, Any]:
    """Always-valid native plans: each agent reads outputs of earlier ones."""
    count = draw(st.integers(1, 12))
    agents: dict[str, Any] = {}
    for index in range(count):
        spec: dict[str, Any] = {
            "duration": draw(st.sampled_from(["1s", "2s", "3-5_minutes", 10, 0.5])),
            "outputs": ["out"],
        }
        if index:
            earlier = st.integers(0, index - 1).map(lambda i: f"n{i}.out")
            spec["inputs"] = draw(st.lists(earlier, max_size=3, unique=True))
            spec["optional_inputs"] = draw(st.lists(earlier, max_size=1))
        agents[f"n{index}"] = spec
    return {"name": "dag", "agents": agents}


@settings(FUZZ, max_examples=200)
@given(valid_dags())
def test_valid_dags_always_compile(data: dict[str, Any]) -> None:
    """A plan whose agents only read earlier agents' outputs is always valid."""
    check_compiled(build_plan(data, SourceMap()))
