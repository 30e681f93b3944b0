"""Agent output cache keys, lineage-aware.

key = sha256 of the canonical JSON of
- the agent's definition: kind, role, settings, outputs, writes (what it does),
- the backend version (bump it when a backend's behaviour changes),
- its input values as seen in its snapshot,
- the cache keys of the upstream agents it depends on.

Changing an upstream agent changes its key, which changes every downstream key: a change
invalidates exactly the agent and what depends on it. Pure and deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pee.engine.compiled import CompiledAgent
from pee.engine.rules.merge import value_hash

# part of every key: raise it when a backend starts producing different outputs for the same
# inputs, so old entries stop matching
BACKEND_VERSION = 1


def agent_definition(agent: CompiledAgent) -> dict[str, Any]:
    return {
        "kind": agent.kind,
        "role": agent.role,
        "settings": agent.settings,
        "outputs": agent.outputs,
        "writes": agent.writes,
        "defaults": agent.defaults,
    }


def cache_key(
    agent: CompiledAgent, inputs: Mapping[str, Any], upstream_keys: Sequence[str] = ()
) -> str:
    return value_hash(
        {
            "agent": agent_definition(agent),
            "backend_version": BACKEND_VERSION,
            "inputs": dict(inputs),
            "upstream": sorted(upstream_keys),
        }
    )
