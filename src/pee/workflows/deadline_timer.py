"""Group deadlines in batch mode: one run-wide timer for the earliest deadline, not one per group.

A plain run waits with `workflow.wait(..., timeout=remaining)`, which starts a new timer each
time the group wakes (an agent ended) and cancels the old one: two history events per wake-up.
For a 5,000-agent plan even one timer per group (started, then cancelled when the group passes
early) was ~30% of the parent's history. In batch mode every group waits on a DeadlineClock
future instead: the clock sleeps until the earliest deadline anyone waits for, wakes the groups
whose deadline has come, and sleeps again. A group that ends early just withdraws (no command);
the clock's timer is re-armed only when an earlier deadline than the armed one appears. Cost:
two events per clock firing, bounded by run time / deadline spacing, whatever the group count.
Plain runs keep the old commands, so their histories still replay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from temporalio import workflow


class DeadlineClock:
    def __init__(self, elapsed: Callable[[], float], *, withdraw: bool = False) -> None:
        # seconds since the run started (RunScope.elapsed)
        self._elapsed = elapsed
        # cancel the armed timer once nobody waits for it (one TimerCanceled event instead of a
        # TimerFired and the workflow task it wakes); runs since liveness-from-describe
        self._withdraw = withdraw
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    def until(self, deadline_s: float) -> asyncio.Future[None]:
        """A future done once ``deadline_s`` has come; cancel it to withdraw."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((deadline_s, future))
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        return future

    def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def _live(self) -> list[tuple[float, asyncio.Future[None]]]:
        self._waiters = [(d, f) for d, f in self._waiters if not f.done()]
        return self._waiters

    def _earliest(self) -> float | None:
        live = self._live()
        return min(d for d, _f in live) if live else None

    async def _run(self) -> None:
        while True:
            await workflow.wait_condition(lambda: self._earliest() is not None)
            target = self._earliest()
            assert target is not None
            sleep = asyncio.create_task(
                workflow.sleep(
                    max(0.0, target - self._elapsed()), summary="earliest group deadline"
                )
            )

            def moved_earlier(armed: float = target) -> bool:
                earliest = self._earliest()
                if earliest is None and self._withdraw:
                    return True
                return (earliest or armed) < armed

            earlier = asyncio.create_task(workflow.wait_condition(moved_earlier))
            await workflow.wait([sleep, earlier], return_when=asyncio.FIRST_COMPLETED)
            if not earlier.done():
                earlier.cancel()
            if not sleep.done():
                sleep.cancel()  # an earlier deadline came in (or none is left): re-arm
                continue
            now = max(self._elapsed(), target)
            for deadline_s, future in self._live():
                if deadline_s <= now:
                    future.set_result(None)
