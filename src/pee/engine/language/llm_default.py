"""`llm:` in a native plan (or --llm): the chat endpoint every `http` agent uses unless it names
its own ``base_url`` (then it keeps its own model and key too). A BMAD workflow file's ``llm:``
turns every step into such an agent instead (pee.engine.language.bmad_agents)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pee.engine.language.bmad_agents import LLM_KEYS, llm_from
from pee.engine.language.errors import Location, PlanError


def apply(
    raw_agents: Mapping[str, Any],
    data: Mapping[str, Any],
    variables: Mapping[str, Any],
    where: Location,
) -> list[PlanError]:
    """Fill the http agents' missing endpoint settings (raw agents: `.data` dicts); the
    problems of a malformed `llm:`."""
    llm, problems = llm_from(variables, data, where)
    if llm is None:
        return problems
    for raw in raw_agents.values():
        # an agent with its own endpoint keeps its own model and key: the default's key must
        # never travel to another server
        if raw.data.get("kind") != "http" or raw.data.get("base_url") is not None:
            continue
        for key in LLM_KEYS:
            value = getattr(llm, key)
            if value is not None and raw.data.get(key) is None:
                raw.data[key] = value
    return problems
