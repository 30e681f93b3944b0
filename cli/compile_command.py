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

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def register(subparsers: Any) -> None:
    from cli.run_commands import add_plan_options

    parser = subparsers.add_parser(
        "compile", help="write the workflow input JSON for `temporal workflow start`",
        description="Compile a plan into the PlanWorkflow input (JSON) that `temporal workflow "
        "start --type PlanWorkflow --task-queue parallel-execution-engine --input-file FILE` "
        "accepts. Exit 0, or 2 for plan errors.",
    )
    add_plan_options(parser)
    parser.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="write here (default: stdout)")
    parser.add_argument("--search-attributes", action="store_true",
                        help="the run keeps the PeePlan, PeeStatus and PeeGroup search "
                        "attributes up to date; only for a server that has them registered "
                        "(the embedded dev server does), or its workflow task fails")
    parser.set_defaults(handler=compile_command)


def workflow_input_json(run_input: Any) -> str:
    """The JSON the default data converter produces for the input, pretty-printed."""
    from temporalio.converter import DataConverter

    payload = DataConverter.default.payload_converter.to_payloads([run_input])[0]
    return json.dumps(json.loads(payload.data), indent=2, sort_keys=True) + "\n"


def compile_command(args: argparse.Namespace) -> int:
    from cli.run_commands import build_run_input, compile_from_args
    from runtime.connection import default_task_queue

    plan = compile_from_args(args)
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
        f"wrote {args.output}; start it with:\n"
        f"  temporal workflow start --type PlanWorkflow --task-queue {default_task_queue()} "
        f"--workflow-id {plan.name}-1 --input-file {args.output}",
        file=sys.stderr,
    )
    return EXIT_OK
