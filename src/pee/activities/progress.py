"""Keeping a working agent visible: heartbeats and progress signals, from one background task.

Heartbeats keep the activity alive on the server and are how a cancellation reaches it; the SDK
throttles them (to 0.8 x heartbeat_timeout) before they leave the worker, so the workflow also
gets progress by the `agent_progress` signal, at most every `progress_interval_s`. Both run in a
background task while the backend works, so a backend only awaits its own work (a sleep, an
HTTP call) and may call `report()` when it knows how far along it is.

A silent agent (simulate `heartbeat: false`) sends neither: only its timeouts bound it.
A failed progress signal is logged and ignored; it never fails the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict
from datetime import timedelta
from types import TracebackType

from temporalio import activity

from pee.activities import scrub
from pee.activities.types import PROGRESS_SIGNAL, AgentProgress, AgentTask

# without a heartbeat timeout the SDK still needs heartbeats to deliver cancellation
DEFAULT_HEARTBEAT_S = 1.0
MIN_INTERVAL_S = 0.05
# a progress signal that takes longer than this is abandoned (the next one will try again)
SIGNAL_TIMEOUT_S = 5.0
# a keepalive wake-up this much later than asked counts as the worker being behind
LATE_S = 0.05


def heartbeat_interval(task: AgentTask, heartbeat_timeout: timedelta | None) -> float:
    if task.heartbeat_interval_s is not None and task.heartbeat_interval_s > 0:
        return max(MIN_INTERVAL_S, float(task.heartbeat_interval_s))
    if heartbeat_timeout:
        # three chances per timeout window before the server gives up on the agent
        return max(MIN_INTERVAL_S, heartbeat_timeout.total_seconds() / 3)
    return DEFAULT_HEARTBEAT_S


class Progress:
    """Use as `async with Progress(task) as progress:` around the agent's work (in an activity)."""

    def __init__(self, task: AgentTask, *, silent: bool = False) -> None:
        info = activity.info()
        self.agent_id = task.agent.id
        self.attempt = info.attempt
        # a local activity cannot heartbeat: the worker keeps its workflow task open instead
        # (batch mode, BatchSpec.local_s); its cancellation arrives without heartbeats
        self.silent = silent or info.is_local
        self.heartbeat_s = heartbeat_interval(task, info.heartbeat_timeout)
        interval = task.progress_interval_s
        self.progress_s = (
            max(MIN_INTERVAL_S, float(interval)) if interval and interval > 0 else None
        )
        self.workflow_id = info.workflow_id
        self.run_id = info.workflow_run_id
        self.signal_failures = 0
        self._expected_s = 0.0
        self._fraction: float | None = None
        self._message = ""
        self._loop = asyncio.get_running_loop()
        self._started = self._loop.time()
        self._keepalive: asyncio.Task[None] | None = None
        self._keepalive_soon: asyncio.Handle | None = None
        self._signal: asyncio.Task[None] | None = None
        # how late the keepalive loop woke up, all together (AgentProgress.behind_s)
        self.behind_s = 0.0

    # --- what the backend tells us ------------------------------------------------------------

    def expect(self, seconds: float) -> None:
        """The agent expects to work about this long in total (for a time-based fraction)."""
        self._expected_s = max(self._expected_s, float(seconds))

    def report(self, fraction: float | None = None, message: str = "") -> None:
        """Explicit progress from the backend; overrides the time-based estimate."""
        if fraction is not None:
            self._fraction = min(1.0, max(0.0, float(fraction)))
        if message:
            self._message = message

    def elapsed(self) -> float:
        return self._loop.time() - self._started

    def snapshot(self) -> AgentProgress:
        fraction = self._fraction
        elapsed = self.elapsed()
        if fraction is None and self._expected_s > 0:
            fraction = min(1.0, elapsed / self._expected_s)
        of = f" of ~{self._expected_s:.1f}s" if self._expected_s > 0 else ""
        # heartbeat details and progress signals leave the agent: no secret in them
        message = scrub.text(f"{self._message or 'working'} ({elapsed:.1f}s{of})")
        return AgentProgress(
            agent_id=self.agent_id,
            attempt=self.attempt,
            fraction=None if fraction is None else round(fraction, 3),
            message=message,
            behind_s=round(self.behind_s, 3),
        )

    async def sleep(self, seconds: float) -> None:
        # the keepalive task heartbeats meanwhile; a cancellation raises CancelledError here
        if seconds > 0:
            await asyncio.sleep(seconds)

    async def sleep_until(self, elapsed_s: float) -> None:
        await self.sleep(elapsed_s - self.elapsed())

    # --- the background task ------------------------------------------------------------------

    async def __aenter__(self) -> Progress:
        self._started = self._loop.time()
        if not self.silent:
            # started when the backend first waits, where a task would first have run: an agent
            # done before that (a no-op) costs no task (bench/overhead.py)
            self._keepalive_soon = self._loop.call_soon(self._start_keepalive)
        return self

    def _start_keepalive(self) -> None:
        self._keepalive = asyncio.create_task(self._run())

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # the result (or the failure) says the rest; an in-flight progress signal is moot
        if self._keepalive_soon is not None:
            self._keepalive_soon.cancel()
        for task in (self._keepalive, self._signal):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _run(self) -> None:
        next_beat = self._loop.time()
        # the first progress report after one interval: an instant agent sends none
        next_signal = None if self.progress_s is None else next_beat + self.progress_s
        while True:
            now = self._loop.time()
            if now >= next_beat:
                activity.heartbeat(asdict(self.snapshot()))
                next_beat = now + self.heartbeat_s
            if next_signal is not None and self.progress_s is not None and now >= next_signal:
                # one signal in flight at most: a slow server must not pile them up
                if self._signal is None or self._signal.done():
                    self._signal = asyncio.create_task(self._send(self.snapshot()))
                next_signal = now + self.progress_s
            wake = next_beat if next_signal is None else min(next_beat, next_signal)
            await asyncio.sleep(max(0.0, wake - self._loop.time()))
            # woken later than asked: the worker's event loop was busy with other work (the
            # deadline gives this back: GroupDriver.take_lag); a few ms are normal jitter
            late = self._loop.time() - wake
            if late > LATE_S:
                self.behind_s += late

    async def _send(self, progress: AgentProgress) -> None:
        if self.workflow_id is None:
            return  # a standalone activity (no workflow) has nobody to tell
        try:
            handle = activity.client().get_workflow_handle(self.workflow_id, run_id=self.run_id)
            await asyncio.wait_for(
                handle.signal(PROGRESS_SIGNAL, progress), timeout=SIGNAL_TIMEOUT_S
            )
        except asyncio.CancelledError:
            raise
        except Exception as err:  # progress is best effort by contract
            self.signal_failures += 1
            # once loudly, then quietly: a workflow that is gone must not flood the log
            log = activity.logger.warning if self.signal_failures == 1 else activity.logger.debug
            log("agent '%s': progress signal failed (ignored): %s", self.agent_id, err)
