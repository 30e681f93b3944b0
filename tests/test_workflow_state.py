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
    # when it was written and when the deadline falls, as clock times: the Web UI shows the
    # text until the next workflow task rewrites it
    assert "**demo**: running, 11.0 s in (as of 00:00:11 UTC)" in text
    assert "group `g` running: a succeeded, b running, deadline in 1.0 s (at 00:00:12 UTC)" in text
    assert "`g` **extend_timeout**: b is busy" in text
    assert "Alerts: 1; last: something to know" in text
    assert "`h`" not in text


def test_a_wide_group_is_counted_by_status_with_its_first_unfinished_agents_named() -> None:
    """A running group of more than LISTED_AGENTS agents: its line counts the agents by status
    (AgentStatus order) and names the first NAMED_UNFINISHED unfinished ones and how many more,
    not every agent; a group of LISTED_AGENTS is still listed agent by agent."""
    ids = [f"a{i:02d}" for i in range(20)]
    statuses = ["succeeded"] * 11 + ["running"] * 7 + ["failed", "queued"]
    plan = compiled_plan(
        [sim(a, "wide", 1.0) for a in ids] + [sim(f"b{i}", "narrow", 1.0) for i in range(12)],
        [group("wide", ids), group("narrow", [f"b{i}" for i in range(12)])],
        name="demo",
    )
    run = RunState(
        plan=plan,
        started=datetime(2025, 1, 1, tzinfo=UTC),
        time_scale=1.0,
        agents={
            **{a: AgentState(status) for a, status in zip(ids, statuses, strict=True)},
            **{f"b{i}": AgentState("running") for i in range(12)},
        },
        groups={"wide": GroupState("running", 0.0), "narrow": GroupState("running", 0.0)},
    )
    text = current_details(run, 5.0)
    assert (
        "- group `wide` running: 20 agents: 1 queued, 7 running, 11 succeeded, 1 failed; "
        "unfinished: a11, a12, a13, a14, a15 and 3 more"
    ) in text
    assert "a00 succeeded" not in text
    assert "- group `narrow` running: b0 running, b1 running" in text
