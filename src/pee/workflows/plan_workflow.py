"""PlanWorkflow: runs a CompiledPlan's groups eagerly on their DAG, each agent as one activity.

A group starts the moment every group it depends on has passed its barrier, never level by level.
A parallel group starts all its agents together; a sequential one runs them in list order. The
smart barrier (pee.engine.rules.barrier) judges the group when it starts, whenever an agent finishes
and at the deadline; the workflow carries out what it decides: wait, extend the deadline, cancel and
fill defaults, or cancel and re-run the group's unfinished agents one at a time.

"Making progress" means the agent's activity heartbeat recently: at a reached deadline one recorded
local activity describes the run's pending activities (pee.activities.liveness). An agent whose
activity no worker has started yet (or whose outcome is on its way) is engine or worker lag, not
the agent's time: its deadline is postponed. Runs recorded before that (no `liveness-from-describe`
marker) had agents report progress by the `agent_progress` signal, still handled.

Context (pee.engine.rules.context): plan and run inputs, agents' outputs ("agent.output", their own
keys) and shared keys live in a VersionedContext. An agent gets a snapshot of its inputs, optional
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
- Context store limits (src/pee/workflows/locks.py): snapshots take a reader slot and commits a
writer
  slot; both are instantaneous in workflow code, so today nobody ever waits and
  context_lock_wait_s is 0; a wait (bounded by lock_timeout, then the agent fails) appears only if
  a holder ever awaits while holding its slot.

Resources (pee.engine.rules.scheduler.Admission, one per run, built from CompiledPlan.resources: CPU
and memory units, concurrent_agent_limit, cpu_oversubscription, memory_strict; a hand-built plan
without a resource_pool gets an unlimited one). An agent whose group has reached it is ready: it
is submitted ("queued") and starts only when admitted, best first by priority (aged one level per
AGING_S x time_scale of waiting), then the longest remaining path (pee.engine.rules.scheduler.
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

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import (
    ApplicationError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    # one statement: each costs every run a pass through the sandbox's importer
    # (pee.workflows.plan_workflow_imports)
    from pee.workflows.plan_workflow_imports import (
        GRANT_SIGNAL,
        OUTCOMES_SIGNAL,
        Adaptation,
        Admission,
        AgentCache,
        AgentOutcome,
        AgentProgress,
        AgentRunner,
        AgentState,
        AgentStatus,
        AgentTiming,
        BarrierAction,
        Batcher,
        CacheLevels,
        CarriedRun,
        CompiledGroup,
        CompiledPlan,
        ConflictDesk,
        ContextGate,
        ContextLimits,
        ContextPolicy,
        Continuation,
        CrossValidator,
        DeadlineClock,
        FinalReport,
        GroupDriver,
        GroupState,
        GroupStatus,
        Ledger,
        Monitor,
        PlanRunInput,
        Pool,
        PoolGrant,
        ReadyGroups,
        Request,
        RunScope,
        RunSearchAttributes,
        RunState,
        RunStatus,
        Settings,
        VersionedContext,
        cancel_all,
        capture,
        children_ended,
        continue_as_new,
        ctx,
        decode,
        gc_paused,
        groups_to_run,
        item_batch,
        paused_gc,
        plan_cache_ttl_s,
        plan_facts,
        pool_lease,
        release_at_eviction,
        restore,
        restore_admission,
        revision,
        simulate,
        time_scale_problems,
    )

with workflow.unsafe.imports_passed_through():
    # the modules of what this workflow decodes (its input, signals', updates' and activities'
    # results), named here so they join the sandbox's sys.modules: the payload converter
    # resolves their type hints there (PlanRunInput.plan, AgentOutcome, AgentResult, Liveness,
    # CrossValidationResult.validations; a type whose hints name builtins only needs none).
    # `import a.b`, as a from-import of a submodule the package already holds does not put it
    # in the sandbox's sys.modules (tests/test_plan_workflow_imports.py)
    import pee.activities.cross_validation
    import pee.activities.liveness
    import pee.activities.types
    import pee.engine.compiled
    import pee.workflows.agent_outcome
    import pee.workflows.types  # noqa: F401


# admission bounds at time_scale 1 (seconds): a waiting agent gains one priority level per
# AGING_S, and after RESERVE_AFTER_S nothing ranked below it overtakes it any more
AGING_S = 60.0
RESERVE_AFTER_S = 120.0

# batch-mode barriers treat running agents as alive (PlanWorkflow._agent_views)
LIVENESS_PATCH = "batch-liveness-by-heartbeat"

# at a group deadline one recorded local activity asks the server where the running agents'
# activities are and when they last heartbeat (pee.activities.liveness): agents send no
# progress signals, and an agent no worker has started yet does not count against the deadline
DESCRIBE_PATCH = "liveness-from-describe"

# a hand-made input whose durations x time scale no run can wait for fails the run with the
# reason (it used to raise OverflowError on every workflow task); valid inputs never ask
TIME_LIMITS_PATCH = "durations-within-limits"
# the timer that ends an activation which left ready groups for the next one
NUDGE_S = 0.001


@workflow.defn
class PlanWorkflow:
    """The plan run. It drives groups and barriers itself and owns one collaborator per job,
    each with its own state, built in __init__ and passed what it needs: RunScope (clock and
    recorders), ConflictDesk (every conflict), ContextGate (snapshots, commits), AgentTiming,
    AgentCache, AgentRunner (an agent from ready to ended), CrossValidator. Its query, update and
    signal handlers delegate to them in one line."""

    @workflow.init
    @gc_paused
    def __init__(self, input: PlanRunInput) -> None:
        # first, so a run's one patch marker is its first command (pee.workflows.revision)
        revision.current()
        self._input = input
        self._plan = input.plan
        self._scale = float(input.time_scale)
        settings = self._plan.context
        self._run = RunState(
            plan=self._plan,
            started=workflow.now(),
            time_scale=self._scale,
            agents={agent.id: AgentState() for agent in self._plan.agents},
            groups={group.id: GroupState() for group in self._plan.groups},
            # "agent.output" keys, plan inputs and shared keys, every write a version
            context=VersionedContext(context_policy(self._plan)),
            conflict_timeout_s=max(0.0, settings.conflict_timeout_s * self._scale),
            limits=ContextLimits.from_resources(self._plan.resources, self._scale),
        )
        self._agents = self._run.agents
        self._groups = self._run.groups
        self._ctx = self._run.context
        # the run's clock and recorders; PeePlan/PeeStatus/PeeGroup for the Web UI list, only
        # when the server has them (src/pee/workflows/run_scope.py)
        self._scope = RunScope(
            input,
            self._run,
            RunSearchAttributes(input.search_attributes),
        )
        # context snapshots after barriers, prefetching, worker-side cache counters
        self._levels = CacheLevels(self._plan, self._run)
        # batch mode (src/pee/workflows/batcher.py): agents run in AgentBatchWorkflow children
        # a carried run no run wrote (a hand-made input) fails the run at its start, in run()
        carried, self._invalid_carried = self._decode_carried(input)
        self._carried = carried
        self._batcher = (
            Batcher(
                input.batch,
                carried.batch_children if carried else 0,
                carried.batch_largest if carried else 0,
            )
            if input.batch is not None
            else None
        )
        # liveness from the server at deadlines, no progress signals (runs recorded before it
        # keep their signals and the rules below)
        self._observe = revision.patched(DESCRIBE_PATCH)
        # batch mode, and every run since liveness-from-describe: group deadlines share one
        # timer (src/pee/workflows/deadline_timer.py), not a new timer per group wake-up
        self._clock = (
            DeadlineClock(self._scope.elapsed, withdraw=self._observe)
            if self._batcher is not None or self._observe
            else None
        )
        if self._batcher is not None or input.item_batch:
            # per-group snapshot and prefetch commands would grow the history with the plan (a
            # batch of fan-out items has a group per agent, and nothing resumes it: its parent
            # does)
            self._levels.per_group = False
        # batch mode: running agents count as making progress (see _agent_views); patched, as
        # it changes the barrier decisions of batch runs recorded before it
        self._liveness_by_heartbeat = (
            not self._observe and self._batcher is not None and revision.patched(LIVENESS_PATCH)
        )
        # agents that never heartbeat (simulate `heartbeat: false`), found once: every barrier
        # decision of a batch run looks them up
        self._silent = (
            frozenset(
                a.id
                for a in self._plan.agents
                if a.kind == "simulate" and not simulate.parse_settings(a).heartbeat
            )
            if self._liveness_by_heartbeat
            else frozenset()
        )
        # an agent activity's timeouts, heartbeats, progress window and retries
        self._timing = AgentTiming(self._plan, self._scale, input.heartbeat_timeout_s)
        # every conflict, opened to closed; how agents meet the context
        self._desk = ConflictDesk(self._scope, settings.timeout_policy)
        self._gate = ContextGate(self._scope, self._desk)
        self._run.admission = Admission(
            Pool.from_resources(self._plan.resources),
            aging_s=max(1e-3, AGING_S * self._scale),
            reserve_after_s=RESERVE_AFTER_S * self._scale,
            fifo=input.admission == "fifo",
        )
        self._run.monitor = Monitor(Settings.from_resources(self._plan.resources, self._scale))
        # adaptive: true + the seed's adaptive_resource_allocation actions: slow agents lower
        # their group's concurrency, move deadlines, raise the CPU to hand out, switch on
        # cross-run caching (pee.engine.rules.adaptive); every rule None for every other plan
        self._adapt = Adaptation.from_plan(
            self._plan,
            self._run,
            self._scale,
            plan_cache_ttl_s(self._plan),
            self._plan.caching.enabled,
            self._scope.event,
            self._scope.alert,
            self._scope.elapsed,
        )
        # the agent output cache; its keys carry their lineage (and a continuation's, below)
        self._cache = AgentCache(self._scope, self._adapt)
        # the report the run returned (set as it returns)
        self._final: FinalReport | None = None
        # agents from ready to ended: admission, snapshot, cache, activity, commit
        self._runner = AgentRunner(
            self._scope,
            self._desk,
            self._gate,
            self._timing,
            self._cache,
            self._levels,
            self._adapt,
            self._batcher,
            signals=not self._observe,
        )
        # cross-validation after a group's barrier (non-blocking ones awaited at the end)
        self._validator = CrossValidator(self._scope, self._desk)
        # each group from its start to its end: agents, barrier, consistency, validation
        self._driver = GroupDriver(
            self._scope,
            self._runner,
            self._desk,
            self._gate,
            self._validator,
            self._timing,
            self._levels,
            self._adapt,
            self._clock,
            liveness_by_heartbeat=self._liveness_by_heartbeat,
            silent=self._silent,
            observe=self._observe,
            batcher=self._batcher,
        )
        # continue-as-new (src/pee/workflows/continuation.py): drain, then hand the run on
        self._continuation = Continuation(
            input.continue_as_new_after, on_suggestion=input.ledger is None
        )
        # report rows to the run store as groups end (src/pee/workflows/ledger.py)
        self._ledger = (
            Ledger(input.ledger, self._scope, carried.ledger if carried is not None else None)
            if input.ledger is not None
            else None
        )
        if carried is not None:
            # a continuation: the run so far, inputs and resumed groups included, is carried
            try:
                restore(self._run, carried)
            except ValueError as err:
                self._invalid_carried = str(err)
            self._cache.cache_keys = dict(carried.cache_keys)
            self._adapt.restore(carried.adaptive)
            self._todo = groups_to_run(self._run)
            return
        at = self._scope.at()
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
            raise ApplicationError(
                self._invalid_carried, type="InvalidCarriedRun", non_retryable=True
            )
        with paused_gc():  # see gc_paused: the first workflow task builds per-agent state
            facts = plan_facts.facts(self._plan)
            bounds = (
                None if facts.min_s is None or facts.max_s is None else (facts.min_s, facts.max_s)
            )
            too_long = time_scale_problems(
                self._plan, self._scale, input.heartbeat_timeout_s, bounds=bounds
            )
        # only an input `run`/`compile` would have refused reaches this: the marker goes only
        # into such runs' histories, so every other run issues the commands it always did
        if too_long and revision.patched(TIME_LIMITS_PATCH):
            raise ApplicationError(
                "cannot run this input: " + "; ".join(too_long),
                type="DurationOutOfRange",
                non_retryable=True,
            )
        todo = set(self._todo)
        # insertion-ordered (plan order): starting a group removes it in O(1)
        waiting = {group.id: group for group in self._plan.groups if group.id in todo}
        # which waiting groups can start, without a walk over all of them per group end
        ready = ReadyGroups(self._plan.groups)
        running: dict[str, asyncio.Task[None]] = {}
        # a short timer while ready groups wait for the next activation (ready.deferred)
        nudge: asyncio.Task[None] | None = None
        self._scope.details()
        admitter = asyncio.create_task(self._runner.admitter())
        # the details text, once per activation (RunScope.details)
        writer = asyncio.create_task(self._scope.details_writer())
        # frees the ended run's state when the worker evicts it (workflows/eviction.py)
        self._release = asyncio.create_task(
            release_at_eviction(self, self._run_ended, self._own_parts)
        )
        if self._batcher is not None:
            assert self._clock is not None
            self._batcher.on_close(self._clock)
        try:
            # a shared pool (resource_pool.shared): lease from its workflow instead
            self._run.admission = await pool_lease.connect(
                self._run.admission, self._plan.resources
            )
            if self._carried is not None:
                restore_admission(
                    self._run.admission,
                    self._carried.admission,
                    shared=self._plan.resources.shared is not None,
                )
            self._check_plan()
            while waiting or running:
                if self._continuation.draining:
                    if not running:
                        break
                else:
                    for group in ready.take(waiting, self._groups):
                        running[group.id] = asyncio.create_task(self._driver.run_group(group))
                    if ready.deferred and (nudge is None or nudge.done()):
                        # the rest of the ready groups start in the next activation
                        # (ReadyGroups.START_BATCH): a timer ends this one
                        nudge = asyncio.create_task(
                            workflow.sleep(NUDGE_S, summary="start the next ready groups")
                        )
                if not running:
                    stuck = list(waiting)
                    raise ApplicationError(
                        f"groups {stuck} can never start: their dependencies never pass",
                        type="PlanDeadlock",
                        non_retryable=True,
                    )
                awaited = list(running.values())
                if nudge is not None and not nudge.done():
                    awaited.append(nudge)
                await workflow.wait(awaited, return_when=asyncio.FIRST_COMPLETED)
                for group_id in list(running):
                    if running[group_id].done():
                        if input.item_batch:
                            # a failed item ends its own chain only (workflows/item_batch.py)
                            item_batch.absorb(running.pop(group_id), group_id, waiting, self._scope)
                        else:
                            # re-raises a failed group's ApplicationError
                            running.pop(group_id).result()
                        self._continuation.group_ended()
                        if self._ledger is not None:
                            self._ledger.group_ended(self._plan.group(group_id))
                if waiting or running:
                    # the run goes on: the snapshots of the groups that passed are kept
                    self._levels.store_held()
                if not self._continuation.draining and self._continuation.should_drain(
                    len(waiting)
                ):
                    self._scope.event("draining_for_continue_as_new", workflow.info().run_id)
            if nudge is not None and not nudge.done():
                nudge.cancel()
            if self._validator.pending:
                await workflow.wait(list(self._validator.pending))
                for task in self._validator.pending:
                    task.result()
        except (Exception, asyncio.CancelledError) as err:
            await cancel_all(list(running.values()) + self._validator.pending)
            admitter.cancel()
            writer.cancel()
            if self._batcher is not None:
                self._batcher.close()
            if self._clock is not None:
                self._clock.close()
            # the snapshots of groups that passed are what a resume of this run reuses
            await self._levels.settle()
            for group in waiting.values():
                self._groups[group.id].status = GroupStatus.CANCELLED
                for agent_id in group.agents:
                    self._agents[agent_id].status = AgentStatus.CANCELLED
            await pool_lease.close(self._run.admission)
            cancelled = is_cancelled_exception(err)
            message = err.message if isinstance(err, ApplicationError) else str(err)
            self._scope.finish(RunStatus.CANCELLED if cancelled else RunStatus.FAILED, message)
            if self._ledger is not None:
                await self._ledger.settle()
            if isinstance(err, ApplicationError):
                # the report travels with the failure so the starter can still print it
                raise ApplicationError(
                    err.message, self._report(), type=err.type, non_retryable=True
                ) from None
            raise
        admitter.cancel()
        writer.cancel()
        if self._batcher is not None:
            self._batcher.close()
        if self._clock is not None:
            self._clock.close()
        await pool_lease.close(self._run.admission)
        await self._levels.settle(completing=not waiting)
        if waiting:
            # drained (src/pee/workflows/continuation.py): the rest of the plan runs in a new run
            await self._continue_as_new()
        self._desk.warn_open()
        self._scope.finish(RunStatus.COMPLETED)
        if self._ledger is not None:
            await self._ledger.settle()
        # kept: a `status` query of the ended run answers with it (workflows/final_report.py)
        report = self._final = FinalReport(self._report())
        if input.item_outputs is not None:
            # an item of a parent's fan-out: the parent collects these into its lists
            report["item_outputs"] = {
                key: self._ctx.value(key) for key in input.item_outputs if self._ctx.has(key)
            }
        return report

    def _run_ended(self) -> bool:
        return self._run.ended_s is not None

    def _own_parts(self) -> tuple[object, ...]:
        """The collaborators made for this run alone (their cycles hold every agent's state)."""
        # the plan too: decoded from this run's input (the SDK's frame of the run keeps it)
        return (
            self._plan,
            self._run,
            self._scope,
            self._levels,
            self._timing,
            self._desk,
            self._gate,
            self._adapt,
            self._cache,
            self._runner,
            self._validator,
            self._driver,
            self._continuation,
        )

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
        await children_ended(self._batcher)
        info = workflow.info()
        self._scope.event("continued_as_new", info.run_id)
        if self._ledger is not None:
            # what the continuation need not carry: the ended groups' rows and the events
            await self._ledger.settle()
        workflow.logger.info(
            "continuing as new after %d groups: %s",
            self._continuation.groups_ended,
            self._continuation.reason,
        )
        carried = capture(
            self._run,
            info.run_id,
            self._cache.cache_keys,
            self._adapt.rules(),
            self._batcher.children if self._batcher is not None else 0,
            self._batcher.largest if self._batcher is not None else 0,
            ledger=self._ledger.carry() if self._ledger is not None else None,
        )
        self._scope.details(now=True)
        await continue_as_new(self._input, carried)

    # --- queries and signals --------------------------------------------------------------

    @workflow.query
    def status(self) -> dict[str, Any]:
        """The run report so far (the same shape as the workflow result); once the run has
        returned, the result itself."""
        return self._final if self._final is not None else self._report()

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
        """Every conflict, open and closed (see pee.workflows.state.conflict_report): resolve one
        with expected_version = its current_version."""
        return self._desk.report_rows()

    @workflow.update(name="resolve_conflict")
    def resolve_conflict(self, *payloads: Any) -> dict[str, Any]:
        """Resolve an open conflict; returns the resolved conflict. Takes any payload (see
        src/pee/workflows/resolution.py): a malformed one is recorded and refused, never retried."""
        return self._desk.resolve_update(payloads)

    @resolve_conflict.validator
    def validate_resolve_conflict(self, *payloads: Any) -> None:
        # a refusal here leaves no trace in history; the caller gets the message
        self._desk.validate_update(payloads)

    @workflow.signal(name=GRANT_SIGNAL)
    def pool_grant(self, grant: PoolGrant) -> None:
        """A shared pool granted leases (src/pee/workflows/pool_lease.py): the admitter starts
        them."""
        admission = self._run.admission
        if isinstance(admission, pool_lease.LeasedAdmission) and admission.accept(grant):
            self._runner.released = True

    @workflow.signal(name="resolve_conflict")
    def resolve_conflict_signal(self, *payloads: Any) -> None:
        """Fire-and-forget resolution: an invalid or malformed one is logged and reported,
        never fatal, never dropped."""
        self._desk.resolve_signal(payloads)

    @workflow.signal(name=OUTCOMES_SIGNAL)
    def agent_outcomes(self, outcomes: list[AgentOutcome]) -> None:
        """Batch mode: agents an AgentBatchWorkflow child has finished before its chunk did."""
        if self._batcher is not None:
            self._batcher.deliver(outcomes)

    @workflow.signal(name="agent_progress")
    def agent_progress(self, progress: AgentProgress) -> None:
        """A working agent says it is alive; the barrier's extension rule reads the time."""
        self._runner.progress(progress)

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
        at = self._scope.at()
        for key in sorted(resume.context):
            if key.split(".", 1)[0] in fresh and "." in key:
                continue
            if key in self._plan.inputs or key in input.inputs:
                # this run's inputs win over the earlier run's
                continue
            self._ctx.put(key, resume.context[key], "resume", at, origin="resume")
        for group_id in resumed:
            state = self._groups[group_id]
            state.status = GroupStatus.SUCCEEDED
            state.decision = BarrierAction.RESUMED
            state.reason = f"passed in run {resume.workflow_id}"
            state.resumed = True
            for agent_id in self._plan.group(group_id).agents:
                agent = self._agents[agent_id]
                agent.status = AgentStatus.SUCCEEDED
                agent.resumed = True
                agent.outputs = [
                    name
                    for name in self._plan.agent(agent_id).outputs
                    if f"{agent_id}.{name}" in resume.context
                ]
            self._run.events.append(
                {
                    "seq": len(self._run.events) + 1,
                    "at_s": 0.0,
                    "event": "group_resumed",
                    "id": group_id,
                }
            )
        return resumed

    # --- bookkeeping --------------------------------------------------------------------

    def _check_plan(self) -> None:
        # the usual case from the plan's facts (pee.engine.rules.plan_facts), not a walk over
        # every group and agent in the first workflow task; the walk says what is wrong
        facts = plan_facts.facts(self._plan)
        pool = self._run.admission.pool
        if (
            facts.consistent
            and facts.max_cpu is not None
            and facts.max_memory is not None
            and self._run.admission.fits_ever(Request("", facts.max_cpu, facts.max_memory, 0))
        ):
            return
        problems = []
        for group in self._plan.groups:
            problems += [
                f"group '{group.id}' depends on unknown group '{d}'"
                for d in group.depends_on
                if d not in self._groups
            ]
            problems += [
                f"group '{group.id}' lists unknown agent '{a}'"
                for a in group.agents
                if a not in self._agents
            ]
        problems += [
            f"agent '{a.id}' needs cpu {a.cpu:g}/memory {a.memory:g} but the pool admits at most "
            f"{pool.cpu:g}/{pool.memory:g}: lower its resource_requirements or raise "
            "resource_pool.computational"
            for a in self._plan.agents
            if not self._run.admission.fits_ever(
                Request(a.id, float(a.cpu), float(a.memory), int(a.priority))
            )
        ]
        if problems:
            raise ApplicationError(
                "invalid compiled plan: " + "; ".join(problems),
                type="InvalidCompiledPlan",
                non_retryable=True,
            )

    def _report(self) -> dict[str, Any]:
        batch = self._batcher.summary() if self._batcher is not None else None
        if self._ledger is not None:
            return self._ledger.summary(batch)
        return self._scope.report(batch)


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


def context_policy(plan: CompiledPlan) -> ContextPolicy:
    """Ownership from CompiledPlan.context: the seed's ownership_rules (role or agent -> keys)
    resolved to agent ids, every agent owning its "<id>.<output>" keys, and the violation
    policy (reject, or open an ownership conflict)."""
    rules = {rule.owner: rule.keys for rule in plan.context.ownership_rules}
    roles = {agent.id: agent.role for agent in plan.agents}
    return ContextPolicy(
        owners=ctx.owners_from_rules(rules, roles),
        ownership_violation=plan.context.ownership_violation,
        agents=[agent.id for agent in plan.agents],
    )
