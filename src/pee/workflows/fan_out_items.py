"""ItemChildren: a group-level fan-out (for_each on a group), one child PlanWorkflow per item.

Each item runs the group's agents as a plan of their own (pee.engine.compile.fan_out_slice.
item_plan: each member in its own group, so an item's chain advances as soon as its own data is
there, never waiting for another item), with `item`, `index` and what the members read from
before the group as plan inputs. Reusing PlanWorkflow reuses barriers, retries, context, cache
and report; the item's events stay in its child's history, the parent records about four per
item, so a thousand items never bloat one history.

Child ids are `{parent id}/{group}[{i}]` (`#fallback` for a re-run), deterministic, so a parent
that starts again finds them; they are cancelled with the parent (REQUEST_CANCEL). At most
`max_parallel` children run at once. When every item has ended, the barrier's decision table
(pee.engine.rules.barrier) judges the items with the group's criteria over items: all passed,
go on without the failed ones (partial: their outputs' defaults fill their slots), or re-run the
failed items one at a time and judge again (pass, continue on defaults, or fail the run). The
parent's rows `member[i]` take what each child's report says about its agents.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError, is_cancelled_exception
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from pee.engine.compile.fan_out_slice import group_instances, item_plan, upstream_keys
    from pee.engine.compiled import CompiledAgent, CompiledGroup, FanOut
    from pee.engine.rules import barrier
    from pee.engine.rules.fan_out_barrier import collect
    from pee.engine.states import AGENT_FINISHED, AgentStatus, GroupStatus
    from pee.workflows import pool_lease
    from pee.workflows.run_scope import RunScope
    from pee.workflows.state import AgentState
    from pee.workflows.types import PlanRunInput

FALLBACK = "#fallback"
# children started per workflow task, and the pause between chunks (as for agent instances)
LAUNCH_CHUNK = 50
CHUNK_PAUSE_S = 0.01


@dataclass
class ItemOutcome:
    succeeded: bool
    # (a child's own barrier already judged its critical errors: an item is failed or not)
    critical: bool = False
    # "agent.output" -> value, from the child's report
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class ItemChildren:
    def __init__(self, scope: RunScope) -> None:
        self.scope = scope

    async def run(self, group: CompiledGroup, items: list[Any]) -> None:
        """Run `group` (not expanded: its agents are the members) once per item; returns when
        the group passed, raises ApplicationError when it failed."""
        scope = self.scope
        plan = scope.plan
        fan_out = group.fan_out
        assert fan_out is not None
        members = [plan.agent(agent_id) for agent_id in group.agents]
        upstream = {k: scope.ctx.value(k) for k in upstream_keys(plan, group) if scope.ctx.has(k)}
        keys = [f"{agent.id}.{name}" for agent in members for name in agent.outputs]
        # the sliced plans are built from the group as compiled, before it is expanded below
        plans = [item_plan(plan, group, i, item, upstream) for i, item in enumerate(items)]
        instances, expanded = group_instances(members, group, len(items))
        plan.agents.extend(instances)
        position = next(i for i, g in enumerate(plan.groups) if g.id == group.id)
        plan.groups[position] = expanded
        for instance in instances:
            scope.agents[instance.id] = AgentState()
        state = scope.groups[group.id]
        state.status = GroupStatus.RUNNING
        state.started_s = scope.elapsed()
        # the group's timeout bounds the whole fan-out; each child's agents keep their own
        if group.timeout_s is not None:
            state.deadline_s = round(state.started_s + float(group.timeout_s) * scope.scale, 3)
        scope.event("group_started", group.id)

        lanes = self.lanes(fan_out.max_parallel)
        outcomes: dict[int, ItemOutcome] = {}
        pending = list(range(len(items)))
        running: dict[int, asyncio.Task[ItemOutcome]] = {}
        try:
            while pending or running:
                started = 0
                while (
                    pending and started < LAUNCH_CHUNK and (lanes is None or len(running) < lanes)
                ):
                    index = pending.pop(0)
                    started += 1
                    running[index] = asyncio.create_task(
                        self.item(group, index, plans[index], keys, members, fallback=False)
                    )
                waits: list[asyncio.Task[Any]] = list(running.values())
                more = None
                if pending and started == LAUNCH_CHUNK:
                    # the rest of this round in the next workflow task (see LAUNCH_CHUNK)
                    more = asyncio.create_task(workflow.sleep(CHUNK_PAUSE_S))
                    waits.append(more)
                remaining = (
                    None
                    if state.deadline_s is None
                    else max(0.0, state.deadline_s - scope.elapsed())
                )
                done, _ = await workflow.wait(
                    waits, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                if more is not None and not more.done():
                    more.cancel()
                for index in [i for i, task in running.items() if task.done()]:
                    outcomes[index] = running.pop(index).result()
                if not done:
                    # the deadline: the barrier judges the items that ended, the rest are cut
                    await self.cut(running, pending, members)
                    break
        except asyncio.CancelledError:
            live = [task for task in running.values() if not task.done()]
            for task in live:
                task.cancel()
            if live:
                await workflow.wait(live)
            for instance in instances:
                if scope.agents[instance.id].status not in AGENT_FINISHED:
                    scope.agents[instance.id].status = AgentStatus.CANCELLED
            scope.end_group(expanded, GroupStatus.CANCELLED)
            raise

        ids = [FanOut.instance_id(group.id, i) for i in range(len(items))]
        decision = barrier.decide(self.view(expanded, ids, outcomes))
        self.record(group, decision)
        fill: list[str] = list(decision.fill_defaults)
        if decision.action == barrier.ABORT_AND_FALLBACK:
            scope.alert(group.id, "critical", decision.alert or decision.reason)
            scope.event("fallback_started", group.id)
            for item_id in decision.fallback:
                index = ids.index(item_id)
                outcomes[index] = await self.item(
                    group, index, plans[index], keys, members, fallback=True
                )
            after = barrier.decide_after_fallback(self.view(expanded, ids, outcomes))
            self.record(group, after)
            if after.action == barrier.FAIL:
                scope.end_group(expanded, GroupStatus.FAILED)
                failed = [ids[i] for i, o in sorted(outcomes.items()) if not o.succeeded]
                errors = "; ".join(
                    f"{ids[i]}: {o.error}" for i, o in sorted(outcomes.items()) if o.error
                )
                raise ApplicationError(
                    f"group '{group.id}' failed: {after.reason}; items {failed}: {errors}",
                    type="GroupFailed",
                    non_retryable=True,
                )
            if after.action == barrier.CONTINUE_WITH_DEFAULTS:
                scope.alert(group.id, "critical", after.alert or after.reason)
            fill = list(after.fill_defaults)
        self.collect(members, outcomes, len(items))
        status = GroupStatus.PARTIAL if fill else GroupStatus.SUCCEEDED
        scope.end_group(expanded, status)

    def lanes(self, max_parallel: int | None) -> int | None:
        """How many items may run at once: max_parallel, and with a private resource pool its
        agent limit too (a child cannot lease from its parent's pool; each child admits its own
        agents). A shared pool (resource_pool.shared) admits the children's agents itself."""
        admission = self.scope.run.admission
        if not admission.pool.limited or isinstance(admission, pool_lease.LeasedAdmission):
            return max_parallel
        limit = admission.pool.max_agents
        return limit if max_parallel is None else min(limit, max_parallel)

    async def cut(
        self,
        running: dict[int, asyncio.Task[ItemOutcome]],
        pending: list[int],
        members: list[CompiledAgent],
    ) -> None:
        """At the group's deadline: cancel the running items' children (their rows cancelled),
        start no more (skipped)."""
        live = list(running.values())
        for task in live:
            task.cancel()
        if live:
            await workflow.wait(live)
        now = self.scope.elapsed()
        for index in [*running, *pending]:
            for agent in members:
                row = self.scope.agents[FanOut.instance_id(agent.id, index)]
                if row.status not in AGENT_FINISHED:
                    row.status = AgentStatus.CANCELLED if index in running else AgentStatus.SKIPPED
                    row.ended_s = now
        running.clear()
        pending.clear()

    async def item(
        self,
        group: CompiledGroup,
        index: int,
        sliced: Any,
        keys: list[str],
        members: list[CompiledAgent],
        *,
        fallback: bool,
    ) -> ItemOutcome:
        """Run item `index` as a child PlanWorkflow and fold its report into the rows."""
        scope = self.scope
        info = workflow.info()
        item_id = FanOut.instance_id(group.id, index)
        child_id = f"{info.workflow_id}/{item_id}{FALLBACK if fallback else ''}"
        started_s = scope.elapsed()
        for agent in members:
            row = scope.agents[FanOut.instance_id(agent.id, index)]
            row.status = AgentStatus.RUNNING
            row.started_s = started_s if row.started_s is None else row.started_s
        source = scope.input
        child_input = PlanRunInput(
            plan=sliced,
            time_scale=source.time_scale,
            heartbeat_timeout_s=source.heartbeat_timeout_s,
            simulate=source.simulate,
            admission=source.admission,
            item_outputs=keys,
        )
        report: dict[str, Any] | None = None
        outcome: ItemOutcome
        try:
            report = await workflow.execute_child_workflow(
                "PlanWorkflow",
                child_input,
                id=child_id,
                result_type=dict,
                parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                static_summary=f"{item_id} of {scope.plan.name}"
                + (" (sequential fallback)" if fallback else ""),
            )
            outcome = ItemOutcome(True, outputs=dict((report or {}).get("item_outputs") or {}))
        except ChildWorkflowError as err:
            if is_cancelled_exception(err):
                raise asyncio.CancelledError() from None
            cause = err.cause
            details = cause.details if isinstance(cause, ApplicationError) else ()
            report = details[0] if details and isinstance(details[0], dict) else None
            message = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
            outcome = ItemOutcome(False, error=message)
        self.rows(members, index, started_s, report)
        scope.event(f"fan_out_item_{'succeeded' if outcome.succeeded else 'failed'}", item_id)
        return outcome

    def rows(
        self,
        members: list[CompiledAgent],
        index: int,
        started_s: float,
        report: dict[str, Any] | None,
    ) -> None:
        """Each member's row `member[i]` from the child's report (times shifted to this run)."""
        scope = self.scope
        now = scope.elapsed()
        agents = (report or {}).get("agents") or {}
        child_start = _when((report or {}).get("started_at"))
        for agent in members:
            row = scope.agents[FanOut.instance_id(agent.id, index)]
            found = agents.get(agent.id) or {}
            status = found.get("status")
            row.status = (
                AgentStatus(status)
                if status in [s.value for s in AgentStatus]
                else AgentStatus.FAILED
            )
            if row.status not in AGENT_FINISHED:
                row.status = AgentStatus.CANCELLED
            row.attempts += int(found.get("attempts") or 0)
            row.error = found.get("error") or (None if report else "the item's run failed")
            row.outputs = list(found.get("outputs") or [])
            row.cached = bool(found.get("cached"))
            row.busy_s = round(row.busy_s + float(found.get("duration_s") or 0.0), 3)
            begin, end = _when(found.get("started_at")), _when(found.get("finished_at"))
            if child_start is not None and begin is not None and row.started_s == started_s:
                row.started_s = round(started_s + (begin - child_start).total_seconds(), 3)
            row.ended_s = (
                round(started_s + (end - child_start).total_seconds(), 3)
                if child_start is not None and end is not None
                else now
            )

    def view(
        self, group: CompiledGroup, ids: list[str], outcomes: dict[int, ItemOutcome]
    ) -> barrier.BarrierView:
        states = {}
        for index, item_id in enumerate(ids):
            outcome = outcomes.get(index)
            if outcome is None:
                status = barrier.PENDING
            elif outcome.succeeded:
                status = barrier.SUCCEEDED
            else:
                status = barrier.CRITICAL_FAILED if outcome.critical else barrier.FAILED
            states[item_id] = barrier.AgentView(status)
        return barrier.BarrierView(
            group=group.id,
            agents=ids,
            states=states,
            now_s=self.scope.elapsed(),
            deadline_s=self.scope.groups[group.id].deadline_s,
            criteria=group.success_criteria.kind,
            count=group.success_criteria.count,
            quality_impact=group.quality_impact,
            partial_failure_handling=group.partial_failure_handling,
        )

    def record(self, group: CompiledGroup, decision: barrier.BarrierDecision) -> None:
        self.scope.decision(group, decision)

    def collect(
        self, members: list[CompiledAgent], outcomes: dict[int, ItemOutcome], items: int
    ) -> None:
        """Each member output once, as the list of every item's value in item order (a failed
        item's slot holds the member's declared default, else null)."""
        scope = self.scope
        for agent in members:
            for name in agent.outputs:
                key = f"{agent.id}.{name}"
                values = {
                    i: o.outputs[key]
                    for i, o in outcomes.items()
                    if o.succeeded and key in o.outputs
                }
                listed = collect(items, values, agent.defaults.get(name))
                scope.ctx.put(key, listed, agent.id, scope.at(), origin="fan_out")
                row = scope.agents[agent.id]
                if name not in row.outputs:
                    row.outputs.append(name)


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None
