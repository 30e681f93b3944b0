"""`validate` and `plan`: check a plan and show where its parallelism is, before anything runs."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cli.common import add_set_option, plan_variables
from engine.errors import PlanError, PlanValidationError

EXIT_OK = 0
EXIT_PLAN_ERROR = 2


def register(commands: Any) -> None:
    validate = commands.add_parser(
        "validate", help="check a plan and report every problem",
        description="Check a plan (native, seed or BMAD v4 format). Exit 0 with a one-line "
        "summary, or exit 2 listing every problem with file, line, expected and found.",
    )
    validate.add_argument("plan", metavar="PLAN", help="path to the plan YAML")
    add_set_option(validate)
    validate.add_argument("--json", action="store_true", help="print problems as JSON")
    validate.set_defaults(handler=run_validate)

    plan = commands.add_parser(
        "plan", help="show groups, dependencies, critical path and estimates",
        description="Analyse a plan without running it.",
    )
    plan.add_argument("plan", metavar="PLAN", help="path to the plan YAML")
    add_set_option(plan)
    plan.add_argument("--format", choices=("text", "json", "mermaid", "dot"), default="text",
                      help="output format (default: text)")
    plan.add_argument("--history", action="store_true",
                      help="estimated vs learned durations (n, mean, p95) of earlier runs, and "
                      "the critical path, priorities and deadlines the next run will use")
    plan.add_argument("--simulate", action="store_true",
                      help="with --history: the durations of --simulate runs (kept apart)")
    plan.set_defaults(handler=run_plan)


def _load(path: str, variables: dict[str, Any]):
    from engine.graph import compile_plan
    from engine.plan import load_plan

    plan = load_plan(path, variables)
    return plan, compile_plan(plan)


def report_plan_error(error: PlanError, as_json: bool = False) -> int:
    problems = error.problems if isinstance(error, PlanValidationError) else [error]
    if as_json:
        print(json.dumps({"valid": False, "problems": [p.to_dict() for p in problems]},
                         indent=2))
    else:
        print(f"{error.location.file or 'plan'}: invalid: {len(problems)} problem"
              f"{'s' if len(problems) != 1 else ''}", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem.render()}", file=sys.stderr)
    return EXIT_PLAN_ERROR


def run_validate(args: argparse.Namespace) -> int:
    from engine.render import summary

    try:
        _plan, compiled = _load(args.plan, plan_variables(args))
    except PlanError as error:
        return report_plan_error(error, args.json)
    if args.json:
        print(json.dumps({"valid": True, "summary": summary(compiled)}))
    else:
        print(f"{args.plan}: {summary(compiled)}")
    return EXIT_OK


def run_plan(args: argparse.Namespace) -> int:
    from engine import render

    if args.history and args.format in ("mermaid", "dot"):
        print(f"error: --history prints a table (text) or json, not {args.format}; leave out "
              "one of the two", file=sys.stderr)
        return EXIT_PLAN_ERROR
    if args.simulate and not args.history:
        print("error: --simulate goes with --history (the durations of --simulate runs); "
              "without it the plan's analysis is the same", file=sys.stderr)
        return EXIT_PLAN_ERROR
    try:
        plan, compiled = _load(args.plan, plan_variables(args))
    except PlanError as error:
        return report_plan_error(error)
    if args.history:
        from cli.history import show_history

        return show_history(plan, compiled, args.simulate, args.format == "json")
    if args.format == "json":
        print(render.as_json(compiled))
    elif args.format == "mermaid":
        print(render.as_mermaid(plan, compiled))
    elif args.format == "dot":
        print(render.as_dot(plan, compiled))
    else:
        print(render.as_text(compiled))
    return EXIT_OK
