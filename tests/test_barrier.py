"""The smart barrier's decision table (pee.engine.rules.barrier): every row, no server needed.

Agents a, b, c; the group deadline is at 10 s, the progress window 3 s, one 5 s extension allowed.
A state is written "S" succeeded, "F" failed, "C" critical (non-retryable) failure, "P" pending,
"R" running with no progress seen, "R@9" running with its last progress signal at 9 s.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from pee.engine.rules.barrier import (
    ABORT_AND_FALLBACK,
    ALL_COMPLETED,
    CONTINUE_WITH_DEFAULTS,
    CONTINUE_WITH_PARTIAL,
    CRITICAL_FAILED,
    EXTEND_TIMEOUT,
    FAIL,
    FAILED,
    FALLBACK_SUCCEEDED,
    MAX_EXTENSION_S,
    PENDING,
    POSTPONE_DEADLINE,
    RUNNING,
    SUCCEEDED,
    WAIT,
    AgentView,
    BarrierView,
    decide,
    decide_after_fallback,
    required_successes,
)
from pee.engine.states import ActivityState

AGENTS = ["a", "b", "c"]
CODES = {"S": SUCCEEDED, "F": FAILED, "C": CRITICAL_FAILED, "P": PENDING, "R": RUNNING}


def view(states: str, now: float = 5.0, **options: Any) -> BarrierView:
    """A view of agents a, b, c from a compact spec such as "S R@9 P"."""
    parsed = {}
    for agent_id, spec in zip(AGENTS, states.split(), strict=True):
        code, _, seen = spec.partition("@")
        parsed[agent_id] = AgentView(CODES[code], float(seen) if seen else None)
    settings: dict[str, Any] = {
        "deadline_s": 10.0,
        "progress_window_s": 3.0,
        "extension_s": 5.0,
        "max_extensions": 1,
    }
    settings.update(options)
    return BarrierView("g", AGENTS, parsed, now, **settings)


# (states, now, options, action, cancel, fill_defaults, fallback)
DECIDE = [
    # 1. every agent succeeded -> proceed, whatever the clock says
    ("S S S", 5.0, {}, ALL_COMPLETED, [], [], []),
    ("S S S", 12.0, {}, ALL_COMPLETED, [], [], []),
    # 2. a critical error aborts at once, even before the deadline and with a success
    ("C R S", 5.0, {}, ABORT_AND_FALLBACK, ["b"], [], ["a", "b"]),
    ("S S C", 5.0, {"criteria": "at_least_one"}, ABORT_AND_FALLBACK, [], [], ["c"]),
    # 3. unfinished agents before the deadline (or with no deadline) -> wait
    ("S R S", 5.0, {}, WAIT, [], [], []),
    ("P P P", 0.0, {}, WAIT, [], [], []),
    ("F R@4 P", 5.0, {}, WAIT, [], [], []),
    ("R R R", 1e6, {"deadline_s": None}, WAIT, [], [], []),
    # 4. at the deadline, a running agent with fresh progress and an extension left -> extend
    ("R@9 S R", 10.0, {}, EXTEND_TIMEOUT, [], [], []),
    ("R@9 F F", 10.0, {}, EXTEND_TIMEOUT, [], [], []),
    ("R@7 P S", 10.0, {}, EXTEND_TIMEOUT, [], [], []),
    # ...but not with stale progress, no extension left, or none allowed
    ("R@6 S R", 10.0, {}, CONTINUE_WITH_PARTIAL, ["a", "c"], ["a", "c"], []),
    ("R@9 S R", 10.0, {"extensions_used": 1}, CONTINUE_WITH_PARTIAL, ["a", "c"], ["a", "c"], []),
    ("R@9 S R", 10.0, {"max_extensions": 0}, CONTINUE_WITH_PARTIAL, ["a", "c"], ["a", "c"], []),
    # 5. deadline reached or every remaining agent failed, criteria met -> partial
    ("R S P", 10.0, {}, CONTINUE_WITH_PARTIAL, ["a", "c"], ["a", "c"], []),
    ("S F S", 5.0, {}, CONTINUE_WITH_PARTIAL, [], ["b"], []),
    ("S F F", 5.0, {"criteria": "at_least", "count": 1}, CONTINUE_WITH_PARTIAL, [], ["b", "c"], []),
    ("S S R", 10.0, {"criteria": "at_least", "count": 2}, CONTINUE_WITH_PARTIAL, ["c"], ["c"], []),
    # 6. none succeeded or the criteria unmet -> abort and fall back to one at a time
    ("F F F", 5.0, {}, ABORT_AND_FALLBACK, [], [], ["a", "b", "c"]),
    ("R F R", 10.0, {}, ABORT_AND_FALLBACK, ["a", "c"], [], ["a", "b", "c"]),
    ("S F S", 5.0, {"criteria": "all"}, ABORT_AND_FALLBACK, [], [], ["b"]),
    ("R S R", 10.0, {"criteria": "all"}, ABORT_AND_FALLBACK, ["a", "c"], [], ["a", "c"]),
    (
        "S R R",
        10.0,
        {"criteria": "at_least", "count": 2},
        ABORT_AND_FALLBACK,
        ["b", "c"],
        [],
        ["b", "c"],
    ),
    ("P P P", 10.0, {}, ABORT_AND_FALLBACK, ["a", "b", "c"], [], ["a", "b", "c"]),
]


@pytest.mark.parametrize(
    ("states", "now", "options", "action", "cancel", "fill", "fallback"), DECIDE
)
def test_decision_table(
    states: str,
    now: float,
    options: dict[str, Any],
    action: str,
    cancel: list[str],
    fill: list[str],
    fallback: list[str],
) -> None:
    """Each combination of agent states, clock, extensions and criteria maps to one decision."""
    decision = decide(view(states, now, **options))
    assert (action, cancel, fill, fallback) == (
        decision.action,
        decision.cancel,
        decision.fill_defaults,
        decision.fallback,
    )
    assert decision.reason


def test_extension_moves_the_deadline_by_the_extension() -> None:
    """An extension sets the new deadline `extension_s` after the old one."""
    decision = decide(view("R@9 S R", 10.0))
    assert decision.new_deadline_s == 15.0
    assert "['a']" in decision.reason and "extension 1 of 1" in decision.reason


def test_extension_is_at_most_five_minutes() -> None:
    """A longer configured extension is capped at 300 s."""
    decision = decide(view("R@9 S R", 10.0, extension_s=900.0, progress_window_s=30.0))
    assert decision.action == EXTEND_TIMEOUT
    assert decision.new_deadline_s == 10.0 + MAX_EXTENSION_S


def test_partial_records_the_quality_impact() -> None:
    """Continuing without some agents records the quality impact level and who is missing."""
    decision = decide(view("R S P", 10.0, quality_impact="high"))
    assert decision.quality_impact is not None
    assert decision.quality_impact.startswith("high: 2 of 3")
    assert "a, c" in decision.quality_impact


def test_abort_raises_an_alert_naming_the_group() -> None:
    """An abort carries an alert message for the operator; a partial does not."""
    assert "group 'g'" in (decide(view("F F F")).alert or "")
    assert decide(view("S F S")).alert is None


def test_critical_reason_names_the_agent() -> None:
    """The reason for a critical abort names the agent with the non-retryable error."""
    assert "critical (non-retryable) error in ['a']" in decide(view("C R S")).reason


# (states after the fallback, options, outcome, fill_defaults)
AFTER_FALLBACK = [
    ("S S S", {}, FALLBACK_SUCCEEDED, []),
    ("S F S", {}, FALLBACK_SUCCEEDED, ["b"]),
    ("F F S", {"criteria": "at_least", "count": 1}, FALLBACK_SUCCEEDED, ["a", "b"]),
    ("F F F", {}, FAIL, []),
    ("S F F", {"criteria": "all"}, FAIL, []),
    ("F F F", {"partial_failure_handling": "continue_with_available_results"}, FAIL, []),
    (
        "F F F",
        {"partial_failure_handling": "continue_with_defaults"},
        CONTINUE_WITH_DEFAULTS,
        ["a", "b", "c"],
    ),
    (
        "S F F",
        {"criteria": "all", "partial_failure_handling": "continue_with_defaults"},
        CONTINUE_WITH_DEFAULTS,
        ["b", "c"],
    ),
]


@pytest.mark.parametrize(("states", "options", "outcome", "fill"), AFTER_FALLBACK)
def test_after_fallback_table(
    states: str, options: dict[str, Any], outcome: str, fill: list[str]
) -> None:
    """After the sequential fallback the group passes, continues on defaults, or fails."""
    decision = decide_after_fallback(view(states, 20.0, **options))
    assert (outcome, fill) == (decision.action, decision.fill_defaults)
    assert decision.reason


def test_continue_with_defaults_after_fallback_alerts() -> None:
    """Going on with defaults after a failed fallback is an alert, with the quality impact."""
    decision = decide_after_fallback(
        view("F F F", 20.0, partial_failure_handling="continue_with_defaults")
    )
    assert decision.alert and "continue_with_defaults" in decision.alert
    assert decision.quality_impact


@pytest.mark.parametrize(
    ("criteria", "count", "total", "need"),
    [
        ("all", 0, 3, 3),
        ("at_least_one", 1, 3, 1),
        ("at_least", 2, 3, 2),
        ("at_least", 9, 3, 3),
        ("at_least", 0, 3, 1),
        ("at_least_one", 1, 0, 0),
    ],
)
def test_required_successes(criteria: str, count: int, total: int, need: int) -> None:
    """Success criteria become a number of required successes, never more than the group has."""
    assert need == required_successes(criteria, count, total)


def test_missing_agent_state_counts_as_pending() -> None:
    """An agent the workflow has no state for yet is pending: the barrier waits for it."""
    partial = BarrierView("g", AGENTS, {"a": AgentView(SUCCEEDED)}, 1.0, deadline_s=10.0)
    assert decide(partial).action == WAIT


def test_an_extension_says_what_it_was_granted_on() -> None:
    """Plain runs extend on progress signals and say so; batch mode (liveness_by_heartbeat:
    the workflow marks running agents as seen now) says the agent was kept alive by
    heartbeats, not that it reported progress."""
    signalled = decide(view("R@9 S S", 10.0))
    assert EXTEND_TIMEOUT == signalled.action
    assert "['a'] reported progress within the last 3s" in signalled.reason
    alive = decide(view("R@10 S S", 10.0, liveness_by_heartbeat=True))
    assert EXTEND_TIMEOUT == alive.action
    assert "['a'] still running, kept alive by heartbeats (batch mode" in alive.reason
    assert "reported progress" not in alive.reason


def observed(
    states: dict[str, tuple[Any, float | None, ActivityState | None]], now: float
) -> BarrierView:
    """A view at `now` after the server was asked: agent -> (status, heartbeat at, activity)."""
    return BarrierView(
        "g",
        list(states),
        {a: AgentView(s, seen, activity=act) for a, (s, seen, act) in states.items()},
        now,
        deadline_s=10.0,
        progress_window_s=3.0,
        extension_s=5.0,
        observed=True,
        heartbeat_timeout_s=4.0,
    )


def test_row_4a_an_activity_no_worker_started_postpones_without_using_an_extension() -> None:
    """Engine or worker lag is not the agents' time: at the deadline an agent whose activity
    waits for a worker (or whose outcome is on its way) moves the deadline, and the extension
    stays unused (the driver counts only extend_timeout)."""
    for activity in (ActivityState.WAITING_TO_START, ActivityState.ABSENT):
        decision = decide(
            observed(
                {"a": (SUCCEEDED, None, None), "b": (RUNNING, None, activity)},
                now=10.5,
            )
        )
        assert POSTPONE_DEADLINE == decision.action
        assert 15.5 == decision.new_deadline_s
        assert [] == decision.cancel
        assert "['b']" in decision.reason and "lag is not the agents' time" in decision.reason


def test_observed_heartbeat_extends_a_started_agent_and_a_silent_one_goes_partial() -> None:
    """Observed liveness: a started agent that heartbeat within max(progress window, heartbeat
    timeout) earns the extension; a started agent with no heartbeat time (silent) does not."""
    beating = decide(
        observed({"a": (SUCCEEDED, None, None), "b": (RUNNING, 6.5, ActivityState.STARTED)}, 10.0)
    )
    assert EXTEND_TIMEOUT == beating.action
    assert "heartbeat within the last 4s" in beating.reason
    silent = decide(
        observed({"a": (SUCCEEDED, None, None), "b": (RUNNING, None, ActivityState.STARTED)}, 10.0)
    )
    assert CONTINUE_WITH_PARTIAL == silent.action
    assert ["b"] == silent.cancel
    stale = decide(
        observed({"a": (SUCCEEDED, None, None), "b": (RUNNING, 5.0, ActivityState.STARTED)}, 10.0)
    )
    assert CONTINUE_WITH_PARTIAL == stale.action
    # a retrying agent (its attempt failed, waiting for the next) is its own time, not progress
    retrying = decide(
        observed({"a": (SUCCEEDED, None, None), "b": (RUNNING, 9.9, ActivityState.RETRYING)}, 10.0)
    )
    assert CONTINUE_WITH_PARTIAL == retrying.action


@pytest.mark.parametrize(
    ("states", "unit", "words"),
    [
        ("S S S", "agent", "all 3 agent(s) succeeded"),
        ("S S S", "item", "all 3 item(s) succeeded"),
        ("S F S", "item", "2/3 succeeded, at least one item succeeds"),
        ("S F F", "item", "every remaining item failed"),
    ],
)
def test_reasons_name_what_the_barrier_judges(states: str, unit: str, words: str) -> None:
    """A group-level fan-out's barrier judges items, not agents: its reasons say items."""
    assert words in decide(view(states, unit=unit)).reason


def test_row_4b_worker_lag_is_given_back_once_without_using_an_extension() -> None:
    """A worker started `b` 3 s after the run handed it over: at the deadline those 3 s are
    given back (the deadline moves by them, the extension stays unused); once the moved
    deadline has passed too, or the lag was given back already (lag_s 0), the usual rows
    apply: its heartbeat earns the extension, a silent agent goes partial."""
    states = {"a": (SUCCEEDED, None, None), "b": (RUNNING, None, ActivityState.STARTED)}
    lagging = replace(observed(states, 10.5), lag_s=3.0)
    decision = decide(lagging)
    assert POSTPONE_DEADLINE == decision.action
    assert 13.0 == decision.new_deadline_s and 3.0 == decision.lag_s
    assert "engine/worker lag is not the agents' time" in decision.reason
    # past the deadline plus the lag: the agent has had its time
    assert CONTINUE_WITH_PARTIAL == decide(replace(observed(states, 13.5), lag_s=3.0)).action
    # nothing left to give back
    assert CONTINUE_WITH_PARTIAL == decide(observed(states, 10.5)).action
    # never without observations (the patch off, or the server unreachable)
    blind = replace(lagging, observed=False)
    assert POSTPONE_DEADLINE != decide(blind).action
