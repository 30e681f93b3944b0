"""GroupWake: what a group's driver waits on between two barrier decisions.

The driver waits until one of its running agents ends (or its deadline, a fan-out's next chunk
or the end of a pause comes). `workflow.wait` on every live agent task adds and removes a
callback on each of them at every wake-up, O(agents) per agent that ends: with the barrier's
view, most of a wide group's own work (bench/overhead.py, 200 agents). Here each agent task
says once, in its last step, that it ends (AgentRunner.launch's `on_end`), and the driver
waits on one future.

The driver wakes in the same turn of the event loop as with `workflow.wait`, so whatever a
wake-up starts, cancels or schedules comes out in the same order (tests/test_replay.py): the
task's end schedules the release of the waiter (where `workflow.wait`'s callback on the task
was scheduled), and the release schedules the driver. An agent that ended before the wait
began does not wake it, as `workflow.wait` was not given finished tasks. Waits with a timeout
(a timer command per wait: runs recorded before the deadline clock) keep `workflow.wait`.

Every way an agent ends runs that last step (`finally`): success, failure, and cancellation of a
started task. The one exception, a task cancelled before its first step (whose coroutine never
runs), cannot happen while the driver waits: only the driver cancels its agents (cancel_all,
end_with_agents), never while it waits, and it waits again only after looking at every agent.
The driver cut short while waiting (the run cancelled, another group failed) leaves the wait
with its callbacks and waiter removed. tests/test_group_wake.py has a test of each.
"""

from __future__ import annotations

import asyncio
from typing import Any


class GroupWake:
    def __init__(self) -> None:
        self._waiter: asyncio.Future[None] | None = None
        # whether an agent task of the group failed (raised, not cancelled): until one has, the
        # driver need not look through every task for a failure at each wake-up
        self.failed = False

    def ended(self, failed: bool = False) -> None:
        """An agent task of the group is in its last step (called synchronously there);
        `failed`: it ends with an exception other than its cancellation."""
        if failed:
            self.failed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            asyncio.get_running_loop().call_soon(_release, waiter)

    async def wait(self, others: list[asyncio.Future[Any]]) -> None:
        """Until an agent task that is live now ends or one of `others` is done."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_done(_: asyncio.Future[Any]) -> None:
            _release(waiter)

        for future in others:
            future.add_done_callback(on_done)
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None
            for future in others:
                future.remove_done_callback(on_done)


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
