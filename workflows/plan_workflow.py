"""PlanWorkflow: runs a CompiledPlan's groups eagerly on their DAG, each agent as one activity.

A group starts the moment every group it depends on has passed its barrier, never level by level.
A parallel group starts all its agents together; a sequential one runs them in list order. The
smart barrier (engine.barrier) judges the group when it starts, whenever an agent finishes and at
the deadline; the workflow carries out what it decides: wait, extend the deadline, cancel and fill
defaults, or cancel and re-run the group's unfinished agents one at a time.

"Making progress" means the workflow received an `agent_progress` signal recently: heartbeats are
throttled by the SDK and invisible to workflow code, so agents report progress by signal too.

Determinism: lists and insertion-ordered dicts only (no set iteration), workflow.now() for time,
workflow.wait with float timeouts, ApplicationError for every failure the run should end with.
"""

from __future__ import annotations

import asyncio
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
    from activities.types import AgentProgress, AgentTask
    from engine import barrier
    from engine.compiled import CompiledAgent, CompiledGroup, RetrySpec
    from workflows.state import (
        AgentState,
        Alert,
        Decision,
        GroupState,
        RunState,
        build_report,
        current_details,
    )
    from workflows.types import PlanRunInput

# Floors on scaled durations: a plan scaled to seconds must still leave the worker time to
# pick an activity up, and heartbeats are sent in real time whatever the scale.
MIN_ACTIVITY_TIMEOUT_S = 1.0
MIN_RETRY_INTERVAL_S = 0.1
MIN_HEARTBEAT_TIMEOUT_S = 1.0
# progress signals: every signal is a history event, so not more often than this (real seconds)
MIN_PROGRESS_INTERVAL_S = 0.5
MAX_PROGRESS_INTERVAL_S = 10.0
DEFAULT_PROGRESS_WINDOW_S = 30.0

# group states that let dependants start
PASSED = ("succeeded", "partial")


