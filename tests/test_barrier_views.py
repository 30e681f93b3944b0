"""AgentViews (src/pee/workflows/barrier_views.py) gives the barrier the view AgentState makes,
also after any one of the agent's fields changed: the cache key covers every field the view
depends on, checked against every field of AgentState, so a view that starts reading a new
field fails here."""

from __future__ import annotations

import dataclasses
from itertools import product
from typing import Any

import pytest

from pee.engine.rules import barrier
from pee.engine.states import AgentStatus
from pee.workflows.barrier_views import AgentViews, must_wait
from pee.workflows.state import AgentState


def other_value(state: AgentState, name: str) -> list[Any]:
    """Values unlike the field's current one, of the kinds the field holds."""
    if name == "status":
        return [s for s in AgentStatus if s != state.status]
    current = getattr(state, name)
    if isinstance(current, bool):
        return [not current]
    if isinstance(current, int | float):
        return [current + 3, current + 7.5]
    if current is None:
        return [1.25, 4, "x", True]
    if isinstance(current, str):
        return [current + "x"]
    if isinstance(current, list):
        return [[*current, "x"]]
    if isinstance(current, dict):
        return [{**current, "x": 1}]
    raise AssertionError(f"no other value for AgentState.{name} = {current!r}")


STARTS = [AgentStatus.PENDING, AgentStatus.RUNNING, AgentStatus.SUCCEEDED, AgentStatus.FAILED]


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(AgentState)])
@pytest.mark.parametrize("start", STARTS)
def test_a_changed_field_gives_the_view_agent_state_makes(field: str, start: AgentStatus) -> None:
    views = AgentViews()
    state = AgentState(status=start, attempts=1, last_progress_s=2.0)
    assert state.barrier_view() == views.view("a", state)
    for value in other_value(state, field):
        setattr(state, field, value)
        assert state.barrier_view() == views.view("a", state), (field, value)


def test_an_unchanged_agent_keeps_its_view_and_agents_do_not_share_one() -> None:
    views = AgentViews()
    running = AgentState(status=AgentStatus.RUNNING)
    done = AgentState(status=AgentStatus.SUCCEEDED)
    first = views.view("a", running)
    assert first is views.view("a", running)
    assert done.barrier_view() == views.view("b", done)
    running.status = AgentStatus.SUCCEEDED
    assert done.barrier_view() == views.view("a", running)


# every status, failed ones critically or not
KINDS = [(status, False) for status in AgentStatus] + [
    (status, True) for status in AgentStatus if status != AgentStatus.SUCCEEDED
]


@pytest.mark.parametrize("deadline_s", [None, 5.0, 10.0, 20.0])
def test_must_wait_is_decide_saying_wait(deadline_s: float | None) -> None:
    """must_wait answers for barrier.decide on every mix of up to three agents' states and
    both sides of the deadline: the group driver skips the barrier only where it would wait."""
    for size in (1, 2, 3):
        for kinds in product(KINDS, repeat=size):
            ids = [f"a{i}" for i in range(size)]
            agents = {
                a: AgentState(status=status, critical=critical, last_progress_s=9.0)
                for a, (status, critical) in zip(ids, kinds, strict=True)
            }
            view = barrier.BarrierView(
                group="g",
                agents=ids,
                states={a: state.barrier_view() for a, state in agents.items()},
                now_s=10.0,
                deadline_s=deadline_s,
            )
            waits = barrier.decide(view).action == barrier.WAIT
            assert must_wait(ids, agents, deadline_s, 10.0) == waits, (kinds, deadline_s)
