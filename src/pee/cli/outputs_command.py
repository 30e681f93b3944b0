"""`outputs WORKFLOW_ID [AGENT] [--name OUTPUT]`: print what agents produced, running or finished.

Exit codes: 0 printed, 1 the output exists in the plan but has no value (yet), 2 unknown run,
agent or output name, or no server / no worker to answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from pee.cli.options import add_server_options
from pee.engine.language.errors import suggest

EXIT_OK, EXIT_NOT_YET, EXIT_BAD_INPUT = 0, 1, 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "outputs",
        help="print an agent's outputs (running or finished run)",
        description="Print the outputs of a run's agents: documents as their markdown, text as "
        "is, anything else as JSON. Without AGENT: every agent's outputs, each under a header. "
        "Exit 0 printed, 1 not produced (yet), 2 unknown run, agent or output.",
    )
    parser.add_argument("workflow_id", metavar="WORKFLOW_ID")
    parser.add_argument("agent", metavar="AGENT", nargs="?", help="only this agent's outputs")
    parser.add_argument(
        "--name",
        metavar="OUTPUT",
        help="only this output of AGENT (its bare content: pipe it to a file)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print {agent: {output: value}} as JSON instead"
    )
    add_server_options(parser)
    parser.set_defaults(handler=outputs_command)


def _closest(name: str, known: list[str]) -> str:
    # in parentheses: a "?" followed by "; its outputs: ..." read as two broken sentences
    close = suggest(name, known)
    return f" (did you mean '{close}'?)" if close else ""


def outputs_command(args: argparse.Namespace) -> int:
    from pee.runtime.connection_flags import ConnectionFlags
    from pee.runtime.inspect import RunNotFound
    from pee.runtime.outputs import file_text, resolve_references
    from pee.runtime.run_outputs import OutputsUnavailable, read_outputs
    from pee.runtime.servers import TargetError, reader_target

    if args.name and not args.agent:
        print(
            "error: --name needs an AGENT: outputs WORKFLOW_ID AGENT --name OUTPUT", file=sys.stderr
        )
        return EXIT_BAD_INPUT
    try:
        target = reader_target(ConnectionFlags.from_args(args))
    except TargetError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT

    async def read() -> Any:
        client = await target.connect(args.namespace)
        return await read_outputs(client, args.workflow_id)

    try:
        run = asyncio.run(read())
    except BrokenPipeError:
        raise
    except (RunNotFound, OutputsUnavailable, ConnectionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT

    agents = list(run.declared)
    if args.agent and args.agent not in run.declared:
        print(
            f"error: run {args.workflow_id} has no agent '{args.agent}'"
            f"{_closest(args.agent, agents)}; agents: {', '.join(agents)}",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    chosen = [args.agent] if args.agent else agents

    def outputs_of(agent: str) -> list[str]:
        # declared outputs, then any the agent added (a BMAD developer's implementation plan)
        extra = [
            key.split(".", 1)[1]
            for key in sorted(run.context)
            if key.startswith(f"{agent}.") and key.split(".", 1)[1] not in run.declared[agent]
        ]
        return [*run.declared[agent], *extra]

    if args.name:
        declared = outputs_of(args.agent)
        if args.name not in declared:
            print(
                f"error: agent '{args.agent}' has no output '{args.name}'"
                f"{_closest(args.name, declared)}; its outputs: {', '.join(declared)}",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
    found: dict[str, dict[str, Any]] = {}
    absent: list[str] = []
    for agent in chosen:
        for output in outputs_of(agent):
            if args.name and output != args.name:
                continue
            key = f"{agent}.{output}"
            if key in run.context:
                found.setdefault(agent, {})[output] = resolve_references(run.context[key])
            else:
                absent.append(key)
    if args.json:
        print(json.dumps(found, indent=2, ensure_ascii=False, default=str))
    elif args.name:
        if found:
            sys.stdout.write(file_text(found[args.agent][args.name]))
    else:
        for agent, outputs in found.items():
            for output, value in outputs.items():
                print(f"==> {agent}.{output} <==")
                sys.stdout.write(file_text(value))
                print()
    if absent:
        print(f"not produced ({run.state} run): {', '.join(absent)}", file=sys.stderr)
        if not found:
            return EXIT_NOT_YET
    return EXIT_OK
