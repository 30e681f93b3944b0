"""What PlanWorkflow records about agents and groups, and how that becomes the run report.

Plain dataclasses and functions of recorded values (no temporalio import), so the report is
a deterministic function of history. Times are run-relative seconds here; the report turns them
into ISO 8601 timestamps from the run's start (`workflow.now()` when the run began).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine import barrier
from engine.compiled import CompiledPlan
from engine.report import actual_critical_path, iso_at, parallel_efficiency

# report statuses an agent can be in once the workflow has stopped watching it
FINISHED = ("succeeded", "failed", "timed_out", "cancelled", "defaulted", "skipped")


@dataclass
class AgentState:
    # pending running succeeded failed timed_out cancelled defaulted skipped
    status: str = "pending"
    # first start and last end (a sequential fallback runs an agent a second time)
    started_s: float | None = None
    ended_s: float | None = None
    run_started_s: float | None = None
    # time spent running, all runs together
    busy_s: float = 0.0
    # attempts of earlier runs (the parallel run before a fallback) + of the current run
    earlier_attempts: int = 0
    attempts: int = 0
    outputs: list[str] = field(default_factory=list)
    defaulted_outputs: list[str] = field(default_factory=list)
    missing_inputs: list[str] = field(default_factory=list)
    error: str | None = None
    # failed with a non-retryable error: the barrier aborts the group at once
    critical: bool = False
    progress: float | None = None
    last_progress_s: float | None = None

    def barrier_view(self) -> barrier.AgentView:
        if self.status in ("pending", "running", "succeeded"):
            status = self.status
        elif self.critical:
            status = barrier.CRITICAL_FAILED
        else:
            status = barrier.FAILED
        return barrier.AgentView(status, self.last_progress_s, self.attempts)

    def duration_s(self, now_s: float) -> float | None:
        if self.started_s is None:
            return None
        running = now_s - self.run_started_s if self.run_started_s is not None else 0.0
        return round(self.busy_s + running, 3)


@dataclass
class Decision:
    at_s: float
    decision: str
    reason: str


@dataclass
class GroupState:
    # pending running succeeded partial failed cancelled
    status: str = "pending"
    started_s: float | None = None
    ended_s: float | None = None
    deadline_s: float | None = None
    decision: str | None = None
    reason: str | None = None
    quality_impact: str | None = None
    extensions: int = 0
    history: list[Decision] = field(default_factory=list)


@dataclass
class Alert:
    at_s: float
    group: str
    level: str  # warning | critical
    message: str


@dataclass
class RunState:
    """Everything the report is made of, besides the plan and the workflow's identity."""

    plan: CompiledPlan
    started: datetime
    time_scale: float
    agents: dict[str, AgentState]
    groups: dict[str, GroupState]
    status: str = "running"  # running completed failed cancelled
    error: str | None = None
    ended_s: float | None = None
    alerts: list[Alert] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


def build_report(run: RunState, workflow_id: str, run_id: str, now_s: float) -> dict[str, Any]:
    """The `status` query answer and the workflow result (shape: /tmp/contracts3.md)."""
    plan = run.plan
    end_s = run.ended_s if run.ended_s is not None else now_s
    durations = {a.id: run.agents[a.id].duration_s(end_s) or 0.0 for a in plan.agents}
    lower_bound, path = actual_critical_path(plan.agents, plan.groups, durations)
    return {
        "workflow_id": workflow_id,
        "run_id": run_id,
        "plan": plan.name,
        "status": run.status,
        "error": run.error,
        "time_scale": run.time_scale,
        "started_at": iso_at(run.started, 0.0),
        "finished_at": iso_at(run.started, run.ended_s),
        "makespan_s": round(end_s, 3),
        "estimated_makespan_s": round(plan.estimated_makespan_s * run.time_scale, 3),
        "sequential_s": round(plan.sequential_s * run.time_scale, 3),
        "agents": {
            agent.id: _agent_report(run, agent.id, agent.group, agent.role, agent.kind, end_s)
            for agent in plan.agents
        },
        "groups": {group.id: _group_report(run, group.id) for group in plan.groups},
        "alerts": [
            {"at": iso_at(run.started, a.at_s), "group": a.group, "level": a.level,
             "message": a.message}
            for a in run.alerts
        ],
        "critical_path": path,
        "parallel_efficiency": parallel_efficiency(lower_bound, end_s),
        "events": [dict(event) for event in run.events],
    }


def _agent_report(
    run: RunState, agent_id: str, group: str, role: str, kind: str, end_s: float
) -> dict[str, Any]:
    state = run.agents[agent_id]
    return {
        "status": state.status,
        "group": group,
        "role": role,
        "kind": kind,
        "started_at": iso_at(run.started, state.started_s),
        "finished_at": iso_at(run.started, state.ended_s),
        "duration_s": state.duration_s(end_s),
        "attempts": state.attempts,
        "outputs": list(state.outputs),
        "defaulted_outputs": list(state.defaulted_outputs),
        "missing_inputs": list(state.missing_inputs),
        "error": state.error,
        "progress": state.progress,
        "last_progress_at": iso_at(run.started, state.last_progress_s),
    }


def _group_report(run: RunState, group_id: str) -> dict[str, Any]:
    state = run.groups[group_id]
    group = run.plan.group(group_id)
    return {
        "status": state.status,
        "agents": list(group.agents),
        "depends_on": list(group.depends_on),
        "parallel": group.parallel,
        "started_at": iso_at(run.started, state.started_s),
        "finished_at": iso_at(run.started, state.ended_s),
        "deadline_at": iso_at(run.started, state.deadline_s),
        "barrier": {
            "decision": state.decision,
            "extensions": state.extensions,
            "reason": state.reason,
            "quality_impact": state.quality_impact,
            "history": [
                {"at": iso_at(run.started, d.at_s), "decision": d.decision, "reason": d.reason}
                for d in state.history
            ],
        },
    }


def current_details(run: RunState, now_s: float) -> str:
    """Markdown for `workflow.set_current_details`: where the run is, at a glance in the Web UI."""
    lines = [f"**{run.plan.name}**: {run.status}, {now_s:.1f} s"]
    for group in run.plan.groups:
        state = run.groups[group.id]
        if state.status != "running":
            continue
        agents = ", ".join(f"{a} {run.agents[a].status}" for a in group.agents)
        deadline = "" if state.deadline_s is None else (
            f", deadline in {max(0.0, state.deadline_s - now_s):.1f} s")
        lines.append(f"- group `{group.id}` running: {agents}{deadline}")
    latest = [
        (d.at_s, group_id, d) for group_id, state in run.groups.items() for d in state.history
    ]
    if latest:
        _, group_id, last = max(latest, key=lambda item: item[0])
        lines.append(f"\nLast barrier decision: `{group_id}` **{last.decision}**: {last.reason}")
    if run.alerts:
        lines.append(f"\nAlerts: {len(run.alerts)}; last: {run.alerts[-1].message}")
    if run.error:
        lines.append(f"\nError: {run.error}")
    return "\n".join(lines)
