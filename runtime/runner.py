"""Start a compiled plan as a PlanWorkflow and follow it to the end, printing progress.

Without a server address we start the embedded dev server and a worker in this process, so one
command runs a plan durably. Shutdown order matters (sdk-python issue 300): the worker first, then
the client, then the event loop, then the dev server; the entry point then exits hard.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from engine.compiled import CompiledPlan
from runtime.connection import connect, default_namespace, default_task_queue
from runtime.devserver import DevServer
from runtime.progress import ProgressPrinter, format_summary
from runtime.worker import build_worker
from workflows.plan_workflow import PlanWorkflow
from workflows.types import PlanRunInput

# `make run` on the seed plan should take seconds, not half an hour
AUTO_SCALE_ABOVE_S = 60.0
AUTO_SCALE_TARGET_S = 15.0

EXIT_OK, EXIT_FAILED, EXIT_PLAN_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass
class RunOptions:
    plan: CompiledPlan
    inputs: dict[str, Any] = field(default_factory=dict)
    time_scale: float = 1.0
    # None = embedded dev server + in-process worker
    address: str | None = None
    namespace: str | None = None
    task_queue: str | None = None
    workflow_id: str | None = None
    wait: bool = True
    # run a worker in this process even with an external server
    local_worker: bool = False
    dev_db: Path | None = None
    ui: bool = True
    poll_s: float = 0.5
    heartbeat_timeout_s: float | None = None


def choose_time_scale(plan: CompiledPlan, given: float | None) -> tuple[float, str | None]:
    """The scale to run at and, when we picked it, a note saying so."""
    if given is not None:
        return given, (f"durations scaled by {given:g} (--time-scale)" if given != 1 else None)
    env = os.environ.get("PEE_TIME_SCALE")
    if env:
        return float(env), f"durations scaled by {float(env):g} (PEE_TIME_SCALE)"
    estimate = plan.estimated_makespan_s
    if estimate <= AUTO_SCALE_ABOVE_S:
        return 1.0, None
    scale = float(f"{AUTO_SCALE_TARGET_S / estimate:.2g}")
    return scale, (
        f"durations scaled by {scale:g}: estimated makespan {estimate / 60:.1f} min runs in "
        f"about {estimate * scale:.0f}s (--time-scale 1 for real time)"
    )


def new_workflow_id(plan: CompiledPlan) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", plan.name).strip("-") or "plan"
    return f"{slug}-{uuid.uuid4().hex[:8]}"


def run_plan(options: RunOptions, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        if options.address:
            return asyncio.run(_start_and_follow(options, options.address, None, out))
        if not options.wait:
            print(
                "--no-wait needs --address (or TEMPORAL_ADDRESS): the embedded dev server "
                "stops when this command ends",
                file=sys.stderr,
            )
            return EXIT_PLAN_ERROR
        server = DevServer(options.dev_db, ui=options.ui, namespace=_namespace(options))
        with server:
            print(f"Temporal dev server {server.address} (history in {server.db_file})", file=out)
            if server.ui_url:
                print(f"Web UI {server.ui_url}", file=out)
            return asyncio.run(_start_and_follow(options, server.address, server, out))
    except KeyboardInterrupt:
        print("interrupted; the run's history stays on the server", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ConnectionError as err:
        print(err, file=sys.stderr)
        return EXIT_FAILED


def _namespace(options: RunOptions) -> str:
    return options.namespace or default_namespace()


def _ui_link(server: DevServer | None, namespace: str, workflow_id: str) -> str | None:
    if server is not None:
        return server.workflow_url(workflow_id)
    base = os.environ.get("PEE_UI_URL")
    return f"{base.rstrip('/')}/namespaces/{namespace}/workflows/{workflow_id}" if base else None


@contextlib.asynccontextmanager
async def _client_and_worker(
    address: str, namespace: str, task_queue: str, with_worker: bool
) -> AsyncIterator[Client]:
    client = await connect(address, namespace)
    if with_worker:
        # leaving this block shuts the worker down while the client is still connected
        async with build_worker(client, task_queue):
            yield client
    else:
        yield client


async def _start_and_follow(
    options: RunOptions, address: str, server: DevServer | None, out: TextIO
) -> int:
    namespace = _namespace(options)
    task_queue = options.task_queue or default_task_queue()
    workflow_id = options.workflow_id or new_workflow_id(options.plan)
    with_worker = server is not None or options.local_worker
    async with _client_and_worker(address, namespace, task_queue, with_worker) as client:
        handle = await client.start_workflow(
            PlanWorkflow.run,
            PlanRunInput(
                plan=options.plan,
                inputs=options.inputs,
                time_scale=options.time_scale,
                heartbeat_timeout_s=options.heartbeat_timeout_s,
            ),
            id=workflow_id,
            task_queue=task_queue,
        )
        link = _ui_link(server, namespace, workflow_id)
        print(f"Started {workflow_id} on task queue {task_queue}", file=out)
        if link:
            print(f"Watch it: {link}", file=out)
        if not with_worker:
            print(
                f"(no worker in this command: one must poll {task_queue}, e.g. python worker.py)",
                file=out,
            )
        if not options.wait:
            return EXIT_OK
        code = await follow(handle, options.poll_s, out)
        if link:
            print(f"History: {link}", file=out)
        return code


async def _query_status(handle: WorkflowHandle[Any, Any]) -> dict[str, Any] | None:
    try:
        return await handle.query(PlanWorkflow.status, rpc_timeout=timedelta(seconds=5))
    except Exception:
        # not yet started by a worker, or a worker busy: the next poll tries again
        return None


async def follow(handle: WorkflowHandle[Any, Any], poll_s: float, out: TextIO) -> int:
    printer = ProgressPrinter(out)
    result = asyncio.ensure_future(handle.result())
    while not result.done():
        printer.update(await _query_status(handle))
        await asyncio.wait([result], timeout=poll_s)
    code, report = EXIT_OK, None
    try:
        report = result.result()
    except WorkflowFailureError as err:
        code = EXIT_FAILED
        report = _report_from_failure(err)
        print(f"run failed: {_failure_message(err)}", file=out)
    printer.update(report)
    if report:
        print("", file=out)
        print(format_summary(report), file=out, flush=True)
    return code


def _report_from_failure(err: WorkflowFailureError) -> dict[str, Any] | None:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.details:
        first = cause.details[0]
        if isinstance(first, dict):
            return first
    return None


def _failure_message(err: WorkflowFailureError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or err)


def show_status(
    workflow_id: str,
    *,
    address: str | None,
    namespace: str | None = None,
    dev_db: Path | None = None,
    out: TextIO | None = None,
) -> int:
    """Print a run's progress so far (or its final report). 0 found, 1 failed run, 2 unknown id."""
    out = out or sys.stdout
    ns = namespace or default_namespace()
    try:
        if address:
            return asyncio.run(_show_status(workflow_id, address, ns, False, out))
        # the embedded server keeps history in its db file; a worker here answers the query
        # (and, being durable execution, resumes the run if it was interrupted)
        with DevServer(dev_db, ui=False, namespace=ns) as server:
            return asyncio.run(_show_status(workflow_id, server.address, ns, True, out))
    except ConnectionError as err:
        print(err, file=sys.stderr)
        return EXIT_FAILED


async def _show_status(
    workflow_id: str, address: str, namespace: str, with_worker: bool, out: TextIO
) -> int:
    task_queue = default_task_queue()
    async with _client_and_worker(address, namespace, task_queue, with_worker) as client:
        handle = client.get_workflow_handle(workflow_id)
        try:
            description = await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                print(f"no workflow with id '{workflow_id}' in namespace {namespace}", file=out)
                return EXIT_PLAN_ERROR
            raise
        status = description.status
        print(f"{workflow_id}: {status.name if status else 'UNKNOWN'}", file=out)
        if status == WorkflowExecutionStatus.RUNNING:
            report = await _query_status(handle)
            code = EXIT_OK
        else:
            try:
                report = await handle.result(follow_runs=False)
                code = EXIT_OK
            except WorkflowFailureError as err:
                report = _report_from_failure(err)
                print(f"run failed: {_failure_message(err)}", file=out)
                code = EXIT_FAILED
        if report:
            ProgressPrinter(out).update(report)
            print("", file=out)
            print(format_summary(report), file=out)
        return code
