"""RunScope: what every part of a plan run reads (the input, the plan, the time scale, the
RunState) and the recorders they all write through: the run's clock, events, alerts, the
workflow's current details and its search attributes.

PlanWorkflow builds one per run and hands it to its collaborators (conflict_desk, context_gate,
agent_runner, cross_validator, …), so none of them reaches into the workflow's own attributes.
Recording issues the same commands it did as PlanWorkflow methods (tests/test_replay.py): only
search-attribute upserts (RunSearchAttributes.sync) leave the workflow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from temporalio import workflow

if TYPE_CHECKING:
    from datetime import datetime

with workflow.unsafe.imports_passed_through():
    from pee.engine.compiled import CompiledGroup, CompiledPlan
    from pee.engine.dag import iso_at
    from pee.engine.rules import barrier
    from pee.engine.rules.context import VersionedContext
    from pee.engine.states import GroupStatus, RunStatus
    from pee.workflows import revision
    from pee.workflows.search import SEARCH_SYNC_PATCH, RunSearchAttributes
    from pee.workflows.state import (
        AgentState,
        Alert,
        Decision,
        GroupState,
        RunState,
        build_report,
        current_details,
        waiting_for_person,
    )
    from pee.workflows.types import PlanRunInput


class RunScope:
    def __init__(
        self,
        input: PlanRunInput,
        run: RunState,
        search: RunSearchAttributes,
    ) -> None:
        self.input = input
        self.plan: CompiledPlan = input.plan
        self.scale = float(input.time_scale)
        self.run = run
        self.search = search
        # the search attributes too are synced once per activation (see details): batch mode,
        # and every run since SEARCH_SYNC_PATCH (asked after the run's revision: deterministic)
        self.sync_per_activation = input.batch is not None or revision.patched(SEARCH_SYNC_PATCH)
        # an event happened since the details writer last ran
        self.details_due = False
        # elapsed() as of workflow.time_ns() _elapsed_ns, from run.started _elapsed_from
        self._elapsed_ns = -1
        self._elapsed_from: datetime | None = None
        self._elapsed_s = 0.0
        # at() as of elapsed() _at_s from run.started _at_from
        self._at_s = -1.0
        self._at_from: datetime | None = None
        self._at = ""

    # the RunState's parts, read live: restore() fills them in place, never replaces them
    @property
    def agents(self) -> dict[str, AgentState]:
        return self.run.agents

    @property
    def groups(self) -> dict[str, GroupState]:
        return self.run.groups

    @property
    def ctx(self) -> VersionedContext:
        return self.run.context

    # --- clock -------------------------------------------------------------------------

    def elapsed(self) -> float:
        # workflow time stands still within an activation, and each agent asks several times
        # (workflow.now() builds a datetime each time): computed once per workflow time
        now_ns = workflow.time_ns()
        if now_ns != self._elapsed_ns or self.run.started is not self._elapsed_from:
            self._elapsed_s = round((workflow.now() - self.run.started).total_seconds(), 3)
            self._elapsed_ns, self._elapsed_from = now_ns, self.run.started
        return self._elapsed_s

    def at(self) -> str:
        """Now as ISO 8601 (context versions and conflicts carry it)."""
        elapsed = self.elapsed()
        # once per workflow time, as elapsed(): every agent's commit asks
        if elapsed != self._at_s or self.run.started is not self._at_from:
            self._at = iso_at(self.run.started, elapsed) or ""
            self._at_s, self._at_from = elapsed, self.run.started
        return self._at

    # --- recorders ---------------------------------------------------------------------

    def event(self, event: str, ident: str) -> None:
        self.run.events.append(
            {
                "seq": self.run.events_flushed + len(self.run.events) + 1,
                "at_s": self.elapsed(),
                "event": event,
                "id": ident,
            }
        )
        self.details()

    def decision(self, group: CompiledGroup, decision: barrier.BarrierDecision) -> None:
        """A barrier decided: the group's decision and reason (a fallback's outcome is added to
        the abort_and_fallback that started it, which stays the decision), its history, the
        latest decision the details text shows, and the barrier_<action> event. One recorder
        for plain groups and fan-outs, so both read the same in the report and the Web UI."""
        state = self.groups[group.id]
        if decision.action in (
            barrier.FALLBACK_SUCCEEDED,
            barrier.CONTINUE_WITH_DEFAULTS,
            barrier.FAIL,
        ):
            state.reason = f"{state.reason}; then {decision.reason}"
        else:
            state.decision, state.reason = decision.action, decision.reason
        if decision.quality_impact is not None:
            state.quality_impact = decision.quality_impact
        state.history.append(Decision(self.elapsed(), decision.action, decision.reason))
        self.run.last_decision = (group.id, state.history[-1])
        self.event(f"barrier_{decision.action}", group.id)

    def alert(self, group_id: str, level: str, message: str) -> None:
        self.run.alerts.append(Alert(self.elapsed(), group_id, level, message))
        log = workflow.logger.error if level == "critical" else workflow.logger.warning
        log("alert: %s", message)

    def details(self, now: bool = False) -> None:
        """The run changed. The details text (it walks every group) is written once per
        activation by details_writer: only the last one set in an activation reaches the
        server, and per event it is O(events x groups), which trips the 2 s deadlock detector on
        large plans. PeeStatus/PeeGroup upserts are commands: synced with the text once per
        activation in batch mode and in runs since SEARCH_SYNC_PATCH (a group that ends and the
        one it starts made two upserts, two history events, in one workflow task), at each
        event in runs recorded before. `now`: both at once (the run ends or hands on)."""
        if now:
            waiting = waiting_for_person(self.run)
            self.write_details(waiting)
            self.search.sync(self.run, waiting)
            return
        self.details_due = True
        if not self.sync_per_activation and self.search.enabled:
            self.search.sync(self.run, waiting_for_person(self.run))

    def write_details(self, waiting: list[str]) -> None:
        workflow.set_current_details(
            current_details(self.run, self.elapsed(), workflow.info().workflow_id, waiting)
        )

    async def details_writer(self) -> None:
        while True:
            await workflow.wait_condition(lambda: self.details_due)
            self.details_due = False
            if self.sync_per_activation:
                self.details(now=True)
            else:
                self.write_details(waiting_for_person(self.run))

    def finish(self, status: RunStatus, error: str | None = None) -> None:
        self.run.status = status
        self.run.error = error
        self.run.ended_s = self.elapsed()
        self.details(now=True)

    def end_group(self, group: CompiledGroup, status: GroupStatus) -> None:
        state = self.groups[group.id]
        if state.paused_since_s is not None:
            # ended (cancelled, or an abort) while an agent was blocked: close the pause
            state.paused_s = round(state.paused_s + self.elapsed() - state.paused_since_s, 3)
            state.paused_since_s = None
        state.status = status
        state.ended_s = self.elapsed()
        self.run.running.pop(group.id, None)
        self.event(f"group_{status}", group.id)

    # --- what the run says about itself --------------------------------------------------

    def describe_agents(self, group: CompiledGroup) -> str:
        parts = []
        for agent_id in group.agents:
            state = self.agents[agent_id]
            text = f"{agent_id} {state.status}"
            if state.error:
                text += f" ({state.error})"
            parts.append(text)
        return ", ".join(parts)

    def report(self, batch_summary: dict[str, int] | None = None) -> dict[str, Any]:
        info = workflow.info()
        report = build_report(self.run, info.workflow_id, info.run_id, self.elapsed())
        if batch_summary is not None:
            report["batch"] = batch_summary
        return report
