"""A plan file and the command's options made into a PlanWorkflow input: load and compile the
plan (with the durations earlier runs learned), then choose the time scale and batch mode.
`run` starts a workflow with it, `compile` writes it as JSON."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from pee.cli.common import plan_variables, set_names


def compile_from_args(args: argparse.Namespace, note_to: Any = None) -> Any:
    """Load and compile the plan; prints every problem and returns None on a plan error.

    Run inputs are also given to the loader, so a plan input may be supplied either way; --set
    wins where both name the same key. A BMAD workflow's interpretation is printed to
    ``note_to`` (default stdout).
    """
    # imported here: the loader pulls in pydantic, which `status` does not need
    from pee.cli.plan_commands import print_interpretation, report_plan_error
    from pee.engine.compile.graph import compile_plan
    from pee.engine.compile.load import load_plan
    from pee.engine.gc_pause import paused_gc
    from pee.engine.language.errors import PlanError

    try:
        # one pause for reading and analysing (pee.engine.gc_pause), as `validate` does
        with paused_gc():
            plan = load_plan(args.plan, plan_variables(args, args.inputs), set_names(args))
            print_interpretation(plan, note_to or sys.stdout)
            return compile_plan(plan, learned_durations(args, plan.name))
    except PlanError as error:
        report_plan_error(error)
    except OSError as error:
        print(f"error: cannot read plan {args.plan}: {error}", file=sys.stderr)
    return None


def learned_durations(args: argparse.Namespace, plan_name: str) -> dict[str, Any]:
    """What earlier runs of this plan (of the same kind: --simulate or not) measured, unless
    --no-learn; says on stderr when it changes the plan's estimates."""
    if getattr(args, "no_learn", False):
        return {}
    from pee.engine.compile.learning import mode_of
    from pee.runtime.duration_store import STORE_ERRORS, DurationStore

    try:
        learned = DurationStore().learned(plan_name, mode_of(args.simulate))
    except STORE_ERRORS as err:  # a broken store must not stop a run: say so
        print(f"warning: cannot read learned durations: {err}", file=sys.stderr)
        return {}
    if learned:
        print(
            f"using durations learned from earlier runs for {len(learned)} agent(s) of "
            f"'{plan_name}' (`pee plan {args.plan} --history` shows them; --no-learn "
            "ignores them)",
            file=sys.stderr,
        )
    return learned


def build_run_input(args: argparse.Namespace, plan: Any, note_to: Any = sys.stdout) -> Any:
    """The workflow input, or None (the reasons printed) when the time scale or heartbeat
    timeout would push a duration of the plan past what a run can wait."""
    from pee.engine.rules.time_limits import time_scale_problems
    from pee.runtime.runner import choose_time_scale
    from pee.workflows.types import PlanRunInput, ResumeFrom, choose_batch, choose_ledger

    try:
        scale, note = choose_time_scale(plan, args.time_scale, args.simulate)
    except ValueError:
        print(
            f"error: PEE_TIME_SCALE must be a number, found {os.environ.get('PEE_TIME_SCALE')!r}",
            file=sys.stderr,
        )
        return None
    problems = time_scale_problems(plan, scale, args.heartbeat_timeout)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return None
    if note:
        print(note, file=note_to)
    fan_out = any(g.fan_out is not None for g in plan.groups)
    if getattr(args, "ledger", None) and fan_out:
        print(
            "error: --ledger cannot be used with a plan that has fan-outs (for_each): their "
            "instances join the plan at run time; run it without --ledger",
            file=sys.stderr,
        )
        return None
    batch = choose_batch(
        len(plan.agents),
        getattr(args, "batch", None),
        getattr(args, "batch_chunk", None),
        getattr(args, "batch_window", None),
        getattr(args, "batch_local", None),
        getattr(args, "batch_split", None),
    )
    return PlanRunInput(
        plan=plan,
        inputs=dict(args.inputs),
        time_scale=scale,
        heartbeat_timeout_s=args.heartbeat_timeout,
        simulate=args.simulate,
        # the starter fills in the earlier run's context and passed groups (pee.runtime.resume)
        resume=ResumeFrom(workflow_id=args.resume_from, from_group=args.from_group)
        if getattr(args, "resume_from", None)
        else None,
        batch=batch,
        ledger=choose_ledger(batch, getattr(args, "ledger", None), fan_out),
        continue_as_new_after=getattr(args, "continue_as_new_after", None),
    )
