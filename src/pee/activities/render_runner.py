"""Running a render where it can be stopped: in a render process, killed on timeout or cancel.

A thread cannot be stopped: `wait_for(to_thread(render))` gave up waiting on a runaway render
while the thread went on burning CPU and memory, one more per retry. So a render runs in a
separate Python process (``python -m pee.activities.render_runner``) that is SIGKILLed the moment
its render times out or its agent is cancelled; the thread that waited for its answer ends with
it (its pipe closes). Processes are kept warm between renders (at most `MAX_IDLE`), so only a
killed one costs a fresh start. An idle one exits when the worker closes its pipe or dies (on
Linux it also gets SIGKILL with its parent), so none outlives the worker.

Why a plain subprocess and not multiprocessing: its "spawn" start re-imports the worker's main
module (starter.py, worker.py) in every child, and "fork" is unsafe in a worker whose SDK core
runs threads. A process starts and imports the function's module before the render's timeout
starts counting.

The function to run is passed by reference (pickle: module and name), its arguments and result
by value; an exception it raises is raised again here. The rendering itself stays in
pee.activities.template_backend; this module only decides where it runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import os
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, Any, TypeVar

T = TypeVar("T")
MAX_IDLE = 4
# renders in flight per worker (each waits in a thread); far above any concurrent_renders
MAX_WAITERS = 64
HEADER_BYTES = 8
# after the kill, how long the waiting thread may take to see the pipe close
REAP_S = 5.0
PR_SET_PDEATHSIG = 1


class RenderProcessDied(RuntimeError):
    """The render process ended without answering (killed from outside, out of memory)."""


class _Slot:
    """One render process and the pipes to it; one job at a time."""

    def __init__(self) -> None:
        env = dict(os.environ)
        # the worker's import path, so the process finds the same modules wherever it runs
        env["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pee.activities.render_runner"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            # a Ctrl-C on the worker's terminal is the worker's to handle, not the renders'
            start_new_session=True,
        )
        self.imported: set[str] = set()

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def call(self, func: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
        """Blocking: send one job, read its answer (EOF when the process is killed)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        _write(self.process.stdin, (func, args))
        reply = _read(self.process.stdout)
        if reply is None:
            raise RenderProcessDied(
                f"the render process {self.pid} ended without an answer "
                f"(exit status {self.process.wait()})"
            )
        return reply

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait()
        self._close_pipes()

    def close(self) -> None:
        """An idle process: closing its stdin ends it."""
        self._close_pipes()
        try:
            self.process.wait(timeout=REAP_S)
        except subprocess.TimeoutExpired:
            self.kill()

    def _close_pipes(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def _write(stream: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(HEADER_BYTES, "big") + data)
    stream.flush()


def _read(stream: IO[bytes]) -> Any:
    header = stream.read(HEADER_BYTES)
    if len(header) < HEADER_BYTES:
        return None
    size = int.from_bytes(header, "big")
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)  # noqa: S301 - our own render process, over its own pipe


class RenderRunner:
    """The worker's render processes: idle ones kept, a timed-out or cancelled one killed."""

    def __init__(self) -> None:
        self._idle: list[_Slot] = []
        self._in_flight = 0
        self._lock = threading.Lock()
        # threads that wait on a render process's pipe; each ends when its process does
        self._waiters = concurrent.futures.ThreadPoolExecutor(
            max_workers=MAX_WAITERS, thread_name_prefix="render-wait"
        )

    @property
    def in_flight(self) -> int:
        """Renders whose waiting thread has not returned yet (their process may be running)."""
        return self._in_flight

    def _answered(self, _: asyncio.Future[Any]) -> None:
        self._in_flight -= 1

    def _take(self, module: str) -> _Slot:
        """An idle process, or a new one; either has `module` imported, so neither its start
        nor the import counts against the render's timeout."""
        slot = None
        with self._lock:
            while self._idle and slot is None:
                candidate = self._idle.pop()
                if candidate.alive():
                    slot = candidate
        slot = slot or _Slot()
        if module not in slot.imported:
            ok, error = slot.call(_preload, (module,))
            if not ok:
                slot.kill()
                raise error
            slot.imported.add(module)
        return slot

    def _give_back(self, slot: _Slot) -> None:
        with self._lock:
            if slot.alive() and len(self._idle) < MAX_IDLE:
                self._idle.append(slot)
                return
        slot.close()

    def idle_pids(self) -> list[int]:
        with self._lock:
            return [slot.pid for slot in self._idle]

    async def run(self, func: Callable[..., T], *args: Any, timeout: float | None) -> T:
        """`func(*args)` in a render process; asyncio.TimeoutError after `timeout` seconds (the
        process killed first), the function's own exception if it raised one."""
        loop = asyncio.get_running_loop()
        taking = loop.run_in_executor(self._waiters, self._take, func.__module__)
        try:
            slot = await asyncio.shield(taking)
        except asyncio.CancelledError:
            # cancelled while a process started: it goes back to the idle ones once it has
            taking.add_done_callback(
                lambda done: None if done.exception() else self._give_back(done.result())
            )
            raise
        answer = loop.run_in_executor(self._waiters, slot.call, func, args)
        self._in_flight += 1
        answer.add_done_callback(self._answered)
        try:
            done, _ = await asyncio.wait({answer}, timeout=timeout)
        except BaseException:
            # cancelled: the render must stop with the agent
            await asyncio.shield(self._kill(slot, answer))
            raise
        if not done:
            await asyncio.shield(self._kill(slot, answer))
            raise asyncio.TimeoutError(f"the render took longer than {timeout:g}s")
        try:
            ok, value = answer.result()
        except BaseException:
            await asyncio.shield(self._kill(slot, answer))
            raise
        self._give_back(slot)
        if not ok:
            raise value
        return value

    async def _kill(self, slot: _Slot, answer: asyncio.Future[Any]) -> None:
        await asyncio.to_thread(slot.kill)
        # the waiting thread sees the pipe close and ends; its answer is dropped
        with contextlib.suppress(Exception, asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(answer), REAP_S)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for slot in idle:
            slot.close()


_runner: RenderRunner | None = None
_runner_lock = threading.Lock()


def runner() -> RenderRunner:
    """The worker's runner (one per process; not tied to an event loop)."""
    global _runner
    with _runner_lock:
        if _runner is None:
            _runner = RenderRunner()
        return _runner


def _preload(module: str) -> None:
    importlib.import_module(module)


# ---- the render process ----------------------------------------------------------------------


def _die_with_parent() -> None:
    # Linux: SIGKILL when the worker dies, even in the middle of a render
    import ctypes  # here: only the render process needs it, not every worker's start

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def serve() -> None:
    """Answer jobs from stdin on the original stdout until stdin closes."""
    _die_with_parent()
    # stray prints of a render must not corrupt the answers: stdout becomes stderr
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    jobs = sys.stdin.buffer
    while True:
        job = _read(jobs)
        if job is None:
            return
        func, args = job
        try:
            reply: tuple[bool, Any] = (True, func(*args))
        except Exception as err:
            reply = (False, err)
        try:
            _write(answers, reply)
        except (pickle.PicklingError, TypeError, AttributeError) as err:
            _write(answers, (False, RuntimeError(f"the render's answer cannot be sent: {err}")))
        except BrokenPipeError:
            return


if __name__ == "__main__":
    serve()
