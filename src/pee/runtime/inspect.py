"""Read a run's report, running or finished: `pee status` and `pee report`.

Where the report comes from:
- running: the `status` query (answered by a worker polling the run's task queue);
- completed: the workflow result;
- failed: the ApplicationError's details[0], which the workflow fills with the report;
- cancelled, terminated, timed out: the `status` query on the closed run, which a worker answers
  by replaying the history; we run a short-lived worker here for that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowHistory,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from pee.runtime import live_progress, report_assembly
from pee.runtime.worker import build_worker
from pee.workflows.plan_workflow import PlanWorkflow

QUERY_TIMEOUT_S = 5.0


class RunNotFound(LookupError):
    """No workflow with that id; its message says where it was looked for."""


class NotAPlanRun(RunNotFound):
    """The id names a workflow of another type (the shared pool's, say): it has no report."""

    def __init__(self, workflow_id: str, workflow_type: str, address: str | None = None) -> None:
        # lazy: the embedded server's module is needed only for this hint
        from pee.runtime.embedded import flags_for
        from pee.runtime.temporal_cli import binary

        flags = flags_for(address) if address else ""
        hint = (
            f"; see its leases with `{binary()} workflow query{flags} --workflow-id "
            f"{workflow_id} --type state`"
            if workflow_type == "ResourcePoolWorkflow"
            else ""
        )
        super().__init__(
            f"{workflow_id} is a {workflow_type}, not a plan run (PlanWorkflow), "
            f"so it has no report{hint}"
        )


def require_plan_run(description: WorkflowExecutionDescription, address: str | None = None) -> None:
    """NotAPlanRun unless it is a PlanWorkflow; `address` (the server's) makes its hint a
    command that works as printed."""
    if description.workflow_type != "PlanWorkflow":
        raise NotAPlanRun(description.id, description.workflow_type, address)


async def describe_plan_run(client: Client, workflow_id: str) -> WorkflowExecutionDescription:
    """The run's description; RunNotFound when no workflow has that id (saying at which server
    and namespace), NotAPlanRun when it is not a PlanWorkflow."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise RunNotFound(
                f"no run with workflow id '{workflow_id}' at "
                f"{client.service_client.config.target_host} (namespace {client.namespace})"
            ) from None
        raise
    require_plan_run(description, client.service_client.config.target_host)
    return description


@dataclass
class RunView:
    description: WorkflowExecutionDescription
    report: dict[str, Any] | None
    # why the run failed, or why no report could be read
    note: str | None = None

    @property
    def state(self) -> str:
        status = self.description.status
        return status.name.lower() if status else "unknown"

    @property
    def ok(self) -> bool:
        """Running or completed: exit 0; failed, cancelled, terminated, timed out: exit 1."""
        return self.description.status in (
            WorkflowExecutionStatus.RUNNING,
            WorkflowExecutionStatus.COMPLETED,
        )


async def query_status(
    handle: WorkflowHandle[Any, Any], timeout_s: float = QUERY_TIMEOUT_S
) -> dict[str, Any] | None:
    try:
        return await handle.query(PlanWorkflow.status, rpc_timeout=timedelta(seconds=timeout_s))
    except Exception:
        # not yet picked up by a worker, or no worker at all: the caller decides what that means
        return None


def report_from_failure(err: WorkflowFailureError) -> dict[str, Any] | None:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.details:
        first = cause.details[0]
        if isinstance(first, dict):
            return first
    return None


def failure_message(err: WorkflowFailureError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or err)


async def run_histories(client: Client, workflow_id: str) -> list[tuple[str, WorkflowHistory]]:
    """(run id, history) of every run of the workflow's continue-as-new chain, oldest first,
    ending with the current run; each history fetched once (each run's first event names the
    run it continued from)."""
    run_id = (await client.get_workflow_handle(workflow_id).describe()).run_id
    chain: list[tuple[str, WorkflowHistory]] = []
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        chain.insert(0, (run_id, history))
        run_id = history.events[
            0
        ].workflow_execution_started_event_attributes.continued_execution_run_id
    return chain


async def has_pollers(client: Client, namespace: str, task_queue: str) -> bool:
    """Whether any worker polled the task queue for workflow tasks recently."""
    try:
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=namespace,
                task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
    except RPCError:
        # can't tell: don't cry wolf
        return True
    return len(response.pollers) > 0


async def read_run(client: Client, workflow_id: str) -> RunView:
    view = await _read_run(client, workflow_id)
    if report_assembly.is_summary(view.report):
        # a ledger run: its rows are in the run store (pee.runtime.report_assembly)
        view.report = await report_assembly.assemble_report(client, view.report)
    return view


async def _read_run(client: Client, workflow_id: str) -> RunView:
    description = await describe_plan_run(client, workflow_id)
    status = description.status
    handle = client.get_workflow_handle(workflow_id, run_id=description.run_id)
    if status == WorkflowExecutionStatus.RUNNING:
        if not await has_pollers(client, description.namespace, description.task_queue):
            return RunView(
                description,
                None,
                (
                    f"no worker polls {description.task_queue}, so the run waits and nobody can "
                    "answer the status query: start one (pee-worker)"
                ),
            )
        report = await query_status(handle)
        note = None
        if report is not None:
            # progress fractions from the agents' last heartbeats (no signals reach the run)
            report = await live_progress.overlay(client, workflow_id, description.run_id, report)
        if report is None:
            note = (
                f"no worker answered the status query within {QUERY_TIMEOUT_S:g}s: is one "
                f"polling {description.task_queue}? (pee-worker)"
            )
        return RunView(description, report, note)
    if status == WorkflowExecutionStatus.COMPLETED:
        return RunView(description, await handle.result(follow_runs=False))
    note = None
    if status == WorkflowExecutionStatus.FAILED:
        try:
            await handle.result(follow_runs=False)
        except WorkflowFailureError as err:
            note = failure_message(err)
            report = report_from_failure(err)
            if report is not None:
                return RunView(description, report, note)
    # closed without a report in its result: a worker replays the history to answer the query
    # (workflows only, so it never picks up another run's agents on a shared queue)
    async with build_worker(client, description.task_queue, activities=False):
        report = await query_status(handle, timeout_s=15.0)
    state = status.name.lower() if status else "unknown"
    if report is not None and report.get("status") == "running":
        # the workflow never saw its end (terminated, timed out): say how it really ended
        report = {**report, "status": state}
        if description.close_time is not None:
            report["finished_at"] = description.close_time.isoformat()
            report["makespan_s"] = round(
                (description.close_time - description.start_time).total_seconds(), 3
            )
    return RunView(description, report, note or f"the run was {state}")
