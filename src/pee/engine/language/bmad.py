"""Import BMAD v4 workflow files (``workflow: {sequence: [...]}``) as native plans.

A BMAD ``sequence`` is ordered: a person runs its steps one after another. The import keeps that
order and relaxes it only where BMAD itself says two steps are independent:

- a step with ``requires`` waits for the producers of what it requires (an artifact by name; a
  combination ``a_or_b``/``a_and_b``; ``existing_<x>`` for a step named ``<x>``; an abstract
  ``all_artifacts...``/``..._in_project`` for every earlier producer), so two steps requiring the
  same earlier document and nothing from each other run side by side (the UI fork);
- a step without ``requires`` follows the step before it;
- a step that ``updates`` a document waits for the step that made its current version;
- the PO's ``validates`` step is a gate: every later step waits for it.

Every derived edge carries its reason (``Link``) and every reinterpretation (a skipped step,
guidance, a pseudo-agent, ``repeats``, routing, ``optional_steps``, templates) a ``Note``: the
``Interpretation`` that ``validate``, ``plan`` and ``run`` print.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from pee.engine.language import bmad_agents, bmad_fan_out
from pee.engine.language.bmad_folder import BmadFolder, TemplateChoice
from pee.engine.language.bmad_interpretation import (
    COMPLETION,
    Interpretation,
    Link,
    LinkKind,
    Note,
    NoteKind,
)
from pee.engine.language.booleans import FALSE_WORDS, TRUE_WORDS
from pee.engine.language.errors import (
    InvalidValueError,
    Location,
    MissingProducerError,
    PlanError,
    PlanValidationError,
    UnknownKeyError,
    UnknownVariableError,
    UnresolvedInputError,
    suggest,
)
from pee.engine.language.models import BUILTIN_ROLES, normalise_role
from pee.engine.language.yamlsrc import SourceMap

PathKey = tuple[Any, ...]

# every key a BMAD v4 sequence step may carry
STEP_KEYS = (
    "agent",
    "step",
    "action",
    "creates",
    "updates",
    "requires",
    "validates",
    "uses",
    "condition",
    "optional",
    "optional_steps",
    "repeats",
    "notes",
    "routes",
)
_STRING_KEYS = ("agent", "step", "action", "uses", "condition", "repeats", "notes")
_ARTIFACT_KEYS = ("creates", "updates", "requires", "validates")
# settings copied onto the agent so `plan` output and backends can show what BMAD asked for
_SETTING_KEYS = ("step", "action", "uses", "optional_steps", "repeats", "notes", "condition")

# "all_artifacts", "all_artifacts_in_project"...: everything produced so far
ALL_ARTIFACTS = "all_artifacts"
IN_PROJECT = "_in_project"
EXISTING = "existing_"
# variables the loader itself reads (cli/common.plan_variables sets the last two)
RESERVED_VARIABLES = ("bmad_kind", "bmad_duration", "bmad_dir", "bmad_templates")
# run facts that agents and templates read by name, accepted by --set for every workflow
PROJECT_VARIABLES = (
    "project_name",
    "project",
    "project_brief",
    "brief",
    "description",
    "user_name",
    "author",
    "date",
    "version",
)
GATE_AGENTS = ("po",)

_TRAILING_PAREN = re.compile(r"\s*\([^()]*\)\s*$")
_NOT_ID_CHAR = re.compile(r"[^A-Za-z0-9_-]")
_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_EXTENSION = re.compile(r"\.(md|markdown|yaml|yml|txt|json)$")


@dataclass
class BmadImport:
    plan: dict[str, Any]
    interpretation: Interpretation


def is_internal_variable(name: str) -> bool:
    """Variables the importer consumes (bmad_dir, bmad_files, bmad_llm...): never plan inputs."""
    return bmad_agents.is_internal(name)


def is_bmad(data: Any) -> bool:
    """True for a mapping whose ``workflow`` is a mapping with a ``sequence`` list."""
    if not isinstance(data, Mapping):
        return False
    workflow = data.get("workflow")
    return isinstance(workflow, Mapping) and isinstance(workflow.get("sequence"), list)


def normalise_artifact(name: str) -> str:
    """``"PRD.md (if needed)"`` -> ``"prd.md"``: drop trailing remarks, case and outer spaces.

    Inner whitespace becomes ``_`` so the name is a usable output name.
    """
    text = name.strip()
    while True:
        stripped = _TRAILING_PAREN.sub("", text)
        if stripped == text:
            break
        text = stripped
    return re.sub(r"\s+", "_", text.strip()).lower()


def input_name(artifact: str) -> str:
    """The plan-input name for an artifact nobody produces: no dots (``a.b`` means agent.output)."""
    return _NOT_ID_CHAR.sub("_", artifact)


def truth(value: Any) -> bool | None:
    """True/False for an accepted spelling (true/yes/y/1/on, false/no/n/0/off), else None."""
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    return None


def is_abstract(artifact: str) -> bool:
    """``all_artifacts``, ``all_artifacts_in_project``...: every document made so far."""
    return artifact.startswith(ALL_ARTIFACTS) or artifact.endswith(IN_PROJECT)


def match_key(name: str) -> str:
    """How names compare: ``Front-End-Spec.md`` and ``front_end_spec`` are the same document."""
    return re.sub(r"[^a-z0-9]+", "_", _EXTENSION.sub("", name.lower())).strip("_")


@dataclass
class _Step:
    """One sequence entry after type checks; ``paths`` says where each field sits in the YAML."""

    index: int
    path: PathKey
    fields: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, PathKey] = field(default_factory=dict)
    # the key of a `- name:` block (guidance such as workflow_end, or a named step)
    block: str | None = None
    creates: list[str] = field(default_factory=list)
    updates: list[str] = field(default_factory=list)
    # (artifact, where it was written)
    requires: list[tuple[str, PathKey]] = field(default_factory=list)
    validates: list[tuple[str, PathKey]] = field(default_factory=list)
    agent_id: str | None = None

    @property
    def agent(self) -> str | None:
        return self.fields.get("agent")

    @property
    def name(self) -> str | None:
        return self.fields.get("step") or self.block

    def label(self) -> str:
        who = self.agent_id or self.name or "guidance"
        return f"step {self.index} ({who})"


@dataclass
class _Order:
    """What the steps so far have made, as the import walks the sequence."""

    agents: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    # artifact -> id of the step that last created/updated it; insertion order = first made
    producers: dict[str, str] = field(default_factory=dict)
    # match_key(step name) -> agent id, for `existing_<x>` and names of earlier steps
    named: dict[str, str] = field(default_factory=dict)
    outputs_of: dict[str, list[str]] = field(default_factory=dict)
    order: dict[str, int] = field(default_factory=dict)  # agent id -> position among runners
    previous: str | None = None
    gate: _Step | None = None


class _Importer:
    def __init__(
        self,
        source: SourceMap,
        variables: Mapping[str, Any],
        folder: BmadFolder | None = None,
        workflow_type: str | None = None,
    ) -> None:
        self.source = source
        self.variables = variables
        self.folder = folder
        self.workflow_type = workflow_type
        self.problems: list[PlanError] = []
        self.interpretation = Interpretation()
        # names a --set may give: conditions, requirements, template variables
        self.known: list[str] = [*RESERVED_VARIABLES, *PROJECT_VARIABLES]
        self.conditions: list[str] = []
        self.requirement_names: list[str] = []
        self.template_variables: list[str] = []
        self.route_names: list[str] = []
        self.routes_taken: list[str] = []

    def at(self, path: PathKey) -> Location:
        return self.source.locate(path)

    # -- parsing ------------------------------------------------------------------------------

    def workflow(self, data: Any) -> tuple[Mapping[str, Any], list[Any]] | None:
        if not isinstance(data, Mapping):
            self.problems.append(
                InvalidValueError(
                    "a BMAD workflow file must be a mapping",
                    value=data,
                    location=self.at(()),
                    expected="a mapping with a 'workflow' key",
                    found=type(data).__name__,
                )
            )
            return None
        workflow = data.get("workflow")
        if not isinstance(workflow, Mapping):
            self.problems.append(
                InvalidValueError(
                    "'workflow' must be a mapping",
                    value=workflow,
                    location=self.at(("workflow",)),
                    expected="workflow: {id, name, description, sequence: [...]}",
                    found=_describe(workflow),
                    fix="indent id, name and sequence under 'workflow:'",
                )
            )
            return None
        sequence = workflow.get("sequence")
        if not isinstance(sequence, list):
            self.problems.append(
                InvalidValueError(
                    "'workflow.sequence' must be a list of steps",
                    value=sequence,
                    location=self.at(("workflow", "sequence")),
                    expected="a list such as '- agent: pm\\n  creates: prd.md'",
                    found=_describe(sequence),
                    fix="write each step as a '- ' list item under 'sequence:'",
                )
            )
            return None
        for key in ("id", "name", "description", "type"):
            value = workflow.get(key)
            if value is not None and not isinstance(value, str):
                self.problems.append(
                    InvalidValueError(
                        f"'workflow.{key}' must be text",
                        value=value,
                        location=self.at(("workflow", key)),
                        expected="a string",
                        found=_describe(value),
                        fix="quote the value",
                    )
                )
        return workflow, sequence

    def step(self, index: int, raw: Any) -> _Step | None:
        path: PathKey = ("workflow", "sequence", index)
        if not isinstance(raw, Mapping) or not raw:
            self.problems.append(
                InvalidValueError(
                    f"BMAD step {index} must be a non-empty mapping",
                    value=raw,
                    location=self.at(path),
                    expected="a mapping such as {agent: pm, creates: prd.md}",
                    found=_describe(raw),
                    fix="give the step an 'agent' and what it creates/requires",
                )
            )
            return None
        step = _Step(index=index, path=path)
        items: list[tuple[Any, Any, PathKey]] = []
        for position, (key, value) in enumerate(raw.items()):
            # `- workflow_end: {action: ...}` or `- workflow_end:` followed by sibling keys
            # (what a one-space-short indent produces): the first key names the block
            is_block = (
                position == 0
                and isinstance(key, str)
                and key not in STEP_KEYS
                and (value is None or isinstance(value, Mapping))
            )
            if is_block:
                step.block = key
                if isinstance(value, Mapping):
                    items.extend((k, v, (*path, key, k)) for k, v in value.items())
                continue
            items.append((key, value, (*path, key)))

        for key, value, key_path in items:
            if key not in STEP_KEYS:
                self.problems.append(_unknown_key(key, index, key_path, self.at(key_path)))
                continue
            if key in step.fields:
                self.problems.append(
                    InvalidValueError(
                        f"BMAD step {index} gives '{key}' twice",
                        value=value,
                        location=self.at(key_path),
                        expected="each key once",
                        found=f"'{key}' both inside and beside '{step.block}:'",
                        fix="keep one of them",
                    )
                )
                continue
            if self.check_field(index, key, value, key_path):
                step.fields[key] = value
                step.paths[key] = key_path

        for key in _ARTIFACT_KEYS:
            if key in step.fields:
                names = self.artifacts(index, key, step.fields[key], step.paths[key])
                if key == "creates":
                    step.creates = [name for name, _ in names]
                elif key == "updates":
                    step.updates = [name for name, _ in names]
                elif key == "requires":
                    step.requires = names
                else:
                    step.validates = names
        return step

    def check_field(self, index: int, key: str, value: Any, path: PathKey) -> bool:
        expected: str | None = None
        if key in _STRING_KEYS:
            ok = isinstance(value, str) and (key == "notes" or value.strip() != "")
            expected = "non-empty text"
        elif key == "optional":
            ok = isinstance(value, bool)
            expected = "true or false"
        elif key == "optional_steps":
            ok = isinstance(value, list) and all(isinstance(item, str) for item in value)
            expected = "a list of step names"
        elif key == "routes":
            ok = isinstance(value, Mapping)
            expected = "a mapping of route name to guidance"
        else:  # artifact keys are checked item by item in artifacts()
            return True
        if not ok:
            self.problems.append(
                InvalidValueError(
                    f"BMAD step {index}: '{key}' must be {expected}",
                    value=value,
                    location=self.at(path),
                    expected=expected,
                    found=_describe(value),
                )
            )
        return ok

    def artifacts(
        self, index: int, key: str, value: Any, path: PathKey
    ) -> list[tuple[str, PathKey]]:
        """Normalised artifact names of a creates/updates/requires/validates value."""
        if isinstance(value, str):
            entries: list[tuple[Any, PathKey]] = [(value, path)]
        elif isinstance(value, list):
            entries = [(item, (*path, i)) for i, item in enumerate(value)]
        else:
            entries = []
            self.problems.append(
                InvalidValueError(
                    f"BMAD step {index}: '{key}' must be an artifact name or a list of them",
                    value=value,
                    location=self.at(path),
                    expected="a string such as 'prd.md' or a list of strings",
                    found=_describe(value),
                )
            )
        names: list[tuple[str, PathKey]] = []
        for item, item_path in entries:
            name = normalise_artifact(item) if isinstance(item, str) else ""
            if not name:
                self.problems.append(
                    InvalidValueError(
                        f"BMAD step {index}: '{key}' holds an empty or non-text artifact name",
                        value=item,
                        location=self.at(item_path),
                        expected="an artifact name such as 'prd.md'",
                        found=_describe(item),
                    )
                )
            elif name not in (existing for existing, _ in names):
                names.append((name, item_path))
        return names

    # -- conversion ---------------------------------------------------------------------------

    def assign_ids(self, steps: list[_Step]) -> None:
        """Ids over every agent step, skipped or not, so switching a condition renames nothing."""
        used: set[str] = set()
        for step in steps:
            if not step.agent:
                continue
            base = _NOT_ID_CHAR.sub("_", step.name or step.agent)
            if not _ID.fullmatch(base):
                base = f"step_{base}"
            agent_id, suffix = base, 2
            while agent_id in used:
                agent_id, suffix = f"{base}_{suffix}", suffix + 1
            used.add(agent_id)
            step.agent_id = agent_id

    def collect_known(self, steps: list[_Step]) -> None:
        """Every name a --set may give this workflow (for the unknown-name check)."""
        for step in steps:
            for condition in _conditions_of(step):
                self.known.append(condition)
                self.conditions.append(condition)
            for artifact, _ in step.requires:
                names = list(_variable_names(artifact))
                for joiner in ("_or_", "_and_"):
                    for part in artifact.split(joiner):
                        names.extend(_variable_names(part))
                self.known.extend(names)
                self.requirement_names.extend(names)

    def included(self, step: _Step) -> bool:
        """Whether a conditional step runs; says why in a note, and records a bad value."""
        condition = step.fields.get("condition")
        if not condition:
            return True
        given = self.variables.get(condition)
        route = self.route_of(condition)
        if given is None and route is not None:
            # `major_enhancement_path` names the route `major_enhancement`
            taken = route in self.routes_taken
            self.note(
                NoteKind.INCLUDED if taken else NoteKind.SKIPPED,
                f"{step.label()}: condition '{condition}' "
                f"{'holds' if taken else 'does not hold'}: route '{route}' was "
                f"{'' if taken else 'not '}taken",
            )
            return taken
        value = truth(given)
        if given is not None and value is None:
            self.problems.append(
                InvalidValueError(
                    f"--set {condition}={given} is neither true nor false "
                    f"({step.label()} runs only when it is true)",
                    value=given,
                    location=Location(file=self.source.file, path=f"--set {condition}"),
                    expected="one of " + "/".join(TRUE_WORDS) + " or " + "/".join(FALSE_WORDS),
                    found=repr(given),
                    fix=f"write --set {condition}=true or --set {condition}=false",
                )
            )
            return False
        if value:
            self.note(
                NoteKind.INCLUDED, f"{step.label()}: condition '{condition}' is {given!r} (true)"
            )
            return True
        state = "not set" if given is None else f"{given!r} (false)"
        self.note(
            NoteKind.SKIPPED,
            f"{step.label()}: condition '{condition}' is "
            f"{state} (include it with --set {condition}=true; "
            f"{'/'.join(TRUE_WORDS)} count as true)",
        )
        return False

    def route_of(self, condition: str) -> str | None:
        """The route a `<route>_path` condition names, when a routing step offers it."""
        if not condition.endswith("_path"):
            return None
        route = condition[: -len("_path")]
        return route if route in self.route_names else None

    def note(self, kind: NoteKind, text: str) -> None:
        self.interpretation.notes.append(Note(kind, text))

    def convert(self, steps: list[_Step]) -> tuple[dict[str, Any], dict[str, Any]]:
        state = _Order()
        self.collect_known(steps)
        for position, step in enumerate(steps):
            if not step.agent:
                routes = step.fields.get("routes")
                if not isinstance(routes, Mapping):
                    self.guidance(step)
                    continue
                chosen = self.routing(step, routes, {s.agent_id for s in steps if s.agent_id})
                if chosen is None:
                    continue
                self.add(chosen, state, steps)
                rest = [s for s in steps[position + 1 :] if s.agent]
                if rest:
                    self.note(
                        NoteKind.ROUTING,
                        f"route '{chosen.name}' ends the workflow after "
                        f"{chosen.agent_id}: steps "
                        + ", ".join(str(s.index) for s in rest)
                        + " are not run",
                    )
                break
            if self.included(step):
                self.add(step, state, steps)
        return state.agents, state.inputs

    def add(self, step: _Step, state: _Order, steps: list[_Step]) -> None:
        """Turn one running step into an agent that waits for what BMAD says it needs."""
        agent_id = step.agent_id or step.agent or ""
        producers = state.producers
        links: list[Link] = []

        def link(after: str, ref: str, reason: str, kind: LinkKind = LinkKind.REQUIRES) -> None:
            if after != agent_id and all(k.ref != ref for k in links):
                links.append(Link(agent_id, after, ref, reason, kind))

        for artifact, path in step.requires:
            if is_abstract(artifact):
                for made, maker in producers.items():
                    link(
                        maker,
                        f"{maker}.{made}",
                        f"requires {artifact} (every document made before it)",
                    )
                continue
            found = self.match(artifact, producers, state.named, state.outputs_of)
            for after, ref, reason in found:
                link(after, ref, reason)
            if not found:
                name = self.plan_input(step, artifact, path, steps)
                if name is not None:
                    state.inputs[name] = self.variables[self.variable_for(artifact)]
                    links.append(Link(agent_id, "", name, f"requires {artifact}", LinkKind.INPUT))
                    self.note(
                        NoteKind.INPUT,
                        f"{agent_id} requires '{artifact}', which no "
                        f"earlier step makes: read from the value given for '{name}'",
                    )
        # an update edits the current version, so it waits for whoever made that version
        for artifact in step.updates:
            if artifact in producers:
                maker = producers[artifact]
                link(
                    maker,
                    f"{maker}.{artifact}",
                    f"updates {artifact} (the version {maker} made)",
                    LinkKind.UPDATES,
                )
        if state.previous is not None and not step.requires:
            link(
                state.previous,
                f"{state.previous}.{COMPLETION}",
                "follows the previous step (no requires)",
                LinkKind.PREVIOUS,
            )
        elif state.previous is not None and not any(k.after for k in links):
            # what it requires comes from outside the run: no earlier step makes it
            # independent, so the sequence's order holds
            link(
                state.previous,
                f"{state.previous}.{COMPLETION}",
                "follows the previous step (it requires no earlier step's output)",
                LinkKind.PREVIOUS,
            )

        validated: list[str] = []
        for artifact, path in step.validates:
            for target in self.validated(step, artifact, path, producers, steps):
                if target not in validated:
                    validated.append(target)
                    links.append(
                        Link(
                            agent_id,
                            target,
                            f"{target}.{COMPLETION}",
                            f"validates {artifact}",
                            LinkKind.VALIDATES,
                        )
                    )

        gate = state.gate
        waits_for = [k.after for k in links if k.after]
        if (
            gate is not None
            and gate.agent_id not in waits_for
            and not any(
                state.order[after] > state.order[gate.agent_id or ""] for after in waits_for
            )
        ):
            # every later step waits for the gate: directly, or through a step that does
            gate_id = gate.agent_id or ""
            link(
                gate_id,
                f"{gate_id}.{COMPLETION}",
                f"PO gate: {gate.label()} validates "
                + ", ".join(a for a, _ in gate.validates)
                + " before later steps run",
                LinkKind.GATE,
            )

        # a completion wait on an agent whose output is read anyway says nothing more
        data_from = {
            k.after
            for k in links
            if k.kind in (LinkKind.REQUIRES, LinkKind.UPDATES)
            and not k.ref.endswith(f".{COMPLETION}")
        }
        links = [
            k
            for k in links
            if not (k.kind in (LinkKind.PREVIOUS, LinkKind.GATE) and k.after in data_from)
        ]
        self.interpretation.links.extend(links)
        reads = [k.ref for k in links if k.reads]
        outputs = _unique([*step.creates, *step.updates])
        template = self.template_for(step) if self.folder is not None else None
        state.agents[agent_id] = self.agent(step, reads, outputs, validated, template)
        self.explain_step(step, state.agents[agent_id])

        for artifact in outputs:
            producers[artifact] = agent_id
        state.outputs_of[agent_id] = outputs
        if step.name:
            state.named[match_key(step.name)] = agent_id
        state.order[agent_id] = len(state.order)
        state.previous = agent_id
        if step.validates and normalise_role(step.agent or "") in GATE_AGENTS:
            state.gate = step

    def match(
        self,
        artifact: str,
        producers: Mapping[str, str],
        named: Mapping[str, str],
        outputs_of: Mapping[str, list[str]],
    ) -> list[tuple[str, str, str]]:
        """(agent, reference, reason) for each earlier step that makes ``artifact``.

        ``a_or_b`` needs one of its parts, ``a_and_b`` all of them; a part is an artifact (by
        normalised name) or a step (``existing_<x>`` names step ``<x>``).
        """
        whole = self.match_one(artifact, artifact, producers, named, outputs_of)
        if whole:
            return whole
        for joiner, needs_all in (("_or_", False), ("_and_", True)):
            parts = [part for part in artifact.split(joiner) if part]
            if len(parts) < 2:
                continue
            found = [self.match_one(part, artifact, producers, named, outputs_of) for part in parts]
            if needs_all and not all(found):
                return []
            return [item for items in found for item in items]
        return []

    def match_one(
        self,
        name: str,
        written: str,
        producers: Mapping[str, str],
        named: Mapping[str, str],
        outputs_of: Mapping[str, list[str]],
    ) -> list[tuple[str, str, str]]:
        part = "" if name == written else f" ('{name}')"
        if name in producers:
            maker = producers[name]
            return [(maker, f"{maker}.{name}", f"requires {written}{part}")]
        key = match_key(name)
        for made, maker in reversed(list(producers.items())):
            if match_key(made) == key:
                return [(maker, f"{maker}.{made}", f"requires {written} (= {made})")]
        keys = [key]
        if key.startswith(EXISTING):
            keys.append(key[len(EXISTING) :])
        for candidate in keys:
            step = named.get(candidate)
            if step is None:
                # "analysis" in existing_documentation_or_analysis: the one step named *_analysis
                ends = [a for n, a in named.items() if n.endswith(f"_{candidate}")]
                step = ends[0] if len(ends) == 1 else None
            if step is None:
                continue
            reason = f"requires {written}{part}: made by step {step}"
            outputs = outputs_of.get(step) or []
            if not outputs:
                return [(step, f"{step}.{COMPLETION}", reason)]
            return [(step, f"{step}.{m}", reason) for m in outputs]
        return []

    def validated(
        self,
        step: _Step,
        artifact: str,
        path: PathKey,
        producers: Mapping[str, str],
        steps: list[_Step],
    ) -> list[str]:
        if is_abstract(artifact):
            return _unique(list(producers.values()))
        found = self.match(artifact, producers, {}, {})
        if found:
            return _unique([after for after, _, _ in found])
        self.problems.append(
            MissingProducerError(
                f"{step.label()} validates '{artifact}', but no earlier step creates it",
                value=artifact,
                location=self.at(path),
                expected=f"a step before step {step.index} that creates '{artifact}'",
                found=_producers_hint(artifact, step, steps, self.variables),
                fix="add a step that creates it, or validate all_artifacts",
            )
        )
        return []

    def guidance(self, step: _Step) -> None:
        what = (
            step.fields.get("action")
            or " ".join(str(step.fields.get("notes") or "").split())[:80]
            or "no action"
        )
        condition = step.fields.get("condition")
        when = f" (when {condition})" if condition else ""
        self.note(
            NoteKind.GUIDANCE,
            f"step {step.index} '{step.name or 'guidance'}' is "
            f"guidance for a person{when}, no agent runs: {what}",
        )

    def routing(self, step: _Step, routes: Mapping[Any, Any], used_ids: set[str]) -> _Step | None:
        """The route a routing step takes: the one that continues, unless --set names another.

        A chosen route with an agent becomes that agent's step (the workflow ends after it, as
        BMAD's single-story and small-feature routes do); None continues with the next step.
        """
        names = [str(route) for route in routes]
        self.route_names.extend(names)
        onward = [
            str(route)
            for route, spec in routes.items()
            if isinstance(spec, Mapping) and "continue" in spec
        ]
        condition = step.fields.get("condition")
        given = self.variables.get(condition) if condition else None
        described = ", ".join(f"{route} ({_route_summary(spec)})" for route, spec in routes.items())
        where = f"step {step.index} '{step.name or 'routing'}'"
        if given is not None and str(given) not in names:
            close = suggest(str(given), names)
            self.problems.append(
                InvalidValueError(
                    f"--set {condition}={given} names no route of {where}",
                    value=given,
                    location=self.at((*step.path, "routes")),
                    expected="one of " + ", ".join(names),
                    found=repr(given),
                    fix=f"did you mean '{close}'?" if close else f"--set {condition}=ROUTE",
                )
            )
            return None
        chosen = str(given) if given is not None else (onward[0] if onward else None)
        how = (
            f"--set {condition}={given}"
            if given is not None
            else "the route that continues the workflow"
        )
        if chosen is None:
            self.note(
                NoteKind.ROUTING,
                f"{where} routes by {condition} between {described}: "
                f"no route continues the workflow, so the steps after it run in order "
                f"(choose one with --set {condition}=ROUTE)",
            )
            return None
        self.note(
            NoteKind.ROUTING,
            f"{where} routes by {condition} between {described}: this "
            f"run takes '{chosen}' ({how}; choose another with --set {condition}=ROUTE)",
        )
        self.routes_taken.append(chosen)
        spec = routes[next(route for route in routes if str(route) == chosen)]
        if (
            not isinstance(spec, Mapping)
            or "continue" in spec
            or not isinstance(spec.get("agent"), str)
        ):
            return None
        fields = {
            key: spec[key]
            for key in ("agent", "uses", "notes", "action")
            if isinstance(spec.get(key), str)
        }
        fields["step"] = chosen
        route_step = _Step(index=step.index, path=(*step.path, "routes", chosen), fields=fields)
        agent_id, suffix = _NOT_ID_CHAR.sub("_", chosen), 2
        while agent_id in used_ids:
            agent_id, suffix = f"{_NOT_ID_CHAR.sub('_', chosen)}_{suffix}", suffix + 1
        route_step.agent_id = agent_id if _ID.fullmatch(agent_id) else f"route_{agent_id}"
        return route_step

    def explain_step(self, step: _Step, agent: Mapping[str, Any]) -> None:
        agent_id = step.agent_id or step.agent or ""
        role = step.agent or ""
        if role == "various" or "/" in role:
            meaning = (
                "whichever agents own the documents in question"
                if role == "various"
                else "one of " + " or ".join(role.split("/"))
            )
            self.note(
                NoteKind.PSEUDO_AGENT,
                f"{step.label()}: '{role}' is not one BMAD agent "
                f"({meaning}); runs as {_how_run(agent, role)}",
            )
        repeats = step.fields.get("repeats")
        if repeats and not (
            bmad_fan_out.wanted(self.variables) and str(repeats).startswith("for_each_epic")
        ):
            more = (
                f"; --set {bmad_fan_out.VARIABLE}={bmad_fan_out.FOR_EACH} runs the story cycle "
                "once per epic, in parallel"
                if str(repeats).startswith("for_each_epic")
                else ""
            )
            self.note(
                NoteKind.REPEATS,
                f"{agent_id} repeats {repeats} in BMAD: runs once in "
                f"this run (one pass over the documents); run again for the next item{more}",
            )
        optional_steps = step.fields.get("optional_steps")
        if optional_steps:
            self.note(
                NoteKind.OPTIONAL_STEPS,
                f"{agent_id}: optional steps "
                f"{', '.join(optional_steps)} are a person's choice in BMAD and are not run",
            )
        if step.fields.get("optional") is True:
            self.note(NoteKind.OPTIONAL, f"{agent_id} is optional: if it fails, the run goes on")

    # -- templates from --bmad-dir ------------------------------------------------------------

    def template_for(self, step: _Step) -> TemplateChoice | None:
        """The template a step renders with --bmad-dir: from uses, notes or the agent's file."""
        assert self.folder is not None
        candidate = self.folder.candidate(
            step.agent or "", step.fields, step.creates, self.workflow_type
        )
        if candidate.remark:
            self.note(NoteKind.TEMPLATE, f"{step.label()} {candidate.remark}")
        if candidate.name is None:
            return None
        return self.checked(step, candidate.name, candidate.source, candidate.detail)

    def checked(self, step: _Step, name: str, source: str, detail: str) -> TemplateChoice | None:
        folder = self.folder
        assert folder is not None
        try:
            variables = folder.check_template(name, step.label(), detail)
        except PlanError as problem:
            self.problems.append(problem)
            return None
        self.known.extend(variables)
        self.template_variables.extend(variables)
        return TemplateChoice(
            name=name,
            relative=f"templates/{name}.yaml",
            source=source,
            detail=detail,
            variables=variables,
        )

    # -- the agent of a step ------------------------------------------------------------------

    def variable_for(self, artifact: str) -> str:
        for candidate in _variable_names(artifact):
            if candidate in self.variables:
                return candidate
        return ""

    def plan_input(
        self, step: _Step, artifact: str, path: PathKey, steps: list[_Step]
    ) -> str | None:
        """The plan-input name for an unproduced requirement, or None after recording why not."""
        if self.variable_for(artifact):
            return input_name(artifact)
        name = input_name(artifact)
        fix = (
            f"supply it with --set {name}=VALUE, or add a step before step {step.index} "
            f"that creates '{artifact}'"
        )
        skipped = [
            s
            for s in steps
            if s.index < step.index and s.agent and artifact in (*s.creates, *s.updates)
        ] or self.skipped_makers(step, artifact, steps)
        condition = skipped[0].fields.get("condition") if skipped else None
        found = _producers_hint(artifact, step, steps, self.variables)
        if condition:
            fix += f", or include {skipped[0].label()} with --set {condition}=true"
            if found == "no step creates it":
                found = (
                    f"{skipped[0].label()} would make it but is skipped: condition "
                    f"'{condition}' is {self.variables.get(condition, 'unset')!r}"
                )
        self.problems.append(
            UnresolvedInputError(
                f"{step.label()} requires '{artifact}', but no earlier step creates it "
                "and no value was supplied",
                value=artifact,
                location=self.at(path),
                expected=f"a step before step {step.index} that creates '{artifact}', "
                f"or a value for '{name}'",
                found=found,
                fix=fix,
            )
        )
        return None

    def skipped_makers(self, step: _Step, artifact: str, steps: list[_Step]) -> list[_Step]:
        """Earlier conditional steps that would satisfy ``artifact`` by the linking rules
        (``existing_documentation_or_analysis`` <- a skipped step ``project_analysis``)."""
        earlier = [
            s
            for s in steps
            if s.index < step.index and s.agent and s.agent_id and s.fields.get("condition")
        ]
        producers = {a: s.agent_id or "" for s in earlier for a in (*s.creates, *s.updates)}
        named = {match_key(s.name): s.agent_id or "" for s in earlier if s.name}
        outputs = {s.agent_id or "": [*s.creates, *s.updates] for s in earlier}
        found = {after for after, _, _ in self.match(artifact, producers, named, outputs)}
        return [s for s in earlier if s.agent_id in found]

    def agent(
        self,
        step: _Step,
        reads: list[str],
        outputs: list[str],
        validated: list[str],
        template: TemplateChoice | None,
    ) -> dict[str, Any]:
        """The native agent of one BMAD step: its role, edges, settings and kind.

        The kind: ``bmad_kind`` when given; else the step's template from --bmad-dir; else none,
        so BMAD roles (analyst, pm, ux-expert...) run as the built-in role agents.
        """
        kind = self.variables.get("bmad_kind")
        duration = self.variables.get("bmad_duration")
        agent: dict[str, Any] = {
            "role": step.agent,
            "description": _describe_step(step),
            "inputs": _unique(reads),
            "outputs": outputs,
        }
        if kind:
            agent["kind"] = str(kind)
        if validated:
            agent["validates"] = _unique(validated)
        if step.fields.get("optional") is True:
            agent["optional"] = True
        if duration is not None and str(duration).strip():
            agent["duration"] = duration
        settings: dict[str, Any] = {"bmad_step": step.index}
        for key in _SETTING_KEYS:
            if key in step.fields:
                value = step.fields[key]
                settings[key] = list(value) if isinstance(value, list) else value
        if step.block is not None and "step" not in settings:
            settings["step"] = step.block
        if self.folder is not None:
            self.note_template(step, template, bool(kind))
            if template is not None and not kind:
                # --bmad-dir: the install folder's template renders this step's document; the
                # template backend's sandbox root is that folder
                agent["kind"] = "template"
                agent["template"] = template.relative
                settings["plan_dir"] = str(self.folder.root)
        agent["settings"] = settings
        return agent

    def note_template(self, step: _Step, template: TemplateChoice | None, kind_set: bool) -> None:
        label = step.label()
        folder = self.folder
        assert folder is not None
        if template is None:
            if any(
                p.location.file and str(folder.root) in p.location.file and label in p.message
                for p in self.problems
            ):
                return  # its template problem is reported already
            why = folder.why_none(step.agent or "", step.fields, step.creates)
            self.note(
                NoteKind.TEMPLATE,
                f"{label} gets no template from --bmad-dir ({why}): "
                f"runs as {_how_run({}, step.agent or '')}",
            )
            return
        if kind_set:
            self.note(
                NoteKind.TEMPLATE,
                f"{label} would render {template.relative} "
                f"({template.detail}), but bmad_kind sets every agent's kind",
            )
            return
        self.note(NoteKind.TEMPLATE, f"{label} renders {template.relative} ({template.detail})")

    def check_set_names(self, set_names: Collection[str], inputs: Collection[str]) -> None:
        """A --set name the workflow never reads is a typo until shown otherwise; a requirement
        given a value that an earlier step makes anyway is said to be unused."""
        known = _unique(self.known)
        others = {
            *self.conditions,
            *self.template_variables,
            *RESERVED_VARIABLES,
            *PROJECT_VARIABLES,
        }
        for name in set_names:
            if (
                name in self.requirement_names
                and name not in others
                and input_name(name) not in inputs
            ):
                self.note(
                    NoteKind.INPUT,
                    f"--set {name} is not read: the requirement it names "
                    "is made by an earlier step of this run",
                )
            if name in known or name == bmad_fan_out.VARIABLE:
                continue
            close = suggest(name, known)
            conditions = _unique(self.conditions)
            self.problems.append(
                UnknownVariableError(
                    f"--set {name}: the workflow has no condition, requirement or template "
                    f"variable named '{name}'",
                    value=name,
                    location=Location(file=self.source.file, path=f"--set {name}"),
                    expected="a condition (" + (", ".join(conditions) or "none") + "), a "
                    "requirement no step creates, a template variable or one of "
                    + ", ".join(PROJECT_VARIABLES + RESERVED_VARIABLES[:2]),
                    found=repr(name),
                    fix=f"did you mean '{close}'?"
                    if close
                    else "remove it, or give a run input with --input NAME=VALUE",
                )
            )


