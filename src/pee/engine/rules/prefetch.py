"""Which groups to prefetch for, and what: pure helpers for src/pee/workflows/cache_levels.py.

"Most likely to start next" (seed `predict_next_likely_agent_needs`): when a group starts, the
groups still waiting that depend on it and on nothing else that has not passed yet. They start
the moment it passes its barrier, so the time it runs is free to warm their worker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pee.engine.compiled import CompiledAgent, CompiledGroup

BUILTIN_PREFIX = "builtin:"
REF_KEY = "$artifact"


def next_groups(
    groups: list[CompiledGroup], started: str, status: Mapping[str, str], passed: tuple[str, ...]
) -> list[CompiledGroup]:
    """Waiting groups that depend on ``started`` and whose other dependencies have passed."""
    return [
        group
        for group in groups
        if status.get(group.id) == "pending"
        and started in group.depends_on
        and all(dep == started or status.get(dep) in passed for dep in group.depends_on)
    ]


def template_agents(agents: list[CompiledAgent]) -> list[CompiledAgent]:
    """Template agents whose template is a file (built-ins need no reading)."""
    return [
        agent
        for agent in agents
        if agent.kind == "template"
        and isinstance(agent.settings.get("template"), str)
        and not agent.settings["template"].startswith(BUILTIN_PREFIX)
    ]


def references(
    agents: list[CompiledAgent], has: Callable[[str], bool], value: Callable[[str], Any]
) -> list[dict[str, Any]]:
    """Artifact references (deduplicated, in plan order) among the values the agents read that
    exist now."""
    found: list[dict[str, Any]] = []
    seen: list[str] = []
    for agent in agents:
        for key in [*agent.inputs, *agent.optional_inputs]:
            if has(key):
                for reference in _walk(value(key)):
                    if reference[REF_KEY] not in seen:
                        seen.append(reference[REF_KEY])
                        found.append(reference)
    return found


def _walk(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        if isinstance(value.get(REF_KEY), str):
            return [value]
        return [ref for item in value.values() for ref in _walk(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in _walk(item)]
    return []
