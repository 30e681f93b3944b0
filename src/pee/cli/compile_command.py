"""`compile PLAN`: write the PlanWorkflow input as JSON, for starting a run with the temporal CLI:

    temporal workflow start --type PlanWorkflow --task-queue parallel-execution-engine \\
        --workflow-id my-run --input-file run.json

The file is exactly what the SDK's default data converter makes of a PlanRunInput (a JSON object:
plan, inputs, time_scale, heartbeat_timeout_s, simulate), so a worker decodes it unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pee.cli.options import add_plan_options
from pee.cli.plan_input import build_run_input, compile_from_args

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "compile",
        help="write the workflow input JSON for `temporal workflow start`",
        description="Compile a plan into the PlanWorkflow input (JSON) that `temporal workflow "
        "start --type PlanWorkflow --task-queue parallel-execution-engine --input-file FILE` "
        "accepts. Exit 0, or 2 for plan errors.",
    )
    add_plan_options(parser)
    parser.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write here (default: stdout)"
    )
    parser.add_argument(
        "--search-attributes",
        action="store_true",
        help="the run keeps the PeePlan, PeeStatus and PeeGroup search "
        "attributes up to date; only for a server that has them registered "
        "(the embedded dev server does), or its workflow task fails",
    )
    parser.set_defaults(handler=compile_command)


def workflow_input_json(run_input: Any) -> str:
    """The JSON the default data converter produces for the input, pretty-printed."""
    from temporalio.converter import DataConverter

    payload = DataConverter.default.payload_converter.to_payloads([run_input])[0]
    return json.dumps(json.loads(payload.data), indent=2, sort_keys=True) + "\n"


def compile_command(args: argparse.Namespace) -> int:
    plan = compile_from_args(args, note_to=sys.stderr)
    if plan is None:
        return EXIT_BAD_INPUT
    # notes go to stderr: stdout may be the JSON itself
    run_input = build_run_input(args, plan, note_to=sys.stderr)
    if run_input is None:
        return EXIT_BAD_INPUT
    run_input.search_attributes = args.search_attributes
    text = workflow_input_json(run_input)
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(
        f"wrote {args.output}; start it with:\n  {start_command(plan.name, args)}", file=sys.stderr
    )
    return EXIT_OK


def start_command(plan_name: str, args: argparse.Namespace) -> str:
    """The `temporal workflow start` line for the file: at the embedded server when it runs
    (its temporal.toml), else where the temporal CLI's own settings point; with PeePlan and
    PeeStatus set at start when the run keeps the search attributes (as `run` does)."""
    import shlex

    from pee.runtime.connection_flags import default_task_queue
    from pee.runtime.embedded import running_record
    from pee.runtime.temporal_cli import binary, connection_flags

    record = running_record()
    flags = connection_flags(record.address, None, record) if record else ""
    command = (
        f"{binary()} workflow start{flags} --type PlanWorkflow --task-queue "
        f"{shlex.quote(default_task_queue())} --workflow-id "
        f"{shlex.quote(plan_name + '-1')} --input-file {shlex.quote(str(args.output))}"
    )
    if args.search_attributes:
        for name, value in (("PeePlan", plan_name), ("PeeStatus", "running")):
            command += " --search-attribute " + shlex.quote(f"{name}={json.dumps(value)}")
    return command
