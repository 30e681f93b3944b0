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
    from pee.engine.compile.fan_out_slice import (
        batch_outputs,
        batch_plan,
        group_instances,
        item_plan,
        upstream_keys,
    )
    from pee.engine.compiled import CompiledAgent, CompiledGroup, CompiledPlan, FanOut
    from pee.engine.language.fan_out import FanOutLevel
    from pee.engine.rules import barrier
    from pee.engine.rules.fan_out_barrier import collect
    from pee.engine.rules.fan_out_batches import item_batches
    from pee.engine.rules.merge import value_hash
    from pee.engine.states import AGENT_FINISHED, AgentStatus, GroupStatus
    from pee.workflows import pool_lease, revision
    from pee.workflows.run_scope import RunScope
    from pee.workflows.state import AgentState
    from pee.workflows.types import FanOutBatching, PlanRunInput

FALLBACK = "#fallback"
# items in batch children (pee.engine.rules.fan_out_batches): new child shapes, so a run
# recorded before them keeps one child per item (old runs never had more than ~200 anyway)
BATCH_PATCH = "fan-out-batches-v1"
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
        outcomes: dict[int, ItemOutcome] = self.reuse(group, members, items)
        todo = [i for i in range(len(items)) if i not in outcomes]
        settings = scope.input.fan_out_batching or FanOutBatching()
        agent_level = fan_out.level is FanOutLevel.AGENT
        above = settings.above if agent_level else settings.group_above
        batches = item_batches(
            len(todo), len(members), lanes, above, settings.child_agents, settings.children_at_once
        )
        window = lanes
        units: list[tuple[int, ...]] = [(i,) for i in todo]
        batched = batches is not None and revision.patched(BATCH_PATCH)
        if batched:
            assert batches is not None
            units = [tuple(todo[k] for k in batch) for batch in batches.batches]
            window = batches.window

        def launch(unit: tuple[int, ...]) -> asyncio.Task[dict[int, ItemOutcome]]:
            if batched:
                return asyncio.create_task(
                    self.batch(group, list(unit), items, upstream, keys, members)
                )
            index = unit[0]
            sliced = item_plan(plan, group, index, items[index], upstream)
            return asyncio.create_task(
                self.one(group, index, sliced, keys, members, fallback=False)
            )

        pending = list(range(len(units)))
        running: dict[int, asyncio.Task[dict[int, ItemOutcome]]] = {}
        try:
            while pending or running:
                started = 0
                while (
                    pending and started < LAUNCH_CHUNK and (window is None or len(running) < window)
                ):
                    unit = pending.pop(0)
                    started += 1
                    running[unit] = launch(units[unit])
                waits: list[asyncio.Task[Any]] = list(running.values())
                more = None
                if pending and started == LAUNCH_CHUNK:
                    # the rest of this round in the next workflow task (see LAUNCH_CHUNK)
                    more = asyncio.create_task(
                        workflow.sleep(CHUNK_PAUSE_S, summary="start the next chunk of item runs")
                    )
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
                for unit in [u for u, task in running.items() if task.done()]:
                    outcomes.update(running.pop(unit).result())
                if not done:
                    # the deadline: the barrier judges the items that ended, the rest are cut
                    await self.cut(
                        [i for u in running for i in units[u]],
                        [i for u in pending for i in units[u]],
                        list(running.values()),
                        members,
                    )
                    running.clear()
                    pending.clear()
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
            self.keep_finished(members, outcomes)
            scope.end_group(expanded, GroupStatus.CANCELLED)
            raise

        ids = [FanOut.instance_id(group.id, i) for i in range(len(items))]
        decision = barrier.decide(self.view(expanded, ids, outcomes))
        self.record(group, decision)
        fill: list[str] = list(decision.fill_defaults)
        if decision.action == barrier.ABORT_AND_FALLBACK:
            scope.alert(group.id, "critical", decision.alert or decision.reason)
            scope.event("fallback_started", group.id)
            to_rerun = [ids.index(item_id) for item_id in decision.fallback]
            if batched:
                # one batch child at a time: a thousand failed items one by one would take
                # a thousand times an item's chain
                again = item_batches(len(to_rerun), len(members), None, 0, settings.child_agents)
                assert again is not None
                for batch in again.batches:
                    rerun = [to_rerun[k] for k in batch]
                    outcomes.update(
                        await self.batch(
                            group, rerun, items, upstream, keys, members, fallback=True
                        )
                    )
            for index in [] if batched else to_rerun:
                sliced = item_plan(plan, group, index, items[index], upstream)
                outcomes[index] = await self.item(
                    group, index, sliced, keys, members, fallback=True
                )
            after = barrier.decide_after_fallback(self.view(expanded, ids, outcomes))
            self.record(group, after)
            if after.action == barrier.FAIL:
                self.keep_finished(members, outcomes)
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
        running: list[int],
        pending: list[int],
        tasks: list[asyncio.Task[dict[int, ItemOutcome]]],
        members: list[CompiledAgent],
    ) -> None:
        """At the group's deadline: cancel the children of the running items (their rows
        cancelled), start no more (skipped)."""
        for task in tasks:
            task.cancel()
        if tasks:
            await workflow.wait(tasks)
        now = self.scope.elapsed()
        for index in [*running, *pending]:
            for agent in members:
                row = self.scope.agents[FanOut.instance_id(agent.id, index)]
                if row.status not in AGENT_FINISHED:
                    row.status = AgentStatus.CANCELLED if index in running else AgentStatus.SKIPPED
                    row.ended_s = now

    async def one(
        self,
        group: CompiledGroup,
        index: int,
        sliced: Any,
        keys: list[str],
        members: list[CompiledAgent],
        *,
        fallback: bool,
    ) -> dict[int, ItemOutcome]:
        return {index: await self.item(group, index, sliced, keys, members, fallback=fallback)}

    async def batch(
        self,
        group: CompiledGroup,
        indices: list[int],
        items: list[Any],
        upstream: dict[str, Any],
        keys: list[str],
        members: list[CompiledAgent],
        *,
        fallback: bool = False,
    ) -> dict[int, ItemOutcome]:
        """Run the items `indices` in one child PlanWorkflow (batch_plan: each item's chain on
        its own inside it, a failed item ending only its own chain) and fold its report into
        the rows `member[i]`."""
        scope = self.scope
        plan = scope.plan
        sliced = batch_plan(plan, group, indices, items, upstream)
        span = f"{group.id}[{indices[0]}..{indices[-1]}]{FALLBACK if fallback else ''}"
        started_s = self.start_rows(members, indices)
        child_input = self.child_input(sliced, batch_outputs(group, plan, indices), item_batch=True)
        report: dict[str, Any] | None = None
        error: str | None = None
        try:
            report = await workflow.execute_child_workflow(
                "PlanWorkflow",
                child_input,
                id=f"{workflow.info().workflow_id}/{span}",
                result_type=dict,
                parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                static_summary=f"{span} of {plan.name} ({len(indices)} items)"
                + (" (fallback, one batch at a time)" if fallback else ""),
            )
        except ChildWorkflowError as err:
            report, error = _child_failure(err)
        values = dict((report or {}).get("item_outputs") or {})
        rows = (report or {}).get("agents") or {}
        outcomes: dict[int, ItemOutcome] = {}
        for index in indices:
            self.rows(members, index, started_s, report, batched=True)
            named = [FanOut.instance_id(agent.id, index) for agent in members]
            succeeded = error is None and all(
                (rows.get(n) or {}).get("status") == AgentStatus.SUCCEEDED for n in named
            )
            outputs = {
                key: values[local] for key in keys if (local := _instance_key(key, index)) in values
            }
            failure = next(
                (
                    f"{n}: {(rows.get(n) or {}).get('error')}"
                    for n in named
                    if (rows.get(n) or {}).get("error")
                ),
                error or "an earlier member of the item failed",
            )
            outcomes[index] = ItemOutcome(
                succeeded, outputs=outputs, error=None if succeeded else failure
            )
            item_id = FanOut.instance_id(group.id, index)
            scope.event(f"fan_out_item_{'succeeded' if succeeded else 'failed'}", item_id)
        return outcomes

    def reuse(
        self, group: CompiledGroup, members: list[CompiledAgent], items: list[Any]
    ) -> dict[int, ItemOutcome]:
        """`--resume-from`: the items that succeeded in the earlier run over the same item at
        the same index (ResumeFrom.finished_items, keyed `group[i]`, or `agent[i]` for an
        agent-level fan-out) are not run again; their outputs are the earlier ones."""
        resume = self.scope.input.resume
        fan_out = group.fan_out
        if resume is None or not resume.finished_items or fan_out is None:
            return {}
        agent_level = fan_out.level is FanOutLevel.AGENT
        reused: dict[int, ItemOutcome] = {}
        for index, item in enumerate(items):
            owner = members[0].id if agent_level else group.id
            earlier = resume.finished_items.get(FanOut.instance_id(owner, index))
            if earlier is None or earlier.get("item_hash") != value_hash(item):
                continue
            found = dict(earlier.get("outputs") or {})
            if agent_level:
                found = {f"{owner}.{name}": value for name, value in found.items()}
            reused[index] = ItemOutcome(True, outputs=found)
            for agent in members:
                instance = FanOut.instance_id(agent.id, index)
                row = self.scope.agents[instance]
                row.status, row.resumed = AgentStatus.SUCCEEDED, True
                row.outputs = [k.split(".", 1)[1] for k in found if k.startswith(f"{agent.id}.")]
                self.scope.event("agent_resumed", instance)
        return reused

    def keep_finished(self, members: list[CompiledAgent], outcomes: dict[int, ItemOutcome]) -> None:
        """The fan-out did not pass: each succeeded item's outputs as `member[i].output` in the
        context, where `--resume-from` finds them (runtime/resume.py finished_items)."""
        at = self.scope.at()
        for index, outcome in sorted(outcomes.items()):
            if not outcome.succeeded:
                continue
            for agent in members:
                for name in agent.outputs:
                    key = f"{agent.id}.{name}"
                    if key in outcome.outputs:
                        instance = FanOut.instance_id(agent.id, index)
                        self.scope.ctx.put(
                            f"{instance}.{name}",
                            outcome.outputs[key],
                            instance,
                            at,
                            origin="fan_out",
                        )

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
        started_s = self.start_rows(members, [index])
        child_input = self.child_input(sliced, keys)
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
            report, message = _child_failure(err)
            outcome = ItemOutcome(False, error=message)
        self.rows(members, index, started_s, report)
        scope.event(f"fan_out_item_{'succeeded' if outcome.succeeded else 'failed'}", item_id)
        return outcome

    def start_rows(self, members: list[CompiledAgent], indices: list[int]) -> float:
        """Mark the rows `member[i]` of the items `indices` running; returns when they started
        (a row that ran before, in a failed first attempt, keeps its first start)."""
        started_s = self.scope.elapsed()
        for index in indices:
            for agent in members:
                row = self.scope.agents[FanOut.instance_id(agent.id, index)]
                row.status = AgentStatus.RUNNING
                row.started_s = started_s if row.started_s is None else row.started_s
        return started_s

    def child_input(
        self, sliced: CompiledPlan, item_outputs: list[str], *, item_batch: bool = False
    ) -> PlanRunInput:
        """A child PlanWorkflow's input: the sliced plan, run as this run is run."""
        source = self.scope.input
        return PlanRunInput(
            plan=sliced,
            time_scale=source.time_scale,
            heartbeat_timeout_s=source.heartbeat_timeout_s,
            simulate=source.simulate,
            admission=source.admission,
            item_outputs=item_outputs,
            item_batch=item_batch,
        )

    def rows(
        self,
        members: list[CompiledAgent],
        index: int,
        started_s: float,
        report: dict[str, Any] | None,
        *,
        batched: bool = False,
    ) -> None:
        """Each member's row `member[i]` from the child's report (a batch child names its rows
        `member[i]` too; times shifted to this run)."""
        scope = self.scope
        now = scope.elapsed()
        agents = (report or {}).get("agents") or {}
        child_start = _when((report or {}).get("started_at"))
        for agent in members:
            row_id = FanOut.instance_id(agent.id, index)
            row = scope.agents[row_id]
            found = agents.get(row_id if batched else agent.id) or {}
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
            unit="item",
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


def _instance_key(key: str, index: int) -> str:
    """ "story.text" -> "story[3].text" (how a batch child names item 3's value)."""
    head, _, rest = key.partition(".")
    return f"{FanOut.instance_id(head, index)}.{rest}"


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _child_failure(err: ChildWorkflowError) -> tuple[dict[str, Any] | None, str]:
    """(the failed child's report, if its failure carries one; why it failed); a cancelled
    child cancels this run's wait for it."""
    if is_cancelled_exception(err):
        raise asyncio.CancelledError() from None
    cause = err.cause
    details = cause.details if isinstance(cause, ApplicationError) else ()
    report = details[0] if details and isinstance(details[0], dict) else None
    message = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
    return report, message
