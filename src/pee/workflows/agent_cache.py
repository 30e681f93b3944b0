"""AgentCache: the workflow side of the agent output cache.

Consulted only when the plan opts in to cross-run reuse (agent_output_cache.ttl in seconds):
with the default session_lifetime nothing could ever hit in a fresh run, and a plain run keeps
issuing exactly the commands it always did. An adaptive plan listing enable_aggressive_caching
looks up from the start and stores across runs once it is on.

`cache_keys` (agent id -> its output cache key, so downstream keys carry their lineage) is
carried across continue-as-new: PlanWorkflow assigns the carried keys after construction.
The Adaptation is read at every use, never copied: a continuation restores its rules in place."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pee.activities.agents import lookup_cached_output
    from pee.activities.types import AgentResult, CacheLookup
    from pee.engine.compiled import CompiledAgent, CompiledPlan
    from pee.engine.rules.cache_key import cache_key
    from pee.workflows.adaptation import Adaptation
    from pee.workflows.run_scope import RunScope


def plan_cache_ttl_s(plan: CompiledPlan) -> float | None:
    """The plan's own cross-run TTL (None: session lifetime, this run only)."""
    return plan.caching.output_ttl_s


class AgentCache:
    def __init__(self, scope: RunScope, adapt: Adaptation) -> None:
        self.scope = scope
        self.adapt = adapt
        self.cache_keys: dict[str, str] = {}

    def ttl_s(self) -> float | None:
        """The plan's cross-run TTL, else enable_aggressive_caching's once it is on (None:
        this run only)."""
        plan_ttl = plan_cache_ttl_s(self.scope.plan)
        return plan_ttl if plan_ttl is not None else self.adapt.cache_store_ttl_s()

    def size_limit(self) -> int | None:
        caching = self.scope.plan.caching
        return caching.agent_output.size_limit if caching.enabled else None

    def key(self, agent: CompiledAgent, inputs: dict[str, Any]) -> str | None:
        """The agent's cache key (recorded for its dependants), None when nothing is cached."""
        if self.ttl_s() is None and not self.adapt.looks_up_cache:
            return None
        upstream = [self.cache_keys[d] for d in agent.depends_on if d in self.cache_keys]
        key = cache_key(agent, inputs, upstream)
        self.cache_keys[agent.id] = key
        return key

    async def lookup(self, agent: CompiledAgent, key: str) -> AgentResult | None:
        found = await workflow.execute_local_activity(
            lookup_cached_output,
            CacheLookup(key, workflow.info().run_id),
            start_to_close_timeout=timedelta(seconds=10),
            summary=f"cache lookup for agent {agent.id}",
        )
        run = self.scope.run
        run.cache_hits += found is not None
        run.cache_misses += found is None
        if found is None:
            return None
        return AgentResult(
            agent.id, dict(found.get("outputs") or {}), dict(found.get("writes") or {}), attempt=0
        )
