"""Workflow side of the context snapshot cache and of prefetching (PlanWorkflow calls in here).

- `snapshot(group)`: after a group passes its barrier, the context values go to the
  `store_context_snapshot` local activity (the values are its input, which the history does not
  keep; only the small SnapshotStored result is recorded). Key: "<group>#<value_hash(values)>".
  The report's `context_snapshots` lists {group, key, at_s, stored} in the order they were
  taken; `run --resume-from` reads the last one of a passed group when no group passed after it.
  In a run of the engine's revision (pee.workflows.revision) a snapshot is held until the run
  loop knows whether the run goes on (`store_held`): the snapshots taken as the run completes
  are left out, `final: true` and not stored, since the local activity was the largest single
  cost on a small run's tail (one more activation before the run could complete; bench/README
  "Session 11"), and a resume of a completed run reads its final context from its history.
- `prefetch(group)`: when a group starts, one `prefetch_group` activity per group likely to start
  next (pee.engine.rules.prefetch.next_groups) that has something to warm: template files to parse
  or artifact references to resolve. Not awaited: it runs beside the group; the run waits for it
  (or cancels it) only at its end.
- `count(result)`: the worker-side cache counters an AgentResult carries.

Both activities are new commands, so they sit behind `revision.patched(PATCH)`: a history
recorded before them replays without them. Snapshots are taken when the plan's caching is on
(the default) and its context_snapshot_cache.size_limit is above 0; prefetching when
cache_optimization.prefetching allows it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from pee.activities.prefetch import prefetch_group
    from pee.activities.snapshot_cache import store_context_snapshot
    from pee.activities.types import (
        AgentResult,
        Prefetched,
        PrefetchTask,
        SnapshotStored,
        SnapshotTask,
    )
    from pee.engine.compiled import NO_COMPRESSION, CompiledGroup, CompiledPlan
    from pee.engine.rules import prefetch as plan_prefetch
    from pee.engine.rules.context import VersionedContext
    from pee.engine.rules.merge import value_hash
    from pee.engine.states import GROUP_PASSED
    from pee.workflows import revision
    from pee.workflows.state import RunState

PATCH = "cache-levels-snapshots-prefetch"
# the final snapshot left out came with the engine's revision: its id names the change for good
# (`revision.patched` of it stays True in runs of any later revision)
FINAL_SNAPSHOT_PATCH = "engine-revision-2"
SNAPSHOT_TIMEOUT = timedelta(seconds=30)
PREFETCH_TIMEOUT = timedelta(seconds=60)


class CacheLevels:
    def __init__(self, plan: CompiledPlan, run: RunState) -> None:
        self._plan = plan
        self._run = run
        self._caching = plan.caching
        self._enabled = plan.caching.enabled
        self._snapshots: list[asyncio.Task[None]] = []
        # a run of the revision holds its snapshots for the run loop (store_held / settle),
        # which leaves out those the run completes with
        self._hold = revision.patched(FINAL_SNAPSHOT_PATCH)
        self._held: list[tuple[SnapshotTask, dict[str, Any]]] = []
        # False in batch mode (PlanWorkflow with PlanRunInput.batch): no snapshot or prefetch
        # command per group, so the history does not grow with the number of groups
        self.per_group = True
        self._prefetches: list[asyncio.Task[None]] = []

    # --- settings -----------------------------------------------------------------------

    def _snapshot_ttl_s(self) -> float | None:
        return self._caching.context_snapshot.ttl_s

    def _snapshot_size_limit(self) -> int | None:
        return self._caching.context_snapshot.size_limit

    def _compression_threshold(self) -> int | None:
        if self._caching.compression_algorithm == NO_COMPRESSION:
            return 2**62  # never compress
        return self._caching.compression_threshold

    def snapshots_on(self) -> bool:
        limit = self._snapshot_size_limit()
        return self._enabled and (limit is None or limit > 0)

    # --- context snapshots --------------------------------------------------------------

    def snapshot(self, group_id: str, context: VersionedContext, at_s: float) -> None:
        if not self.per_group or not self.snapshots_on() or not revision.patched(PATCH):
            return
        values = context.values()
        key = f"{group_id}#{value_hash(values)}"
        entry: dict[str, Any] = {"group": group_id, "key": key, "at_s": at_s, "stored": False}
        self._run.context_snapshots.append(entry)
        info = workflow.info()
        task = SnapshotTask(
            key=key,
            values=values,
            group_id=group_id,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            plan_name=self._plan.name,
            ttl_s=self._snapshot_ttl_s(),
            size_limit=self._snapshot_size_limit(),
            compression_threshold=self._compression_threshold(),
        )
        if self._hold:
            self._held.append((task, entry))
        else:
            self._snapshots.append(asyncio.create_task(self._store(task, entry)))

    def store_held(self) -> None:
        """Start storing the snapshots held so far: the run goes on after them."""
        for task, entry in self._held:
            self._snapshots.append(asyncio.create_task(self._store(task, entry)))
        self._held.clear()

    async def _store(self, task: SnapshotTask, entry: dict[str, Any]) -> None:
        try:
            stored: SnapshotStored = await workflow.execute_local_activity(
                store_context_snapshot,
                task,
                start_to_close_timeout=SNAPSHOT_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=2),
                summary=f"context snapshot after group {task.group_id}",
            )
        except ActivityError as err:
            workflow.logger.warning(
                "context snapshot after group %s not stored: %s", task.group_id, err
            )
            return
        entry["stored"] = stored.stored
        if stored.stored:
            self._run.cache.add(
                {"context_snapshot": {"stored": 1, "bytes_saved": stored.bytes_saved}}
            )

    def resumed(self, snapshot_key: str | None) -> None:
        """A resume that found the earlier run's snapshot (a hit) or read its context by query
        (a miss)."""
        self._run.resumed_snapshot = snapshot_key
        self._run.cache.bump("context_snapshot", "hits" if snapshot_key else "misses")

    # --- prefetching --------------------------------------------------------------------

    def prefetch(self, started: CompiledGroup, context: VersionedContext) -> None:
        templates_on = self._caching.prefetch_templates
        context_on = self._caching.prefetch_context
        if not self.per_group or not self._enabled or not (templates_on or context_on):
            return
        status = {group_id: state.status for group_id, state in self._run.groups.items()}
        for group in plan_prefetch.next_groups(self._plan.groups, started.id, status, GROUP_PASSED):
            agents = [self._plan.agent(agent_id) for agent_id in group.agents]
            task = PrefetchTask(
                group_id=group.id,
                templates=plan_prefetch.template_agents(agents) if templates_on else [],
                references=plan_prefetch.references(agents, context.has, context.value)
                if context_on
                else [],
            )
            if not (task.templates or task.references) or not revision.patched(PATCH):
                continue
            self._run.cache.bump("prefetch", "requests")
            # the worker that will render the templates is the one worth warming
            queue = (task.templates[0] if task.templates else agents[0]).task_queue
            self._prefetches.append(asyncio.create_task(self._warm(task, queue)))

    async def _warm(self, task: PrefetchTask, task_queue: str | None) -> None:
        try:
            done: Prefetched = await workflow.execute_activity(
                prefetch_group,
                task,
                task_queue=task_queue,
                activity_id=f"prefetch#{task.group_id}",
                start_to_close_timeout=PREFETCH_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=1),
                summary=f"prefetch for group {task.group_id}",
            )
        except ActivityError as err:
            workflow.logger.warning("prefetch for group %s failed: %s", task.group_id, err)
            return
        self._run.cache.bump("prefetch", "prefetched", done.templates + done.values)

    # --- results and the end of the run -------------------------------------------------

    def count(self, result: AgentResult) -> None:
        self._run.cache.add(result.cache or {})

    async def settle(self, completing: bool = False) -> None:
        """Wait for the snapshots still being stored; cancel prefetches nobody needs any more.
        ``completing``: the run completes next, so the snapshots still held are its final
        context and are left out (a failed, cancelled or continued run stores them: a resume
        of it reuses them)."""
        if completing:
            for _, entry in self._held:
                entry["final"] = True
            self._held.clear()
        self.store_held()
        live = [task for task in self._prefetches if not task.done()]
        for task in live:
            task.cancel()
        pending = [task for task in self._snapshots if not task.done()] + live
        if pending:
            await workflow.wait(pending)