def import_workflow(
    data: dict[str, Any],
    source: SourceMap,
    variables: Mapping[str, Any],
    set_names: Collection[str] = (),
) -> BmadImport:
    """Turn a BMAD v4 workflow into a native plan dict and its interpretation; raise
    PlanValidationError with every issue.

    ``set_names`` are the names given with --set: each must be one the workflow reads.
    """
    if not isinstance(variables, Mapping):
        variables = {}
    folder: BmadFolder | None = None
    problems: list[PlanError] = []
    bmad_dir = variables.get("bmad_dir")
    if isinstance(bmad_dir, str) and bmad_dir:
        try:
            folder = BmadFolder.open(bmad_dir)
        except PlanError as problem:
            problems.append(problem)
    workflow_data = data.get("workflow") if isinstance(data, Mapping) else None
    workflow_type = workflow_data.get("type") if isinstance(workflow_data, Mapping) else None
    importer = _Importer(
        source, variables, folder, workflow_type if isinstance(workflow_type, str) else None
    )
    importer.problems.extend(problems)
    parsed = importer.workflow(data)
    if parsed is None:
        raise PlanValidationError(importer.problems, file=source.file)
    workflow, sequence = parsed

    steps = [step for i, raw in enumerate(sequence) if (step := importer.step(i, raw)) is not None]
    importer.assign_ids(steps)
    agents, inputs = importer.convert(steps)
    if folder is not None:
        importer.problems.extend(folder.problems)
    importer.check_set_names(set_names, inputs)
    # what the run gives every agent (workflow kind, --set values) and --llm:
    # pee.engine.language.bmad_agents
    llm, llm_problems = bmad_agents.llm_from(variables, data, importer.at(("llm",)))
    importer.problems.extend(llm_problems)
    bmad_agents.configure(agents, workflow, variables, llm)
    cycle = None
    given = variables.get(bmad_fan_out.VARIABLE)
    if given is not None and str(given) not in (bmad_fan_out.FOR_EACH, bmad_fan_out.ONCE):
        importer.problems.append(
            InvalidValueError(
                f"--set {bmad_fan_out.VARIABLE}={given}: no such way to run repeating steps",
                value=given,
                location=Location(file=source.file, path=f"--set {bmad_fan_out.VARIABLE}"),
                expected=f"{bmad_fan_out.FOR_EACH} (once per epic, in parallel) or "
                f"{bmad_fan_out.ONCE} (one pass)",
                found=repr(given),
                fix=f"--set {bmad_fan_out.VARIABLE}={bmad_fan_out.FOR_EACH}",
            )
        )
    if bmad_fan_out.wanted(variables):
        repeating = [
            (s.agent_id or "", str(s.fields["repeats"]))
            for s in steps
            if s.fields.get("repeats") and s.agent_id in agents
        ]
        cycle = bmad_fan_out.story_cycle(agents, importer.interpretation.links, repeating)
        if cycle is not None:
            importer.note(NoteKind.REPEATS, cycle.note)
    if not agents and not importer.problems:
        importer.problems.append(
            InvalidValueError(
                "the BMAD workflow has no step that would run",
                value=sequence,
                location=importer.at(("workflow", "sequence")),
                expected="at least one step with an 'agent' whose condition holds",
                found=f"{len(sequence)} step(s), none of them runnable",
                fix="add an agent step, or --set the condition of a conditional step to true",
            )
        )
    if importer.problems:
        raise PlanValidationError(importer.problems, file=source.file)

    name = _text(workflow.get("id")) or _text(workflow.get("name")) or "bmad-workflow"
    title = _text(workflow.get("name")) or name
    about = " ".join((_text(workflow.get("description")) or "").split())
    kind = _text(workflow.get("type"))
    description = f"BMAD workflow '{title}'" + (f" ({kind})" if kind else "")
    if about:
        description += f": {about}"
    interpretation = importer.interpretation
    plan = {
        "name": name,
        "description": description,
        "inputs": inputs,
        "agents": agents,
        "notes": [note.render() for note in interpretation.notes],
    }
    if cycle is not None:
        plan["groups"] = {bmad_fan_out.GROUP: cycle.group}
    return BmadImport(plan=plan, interpretation=interpretation)


