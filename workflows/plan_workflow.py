"""PlanWorkflow: runs a CompiledPlan's groups eagerly on their DAG, each agent as one activity.

A group starts the moment every group it depends on has passed its barrier, never level by level.
A parallel group starts all its agents together; a sequential one runs them in list order. The
smart barrier (engine.barrier) judges the group when it starts, whenever an agent finishes and at
the deadline; the workflow carries out what it decides: wait, extend the deadline, cancel and fill
defaults, or cancel and re-run the group's unfinished agents one at a time.

"Making progress" means the workflow received an `agent_progress` signal recently: heartbeats are
throttled by the SDK and invisible to workflow code, so agents report progress by signal too.

Context (engine.context): plan and run inputs, agents' outputs ("agent.output", their own keys)
and shared keys live in a VersionedContext. An agent gets a snapshot of its inputs, optional
inputs and shared writes when it starts (values in AgentTask.inputs, the version vector in
AgentTask.snapshot_versions, so both are in history); later writes never change what it sees. Its
shared writes commit against the snapshot's versions: identical, fast-forward, merged, or an open
conflict (the current value stays: first writer wins, with a chance for a better merge); writes to
a key another agent owns are rejected with a critical alert or open an ownership conflict
(context_conflicts.ownership_violation). After a group's barrier the plan's consistency rules
that involve its keys are checked; a violation is a conflict too.

Conflicts block only what must wait: an agent whose blocking inputs include a key with an open
conflict is "blocked" (it does not start) until a person resolves the conflict (the
`resolve_conflict` update, validated, or the signal of the same name) or conflict_timeout x
time_scale after the conflict opened, when timeout_policy applies (keep_current, keep_incoming,
or fail the run). Everything else carries on. Rules chosen here:

- Deadline pause: a group's deadline stands still while at least one of its agents is blocked;
  when none is blocked any more, the deadline moves later by exactly the time it stood still
  (GroupState.paused_s, the report's `paused_s`). A person deciding never expires a barrier;
  agents of the group that are running keep their own activity timeouts.
- Open conflicts at the end: the run does not wait for a conflict nobody is blocked on; it ends
  with the current value, the conflict still open in the report and a warning alert.
- Context store limits (workflows/locks.py): snapshots take a reader slot and commits a writer
  slot; both are instantaneous in workflow code, so today nobody ever waits and
  context_lock_wait_s is 0; a wait (bounded by lock_timeout, then the agent fails) appears only if
  a holder ever awaits while holding its slot.

Resources (engine.scheduler.Admission, one per run, built from CompiledPlan.resources: CPU and
memory units, concurrent_agent_limit, cpu_oversubscription, memory_strict; a hand-built plan
without a resource_pool gets an unlimited one). An agent whose group has reached it is ready: it
is submitted ("queued") and starts only when admitted, best first by priority (aged one level per
AGING_S x time_scale of waiting), then the longest remaining path (engine.scheduler.
remaining_paths over the agent-level DAG and estimated_s), then plan order; an agent that does not
fit is passed over by smaller ones until it has waited RESERVE_AFTER_S x time_scale, then it holds
a reservation. Sequential groups and fallback re-runs queue the same way; an agent blocked on a
conflict queues once unblocked. Units come back when the agent finishes, fails, times out or is
cancelled; freed units are handed out by one admitter task once the activation has settled, so
agents being cancelled together never start each other. Rules chosen here:

- Queue time counts against the group deadline (resources are shared: waiting for them is part
  of the group's time, unlike waiting for a person on a conflict); a queued agent is "pending" to
  the barrier, never "making progress", so at the deadline it is cancelled (skipped) like any
  agent that has not started.
- A conflict opened while an agent is queued does not block it (it was checked when it became
  ready); its snapshot is still taken when it starts.

Determinism: lists and insertion-ordered dicts only (no set iteration), workflow.now() for time,
workflow.wait with float timeouts, ApplicationError for every failure the run should end with.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    from activities.agents import lookup_cached_output, run_agent
    from activities.cross_validation import (
        CrossValidationResult,
        CrossValidationTask,
        cross_validate,
    )
    from activities.types import AgentProgress, AgentResult, AgentTask, CacheLookup
    from engine import barrier
    from engine import context as ctx
    from engine.cache_key import cache_key
    from engine.compiled import CompiledAgent, CompiledGroup, CompiledPlan, RetrySpec
    from engine.context import Conflict, ContextPolicy, ResolutionError, VersionedContext
    from engine.merge import MISSING
    from engine.monitoring import Monitor, Settings, take_sample
    from engine.report import agent_dependencies, iso_at
    from engine.scheduler import Admission, Pool, Request, remaining_paths
    from workflows import pool_lease
    from workflows.adaptation import Adaptation
    from workflows.agent_batch import OUTCOMES_SIGNAL, AgentCall
    from workflows.agent_outcome import (
        AgentOutcome,
        describe_error,
        outcome_from_error,
    )
    from workflows.batcher import Batcher
    from workflows.cache_levels import CacheLevels
    from workflows.carry import (
        AdaptiveRules,
        CarriedRun,
        capture,
        decode,
        groups_to_run,
        restore,
        restore_admission,
    )
    from workflows.continuation import Continuation, continue_as_new
    from workflows.deadline_timer import DeadlineClock
    from workflows.locks import READ, WRITE, ContextLimits, ContextLockTimeout
    from workflows.pool_types import GRANT_SIGNAL, PoolGrant
    from workflows.search import RunSearchAttributes
    from workflows.state import (
        NOT_STARTED,
        AgentState,
        Alert,
        Decision,
        GroupState,
        RunState,
        build_report,
        conflict_report,
        current_details,
    )
    from workflows.types import PlanRunInput, ResolveConflict

# Floors on scaled durations: a plan scaled to seconds must still leave the worker time to
# pick an activity up, and heartbeats are sent in real time whatever the scale.
MIN_ACTIVITY_TIMEOUT_S = 1.0
MIN_RETRY_INTERVAL_S = 0.1
MIN_HEARTBEAT_TIMEOUT_S = 1.0
# progress signals: every signal is a history event, so not more often than this (real seconds)
MIN_PROGRESS_INTERVAL_S = 0.5
MAX_PROGRESS_INTERVAL_S = 10.0
DEFAULT_PROGRESS_WINDOW_S = 30.0

# admission bounds at time_scale 1 (seconds): a waiting agent gains one priority level per
# AGING_S, and after RESERVE_AFTER_S nothing ranked below it overtakes it any more
AGING_S = 60.0
RESERVE_AFTER_S = 120.0

# group states that let dependants start
PASSED = ("succeeded", "partial")
DEFAULT_CONFLICT_TIMEOUT_S = 3600.0
# cross-validation: validation_timeout when the plan gives none (x time_scale)
DEFAULT_CROSS_VALIDATION_TIMEOUT_S = 180.0
# commit outcomes that wrote nothing new but are fine
QUIET_OUTCOMES = (ctx.CREATED, ctx.FAST_FORWARD, ctx.UNCHANGED)


@workflow.defn
class PlanWorkflow:
    @workflow.init
    def __init__(self, input: PlanRunInput) -> None:
        self._input = input
        self._plan = input.plan
        self._scale = float(input.time_scale)
        settings = self._plan.context or {}
        self._run = RunState(
            plan=self._plan,
            started=workflow.now(),
            time_scale=self._scale,
            agents={agent.id: AgentState() for agent in self._plan.agents},
            groups={group.id: GroupState() for group in self._plan.groups},
            # "agent.output" keys, plan inputs and shared keys, every write a version
            context=VersionedContext(context_policy(self._plan)),
            conflict_timeout_s=max(0.0, float(settings.get("conflict_timeout",
                                                           DEFAULT_CONFLICT_TIMEOUT_S))
                                   * self._scale),
            limits=ContextLimits.from_resources(self._plan.resources, self._scale),
        )
        self._agents = self._run.agents
        self._groups = self._run.groups
        self._ctx = self._run.context
        # context snapshots after barriers, prefetching, worker-side cache counters
        self._levels = CacheLevels(self._plan, self._run)
        # batch mode (workflows/batcher.py): agents run in AgentBatchWorkflow children
        # a carried run no run wrote (a hand-made input) fails the run at its start, in run()
        carried, self._invalid_carried = self._decode_carried(input)
        self._carried = carried
        self._batcher = (Batcher(input.batch, carried.batch_children if carried else 0,
                                 carried.batch_largest if carried else 0)
                         if input.batch is not None else None)
        self._details_due = False
        # batch mode: group deadlines share one timer (workflows/deadline_timer.py)
        self._clock = DeadlineClock(self._elapsed) if self._batcher is not None else None
        if self._batcher is not None:
            # per-group snapshot and prefetch commands would grow the history with the plan
            self._levels.per_group = False
        # agent id -> its output cache key, so downstream keys carry their lineage
        self._cache_keys: dict[str, str] = {}
        self._timeout_policy = str(settings.get("timeout_policy", "keep_current"))
        self._run.admission = Admission(
            Pool.from_resources(self._plan.resources),
            aging_s=max(1e-3, AGING_S * self._scale),
            reserve_after_s=RESERVE_AFTER_S * self._scale,
            fifo=input.admission == "fifo",
        )
        self._run.monitor = Monitor(Settings.from_resources(self._plan.resources, self._scale))
        # adaptive: true + the seed's adaptive_resource_allocation actions: slow agents lower
        # their group's concurrency, move deadlines, raise the CPU to hand out, switch on
        # cross-run caching (engine.adaptive); every rule None for every other plan
        self._adapt = Adaptation.from_plan(
            self._plan, self._run, self._scale, self._plan_cache_ttl_s(),
            (self._plan.caching or {}).get("enabled", True) is not False,
            self._event, self._alert, self._elapsed)
        self._throttle = self._adapt.throttle
        self._remaining = remaining_paths(
            [agent.id for agent in self._plan.agents],
            agent_dependencies(self._plan.agents, self._plan.groups),
            {agent.id: agent.expected_s for agent in self._plan.agents},
        )
        self._order = {agent.id: index for index, agent in enumerate(self._plan.agents)}
        # set when units came back: the admitter hands them out once the activation settles
        self._released = False
        # queued since the admitter last ran (their agent_queued events are due then)
        self._submitted: list[str] = []
        # bumped by every resolution and timeout: blocked agents wait for it to change
        self._conflict_changes = 0
        # non-blocking cross-validations: off the critical path, awaited before the run ends
        self._validations: list[asyncio.Task[None]] = []
        # PeePlan/PeeStatus/PeeGroup for the Web UI list, only when the server has them
        self._search = RunSearchAttributes(input.search_attributes)
        # continue-as-new (workflows/continuation.py): drain, then hand the run on
        self._continuation = Continuation(input.continue_as_new_after)
        if carried is not None:
            # a continuation: the run so far, inputs and resumed groups included, is carried
            try:
                restore(self._run, carried)
            except ValueError as err:
                self._invalid_carried = str(err)
            self._cache_keys = dict(carried.cache_keys)
            rules = carried.adaptive
            self._adapt.throttle, self._adapt.timeouts = rules.throttle, rules.timeouts
            self._adapt.cpu, self._adapt.caching = rules.cpu, rules.caching
            self._throttle = self._adapt.throttle
            self._todo = groups_to_run(self._run)
            return
        at = self._at()
        for key, value in self._plan.inputs.items():
            self._ctx.put(key, value, "plan", at, origin="input")
        for key, value in input.inputs.items():
            self._ctx.put(key, value, "run", at, origin="input")
        # groups reused from an earlier run: passed before the run starts, agents never run
        resumed = self._resume(input) if input.resume is not None else []
        self._todo = [group.id for group in self._plan.groups if group.id not in resumed]

    @workflow.run
    async def run(self, input: PlanRunInput) -> dict[str, Any]:
        if self._invalid_carried is not None:
            # only a hand-made input gets here: say so rather than fail a task forever
            raise ApplicationError(self._invalid_carried, type="InvalidCarriedRun",
                                   non_retryable=True)
        waiting = [group for group in self._plan.groups if group.id in self._todo]
        running: dict[str, asyncio.Task[None]] = {}
        self._details()
        admitter = asyncio.create_task(self._admitter())
        if self._batcher is not None:
            self._details_due = True
            self._batcher.on_close(asyncio.create_task(self._details_writer()))
            assert self._clock is not None
            self._batcher.on_close(self._clock)
        try:
            # a shared pool (resource_pool.shared): lease from its workflow instead
            self._run.admission = await pool_lease.connect(self._run.admission,
                                                           self._plan.resources)
            if self._carried is not None:
                restore_admission(self._run.admission, self._carried.admission,
                                  shared=pool_lease.shared_pool(self._plan.resources) is not None)
            self._check_plan()
            while waiting or running:
                if self._continuation.draining:
                    if not running:
                        break
                else:
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
                        self._continuation.group_ended()
                if not self._continuation.draining and self._continuation.should_drain(
                        len(waiting)):
                    self._event("draining_for_continue_as_new", workflow.info().run_id)
            if self._validations:
                await workflow.wait(list(self._validations))
                for task in self._validations:
                    task.result()
        except (Exception, asyncio.CancelledError) as err:
            await self._cancel(list(running.values()) + self._validations)
            admitter.cancel()
            if self._batcher is not None:
                self._batcher.close()
            # the snapshots of groups that passed are what a resume of this run reuses
            await self._levels.settle()
            for group in waiting:
                self._groups[group.id].status = "cancelled"
                for agent_id in group.agents:
                    self._agents[agent_id].status = "cancelled"
            await pool_lease.close(self._run.admission)
            cancelled = is_cancelled_exception(err)
            message = err.message if isinstance(err, ApplicationError) else str(err)
            self._finish("cancelled" if cancelled else "failed", message)
            if isinstance(err, ApplicationError):
                # the report travels with the failure so the starter can still print it
                raise ApplicationError(
                    err.message, self._report(), type=err.type, non_retryable=True
                ) from None
            raise
        admitter.cancel()
        if self._batcher is not None:
            self._batcher.close()
        await pool_lease.close(self._run.admission)
        await self._levels.settle()
        if waiting:
            # drained (workflows/continuation.py): the rest of the plan runs in a new run
            await self._continue_as_new()
        self._warn_open_conflicts()
        self._finish("completed")
        return self._report()

    @staticmethod
    def _decode_carried(input: PlanRunInput) -> tuple[CarriedRun | None, str | None]:
        """The carried run, or why PlanRunInput.carried is not one."""
        if input.carried is None:
            return None, None
        try:
            return decode(input.carried), None
        except ValueError as err:
            return None, str(err)

    async def _continue_as_new(self) -> None:
        info = workflow.info()
        self._event("continued_as_new", info.run_id)
        workflow.logger.info("continuing as new after %d groups: %s",
                             self._continuation.groups_ended, self._continuation.reason)
        adapt = self._adapt
        carried = capture(
            self._run, info.run_id, self._cache_keys,
            AdaptiveRules(adapt.throttle, adapt.timeouts, adapt.cpu, adapt.caching),
            self._batcher.children if self._batcher is not None else 0,
            self._batcher.largest if self._batcher is not None else 0)
        self._details(now=True)
        await continue_as_new(self._input, carried)

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
        return self._ctx.values()

    @workflow.query
    def context_history(self, key: str) -> list[dict[str, Any]]:
        """Every version of `key`, oldest first: version, value_hash, writer, base_version, at,
        origin. Values are left out (they can be large); `context` has the current one."""
        return self._ctx.history_dicts(key)

    @workflow.query
    def conflicts(self) -> list[dict[str, Any]]:
        """Every conflict, open and closed (see workflows.state.conflict_report): resolve one
        with expected_version = its current_version."""
        return [conflict_report(self._run, c) for c in self._ctx.conflicts]

    @workflow.update(name="resolve_conflict")
    def resolve_conflict(self, request: ResolveConflict) -> dict[str, Any]:
        """Resolve an open conflict; returns the resolved conflict."""
        try:
            conflict = self._resolve(request)
        except ResolutionError as err:
            # another update resolved it between this one's validation and now
            raise ApplicationError(str(err), type="InvalidResolution",
                                   non_retryable=True) from None
        return conflict_report(self._run, conflict)

    @resolve_conflict.validator
    def validate_resolve_conflict(self, request: ResolveConflict) -> None:
        # a refusal here leaves no trace in history; the caller gets the message
        try:
            self._ctx.validate_resolution(request.conflict_id, request.choice,
                                          request.expected_version, request.value is not None)
        except ResolutionError as err:
            # resending the same resolution cannot help: say so (the CLI prints retryable)
            raise ApplicationError(str(err), type="InvalidResolution",
                                   non_retryable=True) from None

    @workflow.signal(name=GRANT_SIGNAL)
    def pool_grant(self, grant: PoolGrant) -> None:
        """A shared pool granted leases (workflows/pool_lease.py): the admitter starts them."""
        admission = self._run.admission
        if isinstance(admission, pool_lease.LeasedAdmission) and admission.accept(grant):
            self._released = True

    @workflow.signal(name="resolve_conflict")
    def resolve_conflict_signal(self, request: ResolveConflict) -> None:
        """Fire-and-forget resolution: an invalid one is logged and reported, never fatal."""
        try:
            self._resolve(request)
        except ResolutionError as err:
            workflow.logger.warning("resolve_conflict signal rejected: %s", err)
            self._run.rejected_resolutions.append({
                "at": self._at(), "conflict_id": request.conflict_id, "choice": request.choice,
                "by": request.by, "reason": str(err),
            })
            self._details()

    @workflow.signal(name=OUTCOMES_SIGNAL)
    def agent_outcomes(self, outcomes: list[AgentOutcome]) -> None:
        """Batch mode: agents an AgentBatchWorkflow child has finished before its chunk did."""
        if self._batcher is not None:
            self._batcher.deliver(outcomes)

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

    # --- resume -------------------------------------------------------------------------

    def _resume(self, input: PlanRunInput) -> list[str]:
        """Mark the earlier run's passed groups succeeded (resumed) and load its context values;
        returns the ids of the resumed groups. Issues no command: it runs in __init__."""
        resume = input.resume
        assert resume is not None
        self._run.resumed_from = resume.workflow_id
        self._levels.resumed(resume.snapshot_key)
        rerun = rerun_groups(self._plan.groups, resume.from_group)
        passed = set(resume.passed_groups)
        resumed = [g.id for g in self._plan.groups if g.id in passed and g.id not in rerun]
        # an agent's own keys are "agent.output": those of groups that run again are left out
        fresh = [a.id for a in self._plan.agents if a.group not in resumed]
        at = self._at()
        for key in sorted(resume.context):
            if key.split(".", 1)[0] in fresh and "." in key:
                continue
            if key in self._plan.inputs or key in input.inputs:
                # this run's inputs win over the earlier run's
                continue
            self._ctx.put(key, resume.context[key], "resume", at, origin="resume")
        for group_id in resumed:
            state = self._groups[group_id]
            state.status = "succeeded"
            state.decision = "resumed"
            state.reason = f"passed in run {resume.workflow_id}"
            state.resumed = True
            for agent_id in self._plan.group(group_id).agents:
                agent = self._agents[agent_id]
                agent.status = "succeeded"
                agent.resumed = True
                agent.outputs = [name for name in self._plan.agent(agent_id).outputs
                                 if f"{agent_id}.{name}" in resume.context]
            self._run.events.append({"seq": len(self._run.events) + 1, "at_s": 0.0,
                                     "event": "group_resumed", "id": group_id})
        return resumed

    # --- groups -------------------------------------------------------------------------

    async def _run_group(self, group: CompiledGroup) -> None:
        state = self._groups[group.id]
        state.status = "running"
        state.started_s = self._elapsed()
        timeout = self._group_timeout(group)
        state.deadline_s = None if timeout is None else round(state.started_s + timeout, 3)
        self._event("group_started", group.id)
        self._levels.prefetch(group, self._ctx)
        tasks: dict[str, asyncio.Task[None]] = {}
        # batch mode: (deadline, its DeadlineClock future) while the group waits for one
        deadline: tuple[float, asyncio.Future[None]] | None = None
        try:
            deadline_passed = False
            while True:
                now = self._elapsed()
                self._pause_deadline(group, now)
                if deadline_passed and state.deadline_s is not None:
                    # the timer fired: the deadline has passed whatever the clock rounding says
                    now = max(now, state.deadline_s)
                if state.deadline_s is None or now < state.deadline_s:
                    self._start_agents(group, tasks)
                    # an agent that has just been found blocked stops the clock from now on
                    self._pause_deadline(group, now)
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
                    unpaused: asyncio.Task[None] | None = None
                    if state.paused_since_s is not None:
                        # no deadline while paused; wake when no agent is blocked any more
                        unpaused = asyncio.create_task(workflow.wait_condition(
                            lambda: not self._group_blocked(group)))
                        live.append(unpaused)
                    elif state.deadline_s is not None:
                        remaining = max(0.0, state.deadline_s - now)
                        if self._clock is not None:
                            # batch mode: the run-wide deadline clock, not a timer per wake-up
                            if deadline is None or deadline[0] != state.deadline_s:
                                if deadline is not None:
                                    deadline[1].cancel()
                                deadline = (state.deadline_s,
                                            self._clock.until(state.deadline_s))
                            live.append(deadline[1])  # type: ignore[arg-type]
                            remaining = None
                    done, _ = await workflow.wait(
                        live, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                    )
                    if unpaused is not None and not unpaused.done():
                        unpaused.cancel()
                    await self._raise_agent_failure(group, tasks)
                    deadline_passed = (not done if self._clock is None
                                       else deadline is not None and deadline[1].done())
                    continue
                self._record(group, decision)
                if decision.action != barrier.EXTEND_TIMEOUT:
                    break
                state.extensions += 1
                state.deadline_s = decision.new_deadline_s
                deadline_passed = False
            if deadline is not None:
                deadline[1].cancel()
            await self._apply(group, decision, tasks)
            self._check_consistency(group)
            if state.status in PASSED:
                self._levels.snapshot(group.id, self._ctx, self._elapsed())
            if len(group.cross_validation) >= 2 and state.status in PASSED:
                if group.cross_validation_blocking:
                    await self._cross_validate(group)
                else:
                    self._validations.append(asyncio.create_task(self._cross_validate(group)))
        except asyncio.CancelledError:
            if deadline is not None:
                deadline[1].cancel()
            # another group failed or the run was cancelled: take our agents down with us
            await self._cancel(list(tasks.values()))
            for agent_id in group.agents:
                if self._agents[agent_id].status in ("pending", "blocked", "queued", "running"):
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
        # all of them submitted first, so the best goes first, not the first declared
        self._admit_soon(todo)

    def _group_blocked(self, group: CompiledGroup) -> bool:
        return any(self._agents[a].status == "blocked" for a in group.agents)

    def _pause_deadline(self, group: CompiledGroup, now_s: float) -> None:
        """Stop the group's clock while one of its agents is blocked on a conflict; when none is,
        move the deadline later by the time it stood still."""
        state = self._groups[group.id]
        blocked = self._group_blocked(group)
        if blocked and state.paused_since_s is None:
            state.paused_since_s = now_s
        elif not blocked and state.paused_since_s is not None:
            pause = max(0.0, now_s - state.paused_since_s)
            state.paused_s = round(state.paused_s + pause, 3)
            if state.deadline_s is not None:
                state.deadline_s = round(state.deadline_s + pause, 3)
            state.paused_since_s = None

    async def _raise_agent_failure(
        self, group: CompiledGroup, tasks: dict[str, asyncio.Task[None]]
    ) -> None:
        """An agent task that raised (a conflict timeout with policy fail) fails the group and
        the run: cancel the group's other agents and pass the ApplicationError on."""
        for task in tasks.values():
            if task.done() and not task.cancelled() and task.exception() is not None:
                await self._cancel(list(tasks.values()))
                for agent_id in group.agents:
                    if self._agents[agent_id].status in ("pending", "blocked", "queued", "running"):
                        self._agents[agent_id].status = "cancelled"
                self._end_group(group, "failed")
                raise task.exception()  # type: ignore[misc]

    def _barrier_view(self, group: CompiledGroup, now_s: float) -> barrier.BarrierView:
        state = self._groups[group.id]
        return barrier.BarrierView(
            group=group.id,
            agents=list(group.agents),
            states={a: self._agents[a].barrier_view() for a in group.agents},
            now_s=now_s,
            # while paused the deadline moves with the clock, so it is never reached
            deadline_s=state.deadline_at(now_s),
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
            self._admit([agent_id])
            # no group deadline here, so a blocked agent simply waits for its conflict
            await workflow.wait([tasks[agent_id]])
            await self._raise_agent_failure(group, tasks)
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
                name for name in agent.outputs if not self._ctx.has(f"{agent_id}.{name}")
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
        if state.paused_since_s is not None:
            # ended (cancelled, or an abort) while an agent was blocked: close the pause
            state.paused_s = round(state.paused_s + self._elapsed() - state.paused_since_s, 3)
            state.paused_since_s = None
        state.status = status
        state.ended_s = self._elapsed()
        self._event(f"group_{status}", group.id)

    # --- cross-validation ---------------------------------------------------------------

    async def _cross_validate(self, group: CompiledGroup) -> None:
        """Each validation agent that succeeded checks the other validation agents' outputs
        (activities.cross_validation, one `cross_validate` activity per validator, within
        validation_timeout x time_scale). Results go to the group's report and the run's
        output_quality_scores; a failed validation raises a warning.

        Non-blocking (the default) runs beside the rest of the plan. Blocking holds the group in
        status "validating" (dependents wait) and, when a validation fails, opens a consistency
        conflict on the context key `cross_validation.<group>` (which holds the results): the
        group passes once a person resolves it (resolve_conflict update or signal; any choice
        acknowledges the findings) or conflict_timeout applies timeout_policy (fail ends the
        run). The conflict covers only that key, so resolving never rewrites agents' outputs.
        Validation activities bypass resource admission: they are light, pure checks."""
        state = self._groups[group.id]
        blocking = group.cross_validation_blocking
        passed_as = state.status
        if blocking:
            state.status = "validating"
        agents = [self._plan.agent(a) for a in group.cross_validation if a in self._agents]
        outputs = {
            agent.id: {name: self._ctx.value(f"{agent.id}.{name}") for name in agent.outputs
                       if self._ctx.has(f"{agent.id}.{name}")}
            for agent in agents
        }
        declared = {agent.id: list(agent.outputs) for agent in agents}
        validators = [a for a in agents if self._agents[a.id].status == "succeeded"]
        timeout = timedelta(seconds=max(
            MIN_ACTIVITY_TIMEOUT_S,
            (group.cross_validation_timeout_s or DEFAULT_CROSS_VALIDATION_TIMEOUT_S)
            * self._scale))
        self._event("cross_validation_started", group.id)
        tasks = [
            asyncio.create_task(workflow.execute_activity(
                cross_validate,
                CrossValidationTask(group.id, agent.id, outputs, declared),
                task_queue=agent.task_queue,
                activity_id=f"{agent.id}#validates#{group.id}",
                start_to_close_timeout=timeout,
                schedule_to_close_timeout=timeout,
                retry_policy=RetryPolicy(maximum_attempts=2,
                                         initial_interval=timedelta(
                                             seconds=MIN_RETRY_INTERVAL_S)),
                summary=f"{agent.id} cross-validates group {group.id}",
            ))
            for agent in validators
        ]
        if tasks:
            await workflow.wait(tasks)
        validations: list[dict[str, Any]] = []
        for agent, task in zip(validators, tasks, strict=True):
            try:
                result: CrossValidationResult = task.result()
            except ActivityError as err:
                self._alert(group.id, "warning",
                            f"cross-validation by '{agent.id}' did not finish: "
                            f"{describe_error(err)}")
                validations += [{
                    "validator": agent.id, "validated": other.id, "passed": False, "score": 0.0,
                    "findings": [{"level": "error", "code": "validation_failed",
                                  "message": describe_error(err)}]}
                    for other in agents if other.id != agent.id]
                continue
            for v in result.validations:
                validations.append({"validator": v.validator, "validated": v.validated,
                                    "passed": v.passed, "score": v.score,
                                    "findings": list(v.findings)})
        failed = [v for v in validations if not v["passed"]]
        for v in failed:
            errors = "; ".join(f["message"] for f in v["findings"] if f["level"] == "error")
            self._alert(group.id, "warning",
                        f"cross-validation failed: {v['validator']} checked {v['validated']}: "
                        f"{errors}")
        scores = [float(v["score"]) for v in validations]
        state.cross_validation = {
            "validators": [a.id for a in agents],
            "blocking": blocking,
            "passed": not failed,
            "score": round(sum(scores) / len(scores), 3) if scores else 0.0,
            "validations": validations,
            "conflict": None,
        }
        self._event("cross_validation_passed" if not failed else "cross_validation_failed",
                    group.id)
        if blocking and failed:
            await self._hold_for_validation(group, failed)
        if blocking:
            state.status = passed_as
            self._details()

    async def _hold_for_validation(self, group: CompiledGroup,
                                   failed: list[dict[str, Any]]) -> None:
        """Blocking cross-validation failed: wait for the conflict that says so to close."""
        state = self._groups[group.id]
        key = f"cross_validation.{group.id}"
        self._ctx.put(key, state.cross_validation, "cross_validation", self._at(),
                      origin="cross_validation")
        pairs = ", ".join(f"{v['validator']}->{v['validated']}" for v in failed)
        conflict = self._ctx.open_consistency_conflict(
            [key], f"cross-validation of group '{group.id}' failed ({pairs}); dependents of the "
                   "group wait until it is resolved", self._at())
        assert state.cross_validation is not None
        state.cross_validation["conflict"] = conflict.id
        self._opened(conflict, group.id)
        due = self._conflict_due_s(conflict)
        remaining = max(0.0, round(due - self._elapsed(), 3))
        try:
            await workflow.wait_condition(lambda: conflict.status != ctx.OPEN,
                                          timeout=remaining,
                                          timeout_summary=f"conflict timeout {conflict.id}")
            return
        except asyncio.TimeoutError:
            pass
        try:
            self._time_out(conflict, group.id, f"(cross-validation of group '{group.id}')")
        except ApplicationError:
            self._end_group(group, "failed")
            raise

    def _group_timeout(self, group: CompiledGroup) -> float | None:
        # None (a lone agent) = bounded by the agent's own timeout, no barrier deadline
        if group.timeout_s is None:
            return None
        # plus what modify_timeout_values promised it for slow agents of its roles
        return max(0.0, float(group.timeout_s) * self._scale) + self._adapt.deadline_shift(
            group.id)

    # --- agents -------------------------------------------------------------------------

    def _launch(
        self, agent: CompiledAgent, group: CompiledGroup, *, fallback: bool
    ) -> asyncio.Task[None]:
        # mark the agent queued (or blocked) now, not when the task first runs; the caller then
        # admits what fits, so the barrier never sees a started agent as pending
        state = self._agents[agent.id]
        state.critical = False
        blocking = self._ctx.open_conflicts(agent.inputs)
        if blocking:
            state.status = "blocked"
            state.blocked_on = [c.id for c in blocking]
            state.blocked_since_s = self._elapsed()
            self._event("agent_blocked", agent.id)
        else:
            self._queue(agent)
        return asyncio.create_task(self._run_agent(agent, group, fallback))

    def _queue(self, agent: CompiledAgent) -> None:
        """Ready: ask admission for the agent's units (started by `_admit` when they fit)."""
        state = self._agents[agent.id]
        now = self._elapsed()
        state.status = "queued"
        state.queued_since_s = now
        self._run.admission.submit(Request(
            agent.id, float(agent.cpu), float(agent.memory), int(agent.priority),
            self._remaining.get(agent.id, 0.0), self._order[agent.id], now,
            planned=float(agent.admission_rank)))

    def _admit(self, submitted: list[str] | None = None) -> None:
        """Start every queued agent that fits now, best first; `submitted` agents that must
        wait get an agent_queued event."""
        now = self._elapsed()
        if self._throttle is not None:
            self._throttle.apply(self._run.admission, {a.id: a.group for a in self._plan.agents},
                                 now, lambda a: self._agents[a].status == "queued")
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
            self._elapsed(), cpu_in_use=admission.cpu_in_use, cpu_capacity=admission.pool.cpu,
            memory_in_use=admission.memory_in_use, memory_capacity=admission.pool.memory,
            queue_depth=len(admission.waiting), response_time=response_time_s, agent=agent_id)
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
                await self._until_unblocked(agent)
                self._queue(agent)
                self._admit([agent.id])
            if state.status == "queued":
                await workflow.wait_condition(lambda: state.status != "queued")
            async with self._context_slot(READ, agent.id):
                inputs, missing, versions = self._snapshot(agent)
            state.missing_inputs = missing
            state.snapshot = versions
            key = self._cache_key(agent, inputs)
            result = await self._cached(agent, key) if key is not None and not fallback else None
            cached = result is not None
            if result is None:
                result = await self._execute(agent, group, inputs, missing, versions, fallback,
                                             key)
            if result is None:
                return
            self._levels.count(result)
            async with self._context_slot(WRITE, agent.id):
                self._commit(agent, result)
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

    # --- agent output cache -------------------------------------------------------------
    # Consulted only when the plan opts in to cross-run reuse (agent_output_cache.ttl in
    # seconds): with the default session_lifetime nothing could ever hit in a fresh run, and a
    # plain run keeps issuing exactly the commands it always did. An adaptive plan listing
    # enable_aggressive_caching looks up from the start and stores across runs once it is on.

    def _cache_level(self) -> dict[str, Any]:
        """The plan's agent_output_cache settings; empty when caching is switched off."""
        caching = self._plan.caching or {}
        if caching.get("enabled", True) is False:
            return {}
        return (caching.get("cache_levels") or {}).get("agent_output_cache") or {}

    def _plan_cache_ttl_s(self) -> float | None:
        ttl = self._cache_level().get("ttl")
        return float(ttl) if isinstance(ttl, int | float) else None

    def _cache_ttl_s(self) -> float | None:
        """The plan's cross-run TTL, else enable_aggressive_caching's once it is on (None:
        this run only)."""
        plan_ttl = self._plan_cache_ttl_s()
        return plan_ttl if plan_ttl is not None else self._adapt.cache_store_ttl_s()

    def _cache_size_limit(self) -> int | None:
        limit = self._cache_level().get("size_limit")
        return int(limit) if isinstance(limit, int | float) else None

    def _cache_key(self, agent: CompiledAgent, inputs: dict[str, Any]) -> str | None:
        if self._cache_ttl_s() is None and not self._adapt.looks_up_cache:
            return None
        upstream = [self._cache_keys[d] for d in agent.depends_on if d in self._cache_keys]
        key = cache_key(agent, inputs, upstream)
        self._cache_keys[agent.id] = key
        return key

    async def _cached(self, agent: CompiledAgent, key: str) -> AgentResult | None:
        found = await workflow.execute_local_activity(
            lookup_cached_output, CacheLookup(key, workflow.info().run_id),
            start_to_close_timeout=timedelta(seconds=10),
            summary=f"cache lookup for agent {agent.id}",
        )
        self._run.cache_hits += found is not None
        self._run.cache_misses += found is None
        if found is None:
            return None
        return AgentResult(agent.id, dict(found.get("outputs") or {}),
                           dict(found.get("writes") or {}), attempt=0)

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
            progress_interval_s=self._progress_interval_s() if self._batcher is None else 0.0,
            large_value_threshold=int(threshold) if isinstance(threshold, int | float) else None,
            cache_key=key,
            cache_ttl_s=self._cache_ttl_s() if key is not None else None,
            cache_size_limit=self._cache_size_limit() if key is not None else None,
            plan_name=self._plan.name,
        )
        timeout = timedelta(
            seconds=max(
                MIN_ACTIVITY_TIMEOUT_S,
                (agent.timeout_s or self._plan.default_agent_timeout_s) * self._scale,
            )
        )
        how = "sequential fallback" if fallback else f"group {group.id}"
        # a new id for the fallback run: a fresh activity with fresh attempts
        activity_id = f"{agent.id}#fallback" if fallback else agent.id
        heartbeat = timedelta(seconds=self._heartbeat_timeout_s())
        summary = f"agent {agent.id} ({agent.role}), {how}"
        if self._batcher is not None:
            outcome = await self._batcher.run(AgentCall.of(
                task, activity_id, timeout, heartbeat, self._retry_policy(agent.retry), summary))
        else:
            try:
                outcome = AgentOutcome(agent.id, result=await workflow.execute_activity(
                    run_agent,
                    task,
                    task_queue=agent.task_queue,
                    activity_id=activity_id,
                    # the timeout bounds the whole execution, retries included
                    schedule_to_close_timeout=timeout,
                    start_to_close_timeout=timeout,
                    heartbeat_timeout=heartbeat,
                    retry_policy=self._retry_policy(agent.retry),
                    summary=summary,
                ))
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
        self._unblock(agent_id)
        if state.queued_since_s is not None:
            # cancelled while queued
            state.queue_wait_s = round(state.queue_wait_s + now - state.queued_since_s, 3)
            state.queued_since_s = None
        admission = self._run.admission
        if (agent_id in admission.running or any(r.agent_id == agent_id for r in admission.waiting)
                or pool_lease.holds(admission, agent_id)):
            admission.release(agent_id, now)
            self._released = True
        state.status = status
        state.ended_s = now
        self._event(f"agent_{status}", agent_id)
        ran = state.run_started_s is None and state.started_s is not None
        self._sample(state.duration_s(now) if ran else None, agent_id)
        if ran:
            self._adapt.after_agent(agent_id, state.duration_s(now) or 0.0)

    # --- context ------------------------------------------------------------------------

    def _snapshot(
        self, agent: CompiledAgent
    ) -> tuple[dict[str, Any], list[str], dict[str, int]]:
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
            outcome = self._ctx.commit(agent.id, key, result.outputs[name],
                                       self._ctx.current_version(key), at, own_key=True)
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
            self._run.rejected_writes.append({"at": self._at(), "agent": agent.id,
                                              "key": outcome.key, "owner": owner,
                                              "message": outcome.message})
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
        readers = [a.id for a in self._plan.agents
                   if self._agents[a.id].status in NOT_STARTED
                   and any(key in a.inputs for key in conflict.covered_keys())]
        waiting = (f"{', '.join(readers)} will wait until it is resolved" if readers
                   else "no agent yet to start reads it")
        self._alert(group_id, "warning",
                    f"conflict {conflict.id} on '{conflict.key}' ({conflict.kind}): "
                    f"{conflict.message}; {waiting}")
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
            if any(c.kind == "consistency" and c.paths == keys
                   for c in self._ctx.open_conflicts(keys)):
                continue
            message = rule.get("message") or f"{keys} must be {rule.get('must', 'equal')}"
            self._opened(self._ctx.open_consistency_conflict(keys, message, self._at()),
                         group.id)

    def _resolve(self, request: ResolveConflict) -> Conflict:
        """Apply a resolution (raises ResolutionError, changing nothing, when it is invalid)."""
        value = request.value if request.choice == "value" and request.value is not None \
            else MISSING
        conflict = self._ctx.resolve(request.conflict_id, request.choice, request.by or "user",
                                     self._at(), value=value,
                                     expected_version=request.expected_version)
        self._conflict_changes += 1
        self._event("conflict_resolved", conflict.id)
        return conflict

    def _conflict_due_s(self, conflict: Conflict) -> float:
        return round(self._run.conflict_opened_s.get(conflict.id, 0.0)
                     + self._run.conflict_timeout_s, 3)

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
                    self._time_out(conflict, agent.group, f"on '{conflict.key}'",
                                   f"; '{agent.id}' cannot start without it: "
                                   f"{conflict.message}")

    def _time_out(self, conflict: Conflict, group_id: str, subject: str,
                  consequence: str = "") -> None:
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
        self._alert(group_id, "warning",
                    f"conflict {conflict.id} {subject} not resolved within {waited}: "
                    f"{policy} applied")

    def _unblock(self, agent_id: str) -> None:
        state = self._agents[agent_id]
        if state.blocked_since_s is not None:
            state.blocked_s = round(state.blocked_s + self._elapsed() - state.blocked_since_s, 3)
            state.blocked_since_s = None
        state.blocked_on = []

    @asynccontextmanager
    async def _context_slot(self, kind: str, agent_id: str) -> AsyncIterator[None]:
        """Hold a context reader or writer slot (workflows/locks.py); waiting for one is
        bounded by lock_timeout and measured for the report."""
        limits = self._run.limits
        if not limits.free(kind):
            began = self._elapsed()
            try:
                await workflow.wait_condition(lambda: limits.free(kind),
                                              timeout=limits.lock_timeout_s,
                                              timeout_summary=f"context {kind} slot")
            except asyncio.TimeoutError:
                limits.waited(agent_id, self._elapsed() - began)
                raise ContextLockTimeout(
                    f"no context {kind} slot came free within {limits.lock_timeout_s:g} s "
                    f"(resource_pool.context_store)") from None
            limits.waited(agent_id, self._elapsed() - began)
        limits.take(kind)
        try:
            yield
        finally:
            limits.release(kind)

    def _warn_open_conflicts(self) -> None:
        for conflict in self._ctx.open_conflicts():
            self._alert("", "warning",
                        f"run ended with conflict {conflict.id} on '{conflict.key}' unresolved: "
                        "nobody was waiting for it; the current value stands")

    def _fill_defaults(self, agent: CompiledAgent) -> None:
        state = self._agents[agent.id]
        for name in agent.outputs:
            key = f"{agent.id}.{name}"
            if not self._ctx.has(key) and name in agent.defaults:
                self._ctx.put(key, agent.defaults[name], agent.id, self._at(), origin="default")
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
        pool = self._run.admission.pool
        problems += [
            f"agent '{a.id}' needs cpu {a.cpu:g}/memory {a.memory:g} but the pool admits at most "
            f"{pool.cpu:g}/{pool.memory:g}: lower its resource_requirements or raise "
            "resource_pool.computational"
            for a in self._plan.agents
            if not self._run.admission.fits_ever(
                Request(a.id, float(a.cpu), float(a.memory), int(a.priority)))
        ]
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

    def _at(self) -> str:
        """Now as ISO 8601 (context versions and conflicts carry it)."""
        return iso_at(self._run.started, self._elapsed()) or ""

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

    def _details(self, now: bool = False) -> None:
        if self._batcher is not None and not now:
            # batch mode: once per activation (the details walk every group: per event that
            # is O(events x groups) and trips the 2 s deadlock detector on large plans)
            self._details_due = True
            return
        workflow.set_current_details(
            current_details(self._run, self._elapsed(), workflow.info().workflow_id))
        self._search.sync(self._run)

    async def _details_writer(self) -> None:
        while True:
            await workflow.wait_condition(lambda: self._details_due)
            self._details_due = False
            self._details(now=True)

    def _finish(self, status: str, error: str | None = None) -> None:
        self._run.status = status
        self._run.error = error
        self._run.ended_s = self._elapsed()
        self._details(now=True)

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
        report = build_report(self._run, info.workflow_id, info.run_id, self._elapsed())
        if self._batcher is not None:
            report["batch"] = self._batcher.summary()
        return report


