"""GroupDriver: one group of a plan run from its start to its end. It starts the group's agents
(src/pee/workflows/agent_runner.py), asks the smart barrier (pee.engine.rules.barrier) when the
group starts, whenever an agent finishes and at the deadline, and carries out what it decides:
wait, extend the deadline, cancel and fill defaults, or cancel and re-run the unfinished agents
one at a time. After the barrier it checks the plan's consistency rules (ConflictDesk), takes
the group's context snapshot (CacheLevels) and cross-validates (CrossValidator).

Its own state is how a batch run judges liveness (`liveness_by_heartbeat`, `silent`); the rest
is the RunState's. The commands it issues are exactly those PlanWorkflow issued
(tests/test_replay.py)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pee.activities.liveness import (
        ActivityLiveness,
        Liveness,
        LivenessQuery,
        LivenessTarget,
        describe_liveness,
    )
    from pee.engine.compile.fan_out_slice import is_expanded
    from pee.engine.compiled import CompiledGroup
    from pee.engine.rules import barrier
    from pee.engine.states import (
        AGENT_UNFINISHED,
        GROUP_PASSED,
        ActivityState,
        AgentStatus,
        GroupStatus,
    )
    from pee.workflows import revision
    from pee.workflows.adaptation import Adaptation
    from pee.workflows.agent_timing import AgentTiming
    from pee.workflows.barrier_views import AgentViews, must_wait
    from pee.workflows.batcher import Batcher
    from pee.workflows.cache_levels import CacheLevels
    from pee.workflows.conflict_desk import ConflictDesk
    from pee.workflows.context_gate import ContextGate
    from pee.workflows.deadline_timer import DeadlineClock
    from pee.workflows.fan_out_driver import FanOutDriver
    from pee.workflows.group_wake import GroupWake
    from pee.workflows.run_scope import RunScope

if TYPE_CHECKING:
    # for the annotations only
    from pee.workflows.agent_runner import AgentRunner
    from pee.workflows.cross_validator import CrossValidator


# barrier.decide's answer while agents are unfinished and the deadline is ahead (must_wait):
# a WAIT is not recorded, so its reason (which lists the unfinished agents) is never read
WAITING = barrier.BarrierDecision(barrier.WAIT, "waiting for unfinished agents")

# at a group deadline, the time between the run handing an agent over and a worker starting it
# is given back to the group (barrier row 4b): runs recorded before keep their decisions
LAG_PATCH = "deadline-gives-back-worker-lag"


class GroupDriver:
    def __init__(
        self,
        scope: RunScope,
        runner: AgentRunner,
        desk: ConflictDesk,
        gate: ContextGate,
        validator: CrossValidator,
        timing: AgentTiming,
        levels: CacheLevels,
        adapt: Adaptation,
        clock: DeadlineClock | None,
        *,
        liveness_by_heartbeat: bool,
        silent: frozenset[str],
        observe: bool = False,
        batcher: Batcher | None = None,
    ) -> None:
        self.scope = scope
        self.runner = runner
        self.desk = desk
        self.gate = gate
        self.validator = validator
        self.timing = timing
        self.levels = levels
        # read live: a continuation restores its rules after construction
        self.adapt = adapt
        # batch mode: group deadlines share one timer
        self.clock = clock
        # batch mode: running agents count as making progress (see agent_views)
        self.liveness_by_heartbeat = liveness_by_heartbeat
        # agents that never heartbeat (simulate `heartbeat: false`)
        self.silent = silent
        # groups that run once per item hand over to it (src/pee/workflows/fan_out_driver.py)
        self.fan_outs = FanOutDriver(scope, runner, levels)
        # liveness from the server at deadlines (pee.activities.liveness), no progress signals
        self.observe = observe
        # batch mode: where each agent's activity runs
        self.batcher = batcher
        # each agent's barrier view, made again only when the agent changed
        self.views = AgentViews()
        # worker lag (barrier row 4b), asked once at the first observation (LAG_PATCH): agent
        # -> seconds between its hand-over and a worker starting its first attempt, and per
        # group what postponements gave back already
        self.count_lag: bool | None = None
        self.lag: dict[str, float] = {}
        self.lag_given: dict[str, float] = {}

    async def run_group(self, group: CompiledGroup) -> None:
        if group.fan_out is not None and not is_expanded(group):
            # it expands the group into one instance per item, then runs it here
            await self.fan_outs.run(group, self.run_group)
            return
        state = self.scope.groups[group.id]
        state.status = GroupStatus.RUNNING
        state.started_s = self.scope.elapsed()
        self.scope.run.running[group.id] = None
        timeout = self.group_timeout(group)
        state.deadline_s = None if timeout is None else round(state.started_s + timeout, 3)
        self.scope.event("group_started", group.id)
        self.levels.prefetch(group, self.scope.ctx)
        tasks: dict[str, asyncio.Task[None]] = {}
        # what the group waits on between decisions: its agents' ends (group_wake.py)
        wake = GroupWake()
        # batch mode: (deadline, its DeadlineClock future) while the group waits for one
        deadline: tuple[float, asyncio.Future[None]] | None = None
        try:
            deadline_passed = False
            while True:
                now = self.scope.elapsed()
                self.desk.pause_deadline(group, now)
                if deadline_passed and state.deadline_s is not None:
                    # the timer fired: the deadline has passed whatever the clock rounding says
                    now = max(now, state.deadline_s)
                if state.deadline_s is None or now < state.deadline_s:
                    self.start_agents(group, tasks, wake)
                    # an agent that has just been found blocked stops the clock from now on
                    self.desk.pause_deadline(group, now)
                if must_wait(group.agents, self.scope.agents, state.deadline_at(now), now):
                    # what barrier.decide would say, without a view of every agent
                    decision = WAITING
                else:
                    view = self.barrier_view(group, now)
                    if self.observe and self.needs_observation(view):
                        # ask the server which agents a worker is running and when they last
                        # heartbeat; agents may end meanwhile, so the view is taken again after
                        seen = await self.observe_liveness(group)
                        now = max(self.scope.elapsed(), now)
                        view = self.barrier_view(group, now, seen)
                    decision = barrier.decide(view)
                if decision.action == barrier.WAIT:
                    # the latest started first: in a wide group the early ones are done
                    if not any(not task.done() for task in reversed(tasks.values())):
                        raise ApplicationError(
                            f"group '{group.id}': barrier waits but no agent is running",
                            type="InternalError",
                            non_retryable=True,
                        )
                    remaining = None
                    # besides the agents: the deadline, a fan-out's next chunk, an unpause
                    others: list[asyncio.Future[Any]] = []
                    # a large fan-out starts its instances a chunk per workflow task
                    more = self.fan_outs.next_chunk(group, tasks)
                    if more is not None:
                        others.append(more)
                    unpaused: asyncio.Task[None] | None = None
                    if state.paused_since_s is not None:
                        # no deadline while paused; wake when no agent is blocked any more
                        unpaused = asyncio.create_task(
                            workflow.wait_condition(lambda: not self.desk.group_blocked(group))
                        )
                        others.append(unpaused)
                    elif state.deadline_s is not None:
                        remaining = max(0.0, state.deadline_s - now)
                        if self.clock is not None:
                            # batch mode: the run-wide deadline clock, not a timer per wake-up
                            if deadline is None or deadline[0] != state.deadline_s:
                                if deadline is not None:
                                    deadline[1].cancel()
                                deadline = (state.deadline_s, self.clock.until(state.deadline_s))
                            others.append(deadline[1])
                            remaining = None
                    if remaining is None:
                        await wake.wait(others)
                        done = True
                    else:
                        # a timer command per wait (runs before the deadline clock): as then
                        live = [task for task in tasks.values() if not task.done()]
                        finished, _ = await workflow.wait(
                            [*live, *others],
                            timeout=remaining,
                            return_when=asyncio.FIRST_COMPLETED,
                        )
                        done = bool(finished)
                    if unpaused is not None and not unpaused.done():
                        unpaused.cancel()
                    if more is not None and not more.done():
                        more.cancel()
                    if wake.failed:
                        # (raise_agent_failure without a failed task neither raises nor awaits)
                        await self.raise_agent_failure(group, tasks)
                    deadline_passed = (
                        not done
                        if self.clock is None
                        else deadline is not None and deadline[1].done()
                    )
                    continue
                self.record(group, decision)
                if decision.action not in (barrier.EXTEND_TIMEOUT, barrier.POSTPONE_DEADLINE):
                    break
                if decision.action == barrier.EXTEND_TIMEOUT:
                    state.extensions += 1
                if decision.lag_s > 0:
                    self.lag_given[group.id] = self.lag_given.get(group.id, 0.0) + decision.lag_s
                state.deadline_s = decision.new_deadline_s
                deadline_passed = False
            if deadline is not None:
                deadline[1].cancel()
            await self.apply(group, decision, tasks)
            self.desk.check_consistency(group)
            # a fan-out's snapshot waits for its collected lists (FanOutDriver takes it)
            if state.status in GROUP_PASSED and not is_expanded(group):
                self.levels.snapshot(group.id, self.scope.ctx, self.scope.elapsed())
            if len(group.cross_validation) >= 2 and state.status in GROUP_PASSED:
                if group.cross_validation_blocking:
                    await self.validator.validate(group)
                else:
                    self.validator.start(group)
        except asyncio.CancelledError:
            if deadline is not None:
                deadline[1].cancel()
            # another group failed or the run was cancelled: take our agents down with us
            await self.end_with_agents(group, tasks, GroupStatus.CANCELLED)
            raise

    def start_agents(
        self,
        group: CompiledGroup,
        tasks: dict[str, asyncio.Task[None]],
        wake: GroupWake | None = None,
    ) -> None:
        if group.parallel:
            # every agent started already (the usual wake-up of a wide group): no walk
            todo = (
                []
                if len(tasks) >= len(group.agents)
                else [agent_id for agent_id in group.agents if agent_id not in tasks]
            )
            if group.fan_out is not None:
                # a fan-out's instances in item order, at most max_parallel at once and a chunk
                # per workflow task (fan_out_driver.LAUNCH_CHUNK)
                todo = self.fan_outs.launchable(group, todo, tasks)
        else:
            # one at a time, in list order: the next starts when the previous has finished
            if any(not task.done() for task in tasks.values()):
                return
            todo = [agent_id for agent_id in group.agents if agent_id not in tasks]
            if group.fan_out is not None:
                todo = self.fan_outs.launchable(group, todo, tasks)
            todo = todo[:1]
        for agent_id in todo:
            tasks[agent_id] = self.runner.launch(
                self.scope.plan.agent(agent_id),
                group,
                fallback=False,
                on_end=None if wake is None else wake.ended,
            )
        # all of them submitted first, so the best goes first, not the first declared
        self.runner.admit_soon(todo)

    async def raise_agent_failure(
        self, group: CompiledGroup, tasks: dict[str, asyncio.Task[None]]
    ) -> None:
        """An agent task that raised (a conflict timeout with policy fail) fails the group and
        the run: cancel the group's other agents and pass the ApplicationError on."""
        for task in tasks.values():
            if task.done() and not task.cancelled() and task.exception() is not None:
                await self.end_with_agents(group, tasks, GroupStatus.FAILED)
                raise task.exception()  # type: ignore[misc]

    async def end_with_agents(
        self, group: CompiledGroup, tasks: dict[str, asyncio.Task[None]], status: GroupStatus
    ) -> None:
        """End the group early: cancel its agent tasks, mark the unfinished agents cancelled."""
        await cancel_all(list(tasks.values()))
        for agent_id in group.agents:
            if self.scope.agents[agent_id].status in AGENT_UNFINISHED:
                self.scope.agents[agent_id].status = AgentStatus.CANCELLED
        self.scope.end_group(group, status)

    def barrier_view(
        self,
        group: CompiledGroup,
        now_s: float,
        seen: dict[str, ActivityState] | None = None,
    ) -> barrier.BarrierView:
        state = self.scope.groups[group.id]
        states = self.agent_views(group, now_s)
        if seen is not None:
            states = {
                a: replace(view, activity=seen.get(a)) if view.status == barrier.RUNNING else view
                for a, view in states.items()
            }
        return barrier.BarrierView(
            group=group.id,
            agents=list(group.agents),
            states=states,
            now_s=now_s,
            # while paused the deadline moves with the clock, so it is never reached
            deadline_s=state.deadline_at(now_s),
            extensions_used=state.extensions,
            max_extensions=group.max_extensions,
            extension_s=group.extension_s * self.scope.scale,
            progress_window_s=self.timing.progress_window_s(),
            criteria=group.success_criteria.kind,
            count=group.success_criteria.count,
            quality_impact=group.quality_impact,
            partial_failure_handling=group.partial_failure_handling,
            liveness_by_heartbeat=self.liveness_by_heartbeat,
            observed=seen is not None,
            heartbeat_timeout_s=self.timing.heartbeat_timeout_s(),
            lag_s=self.lag_to_give(group, states) if seen is not None else 0.0,
        )

    def lag_to_give(self, group: CompiledGroup, states: dict[str, barrier.AgentView]) -> float:
        """The longest worker lag of the group's running agents not given back yet."""
        lags = [
            self.lag[a]
            for a, view in states.items()
            if view.status == barrier.RUNNING and a in self.lag
        ]
        if not lags:
            return 0.0
        return max(0.0, round(max(lags) - self.lag_given.get(group.id, 0.0), 3))

    @staticmethod
    def needs_observation(view: barrier.BarrierView) -> bool:
        """At a reached deadline with running agents, before judging them."""
        return (
            view.deadline_s is not None
            and view.now_s >= view.deadline_s
            and any(v.status == barrier.RUNNING for v in view.states.values())
        )

    async def observe_liveness(self, group: CompiledGroup) -> dict[str, ActivityState] | None:
        """One recorded local activity describes where the group's running agents' activities
        are (a marker in history: a replay decides the same). Their last heartbeat becomes
        last_progress_s. None when the server could not say: the barrier decides as without."""
        running = [a for a in group.agents if self.scope.agents[a].status == AgentStatus.RUNNING]
        seen: dict[str, ActivityState] = {}
        targets: dict[str, LivenessTarget] = {}
        info = workflow.info()
        for agent_id in running:
            if self.batcher is None:
                target = targets.setdefault("", LivenessTarget(info.workflow_id, info.run_id))
            else:
                child = self.batcher.where(agent_id)
                if child is None:
                    # still in the batcher's queue or its child is starting: no worker has it
                    seen[agent_id] = ActivityState.WAITING_TO_START
                    continue
                target = targets.setdefault(child, LivenessTarget(child))
                if self.batcher.is_local_agent(agent_id):
                    # a local activity: judged by the child's workflow task
                    target.local_ids.append(agent_id)
                    continue
            target.activity_ids.append(agent_id)
        if targets:
            try:
                liveness = await workflow.execute_local_activity(
                    describe_liveness,
                    LivenessQuery(list(targets.values())),
                    start_to_close_timeout=timedelta(seconds=5),
                    retry_policy=RetryPolicy(maximum_attempts=2),
                    summary=f"liveness of {len(running)} agent(s) at group {group.id}'s deadline",
                )
            except ActivityError as err:
                # e.g. a worker built without LIVENESS_ACTIVITIES: decide as without
                liveness = Liveness(error=f"describe_liveness failed: {err.cause or err}")
            if liveness.error is not None:
                workflow.logger.warning(
                    "group '%s': liveness unknown at the deadline (%s)", group.id, liveness.error
                )
                return None
            if self.count_lag is None:
                # runs recorded before worker lag was counted decide as they did
                self.count_lag = revision.patched(LAG_PATCH)
            for observed in liveness.observed:
                seen[observed.activity_id] = ActivityState(observed.state)
                self.take_heartbeat(observed)
                if self.count_lag:
                    self.take_lag(observed)
        return seen

    def take_lag(self, observed: ActivityLiveness) -> None:
        """Why the deadline counts the agent's own time only: a parent or worker that is behind
        (a backlog in the task queue, a child still starting, an event loop busy with other
        agents and workflows) must never make a healthy agent look too slow. Two parts: the
        time from the hand-over to a worker starting the attempt (first attempts only: a
        retry's later start is the agent's own failure, and counts), and how long the worker
        was behind while the attempt ran, as its heartbeat says (AgentProgress.behind_s)."""
        state = self.scope.agents.get(observed.activity_id)
        if state is None or state.status != AgentStatus.RUNNING:
            return
        lag = max(0.0, observed.behind_s)
        if (
            observed.started_at is not None
            and observed.attempt == 1
            and state.run_started_s is not None
        ):
            at = datetime.fromisoformat(observed.started_at)
            started_s = (at - self.scope.run.started).total_seconds()
            lag += max(0.0, started_s - state.run_started_s)
        self.lag[observed.activity_id] = round(lag, 3)

    def take_heartbeat(self, observed: ActivityLiveness) -> None:
        state = self.scope.agents.get(observed.activity_id)
        if state is None or state.status != AgentStatus.RUNNING:
            return
        if observed.heartbeat_at is not None:
            at = datetime.fromisoformat(observed.heartbeat_at)
            # the server's clock, as workflow.now(): run-relative, never before the run
            state.last_progress_s = max(
                0.0, round((at - self.scope.run.started).total_seconds(), 3)
            )
        if observed.fraction is not None:
            state.progress = max(0.0, min(1.0, observed.fraction))
        if observed.attempt:
            state.attempts = max(state.attempts, state.earlier_attempts + observed.attempt)

    def agent_views(self, group: CompiledGroup, now_s: float) -> dict[str, barrier.AgentView]:
        agents = self.scope.agents
        views = {a: self.views.view(a, agents[a]) for a in group.agents}
        if not self.liveness_by_heartbeat or self.observe:
            return views
        # batch mode: no progress signals reach this workflow (each would be a history event),
        # but an agent still running is one whose activity heartbeats in time (or the server
        # would have timed it out): it counts as seen now, except a silent one (no heartbeats)
        return {
            a: replace(view, last_progress_s=now_s)
            if view.status == barrier.RUNNING and a not in self.silent
            else view
            for a, view in views.items()
        }

    def record(self, group: CompiledGroup, decision: barrier.BarrierDecision) -> None:
        self.scope.decision(group, decision)

    async def apply(
        self,
        group: CompiledGroup,
        decision: barrier.BarrierDecision,
        tasks: dict[str, asyncio.Task[None]],
    ) -> None:
        await cancel_all([tasks[a] for a in decision.cancel if a in tasks])
        if decision.action == barrier.ALL_COMPLETED:
            self.scope.end_group(group, GroupStatus.SUCCEEDED)
            return
        if decision.action == barrier.CONTINUE_WITH_PARTIAL:
            self.continue_without(group, decision.fill_defaults, decision.cancel)
            self.scope.end_group(group, GroupStatus.PARTIAL)
            return

        # abort_and_fallback: one at a time, each agent under its own timeout, no group deadline
        self.scope.alert(group.id, "critical", decision.alert or decision.reason)
        self.scope.event("fallback_started", group.id)
        for agent_id in decision.fallback:
            tasks[agent_id] = self.runner.launch(
                self.scope.plan.agent(agent_id), group, fallback=True
            )
            self.runner.admit([agent_id])
            # no group deadline here, so a blocked agent simply waits for its conflict
            await workflow.wait([tasks[agent_id]])
            await self.raise_agent_failure(group, tasks)
        outcome = barrier.decide_after_fallback(self.barrier_view(group, self.scope.elapsed()))
        self.record(group, outcome)
        if outcome.action == barrier.FAIL:
            self.scope.end_group(group, GroupStatus.FAILED)
            raise ApplicationError(
                f"group '{group.id}' failed: {outcome.reason}; "
                f"agents: {self.scope.describe_agents(group)}",
                type="GroupFailed",
                non_retryable=True,
            )
        if outcome.action == barrier.CONTINUE_WITH_DEFAULTS:
            self.scope.alert(group.id, "critical", outcome.alert or outcome.reason)
        self.continue_without(group, outcome.fill_defaults, [])
        self.scope.end_group(
            group, GroupStatus.PARTIAL if outcome.fill_defaults else GroupStatus.SUCCEEDED
        )

    def continue_without(
        self, group: CompiledGroup, agent_ids: list[str], cut_short: list[str]
    ) -> None:
        """Fill the declared defaults of agents the group goes on without; say what is missing."""
        for agent_id in agent_ids:
            agent = self.scope.plan.agent(agent_id)
            state = self.scope.agents[agent_id]
            never_started = state.started_s is None
            self.gate.fill_defaults(agent)
            if agent_id in cut_short:
                if state.defaulted_outputs:
                    status = AgentStatus.DEFAULTED
                else:
                    status = AgentStatus.SKIPPED if never_started else AgentStatus.CANCELLED
                if status != state.status:
                    state.status = status
                    if never_started:
                        state.ended_s = self.scope.elapsed()
                    self.scope.event(f"agent_{status}", agent_id)
            absent = [
                name for name in agent.outputs if not self.scope.ctx.has(f"{agent_id}.{name}")
            ]
            if absent:
                readers = [
                    other.id
                    for other in self.scope.plan.agents
                    if any(f"{agent_id}.{name}" in other.inputs for name in absent)
                ]
                effect = (
                    f"dependents {readers} will run without them (see their missing_inputs)"
                    if readers
                    else "no agent needs them"
                )
                self.scope.alert(
                    group.id,
                    "warning",
                    f"agent '{agent_id}' ({state.status}) has no default for {absent}: {effect}",
                )

    def group_timeout(self, group: CompiledGroup) -> float | None:
        # None (a lone agent) = bounded by the agent's own timeout, no barrier deadline
        if group.timeout_s is None:
            return None
        # plus what modify_timeout_values promised it for slow agents of its roles
        return max(0.0, float(group.timeout_s) * self.scope.scale) + self.adapt.deadline_shift(
            group.id
        )


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    live = [task for task in tasks if not task.done()]
    for task in live:
        task.cancel()
    if live:
        await workflow.wait(live)
