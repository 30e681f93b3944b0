"""ConflictDesk: every conflict of a plan run, from the moment one opens to its end.

- opening: a commit that conflicts, a consistency rule that no longer holds after a barrier
  (`check_consistency`), a failed blocking cross-validation (`hold`);
- blocking: an agent whose blocking inputs include a key with an open conflict does not start
  (`block`, then `until_unblocked`), and its group's deadline stands still meanwhile
  (`pause_deadline`);
- closing: a person's resolution (the `resolve_conflict` update, validated, or the signal of the
  same name: PlanWorkflow's handlers delegate to `validate_update`, `resolve_update`,
  `resolve_signal`), or conflict_timeout x time_scale after it opened, when the plan's
  timeout_policy applies (`time_out`: keep a value and warn, or fail the run);
- the end: conflicts nobody waited for stay open with a warning (`warn_open`).

`changes` counts resolutions and timeouts: blocked agents wait for it to change. The commands
it issues are exactly those PlanWorkflow issued (tests/test_replay.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pee.engine.compiled import CompiledAgent, CompiledGroup
    from pee.engine.rules import context as ctx
    from pee.engine.rules.context import Conflict, ResolutionError
    from pee.engine.rules.merge import MISSING
    from pee.engine.states import AGENT_NOT_STARTED, AgentStatus, GroupStatus
    from pee.workflows.resolution import MalformedResolution, parse_resolution, rejected_row
    from pee.workflows.run_scope import RunScope
    from pee.workflows.state import conflict_report
    from pee.workflows.types import ResolveConflict


class ConflictDesk:
    def __init__(self, scope: RunScope, timeout_policy: str) -> None:
        self.scope = scope
        # context.timeout_policy: keep_current, keep_incoming or fail
        self.timeout_policy = timeout_policy
        # bumped by every opening, resolution and timeout: blocked agents wait for it to change
        self.changes = 0

    # --- opening -----------------------------------------------------------------------

    def opened(self, conflict: Conflict, group_id: str) -> None:
        scope = self.scope
        scope.run.conflict_opened_s[conflict.id] = scope.elapsed()
        # blocked agents look again: the new conflict may cover their inputs too
        self.changes += 1
        # agents yet to start that read the key: they will wait for a resolution
        readers = [
            a.id
            for a in scope.plan.agents
            if scope.agents[a.id].status in AGENT_NOT_STARTED
            and any(key in a.inputs for key in conflict.covered_keys())
        ]
        waiting = (
            f"{', '.join(readers)} will wait until it is resolved"
            if readers
            else "no agent yet to start reads it"
        )
        scope.alert(
            group_id,
            "warning",
            f"conflict {conflict.id} on '{conflict.key}' ({conflict.kind}): "
            f"{conflict.message}; {waiting}",
        )
        scope.event("conflict_opened", conflict.id)

    def check_consistency(self, group: CompiledGroup) -> None:
        """After the group's barrier: the plan's consistency rules that involve a key its agents
        produce, once all of the rule's keys exist; a violation opens a conflict."""
        plan, context = self.scope.plan, self.scope.ctx
        produced: list[str] = []
        for agent_id in group.agents:
            agent = plan.agent(agent_id)
            produced += [f"{agent_id}.{name}" for name in agent.outputs] + list(agent.writes)
        for rule in plan.context.consistency_rules:
            # a list, as the conflict's paths and the default message have always shown it
            keys = list(rule.keys)
            if len(keys) < 2 or not any(key in produced for key in keys):
                continue
            if not all(context.has(key) for key in keys):
                continue
            hashes = [context.history(key)[-1].value_hash for key in keys]
            if all(h == hashes[0] for h in hashes):
                continue
            if any(
                c.kind == "consistency" and c.paths == keys for c in context.open_conflicts(keys)
            ):
                continue
            message = rule.message or f"{keys} must be {rule.must}"
            self.opened(context.open_consistency_conflict(keys, message, self.scope.at()), group.id)

    # --- blocking ----------------------------------------------------------------------

    def block(self, agent: CompiledAgent) -> bool:
        """Mark the agent blocked when an open conflict covers one of its blocking inputs
        (then `until_unblocked` waits for it); False when it may queue now."""
        blocking = self.scope.ctx.open_conflicts(agent.inputs)
        if not blocking:
            return False
        state = self.scope.agents[agent.id]
        state.status = AgentStatus.BLOCKED
        state.blocked_on = [c.id for c in blocking]
        state.blocked_since_s = self.scope.elapsed()
        self.scope.event("agent_blocked", agent.id)
        return True

    async def until_unblocked(self, agent: CompiledAgent) -> None:
        """Wait until no open conflict covers one of the agent's blocking inputs; at a
        conflict's timeout apply the plan's timeout_policy (fail: raise ApplicationError)."""
        scope = self.scope
        state = scope.agents[agent.id]
        while True:
            blocking = scope.ctx.open_conflicts(agent.inputs)
            if not blocking:
                self.unblock(agent.id)
                return
            ids = [c.id for c in blocking]
            if ids != state.blocked_on:
                state.blocked_on = ids
                scope.details()
            due = min(self.due_s(c) for c in blocking)
            remaining = round(due - scope.elapsed(), 3)
            if remaining > 0:
                seen = self.changes

                def changed(seen: int = seen) -> bool:
                    # reads the live counter: a resolution or timeout anywhere wakes it
                    return self.changes != seen

                try:
                    await workflow.wait_condition(
                        changed,
                        timeout=remaining,
                        timeout_summary=f"conflict timeout {', '.join(ids)}",
                    )
                    continue
                except asyncio.TimeoutError:
                    pass
            for conflict in blocking:
                if conflict.status == ctx.OPEN and self.due_s(conflict) <= due:
                    self.time_out(
                        conflict,
                        agent.group,
                        f"on '{conflict.key}'",
                        f"; '{agent.id}' cannot start without it: {conflict.message}",
                    )

    def unblock(self, agent_id: str) -> None:
        state = self.scope.agents[agent_id]
        if state.blocked_since_s is not None:
            state.blocked_s = round(
                state.blocked_s + self.scope.elapsed() - state.blocked_since_s, 3
            )
            state.blocked_since_s = None
        state.blocked_on = []

    def group_blocked(self, group: CompiledGroup) -> bool:
        # a plain loop, not any() over a generator: twice per wake-up of every group, each
        # agent's end in a wide one (bench/overhead.py)
        if not self.scope.run.context.conflicts:
            # an agent is blocked only on a conflict (`block`): none ever opened, none is
            # blocked, and a wide group's every wake-up need not walk its agents
            return False
        agents = self.scope.agents
        blocked = AgentStatus.BLOCKED
        for agent_id in group.agents:  # noqa: SIM110 (see above)
            if agents[agent_id].status == blocked:
                return True
        return False

    def pause_deadline(self, group: CompiledGroup, now_s: float) -> None:
        """Stop the group's clock while one of its agents is blocked on a conflict; when none is,
        move the deadline later by the time it stood still."""
        state = self.scope.groups[group.id]
        blocked = self.group_blocked(group)
        if blocked and state.paused_since_s is None:
            state.paused_since_s = now_s
        elif not blocked and state.paused_since_s is not None:
            pause = max(0.0, now_s - state.paused_since_s)
            state.paused_s = round(state.paused_s + pause, 3)
            if state.deadline_s is not None:
                state.deadline_s = round(state.deadline_s + pause, 3)
            state.paused_since_s = None

    async def hold(self, group: CompiledGroup, conflict: Conflict) -> None:
        """Wait for `conflict` (a failed blocking cross-validation) to close; at its timeout
        apply timeout_policy (fail: end the group failed and raise ApplicationError)."""
        self.opened(conflict, group.id)
        remaining = max(0.0, round(self.due_s(conflict) - self.scope.elapsed(), 3))
        try:
            await workflow.wait_condition(
                lambda: conflict.status != ctx.OPEN,
                timeout=remaining,
                timeout_summary=f"conflict timeout {conflict.id}",
            )
            return
        except asyncio.TimeoutError:
            pass
        try:
            self.time_out(conflict, group.id, f"(cross-validation of group '{group.id}')")
        except ApplicationError:
            self.scope.end_group(group, GroupStatus.FAILED)
            raise

    # --- closing -----------------------------------------------------------------------

    def due_s(self, conflict: Conflict) -> float:
        run = self.scope.run
        return round(run.conflict_opened_s.get(conflict.id, 0.0) + run.conflict_timeout_s, 3)

    def time_out(
        self, conflict: Conflict, group_id: str, subject: str, consequence: str = ""
    ) -> None:
        """The plan's timeout_policy for a conflict nobody resolved in time: keep a value and
        warn, or (fail) raise. ``subject`` names the conflict in messages, ``consequence`` says
        what cannot go on without it."""
        scope = self.scope
        policy = self.timeout_policy
        scope.ctx.time_out(conflict.id, policy, scope.at())
        self.changes += 1
        scope.event("conflict_timed_out", conflict.id)
        waited = f"{scope.run.conflict_timeout_s:g} s"
        if policy == "fail":
            raise ApplicationError(
                f"conflict {conflict.id} {subject} was not resolved within {waited} "
                f"(timeout_policy: fail){consequence}",
                type="ConflictTimeout",
                non_retryable=True,
            )
        scope.alert(
            group_id,
            "warning",
            f"conflict {conflict.id} {subject} not resolved within {waited}: {policy} applied",
        )

    def resolve(self, request: ResolveConflict) -> Conflict:
        """Apply a resolution (raises ResolutionError, changing nothing, when it is invalid)."""
        value = (
            request.value if request.choice == "value" and request.value is not None else MISSING
        )
        conflict = self.scope.ctx.resolve(
            request.conflict_id,
            request.choice,
            request.by or "user",
            self.scope.at(),
            value=value,
            expected_version=request.expected_version,
        )
        self.changes += 1
        self.scope.event("conflict_resolved", conflict.id)
        return conflict

    def warn_open(self) -> None:
        for conflict in self.scope.ctx.open_conflicts():
            self.scope.alert(
                "",
                "warning",
                f"run ended with conflict {conflict.id} on '{conflict.key}' unresolved: "
                "nobody was waiting for it; the current value stands",
            )

    # --- what PlanWorkflow's query, update and signal do ---------------------------------

    def report_rows(self) -> list[dict[str, Any]]:
        """Every conflict, open and closed (pee.workflows.state.conflict_report)."""
        return [conflict_report(self.scope.run, c) for c in self.scope.ctx.conflicts]

    def validate_update(self, payloads: tuple[Any, ...]) -> None:
        """The update's validator: changes nothing (a refusal leaves no trace in history)."""
        try:
            request = parse_resolution(payloads)
        except MalformedResolution:
            # let the handler refuse it: a validator may change nothing, and a malformed
            # payload (a hand-typed command) belongs in the report's rejected_resolutions
            return
        try:
            self.scope.ctx.validate_resolution(
                request.conflict_id,
                request.choice,
                request.expected_version,
                request.value is not None,
            )
        except ResolutionError as err:
            # resending the same resolution cannot help: say so (the CLI prints retryable)
            raise ApplicationError(str(err), type="InvalidResolution", non_retryable=True) from None

    def resolve_update(self, payloads: tuple[Any, ...]) -> dict[str, Any]:
        """A malformed update is recorded and refused, never retried."""
        try:
            request = parse_resolution(payloads)
        except MalformedResolution as err:
            reason = f"malformed resolve_conflict update: {err}"
            self.reject(payloads, reason)
            raise ApplicationError(reason, type="MalformedResolution", non_retryable=True) from None
        try:
            conflict = self.resolve(request)
        except ResolutionError as err:
            # another update resolved it between this one's validation and now
            raise ApplicationError(str(err), type="InvalidResolution", non_retryable=True) from None
        return conflict_report(self.scope.run, conflict)

    def resolve_signal(self, payloads: tuple[Any, ...]) -> None:
        """Fire-and-forget: an invalid or malformed resolution is logged and reported, never
        fatal, never dropped."""
        try:
            request = parse_resolution(payloads)
        except MalformedResolution as err:
            self.reject(payloads, f"malformed resolve_conflict signal: {err}")
            return
        try:
            self.resolve(request)
        except ResolutionError as err:
            workflow.logger.warning("resolve_conflict signal rejected: %s", err)
            self.scope.run.rejected_resolutions.append(
                {
                    "at": self.scope.at(),
                    "conflict_id": request.conflict_id,
                    "choice": request.choice,
                    "by": request.by,
                    "reason": str(err),
                }
            )
            self.scope.details()

    def reject(self, payloads: tuple[Any, ...], reason: str) -> None:
        workflow.logger.warning("%s", reason)
        self.scope.run.rejected_resolutions.append(rejected_row(payloads, self.scope.at(), reason))
        self.scope.details()
