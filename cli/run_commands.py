"""`run PLAN` and `status WORKFLOW_ID`: execute plans on Temporal and follow them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.errors import PlanError
from runtime.connection import env_address
from runtime.exit import exit_hard_at_shutdown


def parse_assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, found {text!r}")
    return key.strip(), value


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run",
        help="run a plan on Temporal and follow it",
        description=(
            "Run a plan as a durable Temporal workflow. Without --address (or TEMPORAL_ADDRESS) "
            "an embedded dev server with the Web UI and a worker run inside this command."
        ),
    )
    run.add_argument("plan", nargs="?", help="plan YAML file")
    run.add_argument(
        "--set", dest="variables", action="append", default=[], type=parse_assignment,
        metavar="KEY=VALUE", help="plan input value (repeatable)",
    )
    run.add_argument("--address", help="Temporal frontend HOST:PORT (default: embedded server)")
    run.add_argument("--namespace", help="Temporal namespace (default TEMPORAL_NAMESPACE/default)")
    run.add_argument(
        "--task-queue", help="task queue (default PEE_TASK_QUEUE/parallel-execution-engine)"
    )
    run.add_argument(
        "--time-scale", type=float, metavar="F",
        help="multiply every plan duration by F (default: PEE_TIME_SCALE, else chosen so long "
        "plans finish in seconds)",
    )
    run.add_argument("--id", dest="workflow_id", help="workflow id (default: plan name + random)")
    run.add_argument("--no-wait", action="store_true", help="start the run and return")
    run.add_argument(
        "--worker", action="store_true", help="with --address: also run a worker in this process"
    )
    run.add_argument(
        "--dev-db", type=Path, metavar="FILE",
        help="embedded server history file (default runs/temporal-dev.db or PEE_DEV_DB)",
    )
    # for tests and debugging: run an already compiled plan (CompiledPlan JSON)
    run.add_argument("--compiled-json", type=Path, help=argparse.SUPPRESS)
    run.add_argument("--headless", action="store_true", help=argparse.SUPPRESS)
    run.set_defaults(handler=run_command)

    status = subparsers.add_parser(
        "status",
        help="show a run's progress or final report",
        description="Show a run's agents and groups. Without --address the embedded server's "
        "history file is opened.",
    )
    status.add_argument("workflow_id", metavar="WORKFLOW_ID")
    status.add_argument("--address", help="Temporal frontend HOST:PORT (default: embedded server)")
    status.add_argument("--namespace")
    status.add_argument("--dev-db", type=Path, metavar="FILE")
    status.set_defaults(handler=status_command)


def load_compiled(args: argparse.Namespace, variables: dict[str, str]) -> Any:
    from engine.compiled import CompiledPlan

    if args.compiled_json:
        return CompiledPlan.from_dict(json.loads(args.compiled_json.read_text()))
    if not args.plan:
        raise PlanError("no plan given", expected="a plan YAML file: starter.py run PLAN")
    # imported here: the loader pulls in pydantic and networkx, which `status` does not need
    from engine.graph import compile_plan
    from engine.plan import load_plan

    return compile_plan(load_plan(args.plan, variables))


def run_command(args: argparse.Namespace) -> int:
    from runtime.runner import EXIT_PLAN_ERROR, RunOptions, choose_time_scale, run_plan

    variables = dict(args.variables)
    try:
        plan = load_compiled(args, variables)
    except (PlanError, OSError, ValueError) as err:
        print(f"plan error: {err}", file=sys.stderr)
        return EXIT_PLAN_ERROR
    except ImportError as err:
        print(f"plan loading is not available yet ({err}); use --compiled-json", file=sys.stderr)
        return EXIT_PLAN_ERROR
    scale, note = choose_time_scale(plan, args.time_scale)
    if note:
        print(note)
    options = RunOptions(
        plan=plan,
        inputs=variables,
        time_scale=scale,
        address=args.address or env_address(),
        namespace=args.namespace,
        task_queue=args.task_queue,
        workflow_id=args.workflow_id,
        wait=not args.no_wait,
        local_worker=args.worker,
        dev_db=args.dev_db,
        ui=not args.headless,
    )
    return exit_hard_at_shutdown(run_plan(options))


def status_command(args: argparse.Namespace) -> int:
    from runtime.runner import show_status

    code = show_status(
        args.workflow_id,
        address=args.address or env_address(),
        namespace=args.namespace,
        dev_db=args.dev_db,
    )
    return exit_hard_at_shutdown(code)
