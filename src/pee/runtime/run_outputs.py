"""Read a run's agent outputs, running or finished: `pee outputs WORKFLOW_ID`.

The outputs live in the run's context (the `context` query) and who produced each key in its
compiled plan (the `plan` query). A running run's worker answers both; a closed run's history is
replayed by a short-lived workflows-only worker here, as `report` does for a cancelled run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError

from pee.runtime.inspect import describe_plan_run, has_pollers
from pee.runtime.outputs import Producer, producers_of
from pee.runtime.worker import build_worker
from pee.workflows.plan_workflow import PlanWorkflow

QUERY_TIMEOUT_S = 15.0


class OutputsUnavailable(RuntimeError):
    """Nobody can answer the run's queries (no worker polls a running run's task queue)."""


@dataclass
class RunOutputs:
    state: str
    context: dict[str, Any]
    producers: dict[str, Producer]
    # agent id -> its declared outputs, in plan order (so a missing one can be named)
    declared: dict[str, list[str]]


@dataclass(frozen=True)
class _Agent:
    id: str
    outputs: list[str]
    writes: list[str]


async def _query(
    handle: WorkflowHandle[Any, Any], task_queue: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    timeout = timedelta(seconds=QUERY_TIMEOUT_S)
    try:
        plan = await handle.query(PlanWorkflow.plan, rpc_timeout=timeout)
        context = await handle.query(PlanWorkflow.context, rpc_timeout=timeout)
    except (RPCError, WorkflowQueryFailedError) as err:
        # a worker that just stopped still counts as a poller for a while
        raise OutputsUnavailable(
            f"no worker answered the run's queries within {QUERY_TIMEOUT_S:g}s ({err}): is one "
            f"polling {task_queue}? (pee-worker)"
        ) from None
    return dict(plan or {}), dict(context or {})


async def read_outputs(client: Client, workflow_id: str) -> RunOutputs:
    description = await describe_plan_run(client, workflow_id)
    handle = client.get_workflow_handle(workflow_id, run_id=description.run_id)
    status = description.status
    state = status.name.lower() if status else "unknown"
    if status == WorkflowExecutionStatus.RUNNING:
        if not await has_pollers(client, description.namespace, description.task_queue):
            raise OutputsUnavailable(
                f"no worker polls {description.task_queue}, so nobody can answer for the "
                "running run: start one (pee-worker)"
            )
        plan, context = await _query(handle, description.task_queue)
    else:
        # workflows only, so it never picks up another run's agents on a shared queue
        async with build_worker(client, description.task_queue, activities=False):
            plan, context = await _query(handle, description.task_queue)
    agents = [
        _Agent(a["id"], list(a.get("outputs") or []), list(a.get("writes") or []))
        for a in plan.get("agents") or []
    ]
    return RunOutputs(
        state=state,
        context=context,
        producers=producers_of(agents),
        declared={a.id: a.outputs for a in agents},
    )
