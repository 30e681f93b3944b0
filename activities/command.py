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
one JSON object with every declared output and shared write (activities.backend_contract).

Failures: a non-zero exit is retryable (``CommandFailed``: a crash may be transient); invalid
JSON (``InvalidCommandOutput``) or missing outputs (``MissingOutputs``) are non-retryable (the
program breaks the contract, running it again gives the same answer); a program that cannot be
started is non-retryable (``CommandNotFound``). Every message carries the tail of stderr.

The child starts in its own session (its own process group); on cancellation, on the agent's
``timeout`` (CommandTimeout, retryable) and after it exits, the whole group is killed (SIGTERM,
then SIGKILL after a short grace), so no grandchild outlives its agent. The Progress task
heartbeats while the child runs, which is how a cancellation reaches us.
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

from activities.backend_contract import build_result, contract_error, invalid_settings
from activities.progress import Progress
from activities.types import AgentResult, AgentTask

# what every child gets from the worker besides its declared env
PASSED_THROUGH = ("PATH", "HOME", "LANG")
STDERR_TAIL_CHARS = 2000
# SIGTERM first, then SIGKILL after this long
KILL_GRACE_S = 1.0
VAR_REF = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")


def argv(task: AgentTask) -> list[str]:
    raw = task.agent.settings.get("command")
    if isinstance(raw, str):
        raw = [raw]
    if (not isinstance(raw, list) or not raw
            or not all(isinstance(part, str) for part in raw) or not raw[0].strip()):
        raise invalid_settings(task, f"'command' must be a non-empty list [program, arg, ...], "
                                     f"found {raw!r}")
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
        elif value.startswith("$$"):
            value = value[1:]
        env[str(name)] = value
    return env


def stdin_payload(task: AgentTask) -> bytes:
    return json.dumps({
        "agent": task.agent.id,
        "role": task.agent.role,
        "inputs": task.inputs,
        "missing_inputs": task.missing_inputs,
        "outputs": task.agent.outputs,
        "writes": task.agent.writes,
        "attempt": activity.info().attempt,
    }, ensure_ascii=False, default=str).encode()


def tail(stderr: bytes) -> str:
    text = stderr.decode(errors="replace").strip()
    if not text:
        return ""
    if len(text) > STDERR_TAIL_CHARS:
        text = "..." + text[-STDERR_TAIL_CHARS:]
    return f"; stderr: {text}"


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    # the group may already be gone (or empty): that is the point
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Terminate the child's whole process group: SIGTERM, a short grace, then SIGKILL."""
    if process.returncode is None:
        kill_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(process.wait(), KILL_GRACE_S)
    # grandchildren that ignored SIGTERM or outlived the leader
    kill_group(process.pid, signal.SIGKILL)
    if process.returncode is None:
        await process.wait()


async def run(task: AgentTask, progress: Progress, scale: float) -> AgentResult:
    args = argv(task)
    cwd = working_dir(task)
    env = child_env(task)
    timeout = task.agent.timeout_s * scale if task.agent.timeout_s else None
    shown = [args[0], *(["..."] if len(args) > 1 else [])]
    progress.report(message=f"running {args[0]}")
    try:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=env,
            # its own process group, so cancelling kills grandchildren too
            start_new_session=True,
        )
    except (FileNotFoundError, PermissionError, NotADirectoryError) as err:
        raise ApplicationError(
            f"agent '{task.agent.id}': cannot start {args[0]!r}: {err.strerror or err}; "
            f"check 'command' (PATH is {env.get('PATH', '')!r}) and 'cwd'",
            type="CommandNotFound",
            non_retryable=True,
        ) from None
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin_payload(task)),
                                                timeout)
    except asyncio.TimeoutError:
        await asyncio.shield(_stop(process))
        raise ApplicationError(
            f"agent '{task.agent.id}': {shown} ran longer than its timeout of {timeout:.1f}s "
            "and was killed (with its process group)",
            type="CommandTimeout",
        ) from None
    except BaseException:
        # cancellation (or anything else): never leave the child behind
        await asyncio.shield(_stop(process))
        raise
    # a finished leader may leave grandchildren in its group: they go too
    kill_group(process.pid, signal.SIGKILL)

    if process.returncode != 0:
        code = process.returncode
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        raise ApplicationError(f"agent '{task.agent.id}': {shown} {how}{tail(stderr)}",
                               type="CommandFailed")
    try:
        produced: Any = json.loads(stdout)
    except ValueError as err:
        start = stdout[:200].decode(errors="replace")
        raise contract_error(
            task, f"{shown} printed invalid JSON on stdout ({err}); it starts with {start!r}"
                  f"{tail(stderr)}", kind="InvalidCommandOutput") from None
    return build_result(task, produced, source=f"stdout of {shown}", suffix=tail(stderr))
