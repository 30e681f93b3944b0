"""The run's versioned context, a part of PlanWorkflow: snapshots agents take, commits of
their results, conflicts (opened, resolved, timed out), consistency rules, context store slots
and declared defaults.

`ContextConflicts` is mixed into PlanWorkflow (src/pee/workflows/plan_workflow.py) and works on its
state: ``_plan``, ``_run``, ``_agents``, ``_ctx``, ``_timeout_policy``, ``_conflict_changes``
and its recorders (``_event``, ``_alert``, ``_details``, ``_at``, ``_elapsed``). It lives apart
so each module keeps one job; the commands it issues are exactly those it issued inside
PlanWorkflow (tests/test_replay.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pee.activities.types import AgentResult
    from pee.engine.compiled import CompiledAgent, CompiledGroup
    from pee.engine.rules import context as ctx
    from pee.engine.rules.context import Conflict
    from pee.engine.rules.merge import MISSING
    from pee.workflows.locks import ContextLockTimeout
    from pee.workflows.state import NOT_STARTED
    from pee.workflows.types import ResolveConflict

# commit outcomes that wrote nothing new but are fine
QUIET_OUTCOMES = (ctx.CREATED, ctx.FAST_FORWARD, ctx.UNCHANGED)


class ContextConflicts:
    def _snapshot(self, agent: CompiledAgent) -> tuple[dict[str, Any], list[str], dict[str, int]]:
        """What the agent sees for its whole run: values of its inputs and optional inputs that
        exist now, the blocking ones that do not, and the version vector over those keys and its
        shared writes (the base versions of its writes)."""
        keys = unique([*agent.inputs, *agent.optional_inputs, *agent.writes])
        seen = self._ctx.snapshot(keys)
        readable = unique([*agent.inputs, *agent.optional_inputs])
        inputs = {key: seen.values[key] for key in readable if key in seen.values}
        missing = [key for key in agent.inputs if key not in seen.values]
        return inputs, missing, seen.versions

    def _commit(self, agent: CompiledAgent, result: AgentResult) -> None:
        state = self._agents[agent.id]
        at = self._at()
        # in declared order (the payload converter sorts mapping keys), then anything undeclared
        for name in in_order(agent.outputs, result.outputs):
            key = f"{agent.id}.{name}"
            # its own key: nobody else writes it, a re-run simply moves it forward
            outcome = self._ctx.commit(
                agent.id,
                key,
                result.outputs[name],
                self._ctx.current_version(key),
                at,
                own_key=True,
            )
            self._committed(agent, outcome)
            if name not in state.outputs:
                state.outputs.append(name)
        for key in in_order(agent.writes, result.writes):
            # derived from what the agent saw at its start: a stale base is merged or conflicts
            base = state.snapshot.get(key, self._ctx.current_version(key))
            self._committed(agent, self._ctx.commit(agent.id, key, result.writes[key], base, at))

    def _committed(self, agent: CompiledAgent, outcome: ctx.CommitOutcome) -> None:
        self._agents[agent.id].commits[outcome.key] = outcome.outcome
        if outcome.outcome in QUIET_OUTCOMES:
            return
        if outcome.outcome == ctx.MERGED:
            self._event("context_merged", outcome.key)
        elif outcome.outcome == ctx.REJECTED:
            owner = self._ctx.owner_of(outcome.key)
            self._run.rejected_writes.append(
                {
                    "at": self._at(),
                    "agent": agent.id,
                    "key": outcome.key,
                    "owner": owner,
                    "message": outcome.message,
                }
            )
            self._event("write_rejected", outcome.key)
            # the agent's value is dropped: its readers get the owner's value instead
            self._alert(agent.group, "critical", f"write rejected: {outcome.message}")
        elif outcome.conflict is not None:
            self._opened(outcome.conflict, agent.group)

    def _opened(self, conflict: Conflict, group_id: str) -> None:
        self._run.conflict_opened_s[conflict.id] = self._elapsed()
        # blocked agents look again: the new conflict may cover their inputs too
        self._conflict_changes += 1
        # agents yet to start that read the key: they will wait for a resolution
        readers = [
            a.id
            for a in self._plan.agents
            if self._agents[a.id].status in NOT_STARTED
            and any(key in a.inputs for key in conflict.covered_keys())
        ]
        waiting = (
            f"{', '.join(readers)} will wait until it is resolved"
            if readers
            else "no agent yet to start reads it"
        )
        self._alert(
            group_id,
            "warning",
            f"conflict {conflict.id} on '{conflict.key}' ({conflict.kind}): "
            f"{conflict.message}; {waiting}",
        )
        self._event("conflict_opened", conflict.id)

    def _check_consistency(self, group: CompiledGroup) -> None:
        """After the group's barrier: the plan's consistency rules that involve a key its agents
        produce, once all of the rule's keys exist; a violation opens a conflict."""
        produced: list[str] = []
        for agent_id in group.agents:
            agent = self._plan.agent(agent_id)
            produced += [f"{agent_id}.{name}" for name in agent.outputs] + list(agent.writes)
        for rule in (self._plan.context or {}).get("consistency_rules") or []:
            keys = list(rule.get("keys") or [])
            if len(keys) < 2 or not any(key in produced for key in keys):
                continue
            if not all(self._ctx.has(key) for key in keys):
                continue
            hashes = [self._ctx.history(key)[-1].value_hash for key in keys]
            if all(h == hashes[0] for h in hashes):
                continue
            if any(
                c.kind == "consistency" and c.paths == keys for c in self._ctx.open_conflicts(keys)
            ):
                continue
            message = rule.get("message") or f"{keys} must be {rule.get('must', 'equal')}"
            self._opened(self._ctx.open_consistency_conflict(keys, message, self._at()), group.id)

    def _resolve(self, request: ResolveConflict) -> Conflict:
        """Apply a resolution (raises ResolutionError, changing nothing, when it is invalid)."""
        value = (
            request.value if request.choice == "value" and request.value is not None else MISSING
        )
        conflict = self._ctx.resolve(
            request.conflict_id,
            request.choice,
            request.by or "user",
            self._at(),
            value=value,
            expected_version=request.expected_version,
        )
        self._conflict_changes += 1
        self._event("conflict_resolved", conflict.id)
        return conflict

    def _conflict_due_s(self, conflict: Conflict) -> float:
        return round(
            self._run.conflict_opened_s.get(conflict.id, 0.0) + self._run.conflict_timeout_s, 3
        )

    async def _until_unblocked(self, agent: CompiledAgent) -> None:
        """Wait until no open conflict covers one of the agent's blocking inputs; at a
        conflict's timeout apply the plan's timeout_policy (fail: raise ApplicationError)."""
        state = self._agents[agent.id]
        while True:
            blocking = self._ctx.open_conflicts(agent.inputs)
            if not blocking:
                self._unblock(agent.id)
                return
            ids = [c.id for c in blocking]
            if ids != state.blocked_on:
                state.blocked_on = ids
                self._details()
            due = min(self._conflict_due_s(c) for c in blocking)
            remaining = round(due - self._elapsed(), 3)
            if remaining > 0:
                seen = self._conflict_changes
                try:
                    await workflow.wait_condition(
                        lambda seen=seen: self._conflict_changes != seen,
                        timeout=remaining,
                        timeout_summary=f"conflict timeout {', '.join(ids)}",
                    )
                    continue
                except asyncio.TimeoutError:
                    pass
            for conflict in blocking:
                if conflict.status == ctx.OPEN and self._conflict_due_s(conflict) <= due:
                    self._time_out(
                        conflict,
                        agent.group,
                        f"on '{conflict.key}'",
                        f"; '{agent.id}' cannot start without it: {conflict.message}",
                    )

    def _time_out(
        self, conflict: Conflict, group_id: str, subject: str, consequence: str = ""
    ) -> None:
        """The plan's timeout_policy for a conflict nobody resolved in time: keep a value and
        warn, or (fail) raise. ``subject`` names the conflict in messages, ``consequence`` says
        what cannot go on without it."""
        policy = self._timeout_policy
        self._ctx.time_out(conflict.id, policy, self._at())
        self._conflict_changes += 1
        self._event("conflict_timed_out", conflict.id)
        waited = f"{self._run.conflict_timeout_s:g} s"
        if policy == "fail":
            raise ApplicationError(
                f"conflict {conflict.id} {subject} was not resolved within {waited} "
                f"(timeout_policy: fail){consequence}",
                type="ConflictTimeout",
                non_retryable=True,
            )
        self._alert(
            group_id,
            "warning",
            f"conflict {conflict.id} {subject} not resolved within {waited}: {policy} applied",
        )

    def _unblock(self, agent_id: str) -> None:
        state = self._agents[agent_id]
        if state.blocked_since_s is not None:
            state.blocked_s = round(state.blocked_s + self._elapsed() - state.blocked_since_s, 3)
            state.blocked_since_s = None
        state.blocked_on = []

    @asynccontextmanager
    async def _context_slot(self, kind: str, agent_id: str) -> AsyncIterator[None]:
        """Hold a context reader or writer slot (src/pee/workflows/locks.py); waiting for one is
        bounded by lock_timeout and measured for the report."""
        limits = self._run.limits
        if not limits.free(kind):
            began = self._elapsed()
            try:
                await workflow.wait_condition(
                    lambda: limits.free(kind),
                    timeout=limits.lock_timeout_s,
                    timeout_summary=f"context {kind} slot",
                )
            except asyncio.TimeoutError:
                limits.waited(agent_id, self._elapsed() - began)
                raise ContextLockTimeout(
                    f"no context {kind} slot came free within {limits.lock_timeout_s:g} s "
                    f"(resource_pool.context_store)"
                ) from None
            limits.waited(agent_id, self._elapsed() - began)
        limits.take(kind)
        try:
            yield
        finally:
            limits.release(kind)

    def _warn_open_conflicts(self) -> None:
        for conflict in self._ctx.open_conflicts():
            self._alert(
                "",
                "warning",
                f"run ended with conflict {conflict.id} on '{conflict.key}' unresolved: "
                "nobody was waiting for it; the current value stands",
            )

    def _fill_defaults(self, agent: CompiledAgent) -> None:
        state = self._agents[agent.id]
        for name in agent.outputs:
            key = f"{agent.id}.{name}"
            if not self._ctx.has(key) and name in agent.defaults:
                self._ctx.put(key, agent.defaults[name], agent.id, self._at(), origin="default")
                state.defaulted_outputs.append(name)


def unique(items: list[str]) -> list[str]:
    return [item for index, item in enumerate(items) if item not in items[:index]]


def in_order(declared: list[str], returned: dict[str, Any]) -> list[str]:
    return [k for k in declared if k in returned] + [k for k in returned if k not in declared]
