"""The `command` backend: runs a program with an argument list, JSON in on stdin and out on stdout.

Settings (CompiledAgent.settings):

- ``command``: ``[program, arg, ...]``, run directly (never through a shell), so no quoting or
  injection questions arise. A relative program with a "/" is taken relative to ``cwd``.
- ``cwd``: working directory. A relative path is taken relative to the plan's folder when the
  compiled settings carry it (``plan_dir``), else relative to the worker's current directory.
- ``env``: ``{NAME: value}``. The child gets only these variables plus PATH, HOME and LANG from
  the worker. A value ``$VAR`` is copied from the worker's environment variable VAR at run time,
  so a secret is passed by name and never stored in the plan, the history or a log; ``$$`` at
  the start stands for a literal ``$``. A ``$VAR`` the worker does not have fails the agent
  (non-retryable: the worker is misconfigured).

stdin receives one JSON object: ``{"agent", "role", "inputs" (the input snapshot, keyed as
declared), "missing_inputs", "outputs" (declared names), "writes", "attempt"}``. stdout must be
one JSON object with every declared output and shared write (pee.activities.backend_contract).

Failures: a non-zero exit is retryable (``CommandFailed``: a crash may be transient); invalid
JSON (``InvalidCommandOutput``) or missing outputs (``MissingOutputs``) are non-retryable (the
program breaks the contract, running it again gives the same answer); a program that cannot be
started is non-retryable (``CommandNotFound``). Every message carries the tail of stderr.

The command is finished when its leader (the program started) exits, not when its pipes close:
a grandchild that keeps stdout open cannot turn a finished command into a timeout. Every process
of the attempt (pee.activities.process_tree: the leader's session, its descendants found by a tree
walk, and any process carrying the attempt's ``PEE_AGENT_TREE`` marker, ``setsid`` ones
included) is killed when the leader exits, on cancellation and on the agent's ``timeout``
(CommandTimeout, retryable): SIGTERM, then SIGKILL after a short grace. Before an attempt
starts, whatever an earlier attempt of the same agent in the same run left running (its worker
was killed, say) is killed first. The Progress task heartbeats while the child runs, which is
how a cancellation reaches us.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from pee.activities import process_tree, scrub
from pee.activities.backend_contract import build_result, contract_error, invalid_settings
from pee.activities.progress import Progress
from pee.activities.types import AgentResult, AgentTask

# what every child gets from the worker besides its declared env
PASSED_THROUGH = ("PATH", "HOME", "LANG")
STDERR_TAIL_CHARS = 2000
# SIGTERM first, then SIGKILL after this long
KILL_GRACE_S = 1.0
# how often the leader's descendants are sampled into the attempt's state file
SAMPLE_S = 0.5
# how often the leader is checked for having exited
EXIT_POLL_S = 0.02
# after the leader exited and its tree was killed: how long its pipes may take to drain (a
# holder we could not kill, another user's process, is cut off after this)
DRAIN_S = 2.0
READ_CHUNK = 64 * 1024
VAR_REF = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")


def argv(task: AgentTask) -> list[str]:
    raw = task.agent.settings.get("command")
    if isinstance(raw, str):
        raw = [raw]
    if (
        not isinstance(raw, list)
        or not raw
        or not all(isinstance(part, str) for part in raw)
        or not raw[0].strip()
    ):
        raise invalid_settings(
            task, f"'command' must be a non-empty list [program, arg, ...], found {raw!r}"
        )
    return list(raw)


def working_dir(task: AgentTask) -> Path | None:
    settings = task.agent.settings
    cwd = settings.get("cwd")
    plan_dir = settings.get("plan_dir")
    if cwd is None:
        return Path(plan_dir) if isinstance(plan_dir, str) and plan_dir else None
    if not isinstance(cwd, str):
        raise invalid_settings(task, f"'cwd' must be a path, found {cwd!r}")
    path = Path(cwd).expanduser()
    if not path.is_absolute() and isinstance(plan_dir, str) and plan_dir:
        path = Path(plan_dir) / path
    if not path.is_dir():
        raise invalid_settings(task, f"'cwd' {str(path)!r} is not a directory")
    return path


def child_env(task: AgentTask, environ: dict[str, str] | None = None) -> dict[str, str]:
    source = os.environ if environ is None else environ
    env = {name: source[name] for name in PASSED_THROUGH if name in source}
    declared = task.agent.settings.get("env") or {}
    if not isinstance(declared, dict):
        raise invalid_settings(task, f"'env' must be a mapping NAME: value, found {declared!r}")
    for name, value in declared.items():
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise invalid_settings(task, f"env '{name}' must be text, found {value!r}")
        value = str(value)
        match = VAR_REF.match(value)
        if match:
            var = match.group(1)
            if var not in source:
                raise ApplicationError(
                    f"agent '{task.agent.id}': env '{name}' is copied from the worker's "
                    f"variable '{var}', which this worker does not have; set it where the "
                    f"worker runs",
                    type="MissingEnvironmentVariable",
                    non_retryable=True,
                )
            value = source[var]
            if scrub.sensitive_name(name) or scrub.sensitive_name(var):
                # a credential by its name: it must not come back in outputs or errors
                scrub.register(value)
        elif value.startswith("$$"):
            value = value[1:]
        env[str(name)] = value
    return env


def stdin_payload(task: AgentTask) -> bytes:
    return json.dumps(
        {
            "agent": task.agent.id,
            "role": task.agent.role,
            "inputs": task.inputs,
            "missing_inputs": task.missing_inputs,
            "outputs": task.agent.outputs,
            "writes": task.agent.writes,
            "attempt": activity.info().attempt,
        },
        ensure_ascii=False,
        default=str,
    ).encode()


def tail(stderr: bytes | bytearray) -> str:
    text = stderr.decode(errors="replace").strip()
    if not text:
        return ""
    # scrubbed before the cut (pee.activities.scrub)
    return f"; stderr: {scrub.clip_tail(text, STDERR_TAIL_CHARS)}"


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    # the group may already be gone (or empty): that is the point
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def _feed(stdin: asyncio.StreamWriter | None, payload: bytes) -> None:
    if stdin is None:
        return
    # a program that never reads its stdin (or exits early) is not an error
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        stdin.write(payload)
        await stdin.drain()
        stdin.close()


async def _read(stream: asyncio.StreamReader | None, into: bytearray) -> None:
    if stream is None:
        return
    while chunk := await stream.read(READ_CHUNK):
        into += chunk


async def _leader_exit(process: asyncio.subprocess.Process, tree: process_tree.Tree) -> None:
    """Until the leader exits, recording its descendants as they appear (in a thread: a sample
    walks every process of the host, which must not stall the worker's event loop).

    `returncode` is polled: on Python 3.11 `process.wait()` returns only once every pipe is
    closed too, which a grandchild holding stdout would delay until our timeout."""
    polls = 0
    while process.returncode is None:
        if polls % round(SAMPLE_S / EXIT_POLL_S) == 0:
            await asyncio.to_thread(tree.sample, process.pid)
        polls += 1
        await asyncio.sleep(EXIT_POLL_S)


async def _stop(
    process: asyncio.subprocess.Process, tree: process_tree.Tree, grace_s: float
) -> None:
    """Kill every process of the attempt (SIGTERM, `grace_s`, SIGKILL) and reap the leader."""
    await asyncio.to_thread(tree.sample, process.pid)
    await asyncio.to_thread(tree.kill, grace_s)
    # the leader's own group, should something in it have escaped both walk and marker
    kill_group(process.pid, signal.SIGKILL)
    if process.returncode is None:
        await process.wait()


async def _drain(pipes: list[asyncio.Task[None]]) -> None:
    _, pending = await asyncio.wait(pipes, timeout=DRAIN_S)
    for task in pending:
        task.cancel()


async def run(task: AgentTask, progress: Progress, scale: float) -> AgentResult:
    args = argv(task)
    cwd = working_dir(task)
    env = child_env(task)
    timeout = task.agent.timeout_s * scale if task.agent.timeout_s else None
    shown = [args[0], *(["..."] if len(args) > 1 else [])]
    info = activity.info()
    tree_token = process_tree.token(info.workflow_id, info.workflow_run_id, info.activity_id)
    # an earlier attempt of this agent whose worker died may still be running: not beside us.
    # A first attempt has none, so it skips the search (a read of every process on the host)
    # that would delay every agent's start; stale files of dead attempts still go
    left = 0
    if info.attempt > 1:
        left = await asyncio.to_thread(process_tree.kill_leftovers, tree_token, KILL_GRACE_S)
    else:
        await asyncio.to_thread(process_tree.sweep)
    if left:
        activity.logger.warning(
            "agent '%s': killed %d processes an earlier attempt left running", task.agent.id, left
        )
    env[process_tree.MARKER] = tree_token
    tree = process_tree.Tree(tree_token)
    progress.report(message=f"running {args[0]}")
    try:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=env,
            # its own session: a terminal's signals do not reach it, and its group is ours to kill
            start_new_session=True,
        )
    except (FileNotFoundError, PermissionError, NotADirectoryError) as err:
        raise ApplicationError(
            f"agent '{task.agent.id}': cannot start {args[0]!r}: {err.strerror or err}; "
            f"check 'command' (PATH is {env.get('PATH', '')!r}) and 'cwd'",
            type="CommandNotFound",
            non_retryable=True,
        ) from None
    tree.add(process.pid)
    stdout, stderr = bytearray(), bytearray()
    pipes = [
        asyncio.create_task(_read(process.stdout, stdout)),
        asyncio.create_task(_read(process.stderr, stderr)),
    ]
    feeder = asyncio.create_task(_feed(process.stdin, stdin_payload(task)))
    try:
        await asyncio.wait_for(_leader_exit(process, tree), timeout)
    except asyncio.TimeoutError:
        await asyncio.shield(_stop(process, tree, KILL_GRACE_S))
        await asyncio.shield(_drain([*pipes, feeder]))
        raise ApplicationError(
            f"agent '{task.agent.id}': {shown} ran longer than its timeout of {timeout:.1f}s "
            "and was killed (with every process it started)",
            type="CommandTimeout",
        ) from None
    except BaseException:
        # cancellation (or anything else): never leave a process behind
        await asyncio.shield(_stop(process, tree, KILL_GRACE_S))
        for pending in (*pipes, feeder):
            pending.cancel()
        raise
    # the leader is done: what it left running goes too, then its pipes reach their end
    await asyncio.shield(_stop(process, tree, 0.0))
    await asyncio.shield(_drain([*pipes, feeder]))

    # it has exited (_stop waited for it): wait() gives its status at once, typed as an int
    code = await process.wait()
    if code != 0:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        raise ApplicationError(
            f"agent '{task.agent.id}': {shown} {how}{tail(stderr)}", type="CommandFailed"
        )
    try:
        produced: Any = json.loads(stdout)
    except ValueError as err:
        start = scrub.clip(stdout.decode(errors="replace"), 200, "")
        raise contract_error(
            task,
            f"{shown} printed invalid JSON on stdout ({err}); it starts with {start!r}"
            f"{tail(stderr)}",
            kind="InvalidCommandOutput",
        ) from None
    return build_result(task, produced, source=f"stdout of {shown}", suffix=tail(stderr))
