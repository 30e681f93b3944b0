"""The run ledger, the workflow side: a large run's per-agent detail goes to the run store
(pee.stores.runs) as it freezes, so no payload of the run grows with the plan.

On when PlanRunInput.ledger is set (the starter sets it with batch mode). A group's rows freeze
when the group ends (a fallback re-run happens before that; a group whose non-blocking
cross-validation is still running freezes at the run's end): its agents' report rows and its own
row (with its output hash, what `snapshots` lists) go to an outbox, with the events recorded so
far. A recorded local activity (pee.activities.run_rows) writes the outbox once it holds
``flush_rows`` rows, in the background of the run, and always before continue-as-new and before
the run returns or fails. A flush that fails keeps its rows for the next one; if the last one
fails, the rows travel inline in the summary: nothing is lost.

The `status` answer, the result and a failure's details are then a summary (`summary`): the
report's shape with only the rows not yet flushed, the fields computed over every agent
(critical path, parallel efficiency, bottlenecks, each agent's queue wait, snapshots, quality
scores) left to the assembler, and ``store``: the run key, how many rows of each kind were
flushed and the event seq reached. pee.runtime.report_assembly puts the full report back together.

The run key is ``<workflow id>/<first execution run id>``: the same for every run of a
continue-as-new chain, new when a later workflow reuses the id.

No patch: old histories have no `ledger` in their input, so they never take this path.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from pee.activities.run_rows import flush_run_rows
    from pee.engine.compiled import CompiledGroup
    from pee.engine.report.run_rows import (
        RowKind,
        RowsFlushed,
        RunRow,
        RunRowsBatch,
        event_row_id,
    )
    from pee.engine.rules.merge import value_hash
    from pee.engine.states import GROUP_PASSED, RunStatus
    from pee.workflows.run_scope import RunScope
    from pee.workflows.state import (
        _agent_report,
        _group_report,
        alerts_report,
        context_report,
        report_head,
        report_reuse_and_estimates,
        resources_report,
    )
    from pee.workflows.types import LedgerSpec

# the report fields the assembler computes over every agent (pee.runtime.report_assembly)
COMPUTED = ("critical_path", "parallel_efficiency", "bottlenecks", "snapshots")


def run_key() -> str:
    info = workflow.info()
    return f"{info.workflow_id}/{info.first_execution_run_id}"


class Ledger:
    def __init__(
        self, spec: LedgerSpec, scope: RunScope, carried: dict[str, Any] | None = None
    ) -> None:
        self.flush_rows = max(1, int(spec.flush_rows))
        self.scope = scope
        self.key = run_key()
        carried = carried or {}
        # groups whose rows went to the outbox or the store (insertion order: freeze order)
        self.frozen: dict[str, None] = dict.fromkeys(carried.get("frozen", {}))
        self.outbox: list[RunRow] = []
        # rows written, by kind (a continuation goes on counting)
        self.flushed: dict[str, int] = {
            str(k): int(v) for k, v in carried.get("flushed", {}).items()
        }
        # the order rows are frozen in: agent and group rows read back in it
        self._seq = sum(self.flushed.get(k, 0) for k in (RowKind.AGENT, RowKind.GROUP))
        self._flushing: asyncio.Task[None] | None = None
        # the last flush's error (None: it wrote its rows)
        self.error: str | None = None

    # --- freezing ------------------------------------------------------------------------

    def group_ended(self, group: CompiledGroup) -> None:
        """The run loop saw the group's task end: freeze it, unless a non-blocking
        cross-validation may still write its row (it freezes at the run's end)."""
        if len(group.cross_validation) >= 2 and not group.cross_validation_blocking:
            return
        self.freeze(group)
        self.flush_soon()

    def freeze(self, group: CompiledGroup) -> None:
        """The group has ended: its agents' rows and its own go to the outbox."""
        if group.id in self.frozen:
            return
        self.frozen[group.id] = None
        run = self.scope.run
        now = self.scope.elapsed()
        end_s = run.ended_s if run.ended_s is not None else now
        plan = self.scope.plan
        for agent_id in group.agents:
            agent = plan.agent(agent_id)
            self._seq += 1
            self.outbox.append(
                RunRow(
                    RowKind.AGENT,
                    agent_id,
                    self._seq,
                    _agent_report(run, agent_id, agent.group, agent.role, agent.kind, end_s),
                )
            )
        self._seq += 1
        self.outbox.append(RunRow(RowKind.GROUP, group.id, self._seq, self.group_row(group, end_s)))
        self.take_events()

    def group_row(self, group: CompiledGroup, now_s: float) -> dict[str, Any]:
        run = self.scope.run
        row = _group_report(run, group.id, now_s)
        if run.groups[group.id].status in GROUP_PASSED:
            # what report["snapshots"] lists: sha256 of its agents' own output values
            owned = {
                key: value
                for agent_id in group.agents
                for name in self.scope.plan.agent(agent_id).outputs
                if run.context.has(key := f"{agent_id}.{name}")
                for value in (run.context.value(key),)
            }
            row["snapshot"] = value_hash(owned)
        return row

    def take_events(self) -> None:
        run = self.scope.run
        self.outbox += [
            RunRow(RowKind.EVENT, event_row_id(int(event["seq"])), int(event["seq"]), dict(event))
            for event in run.events
        ]
        run.events_flushed += len(run.events)
        run.events = []

    # --- flushing ------------------------------------------------------------------------

    @property
    def due(self) -> bool:
        return len(self.outbox) >= self.flush_rows and (
            self._flushing is None or self._flushing.done()
        )

    def flush_soon(self) -> None:
        """Flush in the background once the outbox is full (one flush at a time)."""
        if self.due:
            self._flushing = asyncio.create_task(self.flush())

    async def settle(self) -> None:
        """Everything frozen so far written (or kept, if the store fails): before
        continue-as-new, the result or a failure."""
        if self._flushing is not None and not self._flushing.done():
            await self._flushing
        for group in self.scope.plan.groups:
            if group.id not in self.frozen and self.scope.groups[group.id].ended_s is not None:
                self.freeze(group)
        self.take_events()
        await self.flush()

    async def flush(self) -> None:
        if not self.outbox:
            return
        rows, self.outbox = self.outbox, []
        try:
            done: RowsFlushed = await workflow.execute_local_activity(
                flush_run_rows,
                RunRowsBatch(self.key, workflow.info().workflow_id, self.scope.plan.name, rows),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=3),
                summary=f"{len(rows)} report rows to the run store",
            )
        except ActivityError as err:
            done = RowsFlushed(0, f"flush_run_rows failed: {err.cause or err}")
        if done.error is not None:
            # kept, in order, for the next flush (or the summary): nothing is lost
            self.outbox = rows + self.outbox
            if self.error is None:
                workflow.logger.warning("run store not written: %s", done.error)
            self.error = done.error
            return
        self.error = None
        for row in rows:
            self.flushed[row.kind] = self.flushed.get(row.kind, 0) + 1

    def carry(self) -> dict[str, Any]:
        """For a continuation (after `settle`): what the store holds, so the new run neither
        carries those rows nor writes them again. Frozen groups and agents travel as their
        status only (pee.workflows.carry)."""
        run = self.scope.run
        frozen_agents = {
            agent_id: str(run.agents[agent_id].status)
            for group_id in self.frozen
            for agent_id in self.scope.plan.group(group_id).agents
        }
        return {
            "frozen": {g: str(run.groups[g].status) for g in self.frozen},
            "agents": frozen_agents,
            "flushed": dict(self.flushed),
            "events_flushed": run.events_flushed,
        }

    # --- the summary ---------------------------------------------------------------------

    def summary(self, batch: dict[str, int] | None) -> dict[str, Any]:
        """The report's shape, with only what is not in the store (see the module doc)."""
        run = self.scope.run
        plan = self.scope.plan
        info = workflow.info()
        now_s = self.scope.elapsed()
        end_s = run.ended_s if run.ended_s is not None else now_s
        live_groups = [g for g in plan.groups if g.id not in self.frozen]
        agents: dict[str, Any] = {}
        groups: dict[str, Any] = {}
        for row in self.outbox:
            if row.kind == RowKind.AGENT:
                agents[row.row_id] = row.body
            elif row.kind == RowKind.GROUP:
                groups[row.row_id] = row.body
        for group in live_groups:
            for agent_id in group.agents:
                agent = plan.agent(agent_id)
                agents[agent_id] = _agent_report(
                    run, agent_id, agent.group, agent.role, agent.kind, end_s
                )
            groups[group.id] = self.group_row(group, end_s)
        events = [row.body for row in self.outbox if row.kind == RowKind.EVENT]
        events += [dict(event) for event in run.events]
        report: dict[str, Any] = {
            **report_head(run, info.workflow_id, info.run_id, end_s),
            **report_reuse_and_estimates(run),
            "agents": agents,
            "groups": groups,
            "alerts": alerts_report(run),
            "events": events,
            **context_report(run),
            "resources": resources_report(run, end_s, per_agent=False),
            "store": {
                "run_key": self.key,
                "flushed": dict(self.flushed),
                "event_seq": run.events_flushed + len(run.events),
                "error": self.error,
                # True once the run has ended and every row is in the store or in here
                "complete": run.status != RunStatus.RUNNING,
            },
        }
        if batch is not None:
            report["batch"] = batch
        return report
