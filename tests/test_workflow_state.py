"""The workflow's recorded state as text (pee.workflows.state): the Web UI's current details."""

from __future__ import annotations

from datetime import UTC, datetime

from pee.workflows.state import AgentState, Alert, Decision, GroupState, RunState, current_details
from tests.helpers import compiled_plan, group, sim


def test_current_details_show_running_groups_last_decision_and_alerts() -> None:
    """The details name the running group with its agents and deadline, the latest barrier
    decision with its reason, and the latest alert."""
    plan = compiled_plan(
        [sim("a", "g", 1.0), sim("b", "g", 1.0), sim("c", "h", 1.0)],
        [group("g", ["a", "b"]), group("h", ["c"], ["g"])],
        name="demo",
    )
    run = RunState(
        plan=plan,
        started=datetime(2025, 1, 1, tzinfo=UTC),
        time_scale=1.0,
        agents={"a": AgentState("succeeded"), "b": AgentState("running"), "c": AgentState()},
        groups={
            "g": GroupState(
                "running", 0.0, None, 12.0, history=[Decision(10.0, "extend_timeout", "b is busy")]
            ),
            "h": GroupState(),
        },
        alerts=[Alert(3.0, "g", "warning", "something to know")],
    )
    text = current_details(run, 11.0)
    assert "**demo**: running, 11.0 s" in text
    assert "group `g` running: a succeeded, b running, deadline in 1.0 s" in text
    assert "`g` **extend_timeout**: b is busy" in text
    assert "Alerts: 1; last: something to know" in text
    assert "`h`" not in text
