"""Renders run in a render process that is killed on timeout or cancel: a runaway render stops
consuming when its agent gives up, retries do not pile up, and a warm process is reused."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psutil
import pytest

from pee.activities import render_runner, template_backend
from pee.activities.agents import run_agent
from pee.activities.render_cache import default_cache
from pee.activities.types import AgentTask
from tests.agents_fixtures import renders
from tests.test_activities import environment, failure, run
from tests.test_backend_command import alive, gone, wait_for_pids
from tests.test_backend_template import template_agent


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    default_cache().clear()


def render_processes() -> list[psutil.Process]:
    """This process's live render processes."""
    found = []
    for child in psutil.Process().children():
        try:
            if "pee.activities.render_runner" in child.cmdline() and alive(child.pid):
                found.append(child)
        except psutil.Error:
            continue
    return found


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total


def runaway(tmp_path: Path, attempt: int) -> AgentTask:
    agent = template_agent("brief.md", template_engine={"render_timeout": 1.0})
    return AgentTask(agent=agent, inputs={"pid_file": str(tmp_path / f"pid-{attempt}")})


def test_a_timed_out_render_stops_and_retries_do_not_pile_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A render that burns CPU forever: each of three attempts ends in RenderTimeout, and its
    render process is gone; afterwards no render process burns CPU, and neither render
    processes nor threads waiting on them grew with the retries."""
    monkeypatch.setattr(template_backend, "render", renders.runaway_render)
    for attempt in (1, 2, 3):
        error = failure(runaway(tmp_path, attempt), environment(attempt=attempt))
        assert ("RenderTimeout", False) == (error.type, error.non_retryable)
        [pid] = wait_for_pids(tmp_path / f"pid-{attempt}")
        assert gone([pid])
        # no thread is left waiting on it either
        assert 0 == render_runner.runner().in_flight
    left = render_processes()
    assert len(left) <= render_runner.MAX_IDLE
    before = cpu_seconds(left)
    time.sleep(1.0)
    # a burning process would add about a second; idle ones add nothing
    assert cpu_seconds(left) - before < 0.5


def test_a_cancelled_render_stops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(template_backend, "render", renders.runaway_render)
    env = environment(heartbeat_timeout_s=0.3)
    task = runaway(tmp_path, 1)
    task.agent.settings["template_engine"] = {"render_timeout": 600}
    pids: list[int] = []

    async def go() -> None:
        work = asyncio.ensure_future(env.run(run_agent, task))
        pids.extend(await asyncio.to_thread(wait_for_pids, tmp_path / "pid-1"))
        env.cancel()
        await asyncio.wait_for(work, timeout=10)

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(go())
    assert gone(pids)


def test_a_warm_render_process_is_reused_and_errors_come_back() -> None:
    """Two renders in a row use the same (idle) process; a render's exception is raised here."""
    runner = render_runner.runner()

    async def go() -> tuple[list[int], list[int]]:
        await runner.run(template_backend.render, "a {{x}}", {"x": 1}, timeout=60)
        first = runner.idle_pids()
        value = await runner.run(template_backend.render, "b {{x}}", {"x": 2}, timeout=60)
        assert ("b 2", []) == value
        with pytest.raises(ValueError, match="the render broke"):
            await runner.run(renders.failing_render, None, {}, timeout=60)
        return first, runner.idle_pids()

    first, second = asyncio.run(go())
    assert first and set(first) <= set(second)


def test_starting_a_render_process_does_not_count_against_render_timeout() -> None:
    """With no warm process, a 1 s render_timeout still fits a quick render: the process starts
    and imports the template module (seconds on a busy machine) before the clock runs."""
    render_runner.runner().close()
    agent = template_agent("brief.md", template_engine={"render_timeout": 1.0})
    result = run(AgentTask(agent=agent, inputs={"project_name": "Acme"}))
    assert result.outputs["doc"].startswith("# Acme")
