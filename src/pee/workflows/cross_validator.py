"""CrossValidator: a group's validation agents check each other's outputs after its barrier.

Blocking validation holds the group (dependents wait) and, when it fails, hands the conflict
that says so to the ConflictDesk (src/pee/workflows/conflict_desk.py); non-blocking ones run
beside the plan (`pending`, awaited before the run ends). The commands it issues are exactly
those PlanWorkflow issued (tests/test_replay.py)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from pee.activities.cross_validation import (
        CrossValidationResult,
        CrossValidationTask,
        cross_validate,
    )
    from pee.engine.compiled import CompiledGroup
    from pee.engine.states import AgentStatus, GroupStatus
    from pee.workflows.agent_outcome import describe_error
    from pee.workflows.conflict_desk import ConflictDesk
    from pee.workflows.floors import MIN_ACTIVITY_TIMEOUT_S, MIN_RETRY_INTERVAL_S
    from pee.workflows.run_scope import RunScope

# validation_timeout when the plan gives none (x time_scale)
DEFAULT_CROSS_VALIDATION_TIMEOUT_S = 180.0


class CrossValidator:
    def __init__(self, scope: RunScope, desk: ConflictDesk) -> None:
        self.scope = scope
        self.desk = desk
        # non-blocking cross-validations: off the critical path, awaited before the run ends
        self.pending: list[asyncio.Task[None]] = []

    def start(self, group: CompiledGroup) -> None:
        """Non-blocking: validate beside the rest of the plan (the run awaits `pending`)."""
        self.pending.append(asyncio.create_task(self.validate(group)))

    async def validate(self, group: CompiledGroup) -> None:
        """Each validation agent that succeeded checks the other validation agents' outputs
        (pee.activities.cross_validation, one `cross_validate` activity per validator, within
        validation_timeout x time_scale). Results go to the group's report and the run's
        output_quality_scores; a failed validation raises a warning.

        Non-blocking (the default) runs beside the rest of the plan. Blocking holds the group in
        status "validating" (dependents wait) and, when a validation fails, opens a consistency
        conflict on the context key `cross_validation.<group>` (which holds the results): the
        group passes once a person resolves it (resolve_conflict update or signal; any choice
        acknowledges the findings) or conflict_timeout applies timeout_policy (fail ends the
        run). The conflict covers only that key, so resolving never rewrites agents' outputs.
        Validation activities bypass resource admission: they are light, pure checks."""
        state = self.scope.groups[group.id]
        blocking = group.cross_validation_blocking
        passed_as = state.status
        if blocking:
            state.status = GroupStatus.VALIDATING
        agents = [
            self.scope.plan.agent(a) for a in group.cross_validation if a in self.scope.agents
        ]
        outputs = {
            agent.id: {
                name: self.scope.ctx.value(f"{agent.id}.{name}")
                for name in agent.outputs
                if self.scope.ctx.has(f"{agent.id}.{name}")
            }
            for agent in agents
        }
        declared = {agent.id: list(agent.outputs) for agent in agents}
        validators = [a for a in agents if self.scope.agents[a.id].status == AgentStatus.SUCCEEDED]
        timeout = timedelta(
            seconds=max(
                MIN_ACTIVITY_TIMEOUT_S,
                (group.cross_validation_timeout_s or DEFAULT_CROSS_VALIDATION_TIMEOUT_S)
                * self.scope.scale,
            )
        )
        self.scope.event("cross_validation_started", group.id)
        tasks = [
            asyncio.create_task(
                workflow.execute_activity(
                    cross_validate,
                    CrossValidationTask(group.id, agent.id, outputs, declared),
                    task_queue=agent.task_queue,
                    activity_id=f"{agent.id}#validates#{group.id}",
                    start_to_close_timeout=timeout,
                    schedule_to_close_timeout=timeout,
                    retry_policy=RetryPolicy(
                        maximum_attempts=2, initial_interval=timedelta(seconds=MIN_RETRY_INTERVAL_S)
                    ),
                    summary=f"{agent.id} cross-validates group {group.id}",
                )
            )
            for agent in validators
        ]
        if tasks:
            await workflow.wait(tasks)
        validations: list[dict[str, Any]] = []
        for agent, task in zip(validators, tasks, strict=True):
            try:
                result: CrossValidationResult = task.result()
            except ActivityError as err:
                self.scope.alert(
                    group.id,
                    "warning",
                    f"cross-validation by '{agent.id}' did not finish: {describe_error(err)}",
                )
                validations += [
                    {
                        "validator": agent.id,
                        "validated": other.id,
                        "passed": False,
                        "score": 0.0,
                        "findings": [
                            {
                                "level": "error",
                                "code": "validation_failed",
                                "message": describe_error(err),
                            }
                        ],
                    }
                    for other in agents
                    if other.id != agent.id
                ]
                continue
            for v in result.validations:
                validations.append(
                    {
                        "validator": v.validator,
                        "validated": v.validated,
                        "passed": v.passed,
                        "score": v.score,
                        "findings": list(v.findings),
                    }
                )
        failed = [row for row in validations if not row["passed"]]
        for row in failed:
            errors = "; ".join(f["message"] for f in row["findings"] if f["level"] == "error")
            self.scope.alert(
                group.id,
                "warning",
                f"cross-validation failed: {row['validator']} checked {row['validated']}: {errors}",
            )
        scores = [float(row["score"]) for row in validations]
        state.cross_validation = {
            "validators": [a.id for a in agents],
            "blocking": blocking,
            "passed": not failed,
            "score": round(sum(scores) / len(scores), 3) if scores else 0.0,
            "validations": validations,
            "conflict": None,
        }
        self.scope.event(
            "cross_validation_passed" if not failed else "cross_validation_failed", group.id
        )
        if blocking and failed:
            await self.hold(group, failed)
        if blocking:
            state.status = passed_as
            self.scope.details()

    async def hold(self, group: CompiledGroup, failed: list[dict[str, Any]]) -> None:
        """Blocking cross-validation failed: wait for the conflict that says so to close."""
        state = self.scope.groups[group.id]
        key = f"cross_validation.{group.id}"
        self.scope.ctx.put(
            key,
            state.cross_validation,
            "cross_validation",
            self.scope.at(),
            origin="cross_validation",
        )
        pairs = ", ".join(f"{v['validator']}->{v['validated']}" for v in failed)
        conflict = self.scope.ctx.open_consistency_conflict(
            [key],
            f"cross-validation of group '{group.id}' failed ({pairs}); dependents of the "
            "group wait until it is resolved",
            self.scope.at(),
        )
        assert state.cross_validation is not None
        state.cross_validation["conflict"] = conflict.id
        await self.desk.hold(group, conflict)