def rerun_groups(groups: list[CompiledGroup], from_group: str | None) -> set[str]:
    """`from_group` and every group that depends on it, directly or not."""
    if from_group is None:
        return set()
    found = {from_group}
    changed = True
    while changed:
        changed = False
        for group in groups:
            if group.id not in found and any(dep in found for dep in group.depends_on):
                found.add(group.id)
                changed = True
    return found


def unique(items: list[str]) -> list[str]:
    return [item for index, item in enumerate(items) if item not in items[:index]]


def in_order(declared: list[str], returned: dict[str, Any]) -> list[str]:
    return [k for k in declared if k in returned] + [k for k in returned if k not in declared]


def context_policy(plan: CompiledPlan) -> ContextPolicy:
    """Ownership from CompiledPlan.context: the seed's ownership_rules (role or agent -> keys)
    resolved to agent ids, every agent owning its "<id>.<output>" keys, and the violation
    policy (reject, or open an ownership conflict)."""
    settings = plan.context or {}
    mechanisms = settings.get("resolution_mechanisms") or {}
    prevention = mechanisms.get("conflict_prevention") or {}
    rules = prevention.get("ownership_rules") or {}
    roles = {agent.id: agent.role for agent in plan.agents}
    return ContextPolicy(
        owners=ctx.owners_from_rules(rules, roles),
        ownership_violation=str(settings.get("ownership_violation", "reject")),
        agents=[agent.id for agent in plan.agents],
    )
