"""PlanWorkflow: runs a CompiledPlan's groups eagerly on their DAG, each agent as one activity.

A group starts the moment every group it depends on has passed its barrier, never level by level.
A parallel group starts all its agents together; a sequential one runs them in list order. The
barrier (engine.barrier.decide) judges the group each time an agent finishes and at the deadline.

Determinism: lists and insertion-ordered dicts only (no set iteration), workflow.now() for time,
workflow.wait with float timeouts, ApplicationError for every failure the run should end with.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    RetryState,
    TimeoutError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    from activities.agents import run_agent
    from activities.types import AgentTask
    from engine import barrier
    from engine.compiled import CompiledAgent, CompiledGroup, RetrySpec
    from workflows.types import PlanRunInput

# Floors on scaled durations: a plan scaled to seconds must still leave the worker time to
# pick an activity up, and heartbeats are sent in real time whatever the scale.
MIN_ACTIVITY_TIMEOUT_S = 1.0
MIN_RETRY_INTERVAL_S = 0.1
MIN_HEARTBEAT_TIMEOUT_S = 1.0

# group states that let dependants start
PASSED = ("succeeded", "partial")


@dataclass
class AgentState:
    status: str = "pending"  # pending running succeeded failed defaulted cancelled
    started_s: float | None = None
    ended_s: float | None = None
    attempts: int | None = None
    outputs: list[str] = field(default_factory=list)
    defaulted_outputs: list[str] = field(default_factory=list)
    missing_inputs: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class GroupState:
    status: str = "pending"  # pending running succeeded partial failed cancelled
    started_s: float | None = None
    ended_s: float | None = None
    deadline_s: float | None = None
    decision: str | None = None
    reason: str | None = None


@workflow.defn
class PlanWorkflow:
    @workflow.init
    def __init__(self, input: PlanRunInput) -> None:
        self._input = input
        self._plan = input.plan
        self._scale = float(input.time_scale)
        self._started = workflow.now()
        self._ended_s: float | None = None
        self._state = "running"
        self._error: str | None = None
        # "agent.output" -> value, plus plan inputs and shared keys by their own names
        self._context: dict[str, Any] = {**self._plan.inputs, **input.inputs}
        self._agents = {agent.id: AgentState() for agent in self._plan.agents}
        self._groups = {group.id: GroupState() for group in self._plan.groups}
        self._events: list[dict[str, Any]] = []

    @workflow.run
    async def run(self, input: PlanRunInput) -> dict[str, Any]:
        waiting = list(self._plan.groups)
        running: dict[str, asyncio.Task[None]] = {}
        try:
            self._check_plan()
            while waiting or running:
                for group in list(waiting):
                    if all(self._groups[dep].status in PASSED for dep in group.depends_on):
                        waiting.remove(group)
                        running[group.id] = asyncio.create_task(self._run_group(group))
                if not running:
                    stuck = [group.id for group in waiting]
                    raise ApplicationError(
                        f"groups {stuck} can never start: their dependencies never pass",
                        type="PlanDeadlock",
                        non_retryable=True,
                    )
                await workflow.wait(list(running.values()), return_when=asyncio.FIRST_COMPLETED)
                for group_id in list(running):
                    if running[group_id].done():
                        # re-raises a failed group's ApplicationError
                        running.pop(group_id).result()
        except (Exception, asyncio.CancelledError) as err:
            await self._cancel(list(running.values()))
            for group in waiting:
                self._groups[group.id].status = "cancelled"
                for agent_id in group.agents:
                    self._agents[agent_id].status = "cancelled"
            cancelled = is_cancelled_exception(err)
            self._finish("cancelled" if cancelled else "failed", str(err))
            if isinstance(err, ApplicationError):
                # the report travels with the failure so the starter can still print it
                raise ApplicationError(
                    err.message, self._report(), type=err.type, non_retryable=True
                ) from None
            raise
        self._finish("succeeded")
        return self._report()

    @workflow.query
    def status(self) -> dict[str, Any]:
        return self._report()

    @workflow.query
    def context(self) -> dict[str, Any]:
        """The current context: "agent.output" keys, plan inputs and shared keys."""
        return dict(self._context)

    # --- groups -------------------------------------------------------------------------

    async def _run_group(self, group: CompiledGroup) -> None:
        state = self._groups[group.id]
        state.status = "running"
        state.started_s = self._elapsed()
        timeout = self._group_timeout(group)
        state.deadline_s = None if timeout is None else state.started_s + timeout
        self._event("group_started", group.id)
        tasks: dict[str, asyncio.Task[None]] = {}
        deadline_reached = False
        try:
            while True:
                if not deadline_reached:
                    self._start_agents(group, tasks)
                decision = barrier.decide(self._barrier_view(group, deadline_reached))
                if decision.action != barrier.WAIT:
                    break
                remaining = None if state.deadline_s is None else state.deadline_s - self._elapsed()
                if remaining is not None and remaining <= 0:
                    deadline_reached = True
                    continue
                live = [task for task in tasks.values() if not task.done()]
                done, _ = await workflow.wait(
                    live, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    deadline_reached = True
            await self._apply(group, decision, tasks)
        except asyncio.CancelledError:
            # another group failed or the run was cancelled: take our agents down with us
            await self._cancel(list(tasks.values()))
            for agent_id in group.agents:
                if self._agents[agent_id].status == "pending":
                    self._agents[agent_id].status = "cancelled"
            self._end_group(group, "cancelled")
            raise

    def _start_agents(self, group: CompiledGroup, tasks: dict[str, asyncio.Task[None]]) -> None:
        if group.parallel:
            todo = [agent_id for agent_id in group.agents if agent_id not in tasks]
        else:
            # one at a time, in list order: the next starts when the previous has finished
            if any(not task.done() for task in tasks.values()):
                return
            todo = [agent_id for agent_id in group.agents if agent_id not in tasks][:1]
        for agent_id in todo:
            agent = self._plan.agent(agent_id)
            tasks[agent_id] = asyncio.create_task(self._run_agent(agent, group))

    def _barrier_view(self, group: CompiledGroup, deadline_reached: bool) -> barrier.BarrierView:
        mapping = {
            "succeeded": barrier.SUCCEEDED,
            "running": barrier.RUNNING,
            "pending": barrier.PENDING,
        }
        states = {a: mapping.get(self._agents[a].status, barrier.FAILED) for a in group.agents}
        return barrier.BarrierView(
            group=group.id,
            agents=list(group.agents),
            states=states,
            deadline_reached=deadline_reached,
            criteria=group.success_criteria.kind,
            count=group.success_criteria.count,
        )

    async def _apply(
        self,
        group: CompiledGroup,
        decision: barrier.BarrierDecision,
        tasks: dict[str, asyncio.Task[None]],
    ) -> None:
        state = self._groups[group.id]
        state.decision = decision.action
        state.reason = decision.reason
        await self._cancel([tasks[a] for a in decision.cancel if a in tasks])
        for agent_id in decision.cancel:
            # started agents recorded their own cancellation; these never started
            if self._agents[agent_id].status == "pending":
                self._agents[agent_id].status = "cancelled"
                self._event("agent_cancelled", agent_id)
        if decision.action == barrier.FAIL:
            self._end_group(group, "failed")
            raise ApplicationError(
                f"group '{group.id}' failed: {decision.reason}; "
                f"agents: {self._describe_agents(group)}",
                type="GroupFailed",
                non_retryable=True,
            )
        for agent_id in decision.fill_defaults:
            self._fill_defaults(self._plan.agent(agent_id))
        self._end_group(group, "succeeded" if decision.action == barrier.PROCEED else "partial")

    def _end_group(self, group: CompiledGroup, status: str) -> None:
        state = self._groups[group.id]
        state.status = status
        state.ended_s = self._elapsed()
        self._event(f"group_{status}", group.id)

    def _group_timeout(self, group: CompiledGroup) -> float | None:
        raw = group.timeout_s
        if raw is None:
            raw = self._plan.barrier.get("timeout_s", self._plan.barrier.get("default_timeout_s"))
        return None if raw is None else max(0.0, float(raw) * self._scale)

    # --- agents -------------------------------------------------------------------------

    async def _run_agent(self, agent: CompiledAgent, group: CompiledGroup) -> None:
        state = self._agents[agent.id]
        inputs, missing = self._snapshot(agent)
        state.status = "running"
        state.started_s = self._elapsed()
        state.missing_inputs = missing
        self._event("agent_started", agent.id)
        info = workflow.info()
        task = AgentTask(
            agent=agent,
            inputs=inputs,
            missing_inputs=missing,
            group=group.id,
            run_id=info.run_id,
            workflow_id=info.workflow_id,
            time_scale=self._scale,
        )
        timeout = timedelta(
            seconds=max(
                MIN_ACTIVITY_TIMEOUT_S,
                (agent.timeout_s or self._plan.default_agent_timeout_s) * self._scale,
            )
        )
        try:
            result = await workflow.execute_activity(
                run_agent,
                task,
                task_queue=agent.task_queue,
                activity_id=agent.id,
                # the timeout bounds the whole execution, retries included
                schedule_to_close_timeout=timeout,
                start_to_close_timeout=timeout,
                heartbeat_timeout=timedelta(seconds=self._heartbeat_timeout_s()),
                retry_policy=self._retry_policy(agent.retry),
                summary=f"agent {agent.id} ({agent.role}) in group {group.id}",
            )
        except asyncio.CancelledError:
            self._end_agent(agent.id, "cancelled")
            raise
        except ActivityError as err:
            if is_cancelled_exception(err):
                self._end_agent(agent.id, "cancelled")
                return
            state.error = describe_error(err)
            state.attempts = failed_attempts(err, agent.retry)
            self._end_agent(agent.id, "failed")
            return
        state.attempts = result.attempt
        for name, value in result.outputs.items():
            self._context[f"{agent.id}.{name}"] = value
            state.outputs.append(name)
        for key, value in result.writes.items():
            self._context[key] = value
        self._end_agent(agent.id, "succeeded")

    def _end_agent(self, agent_id: str, status: str) -> None:
        state = self._agents[agent_id]
        state.status = status
        state.ended_s = self._elapsed()
        self._event(f"agent_{status}", agent_id)

    def _snapshot(self, agent: CompiledAgent) -> tuple[dict[str, Any], list[str]]:
        # the agent sees what exists now; later writes never change its view
        inputs: dict[str, Any] = {}
        missing: list[str] = []
        for name in agent.inputs:
            if name in self._context:
                inputs[name] = self._context[name]
            else:
                missing.append(name)
        for name in agent.optional_inputs:
            if name in self._context:
                inputs[name] = self._context[name]
        return inputs, missing

    def _fill_defaults(self, agent: CompiledAgent) -> None:
        state = self._agents[agent.id]
        for name in agent.outputs:
            key = f"{agent.id}.{name}"
            if key not in self._context and name in agent.defaults:
                self._context[key] = agent.defaults[name]
                state.defaulted_outputs.append(name)
        if state.status == "cancelled":
            state.status = "defaulted"
            self._event("agent_defaulted", agent.id)

    def _heartbeat_timeout_s(self) -> float:
        if self._input.heartbeat_timeout_s is not None:
            return max(MIN_HEARTBEAT_TIMEOUT_S, self._input.heartbeat_timeout_s)
        # 10 s at real time, down to 2 s when scaled: cancellation reaches an agent only
        # through a heartbeat, and the SDK sends them at most every 0.8 x this timeout
        return max(2.0, min(10.0, 10.0 * self._scale))

    def _retry_policy(self, spec: RetrySpec) -> RetryPolicy:
        initial = max(MIN_RETRY_INTERVAL_S, spec.initial_interval_s * self._scale)
        maximum = None
        if spec.maximum_interval_s is not None:
            maximum = timedelta(seconds=max(initial, spec.maximum_interval_s * self._scale))
        return RetryPolicy(
            initial_interval=timedelta(seconds=initial),
            backoff_coefficient=max(1.0, spec.backoff_coefficient),
            maximum_interval=maximum,
            maximum_attempts=max(0, spec.max_attempts),
            non_retryable_error_types=list(spec.non_retryable),
        )

    # --- bookkeeping --------------------------------------------------------------------

    def _check_plan(self) -> None:
        problems = []
        for group in self._plan.groups:
            problems += [f"group '{group.id}' depends on unknown group '{d}'"
                         for d in group.depends_on if d not in self._groups]
            problems += [f"group '{group.id}' lists unknown agent '{a}'"
                         for a in group.agents if a not in self._agents]
        if problems:
            raise ApplicationError(
                "invalid compiled plan: " + "; ".join(problems),
                type="InvalidCompiledPlan",
                non_retryable=True,
            )

    async def _cancel(self, tasks: list[asyncio.Task[None]]) -> None:
        live = [task for task in tasks if not task.done()]
        for task in live:
            task.cancel()
        if live:
            await workflow.wait(live)

    def _elapsed(self) -> float:
        return round((workflow.now() - self._started).total_seconds(), 3)

    def _event(self, event: str, ident: str) -> None:
        self._events.append(
            {"seq": len(self._events) + 1, "at_s": self._elapsed(), "event": event, "id": ident}
        )

    def _finish(self, state: str, error: str | None = None) -> None:
        self._state = state
        self._error = error
        self._ended_s = self._elapsed()

    def _describe_agents(self, group: CompiledGroup) -> str:
        parts = []
        for agent_id in group.agents:
            state = self._agents[agent_id]
            text = f"{agent_id} {state.status}"
            if state.error:
                text += f" ({state.error})"
            parts.append(text)
        return ", ".join(parts)

    def _report(self) -> dict[str, Any]:
        info = workflow.info()
        return {
            "plan": self._plan.name,
            "workflow_id": info.workflow_id,
            "run_id": info.run_id,
            "status": self._state,
            "error": self._error,
            "time_scale": self._scale,
            "started_at": self._started.isoformat(),
            "makespan_s": self._ended_s if self._ended_s is not None else self._elapsed(),
            "estimated_makespan_s": round(self._plan.estimated_makespan_s * self._scale, 3),
            "sequential_s": round(self._plan.sequential_s * self._scale, 3),
            "agents": [
                {
                    "id": agent.id,
                    "group": agent.group,
                    "role": agent.role,
                    "kind": agent.kind,
                    "status": self._agents[agent.id].status,
                    "started_s": self._agents[agent.id].started_s,
                    "ended_s": self._agents[agent.id].ended_s,
                    "attempts": self._agents[agent.id].attempts,
                    "outputs": list(self._agents[agent.id].outputs),
                    "defaulted_outputs": list(self._agents[agent.id].defaulted_outputs),
                    "missing_inputs": list(self._agents[agent.id].missing_inputs),
                    "error": self._agents[agent.id].error,
                }
                for agent in self._plan.agents
            ],
            "groups": [
                {
                    "id": group.id,
                    "agents": list(group.agents),
                    "depends_on": list(group.depends_on),
                    "parallel": group.parallel,
                    "status": self._groups[group.id].status,
                    "started_s": self._groups[group.id].started_s,
                    "ended_s": self._groups[group.id].ended_s,
                    "deadline_s": self._groups[group.id].deadline_s,
                    "decision": self._groups[group.id].decision,
                    "reason": self._groups[group.id].reason,
                }
                for group in self._plan.groups
            ],
            "events": list(self._events),
        }


def describe_error(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return f"{cause.type or 'Error'}: {cause.message}"
    if isinstance(cause, TimeoutError):
        return f"timed out ({cause.type.name if cause.type else 'timeout'})"
    return str(cause or err)


def failed_attempts(err: ActivityError, retry: RetrySpec) -> int | None:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.details:
        first = cause.details[0]
        if isinstance(first, dict) and isinstance(first.get("attempt"), int):
            return first["attempt"]
    if err.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED:
        return retry.max_attempts
    return None
