"""`conflicts WORKFLOW_ID` and `resolve WORKFLOW_ID CONFLICT_ID`: see and settle a run's context
conflicts from the command line.

`conflicts` asks a running run's `conflicts` query (a closed run's report holds them too) and
prints, for every open conflict, the exact commands that resolve it: this one, and the `temporal`
CLI's `workflow update execute` / `workflow signal` equivalents. `resolve` sends the
`resolve_conflict` Update (validated by the workflow: an unknown id, a conflict already resolved,
a stale expected_version or a missing value is rejected and nothing is written) or, with
--signal, the fire-and-forget signal of the same name.

Exit codes: 0 done, 1 nobody could answer (no worker polling the run's task queue), 2 bad input:
malformed options, an unknown workflow id or server, a rejected resolution.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import shlex
import sys
from datetime import timedelta
from typing import Any

from pee.cli.common import non_negative_int
from pee.cli.options import add_server_options

EXIT_OK, EXIT_UNANSWERED, EXIT_BAD_INPUT = 0, 1, 2
UPDATE_NAME = SIGNAL_NAME = "resolve_conflict"
CONFLICTS_QUERY = "conflicts"
CHOICES = ("current", "incoming", "value")
QUERY_TIMEOUT_S = 5.0
# an update is answered as soon as a worker runs the workflow task; give a busy one a while
UPDATE_TIMEOUT_S = 60.0
# after a signal: how long to watch for the workflow applying (or rejecting) it
SIGNAL_WATCH_S = 5.0


class CommandError(Exception):
    """Ends the command with a message on stderr and an exit code."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


def default_by() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "user"


def register(subparsers: Any) -> None:
    listing = subparsers.add_parser(
        "conflicts",
        help="list a run's open context conflicts and how to resolve them",
        description="List a run's open context conflicts (--all: every conflict) with, for each "
        "open one, the commands that resolve it. Exit 0 listed, 1 no worker answered, 2 unknown "
        "id or no server.",
    )
    listing.add_argument("workflow_id", metavar="WORKFLOW_ID")
    listing.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text (default: a table and the resolve commands) or json (a "
        "list of conflict objects)",
    )
    listing.add_argument("--all", action="store_true", help="resolved and timed-out conflicts too")
    add_server_options(listing)
    listing.set_defaults(handler=conflicts_command)

    resolve = subparsers.add_parser(
        "resolve",
        help="resolve a context conflict (Update, or --signal)",
        description="Resolve a conflict with the workflow's resolve_conflict Update: keep the "
        "current value, take the incoming one, or give a value. The workflow rejects unknown or "
        "settled conflicts and versions other than the current one (exit 2, nothing "
        "written). Exit 0 resolved, 1 no worker answered, 2 bad input or rejected.",
    )
    resolve.add_argument("workflow_id", metavar="WORKFLOW_ID")
    resolve.add_argument("conflict_id", metavar="CONFLICT_ID", help="e.g. c1 (see `conflicts`)")
    resolve.add_argument(
        "--choice",
        required=True,
        choices=CHOICES,
        help="current: keep the value in the context; incoming: take the "
        "conflicting write; value: write --value",
    )
    resolve.add_argument(
        "--value",
        metavar="JSON",
        help="the value to write, as JSON (with --choice value), e.g. "
        '\'{"target": "web"}\' or \'"text"\'',
    )
    resolve.add_argument(
        "--expected-version",
        type=non_negative_int,
        metavar="N",
        help="the key's version you decided against (default: its current "
        "version, read with the conflicts query); an older (stale) or newer "
        "one is rejected",
    )
    resolve.add_argument(
        "--signal",
        action="store_true",
        help="send the resolve_conflict signal instead (fire-and-forget; an "
        "invalid one is logged and listed in the report's rejected_resolutions)",
    )
    resolve.add_argument(
        "--by",
        default=default_by(),
        metavar="NAME",
        help="who resolves, for the report (default: your login name)",
    )
    resolve.add_argument("--json", action="store_true", help="print the resolved conflict as JSON")
    add_server_options(resolve)
    resolve.set_defaults(handler=resolve_command)


# --- talking to the run ------------------------------------------------------------------------


def _target(args: argparse.Namespace) -> Any:
    from pee.runtime.connection_flags import ConnectionFlags
    from pee.runtime.servers import TargetError, reader_target

    try:
        # a stopped embedded server is restarted only when it has a history to show
        return reader_target(ConnectionFlags.from_args(args))
    except TargetError as err:
        raise CommandError(str(err)) from None


async def _describe(client: Any, workflow_id: str) -> Any:
    from pee.runtime.inspect import RunNotFound, describe_plan_run

    try:
        return await describe_plan_run(client, workflow_id)
    except RunNotFound as err:
        raise CommandError(str(err)) from None


