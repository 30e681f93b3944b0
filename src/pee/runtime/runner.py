"""Start a compiled plan as a PlanWorkflow and follow it to the end, printing progress.

Shutdown order matters (sdk-python issue 300): the worker first (leaving its `async with`), then
the client (dropped with the coroutine), then the event loop (leaving `asyncio.run`); the entry
point then exits hard with the code returned here (pee.runtime.exit.run_entry).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from pee.engine.compiled import CompiledPlan
from pee.runtime import live_progress, report_assembly
from pee.runtime.connection_flags import ConnectionFlags, default_task_queue
from pee.runtime.duration_store import record_durations
from pee.runtime.inspect import (
    RunNotFound,
    failure_message,
    has_pollers,
    query_status,
    report_from_failure,
)
from pee.runtime.outputs import notes_lines, producers_of, with_output_files, write_outputs
from pee.runtime.progress import ProgressPrinter, format_summary
from pee.runtime.resume import ResumeError, load_resume, reused_groups
from pee.runtime.servers import Target, TargetError, resolve_target, workflow_url
from pee.runtime.web_ui import (
    has_search_attributes,
    initial_search_attributes,
    static_details,
    static_summary,
)
from pee.runtime.worker import build_worker
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.types import PlanRunInput, task_timeout

# `make run` on the seed plan should take seconds, not half an hour
AUTO_SCALE_ABOVE_S = 60.0
AUTO_SCALE_TARGET_S = 15.0
# kinds whose work is pretend, so shrinking their durations and timeouts changes nothing real
PRETEND_KINDS = ("simulate", "role")

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass
class RunOptions:
    run_input: PlanRunInput
    # None = TEMPORAL_ADDRESS or the local default (embedded server started when needed)
    address: str | None = None
    namespace: str | None = None
    # TLS, API key, profile flags (their address wins over `address` when given)
    connection: ConnectionFlags | None = None
    task_queue: str | None = None
    workflow_id: str | None = None
    # run a worker in this process for the run
    worker: bool = True
    # start and return: no worker here, one must poll the task queue
    detach: bool = False
    report_file: Path | None = None
    poll_s: float = 0.5
    # write the run's documents and report.json (pee.runtime.outputs) to output_dir, default
    # runs/<workflow-id>/
    write_outputs: bool = False
    output_dir: Path | None = None
    # record the finished run's agent durations for the next compile (pee.runtime.duration_store)
    # under this mode (pee.engine.compile.learning: "simulate" or "real"); None = learn nothing
    learn_mode: str | None = None


def choose_time_scale(
    plan: CompiledPlan, given: float | None, simulate: bool = False
) -> tuple[float, str | None]:
    """The scale to run at and, when we picked it, a note saying so.

    Without --time-scale (or PEE_TIME_SCALE) a plan estimated above a minute whose work is
    pretend (--simulate, or only simulate/role agents) is scaled to about 15 s; a plan with real
    agents keeps its real timeouts.
    """
    if given is not None:
        return given, (f"durations scaled by {given:g} (--time-scale)" if given != 1 else None)
    env = os.environ.get("PEE_TIME_SCALE")
    if env:
        return float(env), f"durations scaled by {float(env):g} (PEE_TIME_SCALE)"
    estimate = plan.estimated_makespan_s
    pretend = simulate or all(agent.kind in PRETEND_KINDS for agent in plan.agents)
    if estimate <= AUTO_SCALE_ABOVE_S or not pretend:
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
    """Run (or with detach, start) the plan; the exit code: 0 completed, 1 failed, 2 bad input."""
    out = out or sys.stdout
    try:
        flags = options.connection or ConnectionFlags()
        target = resolve_target(replace(flags, address=flags.address or options.address), out=out)
    except TargetError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    workflow_id = options.workflow_id or new_workflow_id(options.run_input.plan)
    started: list[str] = []
    try:
        return asyncio.run(_run(options, target, workflow_id, out, started))
    except (KeyboardInterrupt, asyncio.CancelledError):
        task_queue = options.task_queue or default_task_queue()
        if started:
            print(
                f"\ninterrupted: run {workflow_id} goes on on the server and resumes when a "
                f"worker polls {task_queue} (pee-worker); follow it with "
                f"pee status {workflow_id}{target.address_flag}",
                file=sys.stderr,
            )
        else:
            print("\ninterrupted before the run started", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `run PLAN | head`: the reader of the progress left; the run itself goes on
        if started:
            print(
                f"stdout closed: run {workflow_id} goes on on the server; follow it with "
                f"pee status {workflow_id}{target.address_flag}",
                file=sys.stderr,
            )
        raise
    except ConnectionError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT


@contextlib.asynccontextmanager
async def client_and_worker(
    target: Target, namespace: str, task_queue: str, with_worker: bool
) -> AsyncIterator[Client]:
    client = await target.connect(namespace)
    if with_worker:
        # leaving this block shuts the worker down while the client is still connected
        # Ctrl-C should not wait long for agents: the server re-runs them on the next worker
        async with build_worker(client, task_queue, graceful_shutdown_s=1.0):
            yield client
    else:
        yield client


async def _run(
    options: RunOptions, target: Target, workflow_id: str, out: TextIO, started: list[str]
) -> int:
    # SIGTERM ends the command like Ctrl-C: worker shut down in order, run left on the server
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if main is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, main.cancel)
    namespace = options.namespace or target.namespace
    task_queue = options.task_queue or default_task_queue()
    with_worker = options.worker and not options.detach
    async with client_and_worker(target, namespace, task_queue, with_worker) as client:
        resume = options.run_input.resume
        if resume is not None and not resume.passed_groups and not resume.context:
            notes: list[str] = []
            try:
                loaded = await load_resume(
                    client, options.run_input.plan, resume.workflow_id, resume.from_group, notes
                )
            except (ResumeError, RunNotFound) as err:
                print(f"error: cannot resume: {err}", file=sys.stderr)
                return EXIT_BAD_INPUT
            options.run_input.resume = loaded
            reused = reused_groups(options.run_input.plan, loaded)
            print(
                f"Resuming {resume.workflow_id}: reusing "
                + (f"groups {', '.join(reused)}" if reused else "no group")
                + (f", running {resume.from_group} and after again" if resume.from_group else "")
                + "".join(f"; {note}" for note in notes),
                file=out,
            )
        plan = options.run_input.plan
        ui_options: dict[str, Any] = {
            "static_summary": static_summary(plan, options.run_input.time_scale),
            "static_details": static_details(
                plan, options.run_input.inputs, options.run_input.time_scale
            ),
        }
        if await has_search_attributes(client, namespace):
            # the run keeps PeeStatus/PeeGroup up to date; PeePlan is set from the start
            options.run_input.search_attributes = True
            ui_options["search_attributes"] = initial_search_attributes(plan)
        try:
            handle = await client.start_workflow(
                PlanWorkflow.run,
                options.run_input,
                id=workflow_id,
                task_queue=task_queue,
                # with this command's worker polling, the server hands the first workflow task
                # back in the start's answer instead of through a poll (eager workflow start)
                request_eager_start=with_worker,
                # a large run's history must replay within one task (types.task_timeout)
                task_timeout=task_timeout(options.run_input),
                **ui_options,
            )
        except WorkflowAlreadyStartedError:
            print(
                f"error: a workflow with id '{workflow_id}' is already running; "
                "choose another --workflow-id",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
        except RPCError as err:
            # e.g. an unknown namespace
            print(f"error: cannot start the run at {target.address}: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
        started.append(workflow_id)
        link = workflow_url(target, namespace, workflow_id, handle.result_run_id)
        print(f"Started {workflow_id} on task queue {task_queue} at {target.address}", file=out)
        if link:
            print(f"Web UI: {link}", file=out)
        if not with_worker and not await has_pollers(client, namespace, task_queue):
            print(
                f"No worker polls {task_queue} yet: the run waits until one does. Start one:\n"
                f"  pee-worker --address {target.address} --task-queue {task_queue}"
                + (
                    " (and this command's TLS settings)"
                    if target.settings is not None and target.settings.tls
                    else ""
                ),
                file=out,
            )
        if options.detach:
            print(
                f"Follow it: pee status {workflow_id}"
                f"{target.address_flag}\n"
                f"Report:    pee report {workflow_id}{target.address_flag}",
                file=out,
            )
            print(workflow_id, file=out, flush=True)
            return EXIT_OK
        code, report = await follow(handle, options.poll_s, out, client)
        # queried while this command's worker still runs, so a finished run can answer
        context = await fetch_context(handle) if options.write_outputs else {}
    if options.write_outputs:
        directory = options.output_dir or default_output_dir(workflow_id)
        written = write_outputs(
            directory, context or {}, report, producers_of(options.run_input.plan.agents)
        )
        if context is None:
            written.failed.insert(
                0,
                (
                    "every agent output",
                    "the run's context could not be read (see the warning above)",
                ),
            )
        if report is not None:
            report = with_output_files(report, written)
        if not written.failed:
            print(
                f"Outputs written to {directory}/ ({len(written.entries)} outputs, "
                f"{written.documents} as markdown; index.md lists them)",
                file=out,
            )
            noted = notes_lines(written.entries)
            if noted:
                print("Template notes (listed at the end of each document):", file=out)
                print("\n".join(noted), file=out)
        else:
            print(
                f"error: {len(written.failed)} file(s) under {directory} not written:",
                file=sys.stderr,
            )
            for path, why in written.failed:
                print(f"  {path}: {why}", file=sys.stderr)
            print(
                f"  `pee outputs {workflow_id}` prints every output; choose another --output-dir",
                file=sys.stderr,
            )
            code = code or EXIT_FAILED
    if options.learn_mode is not None and report is not None:
        record_durations(report, options.learn_mode, out)
    if options.report_file is not None and report is not None:
        try:
            write_report(options.report_file, report)
        except OSError as err:
            # the run is done whatever happens to the file: say so, as for --output-dir
            print(
                f"error: cannot write the report to {options.report_file}: {err}; "
                f"`pee report {workflow_id} -o FILE` writes it later",
                file=sys.stderr,
            )
            code = code or EXIT_FAILED
        else:
            print(f"Report written to {options.report_file}", file=out)
    if link:
        print(f"History in the Web UI: {link}", file=out)
    if target.record is not None:
        from pee.runtime.temporal_cli import binary, connection_flags

        print(
            f"From a shell, decoded: {binary()} workflow describe --workflow-id {workflow_id}"
            f"{connection_flags(target.address, namespace, target.record)}",
            file=out,
        )
    if target.started_server:
        print(
            "The embedded Temporal dev server keeps running; stop it with `pee server stop`",
            file=out,
        )
    return code


def default_output_dir(workflow_id: str) -> Path:
    # PEE_RUNS_DIR moves the default (test suites point it at a temporary folder)
    return Path(os.environ.get("PEE_RUNS_DIR") or "runs") / workflow_id


async def fetch_context(handle: WorkflowHandle[Any, Any]) -> dict[str, Any] | None:
    try:
        context = await handle.query(PlanWorkflow.context, rpc_timeout=timedelta(seconds=15))
    except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError) as err:
        print(f"warning: cannot read the run's context for --output-dir: {err}", file=sys.stderr)
        return None
    return dict(context or {})


def write_report(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")


async def follow(
    handle: WorkflowHandle[Any, Any], poll_s: float, out: TextIO, client: Client | None = None
) -> tuple[int, dict[str, Any] | None]:
    """Poll the status query until the result is in: (exit code, final report)."""
    printer = ProgressPrinter(out)
    result = asyncio.ensure_future(handle.result())
    try:
        while not result.done():
            status = await query_status(handle)
            if status is not None and client is not None:
                # a ledger run's rows so far, from the run store
                assembled = await report_assembly.assemble_report(client, status)
                # progress fractions from the agents' last heartbeats
                status = await live_progress.overlay(client, handle.id, None, assembled or status)
            printer.update(status)
            await asyncio.wait([result], timeout=poll_s)
    finally:
        if not result.done():
            result.cancel()
    code, report = EXIT_OK, None
    try:
        report = result.result()
    except WorkflowFailureError as err:
        code = EXIT_FAILED
        # a failed run carries its report in the ApplicationError's details
        report = report_from_failure(err) or await query_status(handle)
        print(f"run failed: {failure_message(err)}", file=out)
    if client is not None:
        report = await report_assembly.assemble_report(client, report)
    printer.update(report)
    if report:
        print("", file=out)
        print(format_summary(report), file=out, flush=True)
    return code, report
