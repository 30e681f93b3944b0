"""ContextGate: how agents meet the run's versioned context. The snapshot an agent takes when it
starts, the commit of its result (a conflicting write goes to the ConflictDesk), the context
store's reader and writer slots (src/pee/workflows/locks.py, in RunState.limits) and declared
defaults for agents the group goes on without.

Its state is the RunState's (context, limits, rejected writes): it only needs the scope and the
desk. The commands it issues are exactly those PlanWorkflow issued (tests/test_replay.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pee.activities.types import AgentResult
    from pee.engine.compiled import CompiledAgent
    from pee.engine.rules import context as ctx
    from pee.workflows.conflict_desk import ConflictDesk
    from pee.workflows.locks import ContextLockTimeout
    from pee.workflows.run_scope import RunScope

# commit outcomes that wrote nothing new but are fine
QUIET_OUTCOMES = (ctx.CREATED, ctx.FAST_FORWARD, ctx.UNCHANGED)


class ContextGate:
    def __init__(self, scope: RunScope, desk: ConflictDesk) -> None:
        self.scope = scope
        self.desk = desk

    def snapshot(self, agent: CompiledAgent) -> tuple[dict[str, Any], list[str], dict[str, int]]:
        """What the agent sees for its whole run: values of its inputs and optional inputs that
        exist now, the blocking ones that do not, and the version vector over those keys and its
        shared writes (the base versions of its writes)."""
        if not (agent.inputs or agent.optional_inputs or agent.writes):
            # reads and writes nothing (a plan's first agents, every no-op one): what the
            # walk below gives for no keys, without it
            return {}, [], {}
        keys = unique([*agent.inputs, *agent.optional_inputs, *agent.writes])
        seen = self.scope.ctx.snapshot(keys)
        readable = unique([*agent.inputs, *agent.optional_inputs])
        inputs = {key: seen.values[key] for key in readable if key in seen.values}
        missing = [key for key in agent.inputs if key not in seen.values]
        return inputs, missing, seen.versions

    def commit(self, agent: CompiledAgent, result: AgentResult) -> None:
        context = self.scope.ctx
        state = self.scope.agents[agent.id]
        at = self.scope.at()
        # in declared order (the payload converter sorts mapping keys), then anything undeclared
        for name in in_order(agent.outputs, result.outputs):
            key = f"{agent.id}.{name}"
            # its own key: nobody else writes it, a re-run simply moves it forward
            outcome = context.commit(
                agent.id,
                key,
                result.outputs[name],
                context.current_version(key),
                at,
                own_key=True,
            )
            self.committed(agent, outcome)
            if name not in state.outputs:
                state.outputs.append(name)
        for key in in_order(agent.writes, result.writes):
            # derived from what the agent saw at its start: a stale base is merged or conflicts
            base = state.snapshot.get(key, context.current_version(key))
            self.committed(agent, context.commit(agent.id, key, result.writes[key], base, at))

    def committed(self, agent: CompiledAgent, outcome: ctx.CommitOutcome) -> None:
        scope = self.scope
        scope.agents[agent.id].commits[outcome.key] = outcome.outcome
        if outcome.outcome in QUIET_OUTCOMES:
            return
        if outcome.outcome == ctx.MERGED:
            scope.event("context_merged", outcome.key)
        elif outcome.outcome == ctx.REJECTED:
            owner = scope.ctx.owner_of(outcome.key)
            scope.run.rejected_writes.append(
                {
                    "at": scope.at(),
                    "agent": agent.id,
                    "key": outcome.key,
                    "owner": owner,
                    "message": outcome.message,
                }
            )
            scope.event("write_rejected", outcome.key)
            # the agent's value is dropped: its readers get the owner's value instead
            scope.alert(agent.group, "critical", f"write rejected: {outcome.message}")
        elif outcome.conflict is not None:
            self.desk.opened(outcome.conflict, agent.group)

    def slot(self, kind: str, agent_id: str) -> _Slot:
        """Hold a context reader or writer slot (src/pee/workflows/locks.py); waiting for one is
        bounded by lock_timeout and measured for the report."""
        return _Slot(self, kind, agent_id)

    async def take(self, kind: str, agent_id: str) -> None:
        """Take a slot of `kind` (see `slot`), waiting for one if none is free."""
        limits = self.scope.run.limits
        if not limits.free(kind):
            began = self.scope.elapsed()
            try:
                await workflow.wait_condition(
                    lambda: limits.free(kind),
                    timeout=limits.lock_timeout_s,
                    timeout_summary=f"context {kind} slot",
                )
            except asyncio.TimeoutError:
                limits.waited(agent_id, self.scope.elapsed() - began)
                raise ContextLockTimeout(
                    f"no context {kind} slot came free within {limits.lock_timeout_s:g} s "
                    f"(resource_pool.context_store)"
                ) from None
            limits.waited(agent_id, self.scope.elapsed() - began)
        limits.take(kind)

    def fill_defaults(self, agent: CompiledAgent) -> None:
        state = self.scope.agents[agent.id]
        for name in agent.outputs:
            key = f"{agent.id}.{name}"
            if not self.scope.ctx.has(key) and name in agent.defaults:
                self.scope.ctx.put(
                    key, agent.defaults[name], agent.id, self.scope.at(), origin="default"
                )
                state.defaulted_outputs.append(name)


class _Slot:
    """`ContextGate.slot`'s context manager: a class, not an asynccontextmanager, whose
    generator and wrapper cost every agent twice (bench/overhead.py); it runs the same steps
    (no wait when a slot is free) and releases the slot however the block ends."""

    __slots__ = ("agent_id", "gate", "kind")

    def __init__(self, gate: ContextGate, kind: str, agent_id: str) -> None:
        self.gate = gate
        self.kind = kind
        self.agent_id = agent_id

    async def __aenter__(self) -> None:
        await self.gate.take(self.kind, self.agent_id)

    async def __aexit__(self, *exc: object) -> None:
        self.gate.scope.run.limits.release(self.kind)


def unique(items: list[str]) -> list[str]:
    return [item for index, item in enumerate(items) if item not in items[:index]]


def in_order(declared: list[str], returned: dict[str, Any]) -> list[str]:
    return [k for k in declared if k in returned] + [k for k in returned if k not in declared]
