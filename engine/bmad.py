"""Import BMAD v4 workflow files (``workflow: {sequence: [...]}``) as native plans.

BMAD lists its steps in the order a person would run them, and each agent step names the artifacts
it ``creates``/``updates`` and the ones it ``requires``. We keep the data, not the order: every
requirement becomes an edge to the step that last produced that artifact earlier in the sequence,
so the analyser can run side by side whatever the sequence only happens to list one after another.

The result is a dict in the native plan format (``name``, ``description``, ``inputs``, ``agents``)
plus ``notes``: human-readable lines about steps that were not turned into agents (guidance steps,
conditional steps whose condition is off). The plan loader validates it like any native plan.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine import bmad_agents
from engine.errors import (
    InvalidValueError,
    Location,
    MissingProducerError,
    PlanError,
    PlanValidationError,
    UnknownKeyError,
    UnresolvedInputError,
)
from engine.yamlsrc import SourceMap

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

TRUTHY = frozenset({"true", "yes", "1", "on"})
# "all_artifacts", "all_artifacts_in_project"...: everything produced so far
ALL_ARTIFACTS = "all_artifacts"

_TRAILING_PAREN = re.compile(r"\s*\([^()]*\)\s*$")
_NOT_ID_CHAR = re.compile(r"[^A-Za-z0-9_-]")
_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


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


def is_truthy(value: Any) -> bool:
    return value is not None and str(value).strip().lower() in TRUTHY


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


class _Importer:
    def __init__(self, source: SourceMap, variables: Mapping[str, Any]) -> None:
        self.source = source
        self.variables = variables
        self.problems: list[PlanError] = []

    def at(self, path: PathKey) -> Location:
        return self.source.locate(path)

    # -- parsing ------------------------------------------------------------------------------

    def workflow(self, data: Any) -> tuple[Mapping[str, Any], list[Any]] | None:
        if not isinstance(data, Mapping):
            self.problems.append(InvalidValueError(
                "a BMAD workflow file must be a mapping", value=data, location=self.at(()),
                expected="a mapping with a 'workflow' key", found=type(data).__name__,
            ))
            return None
        workflow = data.get("workflow")
        if not isinstance(workflow, Mapping):
            self.problems.append(InvalidValueError(
                "'workflow' must be a mapping", value=workflow, location=self.at(("workflow",)),
                expected="workflow: {id, name, description, sequence: [...]}",
                found=_describe(workflow),
                fix="indent id, name and sequence under 'workflow:'",
            ))
            return None
        sequence = workflow.get("sequence")
        if not isinstance(sequence, list):
            self.problems.append(InvalidValueError(
                "'workflow.sequence' must be a list of steps", value=sequence,
                location=self.at(("workflow", "sequence")),
                expected="a list such as '- agent: pm\\n  creates: prd.md'",
                found=_describe(sequence),
                fix="write each step as a '- ' list item under 'sequence:'",
            ))
            return None
        for key in ("id", "name", "description", "type"):
            value = workflow.get(key)
            if value is not None and not isinstance(value, str):
                self.problems.append(InvalidValueError(
                    f"'workflow.{key}' must be text", value=value,
                    location=self.at(("workflow", key)), expected="a string",
                    found=_describe(value), fix="quote the value",
                ))
        return workflow, sequence

    def step(self, index: int, raw: Any) -> _Step | None:
        path: PathKey = ("workflow", "sequence", index)
        if not isinstance(raw, Mapping) or not raw:
            self.problems.append(InvalidValueError(
                f"BMAD step {index} must be a non-empty mapping", value=raw,
                location=self.at(path), expected="a mapping such as {agent: pm, creates: prd.md}",
                found=_describe(raw), fix="give the step an 'agent' and what it creates/requires",
            ))
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
                self.problems.append(InvalidValueError(
                    f"BMAD step {index} gives '{key}' twice", value=value,
                    location=self.at(key_path), expected="each key once",
                    found=f"'{key}' both inside and beside '{step.block}:'",
                    fix="keep one of them",
                ))
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
            self.problems.append(InvalidValueError(
                f"BMAD step {index}: '{key}' must be {expected}", value=value,
                location=self.at(path), expected=expected, found=_describe(value),
            ))
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
            self.problems.append(InvalidValueError(
                f"BMAD step {index}: '{key}' must be an artifact name or a list of them",
                value=value, location=self.at(path),
                expected="a string such as 'prd.md' or a list of strings", found=_describe(value),
            ))
        names: list[tuple[str, PathKey]] = []
        for item, item_path in entries:
            name = normalise_artifact(item) if isinstance(item, str) else ""
            if not name:
                self.problems.append(InvalidValueError(
                    f"BMAD step {index}: '{key}' holds an empty or non-text artifact name",
                    value=item, location=self.at(item_path),
                    expected="an artifact name such as 'prd.md'", found=_describe(item),
                ))
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

    def convert(self, steps: list[_Step]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        # no kind: BMAD roles (analyst, pm, ux-expert...) run as the built-in role agents
        kind = self.variables.get("bmad_kind")
        duration = self.variables.get("bmad_duration")
        agents: dict[str, Any] = {}
        inputs: dict[str, Any] = {}
        notes: list[str] = []
        # artifact -> id of the step that last created/updated it; insertion order = first made
        producers: dict[str, str] = {}

        for step in steps:
            if not step.agent:
                notes.append(_guidance_note(step))
                continue
            condition = step.fields.get("condition")
            if condition and not is_truthy(self.variables.get(condition)):
                notes.append(
                    f"{step.label()} skipped: condition '{condition}' is not true "
                    f"(include it with --set {condition}=true)"
                )
                continue

            reads: list[str] = []
            for artifact, path in step.requires:
                if artifact.startswith(ALL_ARTIFACTS):
                    reads.extend(f"{p}.{a}" for a, p in producers.items())
                elif artifact in producers:
                    reads.append(f"{producers[artifact]}.{artifact}")
                else:
                    name = self.plan_input(step, artifact, path, steps)
                    if name is not None:
                        inputs[name] = self.variables[self.variable_for(artifact)]
                        reads.append(name)
            # an update edits the current version, so it waits for whoever made that version
            reads.extend(f"{producers[a]}.{a}" for a in step.updates if a in producers)

            validated: list[str] = []
            for artifact, path in step.validates:
                if artifact.startswith(ALL_ARTIFACTS):
                    validated.extend(producers.values())
                elif artifact in producers:
                    validated.append(producers[artifact])
                else:
                    self.problems.append(MissingProducerError(
                        f"{step.label()} validates '{artifact}', but no earlier step creates it",
                        value=artifact, location=self.at(path),
                        expected=f"a step before step {step.index} that creates '{artifact}'",
                        found=_producers_hint(artifact, step, steps, self.variables),
                        fix="add a step that creates it, or validate all_artifacts",
                    ))

            outputs = _unique([*step.creates, *step.updates])
            agent_id = step.agent_id or step.agent
            agents[agent_id] = self.agent(step, kind, duration, reads, outputs, validated)
            for artifact in outputs:
                producers[artifact] = agent_id
        return agents, inputs, notes

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
        fix = f"supply it with --set {name}=VALUE, or add a step before step {step.index} " \
              f"that creates '{artifact}'"
        skipped = [
            s for s in steps
            if s.index < step.index and s.agent and artifact in (*s.creates, *s.updates)
        ]
        condition = skipped[0].fields.get("condition") if skipped else None
        if condition:
            fix += f", or include {skipped[0].label()} with --set {condition}=true"
        self.problems.append(UnresolvedInputError(
            f"{step.label()} requires '{artifact}', but no earlier step creates it "
            "and no value was supplied",
            value=artifact, location=self.at(path),
            expected=f"a step before step {step.index} that creates '{artifact}', "
            f"or a value for '{name}'",
            found=_producers_hint(artifact, step, steps, self.variables),
            fix=fix,
        ))
        return None

    def agent(
        self,
        step: _Step,
        kind: Any,
        duration: Any,
        reads: list[str],
        outputs: list[str],
        validated: list[str],
    ) -> dict[str, Any]:
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
        uses = step.fields.get("uses")
        templates = self.variables.get("bmad_templates")
        bmad_dir = self.variables.get("bmad_dir")
        if (not kind and isinstance(uses, str) and isinstance(templates, list | tuple)
                and uses in templates and isinstance(bmad_dir, str) and bmad_dir):
            # --bmad-dir: the install folder's template renders this step's document; the
            # template backend's sandbox root is that folder (the starter listed its templates)
            agent["kind"] = "template"
            agent["template"] = f"templates/{uses}.yaml"
            settings["plan_dir"] = bmad_dir
        agent["settings"] = settings
        return agent


def bmad_to_native(
    data: dict[str, Any], source: SourceMap, variables: Mapping[str, str]
) -> dict[str, Any]:
    """Turn a BMAD v4 workflow into a native plan dict; raise PlanValidationError with every issue.

    Keys of the result: ``name``, ``description``, ``inputs`` (requirements nobody produces,
    taken from ``variables``), ``agents`` (in sequence order) and ``notes`` (steps that did not
    become agents, and why).
    """
    if not isinstance(variables, Mapping):
        variables = {}
    importer = _Importer(source, variables)
    parsed = importer.workflow(data)
    if parsed is None:
        raise PlanValidationError(importer.problems, file=source.file)
    workflow, sequence = parsed

    steps = [step for i, raw in enumerate(sequence) if (step := importer.step(i, raw)) is not None]
    importer.assign_ids(steps)
    agents, inputs, notes = importer.convert(steps)
    # what the run gives every agent (workflow kind, --set values) and --llm: engine.bmad_agents
    llm, llm_problems = bmad_agents.llm_from(variables, data, importer.at(("llm",)))
    importer.problems.extend(llm_problems)
    bmad_agents.configure(agents, workflow, variables, llm)
    if not agents and not importer.problems:
        importer.problems.append(InvalidValueError(
            "the BMAD workflow has no step that would run", value=sequence,
            location=importer.at(("workflow", "sequence")),
            expected="at least one step with an 'agent' whose condition holds",
            found=f"{len(sequence)} step(s), none of them runnable",
            fix="add an agent step, or --set the condition of a conditional step to true",
        ))
    if importer.problems:
        raise PlanValidationError(importer.problems, file=source.file)

    name = _text(workflow.get("id")) or _text(workflow.get("name")) or "bmad-workflow"
    title = _text(workflow.get("name")) or name
    about = " ".join((_text(workflow.get("description")) or "").split())
    kind = _text(workflow.get("type"))
    description = f"BMAD workflow '{title}'" + (f" ({kind})" if kind else "")
    if about:
        description += f": {about}"
    return {
        "name": name,
        "description": description,
        "inputs": inputs,
        "agents": agents,
        "notes": notes,
    }


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


def _guidance_note(step: _Step) -> str:
    what = step.fields.get("action")
    if not what and isinstance(step.fields.get("routes"), Mapping):
        what = "routes " + ", ".join(str(route) for route in step.fields["routes"])
    what = what or " ".join(str(step.fields.get("notes") or "").split())[:80] or "no action"
    return f"step {step.index} '{step.name or 'guidance'}' is human guidance (no agent), " \
           f"not run: {what}"


def _producers_hint(
    artifact: str, step: _Step, steps: list[_Step], variables: Mapping[str, Any]
) -> str:
    """Say who else makes the artifact: a skipped step, a later step, or nobody."""
    makers = [s for s in steps if s.agent and artifact in (*s.creates, *s.updates)]
    earlier = [s for s in makers if s.index < step.index]
    later = [s for s in makers if s.index > step.index]
    if earlier:
        first = earlier[0]
        condition = first.fields.get("condition")
        return f"only {first.label()} creates it and it is skipped: condition " \
               f"'{condition}' is {variables.get(condition, 'unset')!r}"
    if later:
        return f"it is first created by {later[0].label()}, after this step"
    return "no step creates it"


def _unknown_key(key: Any, index: int, path: PathKey, location: Location) -> UnknownKeyError:
    close = difflib.get_close_matches(str(key), STEP_KEYS, n=1)
    fix = f"did you mean '{close[0]}'?" if close else "remove it"
    return UnknownKeyError(
        f"unknown key {str(key)!r} in BMAD step {index}", value=key, location=location,
        expected="one of " + ", ".join(STEP_KEYS), found=repr(key), fix=fix,
    )
