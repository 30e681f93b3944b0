"""The barrier's view of each agent of a group, made again only when the agent changed.

The group's barrier decides at every wake-up from a view of all its agents; making each
agent's view anew (AgentState.barrier_view) was the largest part of a wide group's own work per
wake-up (bench/overhead.py, 200 agents). A view depends only on the fields in `_key`;
tests/test_barrier_views.py checks that against every field of AgentState, so a view that
starts reading another field fails there, not silently here. Nothing here is carried or
recorded: a continued run starts with an empty cache and makes the same views."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import attrgetter

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pee.engine.rules import barrier
    from pee.engine.states import AGENT_UNFINISHED, AgentStatus
    from pee.workflows.state import AgentState

Key = tuple[AgentStatus, bool, float | None, int]

_STATUS = attrgetter("status")
_UNFINISHED = frozenset(AGENT_UNFINISHED)


def _key(state: AgentState) -> Key:
    return (state.status, state.critical, state.last_progress_s, state.attempts)


class AgentViews:
    def __init__(self) -> None:
        self._views: dict[str, tuple[Key, barrier.AgentView]] = {}

    def view(self, agent_id: str, state: AgentState) -> barrier.AgentView:
        key = _key(state)
        cached = self._views.get(agent_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        view = state.barrier_view()
        self._views[agent_id] = (key, view)
        return view


def must_wait(
    agent_ids: Sequence[str],
    agents: Mapping[str, AgentState],
    deadline_s: float | None,
    now_s: float,
) -> bool:
    """Whether barrier.decide would say WAIT for these agents (row 3: some unfinished, none
    failed critically, the deadline not reached), read straight off the agents' states.

    A wide group wakes at every agent's end and nearly always waits: building every agent's
    view and the WAIT decision's reason (which names every unfinished agent, and which nobody
    records) was most of its work per wake-up (bench/overhead.py). `deadline_s` is the deadline
    as of now (GroupState.deadline_at). tests/test_barrier_views.py checks this against decide.
    """
    if deadline_s is not None and now_s >= deadline_s:
        return False
    # the statuses read and counted by C loops (map, count, sum): a wide group wakes at every
    # agent's end, and a Python loop over all its agents was most of that wake-up's own work
    states = list(map(agents.__getitem__, agent_ids))
    statuses = list(map(_STATUS, states))
    ended = statuses.count(AgentStatus.SUCCEEDED)
    waiting = sum(map(_UNFINISHED.__contains__, statuses))
    if ended + waiting == len(statuses):
        # nobody failed, so nobody failed critically
        return waiting > 0
    unfinished = False
    succeeded = AgentStatus.SUCCEEDED
    for state in states:
        status = state.status
        if status == succeeded:
            continue
        if status in AGENT_UNFINISHED:
            unfinished = True
        elif state.critical:
            # AgentState.barrier_view: a critical failure, which aborts the group at once
            return False
    return unfinished