def bmad_to_native(
    data: dict[str, Any], source: SourceMap, variables: Mapping[str, Any]
) -> dict[str, Any]:
    """The native plan dict of a BMAD workflow (``import_workflow`` without the links)."""
    return import_workflow(data, source, variables).plan


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _variable_names(artifact: str) -> list[str]:
    """Names a user may have used with --set for an artifact: as written, or with dots as '_'."""
    return _unique([artifact, artifact.replace(".", "_"), input_name(artifact)])


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _describe_step(step: _Step) -> str:
    parts = [
        " ".join(text.split())
        for text in (step.fields.get("action"), step.fields.get("notes"))
        if isinstance(text, str) and text.strip()
    ]
    if parts:
        return ": ".join(parts)
    uses = step.fields.get("uses")
    return f"{step.agent} uses {uses}" if uses else f"BMAD {step.agent} step {step.index}"


def _conditions_of(step: _Step) -> list[str]:
    # a routing step's condition takes a route name as its value (--set based_on_x=ROUTE)
    return [step.fields["condition"]] if step.fields.get("condition") else []


def _route_summary(spec: Any) -> str:
    if not isinstance(spec, Mapping):
        return "guidance"
    if "continue" in spec:
        return "continue"
    parts = [f"{k} {spec[k]}" for k in ("agent", "uses") if isinstance(spec.get(k), str)]
    return ", ".join(parts) or "guidance"


