"""`validate` and `plan`: check a plan and show where its parallelism is, before anything runs."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pee.cli.common import add_input_option, add_set_option, plan_variables, set_names
from pee.engine.language.errors import PlanError, PlanValidationError

EXIT_OK = 0
EXIT_PLAN_ERROR = 2


def register(commands: Any) -> None:
    validate = commands.add_parser(
        "validate",
        help="check a plan and report every problem",
        description="Check a plan (native, seed or BMAD v4 format). Exit 0 with a one-line "
        "summary, or exit 2 listing every problem with file, line, expected and found.",
    )
    validate.add_argument("plan", metavar="PLAN", help="path to the plan YAML")
    add_input_option(validate)
    add_set_option(validate)
    validate.add_argument("--json", action="store_true", help="print problems as JSON")
    validate.set_defaults(handler=run_validate)

    plan = commands.add_parser(
        "plan",
        help="show groups, dependencies, critical path and estimates",
        description="Analyse a plan without running it.",
    )
    plan.add_argument("plan", metavar="PLAN", help="path to the plan YAML")
    add_input_option(plan)
    add_set_option(plan)
    plan.add_argument(
        "--format",
        choices=("text", "json", "mermaid", "dot"),
        default="text",
        help="output format (default: text)",
    )
    plan.add_argument(
        "--history",
        action="store_true",
        help="estimated vs learned durations (n, mean, p95) of earlier runs, and "
        "the critical path, priorities and deadlines the next run will use",
    )
    plan.add_argument(
        "--simulate",
        action="store_true",
        help="with --history: the durations of --simulate runs (kept apart)",
    )
    plan.set_defaults(handler=run_plan)


def _load(args: argparse.Namespace):
    from pee.engine.compile.graph import compile_plan
    from pee.engine.compile.load import load_plan
    from pee.engine.gc_pause import paused_gc

    # one pause for reading and analysing: each pause's end costs a collection of everything
    # allocated under it (pee.engine.gc_pause)
    with paused_gc():
        plan = load_plan(args.plan, plan_variables(args, args.inputs), set_names(args))
        return plan, compile_plan(plan)


def interpretation_text(plan: Any, order: bool = False) -> str:
    """A BMAD workflow's 'interpretation' section (and, with ``order``, why each step waits
    for the ones before it); empty for other plans."""
    interpretation = getattr(plan, "interpretation", None)
    if interpretation is None:
        return ""
    lines: list[str] = []
    if order:
        lines += [
            "BMAD order (why each step waits):",
            *interpretation.order_lines(list(plan.agents)),
            "",
        ]
    lines.append("interpretation (how this BMAD workflow is run):")
    lines += interpretation.lines() or ["  - every step runs as written"]
    return "\n".join(lines)


def print_interpretation(plan: Any, out: Any = None, order: bool = False) -> None:
    """The plan's notices (settings accepted with no effect), then a BMAD interpretation."""
    for notice in plan.notices():
        print(f"note: {notice}", file=out or sys.stdout)
    text = interpretation_text(plan, order)
    if text:
        print(text, file=out or sys.stdout)


def report_plan_error(error: PlanError, as_json: bool = False) -> int:
    problems = error.problems if isinstance(error, PlanValidationError) else [error]
    if as_json:
        print(json.dumps({"valid": False, "problems": [p.to_dict() for p in problems]}, indent=2))
    else:
        print(
            f"{error.location.file or 'plan'}: invalid: {len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''}",
            file=sys.stderr,
        )
        for problem in problems:
            print(f"  - {problem.render()}", file=sys.stderr)
    return EXIT_PLAN_ERROR


def run_validate(args: argparse.Namespace) -> int:
    from pee.engine.compile.render import summary

    try:
        plan, compiled = _load(args)
    except PlanError as error:
        return report_plan_error(error, args.json)
    if args.json:
        result: dict[str, Any] = {"valid": True, "summary": summary(compiled)}
        if plan.notices():
            result["notices"] = plan.notices()
        if plan.interpretation is not None:
            result["interpretation"] = plan.interpretation.to_dict()
        print(json.dumps(result))
    else:
        print(f"{args.plan}: {summary(compiled)}")
        print_interpretation(plan)
    return EXIT_OK


def run_plan(args: argparse.Namespace) -> int:
    from pee.engine.compile import render

    if args.history and args.format in ("mermaid", "dot"):
        print(
            f"error: --history prints a table (text) or json, not {args.format}; leave out "
            "one of the two",
            file=sys.stderr,
        )
        return EXIT_PLAN_ERROR
    if args.simulate and not args.history:
        print(
            "error: --simulate goes with --history (the durations of --simulate runs); "
            "without it the plan's analysis is the same",
            file=sys.stderr,
        )
        return EXIT_PLAN_ERROR
    try:
        plan, compiled = _load(args)
    except PlanError as error:
        return report_plan_error(error)
    if args.history:
        from pee.cli.history import show_history

        return show_history(plan, compiled, args.simulate, args.format == "json")
    if args.format == "json":
        result = render.as_json_dict(compiled)
        if plan.interpretation is not None:
            result["interpretation"] = plan.interpretation.to_dict()
        print(json.dumps(result, indent=2))
    elif args.format in ("mermaid", "dot"):
        print(
            render.as_mermaid(plan, compiled)
            if args.format == "mermaid"
            else render.as_dot(plan, compiled)
        )
        # stdout stays a diagram; the reinterpretations still reach the user
        print_interpretation(plan, sys.stderr)
    else:
        print(render.as_text(compiled))
        for notice in plan.notices():
            print(f"note: {notice}", file=sys.stderr)
        text = interpretation_text(plan, order=True)
        if text:
            print("\n" + text)
    return EXIT_OK
