"""One durable timer per group deadline, kept across the barrier's wake-ups (batch mode).

A plain run waits with `workflow.wait(..., timeout=remaining)`, which starts a new timer each
time the group wakes (an agent ended) and cancels the old one: two history events per wake-up,
~40% of a large plan's parent history. In batch mode PlanWorkflow waits on this timer instead:
it is started once per deadline value and only replaced when the deadline moves (an extension,
a pause) or after it fired. Plain runs keep the old commands, so their histories still replay.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow


class DeadlineTimer:
    def __init__(self, group_id: str) -> None:
        self._group_id = group_id
        self._task: asyncio.Task[None] | None = None
        self._deadline_s: float | None = None

    def until(self, deadline_s: float, remaining_s: float) -> asyncio.Task[None]:
        """The timer task firing at ``deadline_s`` (``remaining_s`` from now)."""
        if self._task is None or self._task.done() or self._deadline_s != deadline_s:
            self.cancel()
            self._deadline_s = deadline_s
            self._task = asyncio.create_task(workflow.sleep(
                max(0.0, remaining_s), summary=f"deadline of group {self._group_id}"))
        return self._task

    def fired(self) -> bool:
        return self._task is not None and self._task.done() and not self._task.cancelled()

    def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None
        self._deadline_s = None