def _how_run(agent: Mapping[str, Any], role: str) -> str:
    kind = agent.get("kind")
    if kind == "template":
        return f"a template agent rendering {agent.get('template')}"
    if kind:
        return f"a {kind} agent (bmad_kind)"
    if normalise_role(role) in BUILTIN_ROLES:
        return f"the built-in {role} role agent"
    return (
        "a simulated agent (kind simulate: placeholder outputs, no document); "
        "give a real one with --set bmad_kind=KIND"
    )


def _producers_hint(
    artifact: str, step: _Step, steps: list[_Step], variables: Mapping[str, Any]
) -> str:
    """Say who else makes the artifact: a skipped step, a later step, or nobody."""
    makers = [s for s in steps if s.agent and artifact in (*s.creates, *s.updates)]
    earlier = [s for s in makers if s.index < step.index]
    later = [s for s in makers if s.index > step.index]
    if earlier:
        first = earlier[0]
        condition: Any = first.fields.get("condition")  # whatever the YAML gave
        return (
            f"only {first.label()} creates it and it is skipped: condition "
            f"'{condition}' is {variables.get(condition, 'unset')!r}"
        )
    if later:
        return f"it is first created by {later[0].label()}, after this step"
    return "no step creates it"


def _unknown_key(key: Any, index: int, path: PathKey, location: Location) -> UnknownKeyError:
    close = suggest(str(key), STEP_KEYS)
    fix = f"did you mean '{close}'?" if close else "remove it"
    return UnknownKeyError(
        f"unknown key {str(key)!r} in BMAD step {index}",
        value=key,
        location=location,
        expected="one of " + ", ".join(STEP_KEYS),
        found=repr(key),
        fix=fix,
    )