@workflow.defn
class PlanWorkflow:
    @workflow.init
    def __init__(self, input: PlanRunInput) -> None:
        self._input = input
        self._plan = input.plan
        self._scale = float(input.time_scale)
        # "agent.output" -> value, plus plan inputs and shared keys by their own names
        self._context: dict[str, Any] = {**self._plan.inputs, **input.inputs}
        self._run = RunState(
            plan=self._plan,
            started=workflow.now(),
            time_scale=self._scale,
            agents={agent.id: AgentState() for agent in self._plan.agents},
            groups={group.id: GroupState() for group in self._plan.groups},
        )
        self._agents = self._run.agents
        self._groups = self._run.groups

    @workflow.run
    async def run(self, input: PlanRunInput) -> dict[str, Any]:
        waiting = list(self._plan.groups)
        running: dict[str, asyncio.Task[None]] = {}
        self._details()
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
            message = err.message if isinstance(err, ApplicationError) else str(err)
            self._finish("cancelled" if cancelled else "failed", message)
            if isinstance(err, ApplicationError):
                # the report travels with the failure so the starter can still print it
                raise ApplicationError(
                    err.message, self._report(), type=err.type, non_retryable=True
                ) from None
            raise
        self._finish("completed")
        return self._report()

    # --- queries and signals --------------------------------------------------------------

    @workflow.query
    def status(self) -> dict[str, Any]:
        """The run report so far (the same shape as the workflow result)."""
        return self._report()

    @workflow.query
    def plan(self) -> dict[str, Any]:
        return self._plan.to_dict()

    @workflow.query
    def context(self) -> dict[str, Any]:
        """The current context: "agent.output" keys, plan inputs and shared keys."""
        return dict(self._context)

    @workflow.signal(name="agent_progress")
    def agent_progress(self, progress: AgentProgress) -> None:
        """A working agent says it is alive; the barrier's extension rule reads the time."""
        state = self._agents.get(progress.agent_id)
        if state is None or state.status != "running":
            # late signal from a finished or cancelled run: nothing to record
            return
        state.last_progress_s = self._elapsed()
        if progress.fraction is not None:
            state.progress = max(0.0, min(1.0, float(progress.fraction)))
        state.attempts = max(state.attempts, state.earlier_attempts + int(progress.attempt))

    # --- groups -------------------------------------------------------------------------

    async def _run_group(self, group: CompiledGroup) -> None:
        state = self._groups[group.id]
        state.status = "running"
        state.started_s = self._elapsed()
        timeout = self._group_timeout(group)
        state.deadline_s = None if timeout is None else round(state.started_s + timeout, 3)
        self._event("group_started", group.id)
        tasks: dict[str, asyncio.Task[None]] = {}
        try:
            deadline_passed = False
            while True:
                now = self._elapsed()
                if deadline_passed and state.deadline_s is not None:
                    # the timer fired: the deadline has passed whatever the clock rounding says
                    now = max(now, state.deadline_s)
                if state.deadline_s is None or now < state.deadline_s:
                    self._start_agents(group, tasks)
                decision = barrier.decide(self._barrier_view(group, now))
                if decision.action == barrier.WAIT:
                    live = [task for task in tasks.values() if not task.done()]
                    if not live:
                        raise ApplicationError(
                            f"group '{group.id}': barrier waits but no agent is running",
                            type="InternalError",
                            non_retryable=True,
                        )
                    remaining = None
                    if state.deadline_s is not None:
                        remaining = max(0.0, state.deadline_s - now)
                    done, _ = await workflow.wait(
                        live, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                    )
                    deadline_passed = not done
                    continue
                self._record(group, decision)
                if decision.action != barrier.EXTEND_TIMEOUT:
                    break
                state.extensions += 1
                state.deadline_s = decision.new_deadline_s
                deadline_passed = False
            await self._apply(group, decision, tasks)
        except asyncio.CancelledError:
            # another group failed or the run was cancelled: take our agents down with us
            await self._cancel(list(tasks.values()))
            for agent_id in group.agents:
                if self._agents[agent_id].status in ("pending", "running"):
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
            tasks[agent_id] = self._launch(self._plan.agent(agent_id), group, fallback=False)

    def _barrier_view(self, group: CompiledGroup, now_s: float) -> barrier.BarrierView:
        state = self._groups[group.id]
        return barrier.BarrierView(
            group=group.id,
            agents=list(group.agents),
            states={a: self._agents[a].barrier_view() for a in group.agents},
            now_s=now_s,
            deadline_s=state.deadline_s,
            extensions_used=state.extensions,
            max_extensions=group.max_extensions,
            extension_s=group.extension_s * self._scale,
            progress_window_s=self._progress_window_s(),
            criteria=group.success_criteria.kind,
            count=group.success_criteria.count,
            quality_impact=group.quality_impact,
            partial_failure_handling=group.partial_failure_handling,
        )

    def _record(self, group: CompiledGroup, decision: barrier.BarrierDecision) -> None:
        state = self._groups[group.id]
        if decision.action in (barrier.FALLBACK_SUCCEEDED, barrier.CONTINUE_WITH_DEFAULTS,
                               barrier.FAIL):
            # the outcome of a fallback: the group's decision stays abort_and_fallback
            state.reason = f"{state.reason}; then {decision.reason}"
        else:
            state.decision = decision.action
            state.reason = decision.reason
        if decision.quality_impact is not None:
            state.quality_impact = decision.quality_impact
        state.history.append(Decision(self._elapsed(), decision.action, decision.reason))
        self._event(f"barrier_{decision.action}", group.id)

    async def _apply(
        self,
        group: CompiledGroup,
        decision: barrier.BarrierDecision,
        tasks: dict[str, asyncio.Task[None]],
    ) -> None:
        await self._cancel([tasks[a] for a in decision.cancel if a in tasks])
        if decision.action == barrier.ALL_COMPLETED:
            self._end_group(group, "succeeded")
            return
        if decision.action == barrier.CONTINUE_WITH_PARTIAL:
            self._continue_without(group, decision.fill_defaults, decision.cancel)
            self._end_group(group, "partial")
            return

        # abort_and_fallback: one at a time, each agent under its own timeout, no group deadline
        self._alert(group.id, "critical", decision.alert or decision.reason)
        self._event("fallback_started", group.id)
        for agent_id in decision.fallback:
            tasks[agent_id] = self._launch(self._plan.agent(agent_id), group, fallback=True)
            await workflow.wait([tasks[agent_id]])
        outcome = barrier.decide_after_fallback(self._barrier_view(group, self._elapsed()))
        self._record(group, outcome)
        if outcome.action == barrier.FAIL:
            self._end_group(group, "failed")
            raise ApplicationError(
                f"group '{group.id}' failed: {outcome.reason}; "
                f"agents: {self._describe_agents(group)}",
                type="GroupFailed",
                non_retryable=True,
            )
        if outcome.action == barrier.CONTINUE_WITH_DEFAULTS:
            self._alert(group.id, "critical", outcome.alert or outcome.reason)
        self._continue_without(group, outcome.fill_defaults, [])
        self._end_group(group, "partial" if outcome.fill_defaults else "succeeded")

    def _continue_without(
        self, group: CompiledGroup, agent_ids: list[str], cut_short: list[str]
    ) -> None:
        """Fill the declared defaults of agents the group goes on without; say what is missing."""
        for agent_id in agent_ids:
            agent = self._plan.agent(agent_id)
            state = self._agents[agent_id]
            never_started = state.started_s is None
            self._fill_defaults(agent)
            if agent_id in cut_short:
                if state.defaulted_outputs:
                    status = "defaulted"
                else:
                    status = "skipped" if never_started else "cancelled"
                if status != state.status:
                    state.status = status
                    if never_started:
                        state.ended_s = self._elapsed()
                    self._event(f"agent_{status}", agent_id)
            absent = [
                name for name in agent.outputs if f"{agent_id}.{name}" not in self._context
            ]
            if absent:
                readers = [
                    other.id for other in self._plan.agents
                    if any(f"{agent_id}.{name}" in other.inputs for name in absent)
                ]
                effect = (
                    f"dependents {readers} will run without them (see their missing_inputs)"
                    if readers else "no agent needs them"
                )
                self._alert(
                    group.id,
                    "warning",
                    f"agent '{agent_id}' ({state.status}) has no default for {absent}: {effect}",
                )

    def _end_group(self, group: CompiledGroup, status: str) -> None:
        state = self._groups[group.id]
        state.status = status
        state.ended_s = self._elapsed()
        self._event(f"group_{status}", group.id)

    def _group_timeout(self, group: CompiledGroup) -> float | None:
        # None (a lone agent) = bounded by the agent's own timeout, no barrier deadline
        if group.timeout_s is None:
            return None
        return max(0.0, float(group.timeout_s) * self._scale)

    # --- agents -------------------------------------------------------------------------

    def _launch(
        self, agent: CompiledAgent, group: CompiledGroup, *, fallback: bool
    ) -> asyncio.Task[None]:
        # mark the agent running now, not when the task first runs, so the barrier never sees
        # a started agent as pending
        state = self._agents[agent.id]
        inputs, missing = self._snapshot(agent)
        now = self._elapsed()
        state.status = "running"
        state.started_s = now if state.started_s is None else state.started_s
        state.run_started_s = now
        state.earlier_attempts = state.attempts
        state.missing_inputs = missing
        state.last_progress_s = None
        state.progress = None
        state.critical = False
        self._event("agent_started", agent.id)
        return asyncio.create_task(self._run_agent(agent, group, inputs, missing, fallback))

    async def _run_agent(
        self,
        agent: CompiledAgent,
        group: CompiledGroup,
        inputs: dict[str, Any],
        missing: list[str],
        fallback: bool,
    ) -> None:
        state = self._agents[agent.id]
        info = workflow.info()
        task = AgentTask(
            agent=agent,
            inputs=inputs,
            missing_inputs=missing,
            group=group.id,
            run_id=info.run_id,
            workflow_id=info.workflow_id,
            time_scale=self._scale,
            simulate_s=agent.estimated_s * self._scale if self._input.simulate else None,
            progress_interval_s=self._progress_interval_s(),
        )
        timeout = timedelta(
            seconds=max(
                MIN_ACTIVITY_TIMEOUT_S,
                (agent.timeout_s or self._plan.default_agent_timeout_s) * self._scale,
            )
        )
        how = "sequential fallback" if fallback else f"group {group.id}"
        try:
            result = await workflow.execute_activity(
                run_agent,
                task,
                task_queue=agent.task_queue,
                # a new id for the fallback run: a fresh activity with fresh attempts
                activity_id=f"{agent.id}#fallback" if fallback else agent.id,
                # the timeout bounds the whole execution, retries included
                schedule_to_close_timeout=timeout,
                start_to_close_timeout=timeout,
                heartbeat_timeout=timedelta(seconds=self._heartbeat_timeout_s()),
                retry_policy=self._retry_policy(agent.retry),
                summary=f"agent {agent.id} ({agent.role}), {how}",
            )
        except asyncio.CancelledError:
            self._end_agent(agent.id, "cancelled")
            raise
        except ActivityError as err:
            if is_cancelled_exception(err):
                self._end_agent(agent.id, "cancelled")
                return
            state.error = describe_error(err)
            state.attempts = state.earlier_attempts + max(
                failed_attempts(err, agent.retry) or 1, state.attempts - state.earlier_attempts
            )
            state.critical = is_critical(err)
            timed_out = isinstance(err.cause, TimeoutError)
            self._end_agent(agent.id, "timed_out" if timed_out else "failed")
            return
        state.attempts = state.earlier_attempts + result.attempt
        state.error = None
        state.progress = 1.0
        for name, value in result.outputs.items():
            self._context[f"{agent.id}.{name}"] = value
            if name not in state.outputs:
                state.outputs.append(name)
        for key, value in result.writes.items():
            self._context[key] = value
        self._end_agent(agent.id, "succeeded")

    def _end_agent(self, agent_id: str, status: str) -> None:
        state = self._agents[agent_id]
        now = self._elapsed()
        if state.run_started_s is not None:
            state.busy_s = round(state.busy_s + now - state.run_started_s, 3)
            state.run_started_s = None
        state.status = status
        state.ended_s = now
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

    def _heartbeat_timeout_s(self) -> float:
        if self._input.heartbeat_timeout_s is not None:
            return max(MIN_HEARTBEAT_TIMEOUT_S, self._input.heartbeat_timeout_s)
        # 10 s at real time, down to 2 s when scaled: cancellation reaches an agent only
        # through a heartbeat, and the SDK sends them at most every 0.8 x this timeout
        return max(2.0, min(10.0, 10.0 * self._scale))

    def _plan_progress_window_s(self) -> float:
        handling = self._plan.barrier.get("timeout_handling")
        raw = handling.get("progress_window") if isinstance(handling, dict) else None
        seconds = float(raw) if isinstance(raw, (int, float)) else DEFAULT_PROGRESS_WINDOW_S
        return seconds * self._scale

    def _progress_interval_s(self) -> float:
        # three signals per window, within bounds that keep the history small
        return min(MAX_PROGRESS_INTERVAL_S,
                   max(MIN_PROGRESS_INTERVAL_S, self._plan_progress_window_s() / 3))

    def _progress_window_s(self) -> float:
        # a scaled-down window must still span a few signals, or no agent ever looks alive
        return max(self._plan_progress_window_s(), 3 * self._progress_interval_s())

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
        return round((workflow.now() - self._run.started).total_seconds(), 3)

    def _event(self, event: str, ident: str) -> None:
        self._run.events.append(
            {"seq": len(self._run.events) + 1, "at_s": self._elapsed(), "event": event,
             "id": ident}
        )
        self._details()

    def _alert(self, group_id: str, level: str, message: str) -> None:
        self._run.alerts.append(Alert(self._elapsed(), group_id, level, message))
        log = workflow.logger.error if level == "critical" else workflow.logger.warning
        log("alert: %s", message)

    def _details(self) -> None:
        workflow.set_current_details(current_details(self._run, self._elapsed()))

    def _finish(self, status: str, error: str | None = None) -> None:
        self._run.status = status
        self._run.error = error
        self._run.ended_s = self._elapsed()
        self._details()

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
        return build_report(self._run, info.workflow_id, info.run_id, self._elapsed())


def describe_error(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return f"{cause.type or 'Error'}: {cause.message}"
    if isinstance(cause, TimeoutError):
        return f"timed out ({cause.type.name if cause.type else 'timeout'})"
    return str(cause or err)


def is_critical(err: ActivityError) -> bool:
    """A non-retryable failure: retrying cannot help, so the barrier aborts the group at once."""
    if err.retry_state == RetryState.NON_RETRYABLE_FAILURE:
        return True
    return isinstance(err.cause, ApplicationError) and err.cause.non_retryable


def failed_attempts(err: ActivityError, retry: RetrySpec) -> int | None:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.details:
        first = cause.details[0]
        if isinstance(first, dict) and isinstance(first.get("attempt"), int):
            return first["attempt"]
    if err.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED:
        return retry.max_attempts
    return None
