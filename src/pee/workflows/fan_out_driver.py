"""FanOutDriver: a group whose agent runs once per item of a run-time list (issue 16; the design:
design-notes/fan-out.md, section 4).

When the group's turn comes, GroupDriver hands it here. The driver reads the list from the
context (pee.engine.rules.fan_out_barrier.items_of), records `fan_out_started` with the item
count, and expands the agent into instances `agent[i]` (pee.engine.compile.fan_out_slice): they
join the run's plan and state like any agent, each given `item` and `index`. GroupDriver then runs
the expanded group exactly as any other: admission, retries, the smart barrier over the instances
with the item criteria (`all` by default, `at_least: N` capped at the count), partial results,
defaults and the sequential fallback of failed items. `max_parallel` bounds the instances
running at once (GroupDriver.start_agents). When the barrier has passed, each output of the
agent is written once, as the list of every instance's value in item order (a failed item holds
the agent's declared default, else null). An empty list passes at once with empty lists.

Determinism: the driver is reached only for a group with a fan-out, which no run recorded before
it has; it still asks `revision.patched(FAN_OUT_PATCH)` there, and only there: a run of the
engine's revision answers it without a marker, and a history recorded before the revision
without a fan-out never asks it, so every committed history replays unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pee.engine.compile.fan_out_slice import Expansion, expand_agent
    from pee.engine.compiled import CompiledGroup, FanOut
    from pee.engine.language.fan_out import FanOutLevel
    from pee.engine.rules import barrier
    from pee.engine.rules.fan_out_barrier import FanOutSourceError, collect, items_of
    from pee.engine.rules.fan_out_batches import item_batches
    from pee.engine.rules.merge import value_hash
    from pee.engine.states import GROUP_PASSED, AgentStatus, GroupStatus
    from pee.workflows import revision
    from pee.workflows.cache_levels import CacheLevels
    from pee.workflows.fan_out_items import BATCH_PATCH, ItemChildren
    from pee.workflows.run_scope import RunScope
    from pee.workflows.state import AgentState, Decision
    from pee.workflows.types import FanOutBatching

if TYPE_CHECKING:
    from pee.workflows.agent_runner import AgentRunner

FAN_OUT_PATCH = "fan-out-v1"
# instances started per workflow task: scheduling an activity costs the workflow about a
# millisecond (more in the sandbox), so a thousand at once would outlast the 2 s deadlock
# detector on a busy worker; the rest start after a 10 ms timer, the next workflow task
LAUNCH_CHUNK = 50
CHUNK_PAUSE_S = 0.01


class FanOutDriver:
    def __init__(self, scope: RunScope, runner: AgentRunner, levels: CacheLevels) -> None:
        self.scope = scope
        self.runner = runner
        # the group's context snapshot (what a resume reuses), once its lists are collected
        self.levels = levels
        self.children = ItemChildren(scope)

    async def run(
        self, group: CompiledGroup, run_group: Callable[[CompiledGroup], Awaitable[None]]
    ) -> None:
        """Run `group` (group.fan_out set, not expanded yet) over its list; `run_group` runs
        the expanded group (GroupDriver.run_group)."""
        fan_out = group.fan_out
        assert fan_out is not None
        if not revision.patched(FAN_OUT_PATCH):
            # only a history recorded by a build without fan-out could get here, and such a
            # build refused every plan with for_each before it started
            raise ApplicationError(
                f"group '{group.id}' fans out, but this run was started without fan-out support",
                type="FanOutUnavailable",
                non_retryable=True,
            )
        try:
            items = items_of(fan_out.source, self.scope.ctx.value(fan_out.source))
        except FanOutSourceError as err:
            self.fail(group, err.message)
            raise ApplicationError(
                err.message, type="FanOutSourceError", non_retryable=True
            ) from None
        if fan_out.level is FanOutLevel.GROUP or self.batched(group, items):
            await self.run_children(group, items)
            return
        template = self.scope.plan.agent(fan_out.owner)
        expansion = expand_agent(template, group, items)
        self.register(expansion)
        self.reuse_finished(expansion, items)
        self.scope.event("fan_out_started", group.id)
        # the item count travels with the event: the Web UI and `pee events` show it
        self.scope.run.events[-1]["items"] = len(items)
        state = self.scope.agents[template.id]
        state.status = AgentStatus.RUNNING
        state.started_s = state.run_started_s = self.scope.elapsed()
        if not items:
            self.empty(expansion)
        else:
            try:
                await run_group(expansion.group)
            except GeneratorExit:
                raise  # closed by the garbage collector: see run_children
            except BaseException:
                self.end_template(expansion, AgentStatus.FAILED)
                raise
        passed = self.scope.groups[group.id].status in GROUP_PASSED
        if passed:
            self.collect(expansion)
            self.levels.snapshot(group.id, self.scope.ctx, self.scope.elapsed())
        self.end_template(expansion, AgentStatus.SUCCEEDED if passed else AgentStatus.FAILED)
        self.scope.event("fan_out_ended", group.id)

    def batched(self, group: CompiledGroup, items: list[Any]) -> bool:
        """An agent-level fan-out too large for one run: its instances run in batch children
        as a one-agent group-level fan-out would (pee.engine.rules.fan_out_batches)."""
        fan_out = group.fan_out
        assert fan_out is not None
        settings = self.scope.input.fan_out_batching or FanOutBatching()
        lanes = self.children.lanes(fan_out.max_parallel)
        found = item_batches(
            len(items), 1, lanes, settings.above, settings.child_agents, settings.children_at_once
        )
        return found is not None and revision.patched(BATCH_PATCH)

    async def run_children(self, group: CompiledGroup, items: list[Any]) -> None:
        """A group-level fan-out (one child PlanWorkflow per item, or per batch of items), or a
        large agent-level one (fan_out_items.py)."""
        self.scope.event("fan_out_started", group.id)
        self.scope.run.events[-1]["items"] = len(items)
        members = list(group.agents)
        for agent_id in members:
            # a member's row says how its items went; the time is the instances' (`member[i]`):
            # a span per member would put the whole fan-out on the critical path once per member
            self.scope.agents[agent_id].status = AgentStatus.RUNNING
        try:
            await self.children.run(group, items)
        except GeneratorExit:
            # the coroutine of a run whose instance is gone, closed by the garbage collector on
            # whatever thread it runs: workflow calls there fail, and an import in their error
            # path, landing inside another import on that thread, broke it (KeyError from
            # importlib's module lock, Python 3.11) and failed an unrelated worker's start
            raise
        except BaseException:
            self.end_members(members, len(items), AgentStatus.FAILED)
            raise
        passed = self.scope.groups[group.id].status in GROUP_PASSED
        if passed:
            self.levels.snapshot(group.id, self.scope.ctx, self.scope.elapsed())
        self.end_members(
            members, len(items), AgentStatus.SUCCEEDED if passed else AgentStatus.FAILED
        )
        self.scope.event("fan_out_ended", group.id)

    def end_members(self, members: list[str], items: int, status: AgentStatus) -> None:
        now = self.scope.elapsed()
        for agent_id in members:
            state = self.scope.agents[agent_id]
            if state.ended_s is not None:
                continue
            if state.run_started_s is not None:
                state.busy_s = round(state.busy_s + now - state.run_started_s, 3)
                state.run_started_s = None
            state.status, state.ended_s = status, now
            state.attempts = sum(
                self.scope.agents[FanOut.instance_id(agent_id, i)].attempts for i in range(items)
            )

    def reuse_finished(self, expansion: Expansion, items: list[Any]) -> None:
        """`--resume-from`: an instance that succeeded in the earlier run over the same item at
        the same index is not run again; its outputs are the earlier ones."""
        resume = self.scope.input.resume
        if resume is None or not resume.finished_items:
            return
        at = self.scope.at()
        for instance, item in zip(expansion.instances, items, strict=True):
            earlier = resume.finished_items.get(instance.id)
            if earlier is None or earlier.get("item_hash") != value_hash(item):
                continue
            outputs = earlier.get("outputs") or {}
            state = self.scope.agents[instance.id]
            for name in instance.outputs:
                if name in outputs:
                    self.scope.ctx.put(
                        f"{instance.id}.{name}", outputs[name], instance.id, at, origin="resume"
                    )
                    state.outputs.append(name)
            state.status, state.resumed = AgentStatus.SUCCEEDED, True
            self.scope.event("agent_resumed", instance.id)

    def launchable(
        self, group: CompiledGroup, todo: list[str], tasks: Mapping[str, Any]
    ) -> list[str]:
        """The instances of an expanded fan-out group to start now, of `todo` (in item
        order): at most max_parallel running, at most LAUNCH_CHUNK per workflow task."""
        fan_out = group.fan_out
        assert fan_out is not None
        # instances reused from the run this one resumes are done already
        todo = [a for a in todo if self.scope.agents[a].status != AgentStatus.SUCCEEDED]
        limit = LAUNCH_CHUNK
        if fan_out.max_parallel is not None:
            live = sum(not task.done() for task in tasks.values())
            limit = min(limit, max(0, fan_out.max_parallel - live))
        return todo[:limit]

    def next_chunk(
        self, group: CompiledGroup, tasks: Mapping[str, Any]
    ) -> asyncio.Task[None] | None:
        """A short timer when the group has instances left that only the chunk held back (none
        for any other group): the next workflow task starts them."""
        fan_out = group.fan_out
        if fan_out is None or not group.parallel or len(tasks) >= len(group.agents):
            return None
        waiting = [
            a
            for a in group.agents
            if a not in tasks and self.scope.agents[a].status != AgentStatus.SUCCEEDED
        ]
        if not waiting:
            return None
        if fan_out.max_parallel is not None:
            live = sum(not task.done() for task in tasks.values())
            if live >= fan_out.max_parallel:
                return None
        # named for the Web UI's timeline, as every timer the engine starts
        return asyncio.create_task(
            workflow.sleep(CHUNK_PAUSE_S, summary="start the next chunk of agent instances")
        )

    def register(self, expansion: Expansion) -> None:
        """The instances join the plan, the run state and admission like any agent; the group
        runs them instead of the template."""
        plan = self.scope.plan
        plan.agents.extend(expansion.instances)
        position = next(i for i, g in enumerate(plan.groups) if g.id == expansion.group.id)
        plan.groups[position] = expansion.group
        for instance in expansion.instances:
            self.scope.agents[instance.id] = AgentState()
        self.runner.add_instances(expansion.template.id, expansion.item_inputs)

    def empty(self, expansion: Expansion) -> None:
        """No items: the group passes at once, every output an empty list."""
        group = expansion.group
        state = self.scope.groups[group.id]
        state.status = GroupStatus.RUNNING
        state.started_s = self.scope.elapsed()
        self.scope.event("group_started", group.id)
        reason = f"the list {group.fan_out.source if group.fan_out else ''} is empty: no item ran"
        state.decision, state.reason = barrier.ALL_COMPLETED, reason
        state.history.append(Decision(self.scope.elapsed(), barrier.ALL_COMPLETED, reason))
        self.scope.event(f"barrier_{barrier.ALL_COMPLETED}", group.id)
        self.scope.end_group(group, GroupStatus.SUCCEEDED)

    def collect(self, expansion: Expansion) -> None:
        """Each output once, as the list of the instances' values in item order."""
        template = expansion.template
        ctx = self.scope.ctx
        state = self.scope.agents[template.id]
        for name in template.outputs:
            values = {
                index: ctx.value(f"{instance.id}.{name}")
                for index, instance in enumerate(expansion.instances)
                if ctx.has(f"{instance.id}.{name}")
            }
            listed = collect(len(expansion.instances), values, template.defaults.get(name))
            ctx.put(f"{template.id}.{name}", listed, template.id, self.scope.at(), origin="fan_out")
            if name not in state.outputs:
                state.outputs.append(name)

    def end_template(self, expansion: Expansion, status: AgentStatus) -> None:
        state = self.scope.agents[expansion.template.id]
        if state.ended_s is not None:
            return
        now = self.scope.elapsed()
        if state.run_started_s is not None:
            state.busy_s = round(state.busy_s + now - state.run_started_s, 3)
            state.run_started_s = None
        state.status = status
        state.ended_s = now
        state.attempts = sum(self.scope.agents[i.id].attempts for i in expansion.instances)

    def fail(self, group: CompiledGroup, reason: str) -> None:
        """The fan-out cannot start: the group fails with the reason, its agent with it."""
        state = self.scope.groups[group.id]
        state.status = GroupStatus.RUNNING
        state.started_s = self.scope.elapsed()
        state.decision, state.reason = barrier.FAIL, reason
        state.history.append(Decision(self.scope.elapsed(), barrier.FAIL, reason))
        for agent_id in group.agents:
            agent = self.scope.agents[agent_id]
            agent.status, agent.error = AgentStatus.FAILED, reason
        self.scope.end_group(group, GroupStatus.FAILED)
