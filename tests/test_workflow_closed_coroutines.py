"""A workflow coroutine closed by the garbage collector runs no workflow code.

When a run's instance is dropped with a coroutine still suspended, the collector closes it
(GeneratorExit) on whatever thread it happens to run, outside any workflow event loop. Code in
its error path that calls the workflow API fails there, and the import in that failure's
handling, landing inside another import on the same thread, broke importlib's module lock
(Python 3.11: KeyError of a thread id) and failed an unrelated worker's start in the suite.
These tests close suspended coroutines by hand, as the collector does, and check that the
bookkeeping meant for cancellation and failure did not run, while it still does for those.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from types import SimpleNamespace
from typing import Any

import pytest

from pee.workflows.agent_runner import AgentRunner
from pee.workflows.fan_out_driver import FanOutDriver


class _Suspended:
    """An awaitable that suspends its awaiter once (a pending future, as a child's result)."""

    def __await__(self) -> Any:
        yield None


def _started(coroutine: Coroutine[Any, Any, None]) -> Coroutine[Any, Any, None]:
    coroutine.send(None)  # runs up to the first suspension, as one workflow step would
    return coroutine


def _fan_out_driver(elapsed_calls: list[str]) -> FanOutDriver:
    driver = FanOutDriver.__new__(FanOutDriver)

    def elapsed() -> float:
        elapsed_calls.append("elapsed")
        return 1.0

    driver.scope = SimpleNamespace(  # type: ignore[assignment]
        event=lambda *args: None,
        run=SimpleNamespace(events=[{}]),
        agents={"dev": SimpleNamespace(status=None)},
        elapsed=elapsed,
    )

    async def run(group: Any, items: list[Any]) -> None:
        await _Suspended()

    driver.children = SimpleNamespace(run=run)  # type: ignore[assignment]
    return driver


def test_a_closed_fan_out_coroutine_does_not_end_its_members() -> None:
    calls: list[str] = []
    driver = _fan_out_driver(calls)
    group = SimpleNamespace(id="dev", agents=["dev"])
    coroutine = _started(driver.run_children(group, ["a", "b"]))  # type: ignore[arg-type]
    coroutine.close()
    assert [] == calls


def test_a_cancelled_fan_out_coroutine_still_ends_its_members_failed() -> None:
    calls: list[str] = []
    driver = _fan_out_driver(calls)
    group = SimpleNamespace(id="dev", agents=["dev"])
    driver.end_members = lambda members, items, status: calls.append(f"{members} {status}")  # type: ignore[method-assign]
    coroutine = _started(driver.run_children(group, ["a", "b"]))  # type: ignore[arg-type]
    with pytest.raises(asyncio.CancelledError):
        coroutine.throw(asyncio.CancelledError())
    assert ["['dev'] failed"] == calls


def _runner(outcome: BaseException | None) -> AgentRunner:
    runner = AgentRunner.__new__(AgentRunner)

    async def run_agent(agent: Any, group: Any, fallback: bool) -> None:
        await _Suspended()
        if outcome is not None:
            raise outcome

    runner.run_agent = run_agent  # type: ignore[method-assign]
    return runner


def test_a_closed_agent_task_does_not_report_its_end() -> None:
    ends: list[bool] = []
    runner = _runner(None)
    coroutine = _started(runner._run_then(None, None, False, ends.append))  # type: ignore[arg-type]
    coroutine.close()
    assert [] == ends


@pytest.mark.parametrize(
    ("outcome", "failed"),
    [(None, False), (asyncio.CancelledError(), False), (RuntimeError("boom"), True)],
    ids=["succeeded", "cancelled", "failed"],
)
def test_an_agent_task_reports_its_end_once(outcome: BaseException | None, failed: bool) -> None:
    ends: list[bool] = []
    runner = _runner(outcome)
    coroutine = _started(runner._run_then(None, None, False, ends.append))  # type: ignore[arg-type]
    with pytest.raises(StopIteration if outcome is None else type(outcome)):
        coroutine.send(None)
    assert [failed] == ends
