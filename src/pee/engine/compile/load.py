"""Plan loading: YAML (seed format, native format, or a BMAD v4 workflow) to a validated ``Plan``.

``load_plan`` reports every problem it finds at once (``PlanValidationError``), each with the
file, the line, what was expected and what was found: the field-level problems of the plan
language and the whole-plan checks (references, grouping, cycles) of pee.engine.compile.checks.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from pee.engine.compile.checks import check_plan
from pee.engine.gc_pause import paused_gc
from pee.engine.language import bmad, llm_default
from pee.engine.language.errors import (
    DuplicateAgentError,
    InvalidValueError,
    Location,
    PlanError,
    PlanSyntaxError,
    PlanValidationError,
    UnknownKeyError,
    suggest,
)
from pee.engine.language.json_values import json_problem
from pee.engine.language.models import (
    AGENT_KINDS,
    DEFAULT_MARGIN,
    KIND_SETTINGS,
    MAX_MARGIN,
    AgentSpec,
    GroupSpec,
)
from pee.engine.language.plan import PLAN_KEYS, SECTION_MODELS, Plan
from pee.engine.language.seed import RawAgent, RawGroup, collect
from pee.engine.language.units import parse_duration
from pee.engine.language.yamlsrc import PathKey, SourceMap, format_path, load_yaml, parse_yaml

Spec = TypeVar("Spec", bound=BaseModel)


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys a model accepts at ``loc`` (best effort, for 'did you mean' hints)."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        info = current.model_fields.get(part) if isinstance(part, str) else None
        if info is None:
            # a dict or list level: look into the value type
            continue
        current = _model_in(info.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _pydantic_problems(
    exc: ValidationError, model: type[BaseModel], source: SourceMap, path_of: Any, what: str
) -> list[PlanError]:
    problems: list[PlanError] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        # union members show up as extra loc parts such as 'AtLeast' or 'literal[...]'
        loc = tuple(
            p
            for p in loc
            if not (
                isinstance(p, str)
                and (p[:1].isupper() or "[" in p or p in ("function-before", "function-after"))
            )
        )
        yaml_path = path_of(loc)
        location = source.locate(yaml_path)
        where = ".".join(str(p) for p in loc) or what
        original = (error.get("ctx") or {}).get("error")
        if isinstance(original, PlanError):
            problems.append(original.at(location))
            continue
        if error["type"] == "extra_forbidden":
            key = loc[-1] if loc else "?"
            allowed = _allowed_keys(model, loc[:-1])
            if (not allowed and loc[:-1] == () and model is AgentSpec) or model is AgentSpec:
                allowed = allowed or list(AgentSpec.model_fields)
            close = suggest(key, allowed)
            fix = f"did you mean '{close}'?" if close else "remove it"
            if allowed:
                fix += ("" if fix.endswith("?") else ".") + f" Known keys: {', '.join(allowed)}"
            problems.append(
                UnknownKeyError(
                    f"unknown key '{key}' in {what}",
                    value=key,
                    location=location,
                    expected="one of the documented keys",
                    found=repr(key),
                    fix=fix,
                )
            )
            continue
        message = error["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if error["type"] == "missing" and loc:
            message = f"the key '{loc[-1]}' is required here; add it"
        problems.append(
            InvalidValueError(
                f"invalid {where} in {what}: {message}",
                value=error.get("input"),
                location=location,
                found=f"{error.get('input')!r:.80}",
            )
        )
    return _dedupe(problems)


def _dedupe(problems: list[PlanError]) -> list[PlanError]:
    seen: set[str] = set()
    unique: list[PlanError] = []
    for problem in problems:
        key = problem.render()
        if key not in seen:
            seen.add(key)
            unique.append(problem)
    return unique


def _validate_agent(raw: RawAgent, source: SourceMap) -> tuple[AgentSpec | None, list[PlanError]]:
    def path_of(loc: tuple[Any, ...]) -> PathKey:
        return (*raw.path_of(loc[0]), *loc[1:]) if loc else raw.path

    problems: list[PlanError] = []
    agent: AgentSpec | None
    try:
        agent = AgentSpec.model_validate(raw.data)
    except ValidationError as exc:
        problems = _pydantic_problems(exc, AgentSpec, source, path_of, f"agent '{raw.id}'")
        agent = _salvage(AgentSpec, raw.data, exc)
        if agent is None:
            return None, problems
    own_kind = agent.resolved_kind(raw.id)
    # kind settings default to None: only those the plan wrote can be set
    written = agent.model_fields_set
    for kind, names in KIND_SETTINGS.items():
        if kind == own_kind:
            continue
        for name in names:
            if name in written and getattr(agent, name) is not None:
                problems.append(
                    InvalidValueError(
                        f"agent '{raw.id}' sets '{name}', a setting of kind '{kind}', but its kind "
                        f"is '{own_kind}'",
                        value=name,
                        location=source.locate(path_of((name,))),
                        expected=f"settings of kind '{own_kind}': {list(KIND_SETTINGS[own_kind])}",
                        fix=f"set kind: {kind}, or remove '{name}'",
                    )
                )
    return agent, problems


def _validate_group(raw: RawGroup, source: SourceMap) -> tuple[GroupSpec | None, list[PlanError]]:
    def path_of(loc: tuple[Any, ...]) -> PathKey:
        return (*raw.path_of(loc[0]), *loc[1:]) if loc else raw.path

    try:
        return GroupSpec.model_validate(raw.data), []
    except ValidationError as exc:
        problems = _pydantic_problems(exc, GroupSpec, source, path_of, f"group '{raw.id}'")
        return _salvage(GroupSpec, raw.data, exc), problems


def _salvage(model: type[Spec], data: dict[str, Any], exc: ValidationError) -> Spec | None:
    """The model without its invalid fields, so the whole-plan checks can still look at the
    rest (a bad duration must not hide a missing producer elsewhere). The plan stays invalid."""
    bad = {error["loc"][0] for error in exc.errors() if error["loc"]}
    try:
        return model.model_validate({k: v for k, v in data.items() if k not in bad})
    except ValidationError:
        return None


def _duplicate_keys(source: SourceMap) -> list[PlanError]:
    """YAML keeps the last of two equal keys without a word; a plan must not lose an agent so."""
    problems: list[PlanError] = []
    for path, line, first_line in source.duplicates:
        location = Location(file=source.file, path=format_path(path), line=line)
        if len(path) == 2 and path[0] == "agents":
            problems.append(
                DuplicateAgentError(
                    f"agent '{path[1]}' is defined twice",
                    value=path[1],
                    location=location,
                    expected="each agent id once",
                    found=f"another definition at line {first_line}",
                    fix="rename one of them or merge their settings",
                )
            )
        else:
            problems.append(
                InvalidValueError(
                    f"key '{path[-1]}' appears twice in the same mapping",
                    value=path[-1],
                    location=location,
                    expected="each key once",
                    found=f"also at line {first_line}",
                    fix="remove one; YAML would silently keep only the last",
                )
            )
    return problems


# a large plan allocates hundreds of thousands of objects here (pee.engine.gc_pause)
@paused_gc()
def build_plan(
    data: Any,
    source: SourceMap,
    variables: Mapping[str, Any] | None = None,
    set_names: Collection[str] = (),
) -> Plan:
    """Validate parsed YAML into a Plan; raises PlanValidationError with every problem.

    ``set_names``: the variables given with --set; in a BMAD workflow each must be a name the
    workflow reads (a condition, a requirement, a template variable).
    """
    variables = dict(variables or {})
    problems: list[PlanError] = _duplicate_keys(source)
    interpretation: bmad.Interpretation | None = None
    bmad_dir: str | None = None
    # a `workflow:` mapping is a BMAD file even when its sequence is broken: bmad explains why
    if isinstance(data, dict) and isinstance(data.get("workflow"), dict):
        imported = bmad.import_workflow(data, source, variables, set_names)
        data, interpretation = imported.plan, imported.interpretation
        # the one sandbox root a plan's own settings can name: the command line's --bmad-dir
        given = variables.get("bmad_dir")
        bmad_dir = given if isinstance(given, str) and given else None
        # paths of the converted plan no longer match the file; keep the file for messages
        source = SourceMap(file=source.file)
    if not isinstance(data, dict):
        raise PlanSyntaxError(
            "a plan must be a YAML mapping",
            value=data,
            location=source.locate(()),
            expected="top-level keys such as name, agents, groups or the seed's sections",
            found=f"{type(data).__name__}",
        )
    for key in data:
        if key not in PLAN_KEYS:
            close = suggest(key, PLAN_KEYS)
            problems.append(
                UnknownKeyError(
                    f"unknown top-level key '{key}'",
                    value=key,
                    location=source.locate((key,)),
                    expected="one of " + ", ".join(PLAN_KEYS),
                    found=repr(key),
                    fix=f"did you mean '{close}'?" if close else "remove it",
                )
            )

    sections: dict[str, Any] = {}
    for key, model in SECTION_MODELS.items():
        value = data.get(key)
        if value is None:
            sections[key] = model()
            continue
        try:
            sections[key] = model.model_validate(value)
        except ValidationError as exc:
            problems.extend(
                _pydantic_problems(
                    exc, model, source, lambda loc, key=key: (key, *loc), f"section '{key}'"
                )
            )
            sections[key] = model()

    name = data.get("name")
    if name is None:
        name = Path(source.file).stem if source.file else "plan"
    if not isinstance(name, str | int | float) or isinstance(name, bool):
        problems.append(
            InvalidValueError(
                "name must be text",
                value=name,
                location=source.locate(("name",)),
                found=type(name).__name__,
            )
        )
        name = "plan"
    description = data.get("description", "")
    if not isinstance(description, str):
        description = str(description)

    inputs: dict[str, Any] = {}
    given_inputs = data.get("inputs", {})
    if isinstance(given_inputs, dict):
        inputs.update({str(k): v for k, v in given_inputs.items()})
        for key, value in given_inputs.items():
            problem = json_problem(value)
            if problem:
                problems.append(
                    InvalidValueError(
                        f"invalid value of plan input '{key}': {problem}",
                        value=value,
                        location=source.locate(("inputs", key)),
                        expected="text, a number, a boolean, null, or lists and mappings of them",
                        found=f"{value!r:.80}",
                        fix="write the value as plain YAML data",
                    )
                )
    elif given_inputs is not None:
        problems.append(
            InvalidValueError(
                "inputs must be a mapping of input names to values",
                value=given_inputs,
                location=source.locate(("inputs",)),
                found=type(given_inputs).__name__,
            )
        )

    default_timeout = 600.0
    if "default_agent_timeout" in data:
        try:
            default_timeout = parse_duration(data["default_agent_timeout"]).seconds
        except PlanError as exc:
            problems.append(exc.at(source.locate(("default_agent_timeout",))))
        if default_timeout <= 0:
            problems.append(
                InvalidValueError(
                    "default_agent_timeout must be above 0: it would time every agent out at once",
                    value=data["default_agent_timeout"],
                    location=source.locate(("default_agent_timeout",)),
                    expected="a duration > 0",
                    found=repr(data["default_agent_timeout"]),
                    fix="leave it out for 10m",
                )
            )
            default_timeout = 600.0

    task_queues = _task_queues(data.get("task_queues"), source, problems)
    adaptive_margin = _adaptive(data.get("adaptive"), source, problems)

    raw = collect(data, source)
    problems.extend(raw.problems)
    problems.extend(llm_default.apply(raw.agents, data, variables, source.locate(("llm",))))
    agents: dict[str, AgentSpec] = {}
    for agent_id, raw_agent in raw.agents.items():
        agent, agent_problems = _validate_agent(raw_agent, source)
        problems.extend(agent_problems)
        if agent is not None:
            agents[agent_id] = agent
    groups: dict[str, GroupSpec] = {}
    for group_id, raw_group in raw.groups.items():
        group, group_problems = _validate_group(raw_group, source)
        problems.extend(group_problems)
        if group is not None:
            groups[group_id] = group

    if not raw.agents and not problems:
        problems.append(
            InvalidValueError(
                "the plan defines no agents",
                value=None,
                location=source.locate(()),
                expected=(
                    "'agents:' (native form), 'execution_groups:' or 'enhanced_workflow_step:'"
                ),
                fix="add at least one agent, e.g. agents: {a: {kind: simulate, duration: 1s}}",
            )
        )

    plan = Plan(
        name=str(name),
        description=description,
        agents=agents,
        groups=groups,
        source=source,
        inputs=inputs,
        aliases=raw.aliases,
        open_agents=[a for a, r in raw.agents.items() if r.open_outputs],
        agent_paths=raw.agents,
        group_paths=raw.groups,
        notes=[str(n) for n in data.get("notes", [])]
        if isinstance(data.get("notes"), list)
        else [],
        default_agent_timeout_s=default_timeout,
        task_queues=task_queues,
        adaptive_margin=adaptive_margin,
        bmad_dir=bmad_dir,
        resource_pool_given=isinstance(data.get("resource_manager"), dict)
        and data["resource_manager"].get("resource_pool") is not None,
        interpretation=interpretation,
        **sections,
    )
    # --set values supply plan inputs (and BMAD conditions, consumed above)
    for key, value in variables.items():
        if not bmad.is_internal_variable(key):  # the importer's own (--bmad-dir files, --llm)
            plan.inputs[key] = value

    problems.extend(check_plan(plan, skip_agents=len(agents) != len(raw.agents)))
    if problems:
        raise PlanValidationError(_dedupe(problems), file=source.file)
    return plan


def _adaptive(given: Any, source: SourceMap, problems: list[PlanError]) -> float | None:
    """`adaptive: true | false | {margin: M}` -> the margin on learned p95s, or None (off)."""
    if given is None or given is False:
        return None
    if given is True:
        return DEFAULT_MARGIN
    if isinstance(given, dict) and set(given) <= {"margin"}:
        margin = given.get("margin", DEFAULT_MARGIN)
        if (
            isinstance(margin, (int, float))
            and not isinstance(margin, bool)
            and 1 <= margin <= MAX_MARGIN
        ):
            return float(margin)
        problems.append(
            InvalidValueError(
                f"adaptive.margin must be a number from 1 to {MAX_MARGIN:g}",
                value=margin,
                location=source.locate(("adaptive", "margin")),
                expected=f"a number from 1 to {MAX_MARGIN:g} (1.5)",
                found=f"{margin!r:.40}",
                fix="e.g. adaptive: {margin: 1.5}",
            )
        )
        return None
    problems.append(
        InvalidValueError(
            "adaptive must be true, false or {margin: M}",
            value=given,
            location=source.locate(("adaptive",)),
            expected="true, false or {margin: 1.5}",
            found=f"{given!r:.60}",
            fix="write adaptive: true",
        )
    )
    return None


def _task_queues(given: Any, source: SourceMap, problems: list[PlanError]) -> dict[str, str]:
    """`task_queues: {kind: queue}`: where agents of a kind run unless they name a task_queue."""
    if given is None:
        return {}
    if not isinstance(given, dict):
        problems.append(
            InvalidValueError(
                "task_queues must be a mapping of agent kinds to task queue names",
                value=given,
                location=source.locate(("task_queues",)),
                found=type(given).__name__,
                fix="e.g. task_queues: {command: build-workers}",
            )
        )
        return {}
    queues: dict[str, str] = {}
    for kind, queue in given.items():
        if kind not in AGENT_KINDS:
            close = suggest(kind, AGENT_KINDS)
            problems.append(
                InvalidValueError(
                    f"task_queues names unknown agent kind {kind!r}",
                    value=kind,
                    location=source.locate(("task_queues", kind)),
                    expected="one of " + ", ".join(AGENT_KINDS),
                    found=repr(kind),
                    fix=f"did you mean {close!r}?" if close else "use one of the agent kinds",
                )
            )
        elif not isinstance(queue, str) or not queue.strip():
            problems.append(
                InvalidValueError(
                    f"task_queues.{kind} must be a task queue name",
                    value=queue,
                    location=source.locate(("task_queues", kind)),
                    expected="non-empty text",
                    found=repr(queue),
                )
            )
        else:
            queues[str(kind)] = queue.strip()
    return queues


# parse and build under one pause: each pause's end costs a collection of all it allocated
@paused_gc()
def load_plan(
    path: str | Path, variables: Mapping[str, Any] | None = None, set_names: Collection[str] = ()
) -> Plan:
    data, source = load_yaml(path)
    return build_plan(data, source, variables, set_names)


@paused_gc()
def loads_plan(
    text: str,
    variables: Mapping[str, Any] | None = None,
    file: str | None = None,
    set_names: Collection[str] = (),
) -> Plan:
    data, source = parse_yaml(text, file)
    return build_plan(data, source, variables, set_names)
