"""The barrier decision table (engine.barrier.decide): every branch, no server needed."""

from __future__ import annotations

import pytest

from engine.barrier import (
    CONTINUE_WITH_PARTIAL,
    FAIL,
    FAILED,
    PENDING,
    PROCEED,
    RUNNING,
    SUCCEEDED,
    WAIT,
    BarrierView,
    decide,
)

AGENTS = ["a", "b", "c"]

CASES = [
    # states of a, b, c; deadline reached; criteria; action; cancel; fill_defaults
    ((SUCCEEDED, SUCCEEDED, SUCCEEDED), False, "at_least_one", PROCEED, [], []),
    ((SUCCEEDED, RUNNING, SUCCEEDED), False, "at_least_one", WAIT, [], []),
    ((PENDING, PENDING, PENDING), False, "at_least_one", WAIT, [], []),
    ((SUCCEEDED, FAILED, SUCCEEDED), False, "at_least_one", CONTINUE_WITH_PARTIAL, [], ["b"]),
    ((SUCCEEDED, FAILED, SUCCEEDED), False, "all", FAIL, [], []),
    ((FAILED, FAILED, FAILED), False, "at_least_one", FAIL, [], []),
    ((RUNNING, SUCCEEDED, PENDING), True, "at_least_one", CONTINUE_WITH_PARTIAL,
     ["a", "c"], ["a", "c"]),
    ((RUNNING, FAILED, RUNNING), True, "at_least_one", FAIL, ["a", "c"], []),
    ((RUNNING, SUCCEEDED, RUNNING), True, "all", FAIL, ["a", "c"], []),
]


@pytest.mark.parametrize(("states", "deadline", "criteria", "action", "cancel", "fill"), CASES)
def test_decision_table(
    states: tuple[str, ...],
    deadline: bool,
    criteria: str,
    action: str,
    cancel: list[str],
    fill: list[str],
) -> None:
    """Each combination of agent states, deadline and criteria maps to one decision."""
    view = BarrierView("g", AGENTS, dict(zip(AGENTS, states, strict=True)), deadline, criteria)
    decision = decide(view)
    assert (action, cancel, fill) == (decision.action, decision.cancel, decision.fill_defaults)
    assert decision.reason


def test_at_least_count_needs_that_many_successes() -> None:
    """'at_least' with count 2 fails at the deadline with one success and passes with two."""
    one = BarrierView("g", AGENTS, {"a": SUCCEEDED, "b": RUNNING, "c": RUNNING}, True,
                      "at_least", 2)
    two = BarrierView("g", AGENTS, {"a": SUCCEEDED, "b": SUCCEEDED, "c": RUNNING}, True,
                      "at_least", 2)
    assert decide(one).action == FAIL
    assert decide(two).action == CONTINUE_WITH_PARTIAL
