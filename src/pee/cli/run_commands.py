"""`run PLAN`, `status WORKFLOW_ID`, `report WORKFLOW_ID`, `learn WORKFLOW_ID`: execute plans on
Temporal and follow them. The options they share with other commands are in
src/pee/cli/options.py, the plan compiled into a workflow input in src/pee/cli/plan_input.py.

Exit codes: 0 completed (or running, for status/report), 1 failed, 2 bad input (plan errors,
bad arguments, an unreachable --address, an unknown workflow id).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from pee.cli.options import (
    add_metrics_port_option,
    add_plan_options,
    add_server_options,
)
from pee.cli.plan_input import build_run_input

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run",
        help="run a plan on Temporal and follow it",
        description="Run a plan as a durable Temporal workflow, showing progress and a summary. "
        "When nothing listens at localhost:7233 the embedded dev server is started and left "
        "running (Web UI http://127.0.0.1:8233). Exit 0 completed, 1 failed, 2 bad input.",
    )
    add_plan_options(run)
    run.add_argument(
        "--workflow-id",
        "--id",
        dest="workflow_id",
        metavar="ID",
        help="workflow id (default: plan name + random suffix)",
    )
    run.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help="write the run report as JSON (also for a failed run)",
    )
    run.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="where the run's documents (DIR/docs/*.md) and report.json go "
        "(default runs/<workflow-id>/)",
    )
    add_server_options(run)
    run.add_argument("--task-queue", help="default PEE_TASK_QUEUE or 'parallel-execution-engine'")
    run.add_argument(
        "--no-worker",
        action="store_true",
        help="run no worker in this command: `pee-worker` must be running",
    )
    run.add_argument(
        "--resume-from",
        metavar="WORKFLOW_ID",
        help="reuse the groups that passed in that earlier run (and their context "
        "values): only the rest runs",
    )
    run.add_argument(
        "--from-group",
        metavar="GROUP",
        help="with --resume-from: run GROUP and every group after it again, even if they passed",
    )
    run.add_argument(
        "--detach",
        action="store_true",
        help="start the run, print its workflow id and return (implies --no-worker; not with "
        "--output-dir or --report: read them later with `pee outputs` / `pee report`)",
    )
    add_metrics_port_option(run)
    run.set_defaults(handler=run_command)

    status = subparsers.add_parser(
        "status",
        help="show a run's state, agents and groups",
        description="Show a run's state, running or finished. Exit 0 running or completed, "
        "1 failed/cancelled/terminated/timed out, 2 unknown id or no server.",
    )
    status.add_argument("workflow_id", metavar="WORKFLOW_ID")
    add_server_options(status)
    status.add_argument("--json", action="store_true", help="print the report as JSON")
    status.set_defaults(handler=status_command)

    report = subparsers.add_parser(
        "report",
        help="print a run's report (JSON, text, HTML or Mermaid)",
        description="Print the run report (the --report format) of a running or finished run, "
        "or render it: html is one self-contained page (Gantt timeline, group graph with the "
        "critical path, metrics; no network needed to view it), mermaid a Mermaid gantt. "
        "Exit codes as for status.",
    )
    report.add_argument("workflow_id", metavar="WORKFLOW_ID")
    add_server_options(report)
    report.add_argument(
        "--format",
        choices=("json", "text", "html", "mermaid"),
        help="json (default; text with --bottlenecks), text, html or mermaid",
    )
    report.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="write to FILE instead of stdout (its folder is created)",
    )
    report.add_argument(
        "--bottlenecks",
        action="store_true",
        help="only the bottleneck analysis (text; with --format json its JSON; "
        "not with html or mermaid)",
    )
    report.set_defaults(handler=report_command)

    learn = subparsers.add_parser(
        "learn",
        help="record a finished run's agent durations for the next compile",
        description="Record what a finished run measured (any run: started by `run`, "
        "`run --detach` or `temporal workflow start`) in the learned-durations store, so the "
        "next run or compile of its plan uses it. `run` does this by itself; recording a run "
        "twice counts it once. Exit 0 recorded (or nothing new), 1 the store cannot be "
        "written, 2 unknown id (or not a plan run), no server or a running run.",
    )
    learn.add_argument("workflow_id", metavar="WORKFLOW_ID")
    add_server_options(learn)
    learn.set_defaults(handler=learn_command)


def run_command(args: argparse.Namespace) -> int:
    from pee.cli import compile_ahead

    # the plan compiles in a child while this process imports the Temporal SDK below
    ahead = compile_ahead.start(args)
    from pee.engine.compile.learning import mode_of
    from pee.runtime.connection_flags import ConnectionFlags
    from pee.runtime.runner import RunOptions, run_plan

    try:
        plan = ahead.result()
    except compile_ahead.CompileCrashed as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    if plan is None:
        return EXIT_BAD_INPUT
    if args.from_group and not args.resume_from:
        print("error: --from-group needs --resume-from WORKFLOW_ID", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.detach and (args.output_dir or args.report):
        # run returns as the run starts, so nothing would be written
        flag = "--output-dir" if args.output_dir else "--report"
        print(
            f"error: {flag} is written when the run ends, after --detach has returned: drop "
            "one; for a detached run, `pee outputs WORKFLOW_ID` and `pee report WORKFLOW_ID` "
            "read them",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    run_input = build_run_input(args, plan)
    if run_input is None:
        return EXIT_BAD_INPUT
    options = RunOptions(
        run_input=run_input,
        address=args.address,
        namespace=args.namespace,
        connection=ConnectionFlags.from_args(args),
        task_queue=args.task_queue,
        workflow_id=args.workflow_id,
        worker=not args.no_worker,
        detach=args.detach,
        report_file=args.report,
        write_outputs=True,
        output_dir=args.output_dir,
        learn_mode=None if args.no_learn else mode_of(args.simulate),
    )
    return run_plan(options)


def _read(args: argparse.Namespace) -> tuple[int, Any, Any]:
    """(exit code, RunView or None, Target or None) for status/report."""
    from pee.runtime.connection_flags import ConnectionFlags
    from pee.runtime.inspect import RunNotFound, read_run
    from pee.runtime.servers import TargetError, reader_target

    try:
        # the embedded server stops only when asked; if it was, restart it to read its history
        target = reader_target(ConnectionFlags.from_args(args))
    except TargetError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT, None, None

    async def read() -> Any:
        client = await target.connect(args.namespace)
        return await read_run(client, args.workflow_id)

    try:
        view = asyncio.run(read())
    except BrokenPipeError:
        raise  # a ConnectionError too, but the reader of stdout left: run_entry exits quietly
    except (RunNotFound, ConnectionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT, None, target
    return (EXIT_OK if view.ok else EXIT_FAILED), view, target


def status_command(args: argparse.Namespace) -> int:
    from pee.runtime.progress import format_summary
    from pee.runtime.servers import workflow_url

    code, view, target = _read(args)
    if view is None:
        return code
    if args.json:
        print(json.dumps(view.report, indent=2, default=str))
        return code
    description = view.description
    print(
        f"{description.id} (run {description.run_id}): {view.state}, task queue "
        f"{description.task_queue}, started {description.start_time:%Y-%m-%d %H:%M:%S} UTC"
    )
    if view.note:
        print(view.note)
    if view.report:
        print()
        print(format_summary(view.report))
    link = workflow_url(
        target, args.namespace or target.namespace, description.id, description.run_id
    )
    if link:
        print(f"Web UI: {link}")
    return code


def report_command(args: argparse.Namespace) -> int:
    from pee.runtime.progress import format_summary

    if args.bottlenecks and args.format in ("html", "mermaid"):
        print(
            f"error: --bottlenecks prints the analysis as text or json, not {args.format}; "
            + (
                "the html page has it in its Bottlenecks section: leave out --bottlenecks"
                if args.format == "html"
                else "leave out one of the two"
            ),
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    code, view, _target = _read(args)
    if view is None:
        return code
    if view.report is None:
        print(f"error: no report for {args.workflow_id}: {view.note}", file=sys.stderr)
        return EXIT_FAILED
    if view.report.get("status") != "running" and view.report.get("bottlenecks") is None:
        # a run that finished before the analysis existed: from its compiled plan
        view.report["bottlenecks"] = asyncio.run(_analyse_old_run(_target, args, view.report))
    if args.bottlenecks and args.format in (None, "text", "json"):
        from pee.engine.report.bottleneck import format_bottlenecks

        found = view.report.get("bottlenecks")
        text = (
            json.dumps(found, indent=2)
            if args.format == "json"
            else "\n".join(format_bottlenecks(found))
            or "no bottleneck analysis: the run is still going"
        )
    elif args.format in (None, "json"):
        text = json.dumps(view.report, indent=2, default=str)
    elif args.format == "html":
        from pee.runtime.report_html import render_html

        text = render_html(
            view.report, agent_deps=asyncio.run(_agent_deps(_target, args, view.report))
        ).rstrip("\n")
    elif args.format == "mermaid":
        from pee.runtime.report_mermaid import render_mermaid

        text = render_mermaid(view.report).rstrip("\n")
    else:
        text = format_summary(view.report)
    if args.output:
        try:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(text + "\n", encoding="utf-8")
        except OSError as err:
            print(
                f"error: cannot write {args.output}: {err}; choose another -o FILE", file=sys.stderr
            )
            return EXIT_BAD_INPUT
    else:
        print(text)
    return code


def learn_command(args: argparse.Namespace) -> int:
    from pee.runtime.duration_store import DurationStore, record_durations

    code, view, target = _read(args)
    if view is None:
        return code
    report = view.report
    if report is None or report.get("status") == "running":
        why = "it is still running" if report else f"it has no report ({view.note})"
        print(
            f"error: cannot learn from {args.workflow_id}: {why}; try again once it has finished",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    mode = asyncio.run(_run_mode(target, args))
    store = DurationStore()
    added = record_durations(report, mode, sys.stdout, store)
    if added is None:
        return EXIT_FAILED
    if not added:
        print(
            f"nothing new to learn from {args.workflow_id} ({mode} run): its agents are "
            f"recorded in {store.path} already, or none of them ran to success here"
        )
    return EXIT_OK


async def _run_input(target: Any, args: argparse.Namespace) -> Any:
    """The PlanRunInput the run was started with, from its history's first event."""
    from pee.workflows.types import PlanRunInput

    client = await target.connect(args.namespace)
    history = await client.get_workflow_handle(args.workflow_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    (run_input,) = await client.data_converter.decode(started.input.payloads, [PlanRunInput])
    return run_input


async def _run_mode(target: Any, args: argparse.Namespace) -> str:
    """ "simulate" or "real": how the run was started (its input's `simulate`)."""
    from pee.engine.compile.learning import mode_of

    return mode_of(bool((await _run_input(target, args)).simulate))


async def _agent_deps(
    target: Any, args: argparse.Namespace, report: dict[str, Any]
) -> dict[str, list[str]] | None:
    """The agent graph's edges, from the run's compiled plan (the report has none); None for a
    plan too large to draw or one that cannot be read (the page then says so)."""
    from pee.engine.dag import agent_dependencies
    from pee.runtime.report_agent_dag import AGENT_DAG_LIMIT

    if len(report.get("agents") or {}) > AGENT_DAG_LIMIT:
        return None
    try:
        run_input = await _run_input(target, args)
    except Exception as err:  # the graph is a bonus: the page is written without it
        print(
            f"warning: no agent graph for {args.workflow_id}: cannot read its plan ({err})",
            file=sys.stderr,
        )
        return None
    return agent_dependencies(run_input.plan.agents, run_input.plan.groups)


async def _analyse_old_run(
    target: Any, args: argparse.Namespace, report: dict[str, Any]
) -> dict[str, Any] | None:
    from pee.engine.report.bottleneck import analyse

    try:
        run_input = await _run_input(target, args)
    except Exception as err:  # the analysis is a bonus: the report is printed without it
        print(
            f"warning: no bottleneck analysis for {args.workflow_id}: cannot read its plan ({err})",
            file=sys.stderr,
        )
        return None
    return analyse(run_input.plan, report)
