"""The trace of a finished run: one span for the run, one per group under it, one per agent and
one per barrier decision under its group, with real start and end times, from the run report.

Pure: src/pee/runtime/run_observer.py turns these specs into OpenTelemetry spans once the run's
report is final. Deriving spans from the report (rather than opening them in workflow code) gives
them their real durations and final attributes (attempts, cache status) and adds nothing to the
workflow: a traced run issues exactly the commands an untraced one does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pee.engine.report.metrics import cache_status
from pee.engine.states import AGENT_ERROR

AttributeValue = str | int | float | bool | list[str]
# run statuses (and agent/group statuses) that mark a span as failed

# the run's, a group's or an agent's status that marks its span as an error ("failed" is
# spelled the same in all three vocabularies; only agents time out)
ERROR_STATUSES = AGENT_ERROR


@dataclass(frozen=True)
class SpanSpec:
    # unique within the run, so children can name their parent
    key: str
    parent: str | None
    name: str
    start: datetime
    end: datetime
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    error: str | None = None


def run_spans(report: Mapping[str, Any]) -> list[SpanSpec]:
    """Run, then each group followed by its barrier decisions and its agents (plan order).
    Agents and groups that never started (skipped, resumed from an earlier run) get no span; a
    resumed group is still named in the run span's ``pee.resumed_groups``."""
    started = parse_time(report.get("started_at"))
    if started is None:
        return []
    ended = parse_time(report.get("finished_at")) or started
    plan = str(report.get("plan") or "")
    agents: dict[str, dict[str, Any]] = dict(report.get("agents") or {})
    groups: dict[str, dict[str, Any]] = dict(report.get("groups") or {})
    status = str(report.get("status") or "")
    common: dict[str, AttributeValue] = {
        "temporalWorkflowID": str(report.get("workflow_id") or ""),
        "temporalRunID": str(report.get("run_id") or ""),
        "pee.plan": plan,
    }
    resumed = [g for g, group in groups.items() if group.get("resumed")]
    spans = [
        SpanSpec(
            "run",
            None,
            f"PlanRun:{plan}",
            started,
            ended,
            {
                **common,
                "pee.status": status,
                "pee.makespan_s": float(report.get("makespan_s") or 0.0),
                "pee.parallel_efficiency": float(report.get("parallel_efficiency") or 0.0),
                "pee.critical_path": [str(a) for a in report.get("critical_path") or []],
                "pee.alerts": len(report.get("alerts") or []),
                "pee.conflicts": len(report.get("conflicts") or []),
                **({"pee.resumed_groups": resumed} if resumed else {}),
            },
            error=(str(report.get("error") or status) if status in ERROR_STATUSES else None),
        )
    ]
    for group_id, group in groups.items():
        group_start = parse_time(group.get("started_at"))
        if group_start is None:
            continue
        group_end = parse_time(group.get("finished_at")) or ended
        barrier = dict(group.get("barrier") or {})
        group_status = str(group.get("status") or "")
        key = f"group:{group_id}"
        spans.append(
            SpanSpec(
                key,
                "run",
                f"Group:{group_id}",
                group_start,
                max(group_start, group_end),
                {
                    **common,
                    "pee.group": group_id,
                    "pee.group_status": group_status,
                    "pee.barrier_decision": str(barrier.get("decision") or ""),
                    "pee.extensions": int(barrier.get("extensions") or 0),
                    "pee.parallel": bool(group.get("parallel", True)),
                },
                error=str(barrier.get("reason") or group_status)
                if group_status in ERROR_STATUSES
                else None,
            )
        )
        for index, decision in enumerate(barrier.get("history") or []):
            at = parse_time(decision.get("at")) or group_end
            spans.append(
                SpanSpec(
                    f"{key}:barrier:{index}",
                    key,
                    f"Barrier:{decision.get('decision')}",
                    at,
                    at,
                    {
                        **common,
                        "pee.group": group_id,
                        "pee.barrier_decision": str(decision.get("decision") or ""),
                        "pee.reason": str(decision.get("reason") or ""),
                    },
                )
            )
        for agent_id in group.get("agents") or []:
            agent = agents.get(agent_id) or {}
            agent_start = parse_time(agent.get("started_at"))
            if agent_start is None or agent.get("resumed"):
                continue
            agent_end = parse_time(agent.get("finished_at")) or group_end
            agent_status = str(agent.get("status") or "")
            spans.append(
                SpanSpec(
                    f"agent:{agent_id}",
                    key,
                    f"Agent:{agent_id}",
                    agent_start,
                    max(agent_start, agent_end),
                    {
                        **common,
                        "pee.agent": agent_id,
                        "pee.group": group_id,
                        # the agent's activity id: RunActivity spans carry the same
                        # temporalActivityID
                        "temporalActivityID": agent_id,
                        "pee.role": str(agent.get("role") or ""),
                        "pee.kind": str(agent.get("kind") or ""),
                        "pee.agent_status": agent_status,
                        "pee.attempt": int(agent.get("attempts") or 0),
                        "pee.cache_status": cache_status(report, agent),
                        "pee.queue_wait_s": float(agent.get("queue_wait_s") or 0.0),
                        "pee.blocked_s": float(agent.get("blocked_s") or 0.0),
                    },
                    error=str(agent.get("error") or agent_status)
                    if agent_status in ERROR_STATUSES
                    else None,
                )
            )
    return spans


def parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    # Python 3.10's fromisoformat does not read a trailing Z
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
