"""Agents, a part of PlanWorkflow: from ready to ended. An agent is queued for resource
admission (or blocked on a conflict first), admitted by the one admitter task, takes its
context snapshot, is looked up in the agent output cache when the plan opts in, runs its
`run_agent` activity (or, in batch mode, through src/pee/workflows/batcher.py), commits its result
and gives its units back; plus the timeouts, heartbeats, progress windows and retry policies its
activity gets.

`AgentRuns` is mixed into PlanWorkflow (src/pee/workflows/plan_workflow.py) and works on its state:
``_plan``, ``_run``, ``_agents``, ``_ctx``, ``_input``, ``_scale``, ``_batcher``, ``_levels``,
``_adapt``, ``_throttle``, ``_remaining``, ``_order``, ``_cache_keys``, ``_released``,
``_submitted`` and its recorders; the context side is src/pee/workflows/plan_context.py. It lives
apart so each module keeps one job; the commands it issues are exactly those it issued inside
PlanWorkflow (tests/test_replay.py)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pee.activities.agents import run_agent
    from pee.activities.types import AgentResult, AgentTask
    from pee.engine.compiled import CompiledAgent, CompiledGroup
    from pee.engine.rules.monitoring import take_sample
    from pee.engine.rules.scheduler import Request
    from pee.workflows import pool_lease
    from pee.workflows.agent_batch import AgentCall
    from pee.workflows.agent_outcome import AgentOutcome, outcome_from_error
    from pee.workflows.locks import READ, WRITE, ContextLockTimeout


class AgentRuns:
    def _launch(
        self, agent: CompiledAgent, group: CompiledGroup, *, fallback: bool
    ) -> asyncio.Task[None]:
        # mark the agent queued (or blocked) now, not when the task first runs; the caller then
        # admits what fits, so the barrier never sees a started agent as pending
        state = self._agents[agent.id]
        state.critical = False
        if not self._desk.block(agent):
            self._queue(agent)
        return asyncio.create_task(self._run_agent(agent, group, fallback))

    def _queue(self, agent: CompiledAgent) -> None:
        """Ready: ask admission for the agent's units (started by `_admit` when they fit)."""
        state = self._agents[agent.id]
        now = self._elapsed()
        state.status = "queued"
        state.queued_since_s = now
        self._run.admission.submit(
            Request(
                agent.id,
                float(agent.cpu),
                float(agent.memory),
                int(agent.priority),
                self._remaining.get(agent.id, 0.0),
                self._order[agent.id],
                now,
                planned=float(agent.admission_rank),
            )
        )

    def _admit(self, submitted: list[str] | None = None) -> None:
        """Start every queued agent that fits now, best first; `submitted` agents that must
        wait get an agent_queued event."""
        now = self._elapsed()
        if self._throttle is not None:
            self._throttle.apply(
                self._run.admission,
                {a.id: a.group for a in self._plan.agents},
                now,
                lambda a: self._agents[a].status == "queued",
            )
        for agent_id in self._run.admission.admit(now):
            state = self._agents[agent_id]
            if state.queued_since_s is not None:
                state.queue_wait_s = round(state.queue_wait_s + now - state.queued_since_s, 3)
                state.queued_since_s = None
            self._mark_running(self._plan.agent(agent_id))
        for agent_id in submitted or []:
            if self._agents[agent_id].status == "queued":
                self._event("agent_queued", agent_id)
        self._sample()

    def _admit_soon(self, submitted: list[str]) -> None:
        """Admit `submitted` (just queued) now with an unlimited pool, where nobody competes;
        with a limited one leave it to the admitter, so agents of groups that became ready in
        the same activation compete on rank, not on which group task happened to run first."""
        if not self._run.admission.pool.limited:
            self._admit(submitted)
            return
        self._submitted += submitted
        self._released = True

    async def _admitter(self) -> None:
        """Hand out released units once everything else of the activation has run: agents that
        are being cancelled together have left the queue by then, and every group that became
        ready has queued its agents."""
        while True:
            await workflow.wait_condition(lambda: self._released)
            self._released = False
            submitted, self._submitted = self._submitted, []
            self._admit(submitted)

    def _sample(self, response_time_s: float | None = None, agent_id: str | None = None) -> None:
        """Observe the admission state after it changed (monitoring is event-driven: no timers,
        no history events); a metric going over its alert threshold raises a warning."""
        admission = self._run.admission
        sample = take_sample(
            self._elapsed(),
            cpu_in_use=admission.cpu_in_use,
            cpu_capacity=admission.pool.cpu,
            memory_in_use=admission.memory_in_use,
            memory_capacity=admission.pool.memory,
            queue_depth=len(admission.waiting),
            response_time=response_time_s,
            agent=agent_id,
        )
        for alert in self._run.monitor.observe(sample):
            group = self._plan.agent(alert.agent).group if alert.agent else ""
            self._alert(group, "warning", alert.message)

    def _mark_running(self, agent: CompiledAgent) -> None:
        state = self._agents[agent.id]
        now = self._elapsed()
        state.status = "running"
        state.started_s = now if state.started_s is None else state.started_s
        state.run_started_s = now
        state.earlier_attempts = state.attempts
        state.last_progress_s = None
        state.progress = None
        self._event("agent_started", agent.id)

    async def _run_agent(self, agent: CompiledAgent, group: CompiledGroup, fallback: bool) -> None:
        state = self._agents[agent.id]
        try:
            if state.status == "blocked":
                await self._desk.until_unblocked(agent)
                self._queue(agent)
                self._admit([agent.id])
            if state.status == "queued":
                await workflow.wait_condition(lambda: state.status != "queued")
            async with self._gate.slot(READ, agent.id):
                inputs, missing, versions = self._gate.snapshot(agent)
            state.missing_inputs = missing
            state.snapshot = versions
            key = self._cache.key(agent, inputs)
            result = (
                await self._cache.lookup(agent, key) if key is not None and not fallback else None
            )
            cached = result is not None
            if result is None:
                result = await self._execute(agent, group, inputs, missing, versions, fallback, key)
            if result is None:
                return
            self._levels.count(result)
            async with self._gate.slot(WRITE, agent.id):
                self._gate.commit(agent, result)
        except asyncio.CancelledError:
            self._end_agent(agent.id, "cancelled")
            raise
        except ContextLockTimeout as err:
            state.error = f"ContextLockTimeout: {err}"
            self._end_agent(agent.id, "failed")
            return
        except ApplicationError as err:
            # a conflict timeout with policy fail: the group passes it on to the run
            state.error = f"{err.type}: {err.message}"
            self._end_agent(agent.id, "failed")
            raise
        state.cached = cached
        self._end_agent(agent.id, "succeeded")

    async def _execute(
        self,
        agent: CompiledAgent,
        group: CompiledGroup,
        inputs: dict[str, Any],
        missing: list[str],
        versions: dict[str, int],
        fallback: bool,
        key: str | None = None,
    ) -> AgentResult | None:
        """Run the agent's activity; None when it failed or was cancelled (state recorded)."""
        state = self._agents[agent.id]
        info = workflow.info()
        threshold = (self._plan.context or {}).get("large_value_threshold")
        task = AgentTask(
            agent=agent,
            inputs=inputs,
            missing_inputs=missing,
            snapshot_versions=versions,
            group=group.id,
            run_id=info.run_id,
            workflow_id=info.workflow_id,
            time_scale=self._scale,
            simulate_s=agent.estimated_s * self._scale if self._input.simulate else None,
            # batch mode: no progress signals (each would be a history event; see batcher.py)
            progress_interval_s=self._timing.progress_interval_s()
            if self._batcher is None
            else 0.0,
            large_value_threshold=int(threshold) if isinstance(threshold, int | float) else None,
            cache_key=key,
            cache_ttl_s=self._cache.ttl_s() if key is not None else None,
            cache_size_limit=self._cache.size_limit() if key is not None else None,
            plan_name=self._plan.name,
        )
        timeout = self._timing.activity_timeout(agent)
        how = "sequential fallback" if fallback else f"group {group.id}"
        # a new id for the fallback run: a fresh activity with fresh attempts
        activity_id = f"{agent.id}#fallback" if fallback else agent.id
        heartbeat = timedelta(seconds=self._timing.heartbeat_timeout_s())
        summary = f"agent {agent.id} ({agent.role}), {how}"
        if self._batcher is not None:
            outcome = await self._batcher.run(
                AgentCall.of(
                    task,
                    activity_id,
                    timeout,
                    heartbeat,
                    self._timing.retry_policy(agent.retry),
                    summary,
                )
            )
        else:
            try:
                outcome = AgentOutcome(
                    agent.id,
                    result=await workflow.execute_activity(
                        run_agent,
                        task,
                        task_queue=agent.task_queue,
                        activity_id=activity_id,
                        # the timeout bounds the whole execution, retries included
                        schedule_to_close_timeout=timeout,
                        start_to_close_timeout=timeout,
                        heartbeat_timeout=heartbeat,
                        retry_policy=self._timing.retry_policy(agent.retry),
                        summary=summary,
                    ),
                )
            except ActivityError as err:
                outcome = outcome_from_error(agent.id, err, agent.retry)
        result = outcome.result
        if outcome.cancelled:
            self._end_agent(agent.id, "cancelled")
            return None
        if result is None:
            state.error = outcome.error
            state.attempts = state.earlier_attempts + max(
                outcome.attempts or 1, state.attempts - state.earlier_attempts
            )
            state.critical = outcome.critical
            self._end_agent(agent.id, "timed_out" if outcome.timed_out else "failed")
            return None
        state.attempts = state.earlier_attempts + result.attempt
        state.attempt_s, state.io_wait_s = result.elapsed_s, result.io_wait_s
        state.error = None
        state.progress = 1.0
        return result

    def _end_agent(self, agent_id: str, status: str) -> None:
        state = self._agents[agent_id]
        now = self._elapsed()
        if state.run_started_s is not None:
            state.busy_s = round(state.busy_s + now - state.run_started_s, 3)
            state.run_started_s = None
        self._desk.unblock(agent_id)
        if state.queued_since_s is not None:
            # cancelled while queued
            state.queue_wait_s = round(state.queue_wait_s + now - state.queued_since_s, 3)
            state.queued_since_s = None
        admission = self._run.admission
        if (
            agent_id in admission.running
            or any(r.agent_id == agent_id for r in admission.waiting)
            or pool_lease.holds(admission, agent_id)
        ):
            admission.release(agent_id, now)
            self._released = True
        state.status = status
        state.ended_s = now
        self._event(f"agent_{status}", agent_id)
        ran = state.run_started_s is None and state.started_s is not None
        self._sample(state.duration_s(now) if ran else None, agent_id)
        if ran:
            self._adapt.after_agent(agent_id, state.duration_s(now) or 0.0)