async def _require_worker(client: Any, description: Any, what: str) -> None:
    from pee.runtime.inspect import has_pollers

    if not await has_pollers(client, description.namespace, description.task_queue):
        raise CommandError(
            f"no worker polls {description.task_queue}, so nobody can {what}: start one "
            "(pee-worker)",
            EXIT_UNANSWERED,
        )


async def _query_conflicts(handle: Any) -> list[dict[str, Any]]:
    from temporalio.client import WorkflowQueryFailedError
    from temporalio.service import RPCError

    try:
        found = await handle.query(CONFLICTS_QUERY, rpc_timeout=timedelta(seconds=QUERY_TIMEOUT_S))
    except WorkflowQueryFailedError as err:
        raise CommandError(f"the run cannot list conflicts: {err.message}") from None
    except RPCError as err:
        raise CommandError(
            f"no worker answered the conflicts query within "
            f"{QUERY_TIMEOUT_S:g}s ({err.message}); is one polling?",
            EXIT_UNANSWERED,
        ) from None
    return list(found or [])


async def read_conflicts(client: Any, workflow_id: str) -> tuple[Any, list[dict[str, Any]]]:
    """(description, every conflict of the run): live from a running run, else its report."""
    from temporalio.client import WorkflowExecutionStatus

    description = await _describe(client, workflow_id)
    if description.status == WorkflowExecutionStatus.RUNNING:
        await _require_worker(client, description, "answer the conflicts query")
        handle = client.get_workflow_handle(workflow_id, run_id=description.run_id)
        return description, await _query_conflicts(handle)
    from pee.runtime.inspect import read_run

    view = await read_run(client, workflow_id)
    if view.report is None:
        raise CommandError(f"no report for {workflow_id}: {view.note}", EXIT_UNANSWERED)
    return description, list(view.report.get("conflicts") or [])


def _run(args: argparse.Namespace, body: Any) -> int:
    """Resolve the server, run `await body(client, target)`, turn errors into exit codes."""
    try:
        target = _target(args)

        async def go() -> int:
            client = await target.connect(args.namespace)
            return int(await body(client, target))

        return asyncio.run(go())
    except CommandError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.code
    except BrokenPipeError:
        raise  # a ConnectionError too, but the reader of stdout left: run_entry exits quietly
    except ConnectionError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT


# --- conflicts ---------------------------------------------------------------------------------


def conflicts_command(args: argparse.Namespace) -> int:
    async def body(client: Any, target: Any) -> int:
        _description, conflicts = await read_conflicts(client, args.workflow_id)
        shown = conflicts if args.all else [c for c in conflicts if c.get("status") == "open"]
        if args.format == "json":
            print(json.dumps(shown, indent=2, default=str))
        else:
            print(
                format_conflicts(
                    shown,
                    conflicts,
                    args.workflow_id,
                    resolve_commands_context(target, args.namespace),
                )
            )
        return EXIT_OK

    return _run(args, body)


