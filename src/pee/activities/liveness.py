"""Liveness from the server: which of a run's agent activities a worker has started, and when
each last heartbeat.

At a group deadline the plan workflow asks this local activity about its unfinished running
agents instead of counting `agent_progress` signals (each one a history event and a workflow
task). One `DescribeWorkflowExecution` per target workflow (the run itself, or in batch mode the
children holding the agents) reads the pending activities: state, attempt, last start, last
heartbeat time and heartbeat details (the AgentProgress dict activities/progress.py sends). Its
result is recorded as a marker, so a replay decides the same without the server.

`pee status` overlays live progress from the same parsing (runtime/live_progress.py), made by
the client: queries cannot call the server.

An RPC failure goes into `Liveness.error`, never raises: the barrier then decides as it did
without observations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from temporalio import activity
from temporalio.api.enums.v1 import PendingActivityState, PendingWorkflowTaskState

from pee.engine.states import ActivityState


@dataclass
class LivenessTarget:
    workflow_id: str
    # None: the workflow's latest run
    run_id: str | None = None
    activity_ids: list[str] = field(default_factory=list)
    # agents running as local activities of this workflow (batch mode, BatchSpec.local_s):
    # not pending activities on the server, so judged by its workflow task (local_liveness)
    local_ids: list[str] = field(default_factory=list)


@dataclass
class LivenessQuery:
    targets: list[LivenessTarget] = field(default_factory=list)


@dataclass
class ActivityLiveness:
    activity_id: str
    # an ActivityState value
    state: str
    attempt: int = 0
    # ISO 8601 UTC times from the server, None when it has none
    started_at: str | None = None
    heartbeat_at: str | None = None
    fraction: float | None = None
    message: str = ""
    # the attempt's last heartbeat: how long its worker was behind (AgentProgress.behind_s)
    behind_s: float = 0.0


@dataclass
class Liveness:
    observed: list[ActivityLiveness] = field(default_factory=list)
    error: str | None = None


def _iso(stamp: Any) -> str | None:
    # an unset protobuf Timestamp reads as 0 seconds
    if stamp is None or (stamp.seconds == 0 and stamp.nanos == 0):
        return None
    return str(stamp.ToDatetime(tzinfo=timezone.utc).isoformat())


def _state(info: Any) -> ActivityState:
    if info.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED:
        return ActivityState.STARTED
    if info.state == PendingActivityState.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED:
        return ActivityState.CANCEL_REQUESTED
    if info.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED and info.attempt > 1:
        return ActivityState.RETRYING
    # scheduled, first attempt, or paused: no worker is running it now
    return ActivityState.WAITING_TO_START


def liveness_from(
    pending: Iterable[Any],
    wanted: Sequence[str],
    details: Callable[[Any], dict[str, Any] | None],
) -> list[ActivityLiveness]:
    """The wanted activities' liveness from a description's `pending_activities`; one not
    pending has ended (its outcome is on its way) or is not scheduled yet: `absent`.
    ``details`` decodes a pending activity's heartbeat details into the progress dict."""
    by_id = {info.activity_id: info for info in pending}
    observed = []
    for activity_id in wanted:
        info = by_id.get(activity_id)
        if info is None:
            observed.append(ActivityLiveness(activity_id, str(ActivityState.ABSENT)))
            continue
        progress = details(info) or {}
        fraction = progress.get("fraction")
        behind = progress.get("behind_s")
        observed.append(
            ActivityLiveness(
                activity_id,
                str(_state(info)),
                attempt=int(info.attempt),
                started_at=_iso(info.last_started_time)
                if info.HasField("last_started_time")
                else None,
                heartbeat_at=_iso(info.last_heartbeat_time)
                if info.HasField("last_heartbeat_time")
                else None,
                fraction=float(fraction) if isinstance(fraction, int | float) else None,
                message=str(progress.get("message") or ""),
                behind_s=float(behind) if isinstance(behind, int | float) else 0.0,
            )
        )
    return observed


async def decode_details(converter: Any, info: Any) -> dict[str, Any] | None:
    """The last heartbeat's AgentProgress dict, None when there is none or it is not one."""
    if not info.HasField("heartbeat_details") or not info.heartbeat_details.payloads:
        return None
    try:
        values = await converter.decode(info.heartbeat_details.payloads)
    except Exception:  # foreign details: liveness still has the time
        return None
    first = values[0] if values else None
    return first if isinstance(first, dict) else None


def local_liveness(raw: Any, wanted: Sequence[str], now: datetime) -> list[ActivityLiveness]:
    """Agents running as local activities of a batch child, from the child's description
    (``raw``: DescribeWorkflowExecutionResponse) at ``now``. A local activity cannot
    heartbeat; while it runs, the worker holds the child's workflow task open and renews it
    (completes it and takes the next) every 0.8 x the task timeout, or the task times out, and
    the outcomes of the chunk's agents that ended wait for that completion. So a workflow task
    a worker has started says `local`: alive (a heartbeat now) or ended with its outcome held,
    which the parent cannot tell apart, so the deadline is postponed and the agent's own
    timeout, which that worker enforces, bounds it; a task waiting for a worker is the
    worker's lag (waiting_to_start); none pending means the child has nothing running (the
    outcome is on its way): absent. The attempt's start is the child's start."""
    task = raw.pending_workflow_task if raw.HasField("pending_workflow_task") else None
    started_at = _iso(raw.workflow_execution_info.start_time)
    if (
        task is not None
        and task.state == PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_STARTED
    ):
        return [
            ActivityLiveness(
                activity_id,
                str(ActivityState.LOCAL),
                attempt=1,
                started_at=started_at,
                heartbeat_at=now.isoformat(),
            )
            for activity_id in wanted
        ]
    state = ActivityState.WAITING_TO_START if task is not None else ActivityState.ABSENT
    return [ActivityLiveness(activity_id, str(state)) for activity_id in wanted]


async def describe_pending(client: Any, target: LivenessTarget) -> list[ActivityLiveness]:
    handle = client.get_workflow_handle(target.workflow_id, run_id=target.run_id)
    description = await handle.describe()
    pending = list(description.raw_description.pending_activities)
    decoded = {
        info.activity_id: await decode_details(client.data_converter, info) for info in pending
    }
    observed = liveness_from(pending, target.activity_ids, lambda info: decoded[info.activity_id])
    if target.local_ids:
        observed += local_liveness(
            description.raw_description, target.local_ids, datetime.now(timezone.utc)
        )
    return observed


@activity.defn(name="describe_liveness")
async def describe_liveness(query: LivenessQuery) -> Liveness:
    client = activity.client()
    observed: list[ActivityLiveness] = []
    try:
        for target in query.targets:
            observed += await describe_pending(client, target)
    except Exception as err:  # the barrier decides without observations
        return Liveness(error=f"{type(err).__name__}: {err}")
    return Liveness(observed)


LIVENESS_ACTIVITIES = [describe_liveness]
