"""GroupWake (src/pee/workflows/group_wake.py): the group driver's wait wakes when an agent
that was live at the wait's start ends or another awaited future is done, in the turn of the
loop workflow.wait would have woken it in, and never for an agent that ended before."""

from __future__ import annotations

import asyncio
import contextlib

from temporalio import workflow

from pee.workflows.group_wake import GroupWake


async def agent(wake: GroupWake, gate: asyncio.Future[None], log: list[str], name: str) -> None:
    try:
        await gate
        log.append(f"{name} ends")
    finally:
        wake.ended()


def test_an_agent_ending_wakes_the_wait_as_workflow_wait_does() -> None:
    async def scenario(use_wake: bool) -> list[str]:
        loop = asyncio.get_running_loop()
        wake = GroupWake()
        gate: asyncio.Future[None] = loop.create_future()
        log: list[str] = []
        task = asyncio.create_task(agent(wake, gate, log, "a"))
        await asyncio.sleep(0)

        async def driver() -> None:
            if use_wake:
                await wake.wait([])
            else:
                await workflow.wait([task], return_when=asyncio.FIRST_COMPLETED)
            log.append("driver wakes")

        async def bystander() -> None:
            # scheduled in every turn: where the driver's wake-up falls among other work
            for turn in range(6):
                log.append(f"turn {turn}")
                await asyncio.sleep(0)

        waiting = asyncio.create_task(driver())
        others = asyncio.create_task(bystander())
        await asyncio.sleep(0)
        gate.set_result(None)
        await asyncio.gather(waiting, others, task)
        return log

    assert asyncio.run(scenario(True)) == asyncio.run(scenario(False))
    assert "driver wakes" in asyncio.run(scenario(True))


def test_an_agent_that_ended_before_the_wait_does_not_wake_it() -> None:
    async def scenario() -> bool:
        loop = asyncio.get_running_loop()
        wake = GroupWake()
        done: asyncio.Future[None] = loop.create_future()
        done.set_result(None)
        log: list[str] = []
        # ends in its first step, before the wait begins; its end was already counted
        ended = asyncio.create_task(agent(wake, done, log, "early"))
        live: asyncio.Future[None] = loop.create_future()
        asyncio.create_task(agent(wake, live, log, "late"))
        waiting = asyncio.create_task(wake.wait([]))
        await asyncio.sleep(0)
        await ended
        for _ in range(5):
            await asyncio.sleep(0)
        woke_early = waiting.done()
        live.set_result(None)
        await asyncio.wait_for(waiting, timeout=5)
        return woke_early

    assert not asyncio.run(scenario())


def test_another_future_wakes_the_wait_and_loses_its_callback() -> None:
    async def scenario() -> int:
        loop = asyncio.get_running_loop()
        wake = GroupWake()
        deadline: asyncio.Future[None] = loop.create_future()
        waiting = asyncio.create_task(wake.wait([deadline]))
        await asyncio.sleep(0)
        deadline.set_result(None)
        await asyncio.wait_for(waiting, timeout=5)
        # nothing of the wait stays on the future
        return len(deadline._callbacks or [])  # type: ignore[attr-defined]

    assert 0 == asyncio.run(scenario())


async def failing_agent(wake: GroupWake, gate: asyncio.Future[None]) -> None:
    # as AgentRunner._run_then: the last step says whether the task fails
    failed = True
    try:
        await gate
        raise RuntimeError("the agent failed")
    except asyncio.CancelledError:
        failed = False
        raise
    finally:
        wake.ended(failed)


def test_an_agent_that_fails_wakes_the_wait() -> None:
    """The driver wakes for a failed agent (and then raises its failure, raise_agent_failure)."""

    async def scenario() -> bool:
        loop = asyncio.get_running_loop()
        wake = GroupWake()
        gate: asyncio.Future[None] = loop.create_future()
        task = asyncio.create_task(failing_agent(wake, gate))
        await asyncio.sleep(0)
        waiting = asyncio.create_task(wake.wait([]))
        await asyncio.sleep(0)
        gate.set_result(None)
        await asyncio.wait_for(waiting, timeout=5)
        # the driver looks through its tasks for the failure only once one has failed
        return wake.failed and isinstance(task.exception(), RuntimeError)

    assert asyncio.run(scenario())