def short_json(value: Any, limit: int = 100) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_conflicts(
    shown: list[dict[str, Any]],
    every: list[dict[str, Any]],
    workflow_id: str,
    context: dict[str, str],
) -> str:
    open_count = sum(1 for c in every if c.get("status") == "open")
    if not shown:
        settled = len(every) - open_count
        more = f" ({settled} settled; --all lists them)" if settled else ""
        return f"no open conflicts in {workflow_id}{more}"
    rows = [("id", "key", "kind", "status", "version", "writers")]
    for conflict in shown:
        rows.append(
            (
                str(conflict.get("id", "")),
                str(conflict.get("key", "")),
                str(conflict.get("kind", "")),
                str(conflict.get("status", "")),
                str(conflict.get("current_version", "-")),
                ", ".join(str(w) for w in conflict.get("writers") or []),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"{len(every)} conflict(s) in {workflow_id}, {open_count} open", ""]
    lines += [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(3, "-" * max(len(line) for line in lines[2:]))
    for conflict in shown:
        lines += [""] + describe_conflict(conflict, workflow_id, context)
    return "\n".join(lines)


def describe_conflict(
    conflict: dict[str, Any], workflow_id: str, context: dict[str, str]
) -> list[str]:
    cid = str(conflict.get("id"))
    writers = [str(w) for w in conflict.get("writers") or []]
    current_by = f" ({writers[0]})" if len(writers) == 2 else ""
    incoming_by = f" ({writers[1]})" if len(writers) == 2 else ""
    lines = [f"{cid} on '{conflict.get('key')}': {conflict.get('message') or conflict.get('kind')}"]
    if "base" in conflict:
        lines.append(f"  base:     {short_json(conflict.get('base'))}")
    lines.append(f"  current{current_by}: {short_json(conflict.get('current'))}")
    lines.append(f"  incoming{incoming_by}: {short_json(conflict.get('incoming'))}")
    if conflict.get("status") != "open":
        resolution = conflict.get("resolution") or {}
        how = [f"{name} {resolution[name]}" for name in ("choice", "by") if name in resolution]
        if "value" in resolution:
            how.append(f"value {short_json(resolution['value'])}")
        if "version" in resolution:
            how.append(f"'{conflict.get('key')}' version {resolution['version']}")
        lines.append(f"  {conflict.get('status')}: {', '.join(how) or '-'}")
        return lines
    version = conflict.get("current_version")
    lines.append(
        "  resolve it (keep the incoming value here; or --choice current, or "
        "--choice value --value JSON):"
    )
    lines += [
        f"    {command}"
        for command in resolve_commands(workflow_id, cid, "incoming", version, context)
    ]
    return lines


def resolve_commands_context(target: Any, namespace: str | None) -> dict[str, str]:
    from pee.runtime.temporal_cli import binary, connection_flags

    # the embedded server: its temporal.toml (address, codec endpoint), so it works as printed
    connection = connection_flags(target.address, None, getattr(target, "record", None))
    if namespace:
        connection += f" --namespace {shlex.quote(namespace)}"
    return {
        "temporal": binary(),
        "connection": connection,
        "starter_flags": getattr(target, "address_flag", "")
        + (f" --namespace {shlex.quote(namespace)}" if namespace else ""),
    }


def resolve_commands(
    workflow_id: str, conflict_id: str, choice: str, version: Any, context: dict[str, str]
) -> list[str]:
    """The three equivalent ways to resolve a conflict, ready to paste into a shell."""
    payload: dict[str, Any] = {"conflict_id": conflict_id, "choice": choice}
    starter = f"pee resolve {shlex.quote(workflow_id)} {shlex.quote(conflict_id)} --choice {choice}"
    if isinstance(version, int):
        payload["expected_version"] = version
        starter += f" --expected-version {version}"
    data = shlex.quote(json.dumps(payload))
    temporal = f"{context['temporal']} workflow"
    target = f"{context['connection']} --workflow-id {shlex.quote(workflow_id)}"
    return [
        starter + context["starter_flags"],
        f"{temporal} update execute{target} --name {UPDATE_NAME} --input {data}",
        f"{temporal} signal{target} --name {SIGNAL_NAME} --input {data}",
    ]


# --- resolve -----------------------------------------------------------------------------------


def parse_value(args: argparse.Namespace) -> tuple[bool, Any]:
    """(given, value) from --value, checked against --choice; CommandError when malformed."""
    if args.value is None:
        if args.choice == "value":
            raise CommandError(
                "--choice value needs --value JSON, e.g. --value "
                '\'{"target": "web"}\' or --value \'"some text"\''
            )
        return False, None
    if args.choice != "value":
        raise CommandError(
            f"--value goes with --choice value (found --choice {args.choice}, "
            "which takes the value from the conflict)"
        )
    try:
        return True, json.loads(args.value)
    except json.JSONDecodeError as err:
        raise CommandError(
            f"--value is not valid JSON ({err.msg} at character {err.pos}): {args.value!r}; "
            "quote strings as JSON, e.g. --value '\"web\"', or give an object, e.g. "
            '--value \'{"target": "web"}\''
        ) from None


def resolve_command(args: argparse.Namespace) -> int:
    try:
        has_value, value = parse_value(args)
    except CommandError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.code

    async def body(client: Any, target: Any) -> int:
        from temporalio.client import WorkflowExecutionStatus

        description = await _describe(client, args.workflow_id)
        if description.status != WorkflowExecutionStatus.RUNNING:
            state = description.status.name.lower() if description.status else "closed"
            raise CommandError(
                f"run {args.workflow_id} is {state}: nothing to resolve "
                "(`pee conflicts ID --all` shows how its conflicts ended)"
            )
        handle = client.get_workflow_handle(args.workflow_id, run_id=description.run_id)
        payload: dict[str, Any] = {
            "conflict_id": args.conflict_id,
            "choice": args.choice,
            "by": args.by,
        }
        if has_value:
            payload["value"] = value
        # a signal waits in the history for a worker; an update needs one now
        served = await _polled(client, description)
        if not served and not args.signal:
            await _require_worker(
                client, description, "apply an update (--signal queues it for when one starts)"
            )
        expected = args.expected_version
        if expected is None and served:
            expected = await _current_version(handle, args.conflict_id)
        if expected is not None:
            payload["expected_version"] = expected
        if args.signal:
            return await _signal(handle, payload, args, watch=served)
        return await _update(handle, payload, args)

    return _run(args, body)


async def _polled(client: Any, description: Any) -> bool:
    from pee.runtime.inspect import has_pollers

    return await has_pollers(client, description.namespace, description.task_queue)


async def _current_version(handle: Any, conflict_id: str) -> int | None:
    """The conflict's key's live version: what an expected_version must equal. None when the id
    is unknown (the workflow's validator then says which ids exist)."""
    for conflict in await _query_conflicts(handle):
        if conflict.get("id") == conflict_id and isinstance(conflict.get("current_version"), int):
            return int(conflict["current_version"])
    return None


def rejection_message(err: BaseException) -> str:
    from temporalio.exceptions import ApplicationError, FailureError

    cause = getattr(err, "cause", None) or err.__cause__ or err
    if isinstance(cause, (ApplicationError, FailureError)):
        return cause.message
    return str(cause)


async def _update(handle: Any, payload: dict[str, Any], args: argparse.Namespace) -> int:
    from temporalio.client import (
        WorkflowUpdateFailedError,
        WorkflowUpdateRPCTimeoutOrCancelledError,
    )
    from temporalio.service import RPCError

    try:
        result = await asyncio.wait_for(
            handle.execute_update(UPDATE_NAME, payload), UPDATE_TIMEOUT_S
        )
    except WorkflowUpdateFailedError as err:
        raise CommandError(f"resolution rejected: {rejection_message(err)}") from None
    except (WorkflowUpdateRPCTimeoutOrCancelledError, asyncio.TimeoutError):
        raise CommandError(
            f"no worker applied the update within {UPDATE_TIMEOUT_S:g}s; is one "
            "polling the run's task queue?",
            EXIT_UNANSWERED,
        ) from None
    except RPCError as err:
        # e.g. the run ended between our look and the update
        raise CommandError(f"update not accepted: {err.message}") from None
    print_resolution(result, payload, args)
    return EXIT_OK


def print_resolution(result: Any, payload: dict[str, Any], args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return
    conflict = result if isinstance(result, dict) else {}
    resolution = conflict.get("resolution") or {}
    version = resolution.get("version")
    key = conflict.get("key", "?")
    print(
        f"resolved {payload['conflict_id']} on '{key}' (choice {payload['choice']}, by "
        f"{resolution.get('by', payload['by'])})"
        + (f"; '{key}' is now at version {version}" if version is not None else "")
    )
    if "value" in resolution:
        chosen = resolution["value"]
    else:
        chosen = {"current": conflict.get("current"), "incoming": conflict.get("incoming")}.get(
            payload["choice"], payload.get("value")
        )
    print(f"value: {short_json(chosen, 200)}")


async def _rejections(handle: Any) -> list[dict[str, Any]]:
    """The run's rejected resolutions so far (from its status report), [] when unknown."""
    from pee.runtime.inspect import query_status

    report = await query_status(handle, QUERY_TIMEOUT_S)
    return [r for r in (report or {}).get("rejected_resolutions") or [] if isinstance(r, dict)]


def _mentions(rejection: dict[str, Any], conflict_id: str) -> bool:
    nested = rejection.get("resolution") or rejection.get("request") or {}
    return conflict_id in (
        rejection.get("conflict_id"),
        nested.get("conflict_id") if isinstance(nested, dict) else None,
    )


def _reason(rejection: dict[str, Any]) -> str:
    for field in ("message", "error", "reason"):
        if rejection.get(field):
            return str(rejection[field])
    return json.dumps(rejection, default=str)


async def _signal(
    handle: Any, payload: dict[str, Any], args: argparse.Namespace, *, watch: bool
) -> int:
    """Send the signal; while a worker serves the run, watch a moment for its outcome so the
    user hears about a rejection now rather than in the report."""
    from temporalio.service import RPCError

    conflict_id = payload["conflict_id"]
    before = len(await _rejections(handle)) if watch else 0
    try:
        await handle.signal(SIGNAL_NAME, payload)
    except RPCError as err:
        raise CommandError(f"signal not accepted: {err.message}") from None
    print(f"signal {SIGNAL_NAME} sent to {args.workflow_id}: {json.dumps(payload)}")
    deadline = asyncio.get_running_loop().time() + (SIGNAL_WATCH_S if watch else 0.0)
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.25)
        conflict = next(
            (c for c in await _query_conflicts(handle) if c.get("id") == conflict_id), None
        )
        if conflict is not None and conflict.get("status") != "open":
            print(f"applied: {conflict_id} is {conflict.get('status')}")
            return EXIT_OK
        rejected = [r for r in (await _rejections(handle))[before:] if _mentions(r, conflict_id)]
        if rejected:
            raise CommandError(f"resolution rejected: {_reason(rejected[-1])}")
    print(
        f"fire-and-forget: `pee conflicts {args.workflow_id} --all` shows whether "
        "it was applied; an invalid one is listed in the report's rejected_resolutions"
    )
    return EXIT_OK
