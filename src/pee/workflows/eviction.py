"""Let go of an ended run's state when the worker evicts it from its cache.

A workflow instance is a web of reference cycles (its tasks, their frames and callbacks, the
collaborators that hold each other and the SDK's instance around it), so when the worker drops
it only the cyclic garbage collector frees it, and with it every agent's state, compiled agent,
context versions and report rows: about 40 container objects per agent (~7,800 per 200-agent
run), each counted against the collector's young generation (pee.runtime.collector) until a
collection walks them, so every such run set off a collection. The SDK cancels every task still
pending when it evicts a run; `release_at_eviction` is such a task: once the run has ended it
clears the attributes of the workflow object and of the collaborators it made for this run, so
their state is freed at once by reference counting and only the instance's skeleton (~440
objects) is left to the collector. It issues no commands and changes nothing a query or a replay
could still read: eviction is the instance's last activation (a query of a completed run comes
before it, or replays into a new instance)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable


async def release_at_eviction(
    owner: object, ended: Callable[[], bool], parts: Callable[[], Iterable[object]]
) -> None:
    """Wait until cancelled (nothing but the SDK's eviction cancels it); then, when `ended()`
    says the run is over, drop the attributes of `parts()` (objects made for this run alone,
    never shared with another run) and of `owner`. A run evicted midway keeps them: its other
    tasks still run their cancellation steps in the same activation and read that state."""
    try:
        await asyncio.get_running_loop().create_future()
    except asyncio.CancelledError:
        if ended():
            for part in parts():
                vars(part).clear()
            vars(owner).clear()
        raise
