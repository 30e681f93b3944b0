"""Turns the seed's YAML sections and the native ``agents``/``groups`` into raw agent and group
entries that remember where each field came from.

Mapping rules (also in docs/reference/plan-language.md, "The seed's own format"):
- ``execution_groups.G.agents`` become agents (role = name); ``agent_specifications`` add their
  settings; the group's ``estimated_duration`` and ``resource_requirements`` apply to agents that
  give none. An agent with no specification declares no outputs, so references such as
  ``pm.user_stories`` define its outputs ("open" agent).
- ``dependencies: [analyst.completion]`` make the group wait for analyst's group.
- ``enhanced_workflow_step(s)``: a step agent whose ``agent`` role already exists refines it
  (priority, timeout, reads → inputs, writes, resources) and the step then refines that agent's
  group; otherwise the step adds its agents and a group of its own. The step's agent ids become
  aliases of the agents they refine.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from pee.engine.language.errors import GroupError, InvalidValueError, PlanError
from pee.engine.language.yamlsrc import PathKey, SourceMap

LIST_FIELDS = ("inputs", "optional_inputs", "outputs", "writes", "validates")


@dataclass
class RawAgent:
    id: str
    data: dict[str, Any]
    path: PathKey
    field_paths: dict[str, PathKey] = field(default_factory=dict)
    # declared no outputs in seed form: references define them
    open_outputs: bool = False

    def path_of(self, name: str) -> PathKey:
        return self.field_paths.get(name, (*self.path, name))

    def merge(self, data: dict[str, Any], path: PathKey) -> None:
        """Later definitions refine earlier ones: lists extend, mappings update, scalars win."""
        for key, value in data.items():
            current = self.data.get(key)
            if key in LIST_FIELDS and isinstance(current, list) and isinstance(value, list):
                self.data[key] = current + [v for v in value if v not in current]
            elif isinstance(current, dict) and isinstance(value, dict):
                self.data[key] = {**current, **value}
            else:
                self.data[key] = value
            self.field_paths[key] = (*path, key)
        if "outputs" in data:
            self.open_outputs = False


@dataclass
class RawGroup:
    id: str
    data: dict[str, Any]
    path: PathKey
    field_paths: dict[str, PathKey] = field(default_factory=dict)

    def path_of(self, name: str) -> PathKey:
        return self.field_paths.get(name, (*self.path, name))


@dataclass
class RawPlan:
    agents: dict[str, RawAgent] = field(default_factory=dict)
    groups: dict[str, RawGroup] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    problems: list[PlanError] = field(default_factory=list)


def _mapping(
    value: Any, path: PathKey, what: str, source: SourceMap, problems: list[PlanError]
) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    problems.append(
        InvalidValueError(
            f"{what} must be a mapping",
            value=value,
            location=source.locate(path),
            expected="a mapping of names to settings",
            found=f"{type(value).__name__} {value!r:.60}",
        )
    )
    return None


_AGENT_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _is_agent_id(name: Any) -> bool:
    # ASCII only: ids travel into activity ids, task summaries and file names
    return isinstance(name, str) and _AGENT_ID.fullmatch(name) is not None


def _check_id(
    name: Any, path: PathKey, what: str, source: SourceMap, problems: list[PlanError]
) -> TypeGuard[str]:
    if _is_agent_id(name):
        return True
    problems.append(
        InvalidValueError(
            f"invalid {what} id {name!r}",
            value=name,
            location=source.locate(path),
            expected="a name of letters, digits, '_' or '-' starting with a letter (no dots: "
            "'agent.output' splits at the first dot)",
            found=repr(name),
            fix="rename it, e.g. 'ux_expert'",
        )
    )
    return False


def collect(data: dict[str, Any], source: SourceMap) -> RawPlan:
    raw = RawPlan()
    if "execution_groups" in data:
        _collect_execution_groups(data["execution_groups"], source, raw)
    if "agents" in data:
        _collect_native_agents(data["agents"], source, raw)
    if "groups" in data:
        _collect_native_groups(data["groups"], source, raw)
    steps: list[tuple[Any, PathKey]] = []
    if "enhanced_workflow_step" in data:
        steps.append((data["enhanced_workflow_step"], ("enhanced_workflow_step",)))
    if "enhanced_workflow_steps" in data:
        listed = data["enhanced_workflow_steps"]
        if isinstance(listed, list):
            steps.extend((s, ("enhanced_workflow_steps", i)) for i, s in enumerate(listed))
        else:
            raw.problems.append(
                InvalidValueError(
                    "enhanced_workflow_steps must be a list",
                    value=listed,
                    location=source.locate(("enhanced_workflow_steps",)),
                    expected="a list of steps",
                    found=type(listed).__name__,
                )
            )
    for step, path in steps:
        _collect_enhanced_step(step, path, source, raw)
    return raw


def _entries(
    section: str, value: Any, what: str, source: SourceMap, raw: RawPlan, empty_ok: bool = False
) -> Iterator[tuple[str, PathKey, dict[str, Any]]]:
    """The (id, path, settings) of each well-formed entry of a named mapping such as
    ``agents:``; malformed sections, ids and entries are reported and skipped."""
    entries = _mapping(value, (section,), section, source, raw.problems)
    for name, spec in (entries or {}).items():
        path: PathKey = (section, name)
        if not _check_id(name, path, what, source, raw.problems):
            continue
        if spec is None and empty_ok:
            spec = {}
        spec = _mapping(spec, path, f"{what} '{name}'", source, raw.problems)
        if spec is not None:
            yield name, path, spec


def _collect_execution_groups(groups: Any, source: SourceMap, raw: RawPlan) -> None:
    for group_id, path, spec in _entries("execution_groups", groups, "group", source, raw):
        group_data: dict[str, Any] = {}
        field_paths: dict[str, PathKey] = {}
        agent_defaults: dict[str, Any] = {}
        specifications: dict[str, Any] = {}
        for key, value in spec.items():
            key_path = (*path, key)
            if key == "dependencies":
                group_data["depends_on"] = value
                field_paths["depends_on"] = key_path
            elif key == "parallel_capable":
                group_data["parallel"] = value
                field_paths["parallel"] = key_path
            elif key == "synchronization":
                pass  # "barrier_sync" names the behaviour every group already has
            elif key == "synchronization_strategy":
                strategy = _mapping(
                    value, key_path, "synchronization_strategy", source, raw.problems
                )
                for skey, svalue in (strategy or {}).items():
                    target = {"type": None, "barrier_type": None, "failure_criteria": None}.get(
                        skey, skey
                    )
                    if target is None:
                        continue
                    if skey == "cross_validation" and isinstance(svalue, str):
                        # the seed names a strategy; mutual validation of the group's agents
                        target, svalue = "cross_validation", {"enabled": True}
                    group_data[target] = svalue
                    field_paths[target] = (*key_path, skey)
            elif key == "resource_requirements":
                agent_defaults["resource_requirements"] = value
            elif key == "estimated_duration":
                group_data["estimated_duration"] = value
                field_paths["estimated_duration"] = key_path
                agent_defaults["estimated_duration"] = value
            elif key == "agent_specifications":
                specifications = (
                    _mapping(value, key_path, "agent_specifications", source, raw.problems) or {}
                )
            else:
                group_data[key] = value
                field_paths[key] = key_path
        members = spec.get("agents", [])
        if isinstance(members, str):
            members = [members]
        if not isinstance(members, list):
            continue  # GroupSpec validation reports the type
        for index, name in enumerate(members):
            agent_path = (*path, "agents", index)
            if not _check_id(name, agent_path, "agent", source, raw.problems):
                continue
            if name in raw.agents:
                raw.problems.append(
                    GroupError(
                        f"agent '{name}' is listed in two execution groups",
                        value=name,
                        location=source.locate(agent_path),
                        expected="each agent in exactly one group",
                        found=f"also at line {source.line(raw.agents[name].path)}",
                        fix="remove it from one of the groups",
                    )
                )
                continue
            agent = RawAgent(id=name, data={"role": name}, path=agent_path, open_outputs=True)
            agent.data.update(agent_defaults)
            agent.field_paths.update({k: (*path, k) for k in agent_defaults})
            spec_value = specifications.get(name)
            if spec_value is not None:
                spec_path = (*path, "agent_specifications", name)
                spec_map = _mapping(
                    spec_value, spec_path, f"specification of '{name}'", source, raw.problems
                )
                if spec_map is not None:
                    agent.merge(spec_map, spec_path)
            raw.agents[name] = agent
        listed = set(members)
        for name in specifications:
            if name not in listed:
                raw.problems.append(
                    GroupError(
                        f"agent_specifications names '{name}', which is not in this group's agents",
                        value=name,
                        location=source.locate((*path, "agent_specifications", name)),
                        expected=f"one of {members}",
                        fix=f"add '{name}' to agents or remove it",
                    )
                )
        group_data["agents"] = [m for m in members if _is_agent_id(m)]
        field_paths["agents"] = (*path, "agents")
        raw.groups[group_id] = RawGroup(group_id, group_data, path, field_paths)


def _collect_native_agents(agents: Any, source: SourceMap, raw: RawPlan) -> None:
    for name, path, spec in _entries("agents", agents, "agent", source, raw, empty_ok=True):
        if name in raw.agents:
            raw.agents[name].merge(spec, path)
        else:
            agent = RawAgent(id=name, data={}, path=path)
            agent.merge(spec, path)
            raw.agents[name] = agent


def _collect_native_groups(groups: Any, source: SourceMap, raw: RawPlan) -> None:
    for group_id, path, spec in _entries("groups", groups, "group", source, raw):
        if group_id in raw.groups:
            existing = raw.groups[group_id]
            existing.data.update(spec)
            existing.field_paths.update({k: (*path, k) for k in spec})
        else:
            raw.groups[group_id] = RawGroup(
                group_id, dict(spec), path, {k: (*path, k) for k in spec}
            )


def _group_of(agent_id: str, raw: RawPlan) -> str | None:
    for group in raw.groups.values():
        members = group.data.get("agents", [])
        if isinstance(members, list) and agent_id in members:
            return group.id
    return None


def _collect_enhanced_step(step: Any, path: PathKey, source: SourceMap, raw: RawPlan) -> None:
    step = _mapping(step, path, "enhanced workflow step", source, raw.problems)
    if step is None:
        return
    step_id = step.get("id")
    if not _check_id(step_id, (*path, "id"), "step", source, raw.problems):
        return
    agents = step.get("agents", [])
    if not isinstance(agents, list):
        raw.problems.append(
            InvalidValueError(
                "a step's agents must be a list",
                value=agents,
                location=source.locate((*path, "agents")),
                expected="a list of agent mappings",
                found=type(agents).__name__,
            )
        )
        return
    members: list[str] = []
    refined_groups: list[str] = []
    for index, entry in enumerate(agents):
        entry_path = (*path, "agents", index)
        entry = _mapping(entry, entry_path, "a step agent", source, raw.problems)
        if entry is None:
            continue
        local_id = entry.get("id")
        if not _check_id(local_id, (*entry_path, "id"), "agent", source, raw.problems):
            continue
        role = entry.get("agent", local_id)
        data = {k: v for k, v in entry.items() if k not in ("id", "agent", "context_requirements")}
        field_paths: dict[str, PathKey] = {k: (*entry_path, k) for k in data}
        requirements = entry.get("context_requirements")
        if requirements is not None:
            req_path = (*entry_path, "context_requirements")
            requirements = (
                _mapping(requirements, req_path, "context_requirements", source, raw.problems) or {}
            )
            for key, target in (("read", "inputs"), ("write", "writes")):
                if key in requirements:
                    data[target] = requirements[key]
                    field_paths[target] = (*req_path, key)
            for key in requirements:
                if key not in ("read", "write"):
                    data[f"context_requirements.{key}"] = requirements[key]
                    field_paths[f"context_requirements.{key}"] = (*req_path, key)
        target_id = role if isinstance(role, str) and role in raw.agents else None
        if target_id is None and local_id in raw.agents:
            target_id = local_id
        if target_id is not None:
            agent = raw.agents[target_id]
            agent.merge(data, entry_path)
            agent.field_paths.update(field_paths)
            if local_id != target_id:
                raw.aliases[local_id] = target_id
            group_id = _group_of(target_id, raw)
            if group_id is not None and group_id not in refined_groups:
                refined_groups.append(group_id)
            members.append(target_id)
        else:
            agent = RawAgent(id=local_id, data={"role": role}, path=entry_path)
            agent.merge(data, entry_path)
            agent.field_paths.update(field_paths)
            raw.agents[local_id] = agent
            members.append(local_id)

    group_data: dict[str, Any] = {"name": step.get("name", step_id)}
    field_paths = {}
    step_type = step.get("type", "parallel_group")
    group_data["parallel"] = step_type == "parallel_group"
    for key in ("depends_on", "timeout", "cross_validation"):
        if key in step:
            group_data[key] = step[key]
            field_paths[key] = (*path, key)
    sync = step.get("synchronization")
    if isinstance(sync, dict):
        for key in ("success_criteria", "timeout", "partial_failure_handling"):
            if key in sync:
                group_data[key] = sync[key]
                field_paths[key] = (*path, "synchronization", key)
    cross = group_data.get("cross_validation")
    if isinstance(cross, dict) and isinstance(cross.get("validation_agents"), list):
        # step ids name the agents they refine; a copy, the caller's data stays as written, and
        # entries that are not text are left for GroupSpec validation to report
        group_data["cross_validation"] = {
            **cross,
            "validation_agents": [
                raw.aliases.get(a, a) if isinstance(a, str) else a
                for a in cross["validation_agents"]
            ],
        }

    new_members = [m for m in members if _group_of(m, raw) is None]
    if len(refined_groups) == 1 and not new_members:
        group = raw.groups[refined_groups[0]]
        for key, value in group_data.items():
            group.data[key] = value
            if key in field_paths:
                group.field_paths[key] = field_paths[key]
        raw.aliases.setdefault(step_id, group.id)
    elif refined_groups:
        raw.problems.append(
            GroupError(
                f"step '{step_id}' mixes agents of groups {refined_groups} and new agents "
                f"{new_members}",
                value=step_id,
                location=source.locate(path),
                expected="a step that either refines the agents of one existing group or adds "
                "only new agents",
                fix="split the step, or list the agents in one execution group",
            )
        )
    else:
        group_data["agents"] = members
        raw.groups[step_id] = RawGroup(step_id, group_data, path, field_paths)
