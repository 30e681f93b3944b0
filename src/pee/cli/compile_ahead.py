"""`pee run` compiles its plan in a forked child while the parent imports the Temporal SDK.

Before its first agent `pee run` spends most of its time on two imports that do not depend on
each other: the plan language (pydantic models, the analyser) to compile the plan, and the
Temporal SDK (client, worker, workflow sandbox) to run it. Each is a few tenths of a second of
CPU; in one process they add up, in two they overlap on a machine with a second core. So the
child compiles (printing what compiling prints: notes, a BMAD interpretation, every plan error,
to the same stdout and stderr, in the same order) and hands the compiled plan back pickled
through a pipe; the parent waits for it before anything with a side effect (starting the
embedded server, starting the run) and ends with exit 2 on a plan error, as before.

The child is forked only when that is safe and possible: os.fork exists (not on Windows) and
this process runs no other thread yet (telemetry exporters and the Temporal SDK's core run
threads; a lock one of them held at the fork would never be released in the child). Otherwise
the plan is compiled here.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pickle
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import Any

from pee.cli.plan_input import compile_from_args

# what both sides need: pydantic (the plan language's models here, the Temporal SDK's workflow
# sandbox there) and the compiled plan's classes
SHARED_MODULES = ("pydantic", "pee.engine.compiled")
# what the child sends: the compiled plan, or None after it printed why there is none
_PLAN, _NO_PLAN, _CRASHED, _INTERRUPTED = "plan", "no-plan", "crashed", "interrupted"


class CompileCrashed(Exception):
    """Compiling raised something other than a plan error (a bug: the child printed its
    traceback), or the child died before it answered (killed, out of memory)."""


@dataclass
class CompileAhead:
    """A compile under way in a child (``pid``, result on ``read_fd``), or one already done."""

    pid: int | None = None
    read_fd: int | None = None
    done: Any = None

    def result(self) -> Any:
        """The CompiledPlan, or None when the plan has errors (already printed)."""
        if self.pid is None or self.read_fd is None:
            return self.done
        data = b""
        status = 0
        try:
            with os.fdopen(self.read_fd, "rb") as pipe:
                self.read_fd = None
                data = pipe.read()
        finally:
            pid, self.pid = self.pid, None
            # reaped however this ends (Ctrl-C reaches the child too: it exits at once)
            status = os.waitpid(pid, 0)[1]
        if not data:
            raise CompileCrashed(f"the plan's compiler ended without an answer ({_ended(status)})")
        try:
            kind, plan = pickle.loads(data)
        except (pickle.UnpicklingError, EOFError, ValueError) as err:
            # killed while writing: what came is the start of a pickle
            raise CompileCrashed(
                f"the plan's compiler sent only part of its answer ({_ended(status)})"
            ) from err
        if kind == _INTERRUPTED:
            # Ctrl-C (or a SIGINT) reached the child, maybe not this process: end as if it had
            raise KeyboardInterrupt
        if kind == _CRASHED:
            raise CompileCrashed("compiling the plan failed (the traceback above says where)")
        return plan if kind == _PLAN else None


def _ended(status: int) -> str:
    """How the child ended, from its wait status."""
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def can_fork() -> bool:
    # the Temporal SDK's Rust core runs threads Python does not count: once it is loaded (a
    # caller that imported it before `run`), compile here
    return (
        hasattr(os, "fork")
        and threading.active_count() == 1
        and "temporalio.bridge.temporal_sdk_bridge" not in sys.modules
    )


def start(args: argparse.Namespace) -> CompileAhead:
    """Compile ``args.plan`` in a child when that is safe, else here and now."""
    if not can_fork():
        return CompileAhead(done=compile_from_args(args))
    # imported once, before the fork, instead of once on each side
    for module in SHARED_MODULES:
        importlib.import_module(module)
    # what is buffered now would otherwise be written twice, once by each process
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compile, answer, leave without running the parent's exit code
        os.close(read_fd)
        _compile_and_answer(args, write_fd)
    os.close(write_fd)
    return CompileAhead(pid=pid, read_fd=read_fd)


def _compile_and_answer(args: argparse.Namespace, write_fd: int) -> None:
    code = 0
    try:
        plan = compile_from_args(args)
        answer: tuple[str, Any] = (_PLAN, plan) if plan is not None else (_NO_PLAN, None)
    except KeyboardInterrupt:
        answer, code = (_INTERRUPTED, None), 130
    except BaseException:
        traceback.print_exc()
        answer, code = (_CRASHED, None), 1
    try:
        payload = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(payload)
        while view:
            view = view[os.write(write_fd, view) :]
    except BrokenPipeError:
        code = code or 1  # the parent is gone (interrupted): nobody to answer
    except (OSError, pickle.PicklingError):
        traceback.print_exc()
        code = code or 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)
