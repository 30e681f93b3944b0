"""An ended run's state is freed when the worker evicts it, not left to the cyclic collector
(src/pee/workflows/eviction.py): a replay of a recorded run, with the collector off, leaves no
agent state behind, and the release task clears only an ended run's attributes."""

from __future__ import annotations

import asyncio
import gc
from types import SimpleNamespace

import pytest
from temporalio.worker import Replayer

from pee.runtime.codec import data_converter
from pee.workflows.eviction import release_at_eviction
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.state import AgentState
from tests.test_replay import load


def _agent_states() -> int:
    return sum(1 for o in gc.get_objects() if type(o) is AgentState)


def test_a_replayed_run_leaves_no_agent_state_for_the_collector() -> None:
    history = load("all_completed")
    replayer = Replayer(workflows=[PlanWorkflow], data_converter=data_converter())
    gc.collect()
    before = _agent_states()
    gc.disable()
    try:
        # the replayer evicts the run at the end of its history, as a worker does
        asyncio.run(replayer.replay_workflow(history))
        left = _agent_states() - before
    finally:
        gc.enable()
    assert 0 == left


async def _cancelled(ended: bool) -> SimpleNamespace:
    owner = SimpleNamespace(state={"dev": 1})
    part = SimpleNamespace(agents=["dev"])
    task = asyncio.create_task(release_at_eviction(owner, lambda: ended, lambda: (part,)))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return SimpleNamespace(owner=vars(owner), part=vars(part))


def test_an_ended_run_drops_its_attributes_when_cancelled() -> None:
    found = asyncio.run(_cancelled(ended=True))
    assert ({}, {}) == (found.owner, found.part)


def test_a_run_evicted_midway_keeps_its_attributes() -> None:
    found = asyncio.run(_cancelled(ended=False))
    assert ({"state": {"dev": 1}}, {"agents": ["dev"]}) == (found.owner, found.part)
