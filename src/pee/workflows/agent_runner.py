"""AgentRunner: an agent from ready to ended. It is queued for resource admission (or blocked
on a conflict first: src/pee/workflows/conflict_desk.py), admitted by the one admitter task,
takes its context snapshot (src/pee/workflows/context_gate.py), is looked up in the agent output
cache when the plan opts in (src/pee/workflows/agent_cache.py), runs its `run_agent` activity
(or, in batch mode, through src/pee/workflows/batcher.py) under AgentTiming's clocks, commits
its result and gives its units back.

Its own state is the admission bookkeeping (`released`, `submitted`) and the admission ranks
(`remaining`, `order`); everything else is the RunState's, reached through the scope, and the
Adaptation's, read at every use. The commands it issues are exactly those PlanWorkflow issued
(tests/test_replay.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import pee.engine.rules.plan_facts as plan_facts
    from pee.activities.agents import run_agent
    from pee.activities.types import AgentProgress, AgentResult, AgentTask
    from pee.engine.compile.fan_out_slice import shown_inputs, template_of
    from pee.engine.compiled import CompiledAgent, CompiledGroup
    from pee.engine.rules.monitoring import take_sample
    from pee.engine.rules.scheduler import Request
    from pee.engine.states import AgentStatus
    from pee.workflows import pool_lease
    from pee.workflows.adaptation import Adaptation
    from pee.workflows.agent_batch import AgentCall
    from pee.workflows.agent_outcome import AgentOutcome, outcome_from_error
    from pee.workflows.agent_timing import AgentTiming
    from pee.workflows.batcher import Batcher
    from pee.workflows.cache_levels import CacheLevels
    from pee.workflows.conflict_desk import ConflictDesk
    from pee.workflows.context_gate import ContextGate
    from pee.workflows.lean_task import RunFields, run_fields
    from pee.workflows.locks import READ, WRITE, ContextLockTimeout
    from pee.workflows.run_scope import RunScope

if TYPE_CHECKING:
    # for the annotations only
    from pee.workflows.agent_cache import AgentCache


class AgentRunner:
    def __init__(
        self,
        scope: RunScope,
        desk: ConflictDesk,
        gate: ContextGate,
        timing: AgentTiming,
        cache: AgentCache,
        levels: CacheLevels,
        adapt: Adaptation,
        batcher: Batcher | None,
        *,
        signals: bool = True,
    ) -> None:
        self.scope = scope
        self.desk = desk
        self.gate = gate
        self.timing = timing
        self.cache = cache
        self.levels = levels
        # read live (adapt.throttle): a continuation restores its rules after construction
        self.adapt = adapt
        self.batcher = batcher
        # agents send `agent_progress` signals (runs recorded before liveness-from-describe)
        self.signals = signals
        plan = scope.plan
        # admission ranks: the longest remaining path from each agent, then plan order
        # (worked out on the starter's side and carried with the plan: pee.engine.rules.
        # plan_facts; a copy, as fan-out instances join it)
        self.remaining = dict(plan_facts.facts(plan).remaining)
        self.order = {agent.id: index for index, agent in enumerate(plan.agents)}
        # agent id -> its group, for the throttle on every admission round
        self.group_of = {agent.id: agent.group for agent in plan.agents}
        # set when units came back: the admitter hands them out once the activation settles
        self.released = False
        # queued since the admitter last ran (their agent_queued events are due then)
        self.submitted: list[str] = []
        # fan-out instances (`agent[i]`): what each is given besides its snapshot
        self.item_inputs: dict[str, dict[str, Any]] = {}
        # run_fields(cached) -> what tasks carry of the run's names (see run_fields)
        self._run_fields: dict[bool, RunFields] = {}

    def add_instances(self, template: str, item_inputs: dict[str, dict[str, Any]]) -> None:
        """A fan-out's instances (src/pee/workflows/fan_out_driver.py): ranked as their agent,
        after every planned agent in item order, and given their item and index."""
        for instance in item_inputs:
            self.remaining[instance] = self.remaining.get(template, 0.0)
            self.order[instance] = len(self.order)
            self.group_of[instance] = self.group_of[template]
        self.item_inputs.update(item_inputs)

    def launch(
        self,
        agent: CompiledAgent,
        group: CompiledGroup,
        *,
        fallback: bool,
        on_end: Callable[[bool], None] | None = None,
    ) -> asyncio.Task[None]:
        """The agent's task; `on_end` is called in its last step, with whether the task fails
        (ends with an exception other than its cancellation; workflows/group_wake.py)."""
        # mark the agent queued (or blocked) now, not when the task first runs; the caller then
        # admits what fits, so the barrier never sees a started agent as pending
        state = self.scope.agents[agent.id]
        state.critical = False
        if not self.desk.block(agent):
            self.queue(agent)
        if on_end is None:
            return asyncio.create_task(self.run_agent(agent, group, fallback))
        return asyncio.create_task(self._run_then(agent, group, fallback, on_end))

    async def _run_then(
        self,
        agent: CompiledAgent,
        group: CompiledGroup,
        fallback: bool,
        on_end: Callable[[bool], None],
    ) -> None:
        # `await` runs the agent in this same task, step for step: no turn of the loop added
        try:
            await self.run_agent(agent, group, fallback)
        except GeneratorExit:
            # closed by the garbage collector, its run's instance gone: nothing to tell
            # (FanOutDriver.run_children says why no workflow code may run here)
            raise
        except asyncio.CancelledError:
            on_end(False)
            raise
        except BaseException:
            on_end(True)
            raise
        on_end(False)

    def queue(self, agent: CompiledAgent) -> None:
        """Ready: ask admission for the agent's units (started by `_admit` when they fit)."""
        state = self.scope.agents[agent.id]
        now = self.scope.elapsed()
        state.status = AgentStatus.QUEUED
        state.queued_since_s = now
        self.scope.run.admission.submit(
            Request(
                agent.id,
                float(agent.cpu),
                float(agent.memory),
                int(agent.priority),
                self.remaining.get(agent.id, 0.0),
                self.order[agent.id],
                now,
                planned=float(agent.admission_rank),
            )
        )

    def admit(self, submitted: list[str] | None = None) -> None:
        """Start every queued agent that fits now, best first; `submitted` agents that must
        wait get an agent_queued event."""
        now = self.scope.elapsed()
        if self.adapt.throttle is not None:
            self.adapt.throttle.apply(
                self.scope.run.admission,
                self.group_of,
                now,
                lambda a: self.scope.agents[a].status == AgentStatus.QUEUED,
            )
        for agent_id in self.scope.run.admission.admit(now):
            state = self.scope.agents[agent_id]
            if state.queued_since_s is not None:
                state.queue_wait_s = round(state.queue_wait_s + now - state.queued_since_s, 3)
                state.queued_since_s = None
            self.mark_running(self.scope.plan.agent(agent_id))
        for agent_id in submitted or []:
            if self.scope.agents[agent_id].status == AgentStatus.QUEUED:
                self.scope.event("agent_queued", agent_id)
        self.sample()

    def admit_soon(self, submitted: list[str]) -> None:
        """Admit `submitted` (just queued) now with an unlimited pool, where nobody competes;
        with a limited one leave it to the admitter, so agents of groups that became ready in
        the same activation compete on rank, not on which group task happened to run first."""
        if not self.scope.run.admission.pool.limited:
            self.admit(submitted)
            return
        self.submitted += submitted
        self.released = True

    async def admitter(self) -> None:
        """Hand out released units once everything else of the activation has run: agents that
        are being cancelled together have left the queue by then, and every group that became
        ready has queued its agents."""
        while True:
            await workflow.wait_condition(lambda: self.released)
            self.released = False
            submitted, self.submitted = self.submitted, []
            self.admit(submitted)

    def sample(self, response_time_s: float | None = None, agent_id: str | None = None) -> None:
        """Observe the admission state after it changed (monitoring is event-driven: no timers,
        no history events); a metric going over its alert threshold raises a warning."""
        admission = self.scope.run.admission
        sample = take_sample(
            self.scope.elapsed(),
            cpu_in_use=admission.cpu_in_use,
            cpu_capacity=admission.pool.cpu,
            memory_in_use=admission.memory_in_use,
            memory_capacity=admission.pool.memory,
            queue_depth=len(admission.waiting),
            response_time=response_time_s,
            agent=agent_id,
        )
        for alert in self.scope.run.monitor.observe(sample):
            group = self.scope.plan.agent(alert.agent).group if alert.agent else ""
            self.scope.alert(group, "warning", alert.message)

    def mark_running(self, agent: CompiledAgent) -> None:
        state = self.scope.agents[agent.id]
        now = self.scope.elapsed()
        state.status = AgentStatus.RUNNING
        state.started_s = now if state.started_s is None else state.started_s
        state.run_started_s = now
        state.earlier_attempts = state.attempts
        state.last_progress_s = None
        state.progress = None
        self.scope.event("agent_started", agent.id)

    async def run_agent(self, agent: CompiledAgent, group: CompiledGroup, fallback: bool) -> None:
        state = self.scope.agents[agent.id]
        try:
            if state.status == AgentStatus.BLOCKED:
                await self.desk.until_unblocked(agent)
                self.queue(agent)
                self.admit([agent.id])
            if state.status == AgentStatus.QUEUED:
                await workflow.wait_condition(lambda: state.status != AgentStatus.QUEUED)
            async with self.gate.slot(READ, agent.id):
                inputs, missing, versions = self.gate.snapshot(agent)
            if agent.id in self.item_inputs:
                inputs = {**inputs, **self.item_inputs[agent.id]}
            if self.scope.input.item_batch:
                # a batch of fan-out items: `story[3].text` is shown as `story.text`
                inputs = shown_inputs(agent.id, inputs)
            state.missing_inputs = missing
            state.snapshot = versions
            key = self.cache.key(agent, inputs)
            result = (
                await self.cache.lookup(agent, key) if key is not None and not fallback else None
            )
            cached = result is not None
            if result is None:
                result = await self.execute(agent, group, inputs, missing, versions, fallback, key)
            if result is None:
                return
            self.levels.count(result)
            async with self.gate.slot(WRITE, agent.id):
                self.gate.commit(agent, result)
        except asyncio.CancelledError:
            self.end_agent(agent.id, AgentStatus.CANCELLED)
            raise
        except ContextLockTimeout as err:
            state.error = f"ContextLockTimeout: {err}"
            self.end_agent(agent.id, AgentStatus.FAILED)
            return
        except ApplicationError as err:
            # a conflict timeout with policy fail: the group passes it on to the run
            state.error = f"{err.type}: {err.message}"
            self.end_agent(agent.id, AgentStatus.FAILED)
            raise
        state.cached = cached
        self.end_agent(agent.id, AgentStatus.SUCCEEDED)

    async def execute(
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
        state = self.scope.agents[agent.id]
        named = self.run_fields(key is not None)
        task = AgentTask(
            agent=agent,
            inputs=inputs,
            missing_inputs=missing,
            snapshot_versions=versions,
            group=group.id,
            run_id=named.run_id,
            workflow_id=named.workflow_id,
            time_scale=self.scope.scale,
            simulate_s=agent.estimated_s * self.scope.scale if self.scope.input.simulate else None,
            # no progress signals (each is a history event and a workflow task): liveness comes
            # from heartbeats at deadlines; older runs signalled unless batched
            progress_interval_s=self.timing.progress_interval_s()
            if self.batcher is None and self.signals
            else 0.0,
            large_value_threshold=named.large_value_threshold,
            cache_key=key,
            cache_ttl_s=self.cache.ttl_s() if key is not None else None,
            cache_size_limit=self.cache.size_limit() if key is not None else None,
            plan_name=named.plan_name,
        )
        timeout = self.timing.activity_timeout(agent)
        # runs since liveness-from-describe: time waiting for a worker does not eat the timeout
        overall = timeout if self.signals else self.timing.schedule_to_close(agent)
        item = self.fan_out_item()
        how = "sequential fallback" if fallback else f"group {self.fan_out_group() or group.id}"
        # a new id for the fallback run: a fresh activity with fresh attempts
        activity_id = f"{agent.id}#fallback" if fallback else agent.id
        heartbeat = timedelta(seconds=self.timing.heartbeat_timeout_s())
        shown = f"{agent.id}[{item[1]}]" if item else agent.id
        summary = f"agent {shown} ({agent.role}), {how}"
        if self.batcher is not None:
            outcome = await self.batcher.run(
                AgentCall.of(
                    task,
                    activity_id,
                    timeout,
                    heartbeat,
                    self.timing.retry_policy(agent.retry),
                    summary,
                    None if self.signals else overall,
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
                        # the timeout bounds each attempt; all of them together get the
                        # timeout and, since liveness-from-describe, the worker-lag allowance
                        schedule_to_close_timeout=overall,
                        start_to_close_timeout=timeout,
                        heartbeat_timeout=heartbeat,
                        retry_policy=self.timing.retry_policy(agent.retry),
                        summary=summary,
                    ),
                )
            except ActivityError as err:
                outcome = outcome_from_error(agent.id, err, agent.retry)
        result = outcome.result
        if outcome.cancelled:
            self.end_agent(agent.id, AgentStatus.CANCELLED)
            return None
        if result is None:
            state.error = outcome.error
            state.attempts = state.earlier_attempts + max(
                outcome.attempts or 1, state.attempts - state.earlier_attempts
            )
            state.critical = outcome.critical
            self.end_agent(
                agent.id, AgentStatus.TIMED_OUT if outcome.timed_out else AgentStatus.FAILED
            )
            return None
        state.attempts = state.earlier_attempts + result.attempt
        state.attempt_s, state.io_wait_s = result.elapsed_s, result.io_wait_s
        state.error = None
        state.progress = 1.0
        return result

    def run_fields(self, cached: bool) -> RunFields:
        """lean_task.run_fields of this run's ids and plan, worked out once per run for
        either answer: the workflow's info and its patch check are the same for every agent
        (the SDK memoizes `patched` after its first call, which is still the first agent's)."""
        found = self._run_fields.get(cached)
        if found is None:
            info = workflow.info()
            found = self._run_fields[cached] = run_fields(
                cached,
                RunFields(
                    info.run_id,
                    info.workflow_id,
                    self.scope.plan.name,
                    self.scope.plan.context.large_value_threshold,
                ),
            )
        return found

    def fan_out_item(self) -> tuple[str, int] | None:
        """("per_epic", 3) in the child run of a group-level fan-out's item 3 (its plan is named
        "<plan>/per_epic[3]"), so its activities' Web UI summaries name `story[3]` as the
        parent's report does; None in any other run. Only the summary (user metadata) changes,
        which replay does not compare: a child recorded before this replays (checked by hand)."""
        if self.scope.input.item_outputs is None or self.scope.input.item_batch:
            return None
        return template_of(self.scope.plan.name.rpartition("/")[2])

    def fan_out_group(self) -> str | None:
        """ "per_epic" in the child run of a group-level fan-out's items (one item, plan
        "<plan>/per_epic[3]", or a batch, "<plan>/per_epic[0..24]" whose agents are named
        `story[i]` already); None in any other run. Summaries only, as fan_out_item."""
        if self.scope.input.item_outputs is None:
            return None
        return self.scope.plan.name.rpartition("/")[2].partition("[")[0] or None

    def end_agent(self, agent_id: str, status: AgentStatus) -> None:
        state = self.scope.agents[agent_id]
        now = self.scope.elapsed()
        if state.run_started_s is not None:
            state.busy_s = round(state.busy_s + now - state.run_started_s, 3)
            state.run_started_s = None
        self.desk.unblock(agent_id)
        if state.queued_since_s is not None:
            # cancelled while queued
            state.queue_wait_s = round(state.queue_wait_s + now - state.queued_since_s, 3)
            state.queued_since_s = None
        admission = self.scope.run.admission
        if (
            agent_id in admission.running
            or any(r.agent_id == agent_id for r in admission.waiting)
            or pool_lease.holds(admission, agent_id)
        ):
            admission.release(agent_id, now)
            self.released = True
        state.status = status
        state.ended_s = now
        self.scope.event(f"agent_{status}", agent_id)
        # run_started_s is None from here on: the agent ran if it ever started
        ran = state.started_s is not None
        self.sample(state.duration_s(now) if ran else None, agent_id)
        if ran:
            self.adapt.after_agent(agent_id, state.duration_s(now) or 0.0)

    def progress(self, progress: AgentProgress) -> None:
        """A working agent says it is alive; the barrier's extension rule reads the time."""
        state = self.scope.agents.get(progress.agent_id)
        if state is None or state.status != AgentStatus.RUNNING:
            # late signal from a finished or cancelled run: nothing to record
            return
        state.last_progress_s = self.scope.elapsed()
        if progress.fraction is not None:
            state.progress = max(0.0, min(1.0, float(progress.fraction)))
        state.attempts = max(state.attempts, state.earlier_attempts + int(progress.attempt))