def test_ends_and_cancellations_do_not_mark_the_group_failed() -> None:
    async def scenario() -> bool:
        loop = asyncio.get_running_loop()
        wake = GroupWake()
        done: asyncio.Future[None] = loop.create_future()
        never: asyncio.Future[None] = loop.create_future()
        ends = asyncio.create_task(agent(wake, done, [], "a"))
        cancelled = asyncio.create_task(failing_agent(wake, never))
        await asyncio.sleep(0)
        done.set_result(None)
        cancelled.cancel()
        await asyncio.gather(ends, cancelled, return_exceptions=True)
        return wake.failed

    assert not asyncio.run(scenario())


def test_an_agent_cancelled_while_the_group_waits_wakes_the_wait() -> None:
    """A started agent's task cancelled from outside runs its last step (`finally`) too."""

    async def scenario() -> bool:
        loop = asyncio.get_running_loop()
        wake = GroupWake()
        never: asyncio.Future[None] = loop.create_future()
        log: list[str] = []
        task = asyncio.create_task(agent(wake, never, log, "a"))
        await asyncio.sleep(0)
        waiting = asyncio.create_task(wake.wait([]))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.wait_for(waiting, timeout=5)
        return task.cancelled() and not log

    assert asyncio.run(scenario())


def test_a_cancelled_deadline_or_chunk_future_wakes_the_wait() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        wake = GroupWake()
        deadline: asyncio.Future[None] = loop.create_future()
        waiting = asyncio.create_task(wake.wait([deadline]))
        await asyncio.sleep(0)
        deadline.cancel()
        await asyncio.wait_for(waiting, timeout=5)

    asyncio.run(scenario())


def test_a_driver_cut_short_while_waiting_leaves_nothing_behind() -> None:
    """The run cancelled or another group failed: the driver's wait raises CancelledError,
    drops its callback from the other futures and its waiter, so its agents' ends (when the
    driver cancels them, end_with_agents) find no waiter; a later wait still wakes."""

    async def scenario() -> tuple[bool, int, bool]:
        loop = asyncio.get_running_loop()
        wake = GroupWake()
        gate: asyncio.Future[None] = loop.create_future()
        deadline: asyncio.Future[None] = loop.create_future()
        log: list[str] = []
        first = asyncio.create_task(agent(wake, gate, log, "a"))
        await asyncio.sleep(0)
        waiting = asyncio.create_task(wake.wait([deadline]))
        await asyncio.sleep(0)
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        cut_short = waiting.cancelled()
        first.cancel()  # end_with_agents: ended() with no waiter
        await asyncio.gather(first, return_exceptions=True)
        callbacks = len(deadline._callbacks or [])  # type: ignore[attr-defined]
        second_gate: asyncio.Future[None] = loop.create_future()
        asyncio.create_task(agent(wake, second_gate, log, "b"))
        await asyncio.sleep(0)
        again = asyncio.create_task(wake.wait([]))
        await asyncio.sleep(0)
        second_gate.set_result(None)
        await asyncio.wait_for(again, timeout=5)
        return cut_short, callbacks, log == ["b ends"]

    assert (True, 0, True) == asyncio.run(scenario())


def test_ends_in_one_turn_wake_one_wait_and_not_the_next() -> None:
    """Two agents ending in the same turn release the wait once; the release left over for it
    does not wake the driver's next wait early (a stale wake-up would let it skip a decision)."""

    async def scenario() -> bool:
        loop = asyncio.get_running_loop()
        wake = GroupWake()
        gate: asyncio.Future[None] = loop.create_future()
        late: asyncio.Future[None] = loop.create_future()
        log: list[str] = []
        for name in ("a", "b"):
            asyncio.create_task(agent(wake, gate, log, name))
        asyncio.create_task(agent(wake, late, log, "c"))
        await asyncio.sleep(0)
        first = asyncio.create_task(wake.wait([]))
        await asyncio.sleep(0)
        gate.set_result(None)
        await asyncio.wait_for(first, timeout=5)
        second = asyncio.create_task(wake.wait([]))
        for _ in range(5):
            await asyncio.sleep(0)
        early = second.done()
        late.set_result(None)
        await asyncio.wait_for(second, timeout=5)
        return early

    assert not asyncio.run(scenario())
