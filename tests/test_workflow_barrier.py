"""The smart barrier inside PlanWorkflow, on a real dev server: one test per branch.

Durations are tenths of seconds; assertions read the recorded decisions and events, never the
clock. Every run is also replayed from its history by the harness (determinism).
"""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from pee.engine.compiled import BarrierSettings, CompiledGroup
from pee.workflows.plan_workflow import PlanWorkflow
from tests.helpers import (
    NO_RETRY,
    TemporalHarness,
    agent_report,
    compiled_plan,
    event_index,
    group,
    group_report,
    judged,
    sim,
)


def tuned(base: CompiledGroup, **attrs: Any) -> CompiledGroup:
    for name, value in attrs.items():
        setattr(base, name, value)
    return base


def decisions(report: dict[str, Any], group_id: str) -> list[str]:
    return [h["decision"] for h in group_report(report, group_id)["barrier"]["history"]]


def judged_decisions(report: dict[str, Any], group_id: str) -> list[str]:
    """Decisions at a reached deadline, less the postponements a busy worker earns (judged)."""
    return [h["decision"] for h in judged(report, group_id)]


def positions(report: dict[str, Any], event: str, ident: str) -> list[int]:
    return [i for i, e in enumerate(report["events"]) if (e["event"], e["id"]) == (event, ident)]


def test_all_completed(temporal: TemporalHarness) -> None:
    """Every agent succeeds before the deadline: one decision, all_completed."""
    plan = compiled_plan(
        [sim("a", "g", 0.2), sim("b", "g", 0.3)], [group("g", ["a", "b"], timeout_s=10.0)]
    )
    report = temporal.execute(plan)
    barrier = group_report(report, "g")["barrier"]
    assert decisions(report, "g") == ["all_completed"]
    assert (barrier["decision"], barrier["extensions"], barrier["quality_impact"]) == (
        "all_completed",
        0,
        None,
    )
    assert group_report(report, "g")["status"] == "succeeded"


def test_extended_then_completed(temporal: TemporalHarness) -> None:
    """A slow agent that keeps reporting progress past the deadline gets one extension, then the
    group completes; the report's deadline is the extended one."""
    plan = compiled_plan(
        [sim("quick", "g", 0.1), sim("steady", "g", 3.0)],
        # the dev server fires sub-second timers late (or early) by up to about half a second,
        # so the deadline and the agent's end are well apart
        [tuned(group("g", ["quick", "steady"], timeout_s=1.5), extension_s=3.0)],
    )
    # progress signals every 0.5 s, a 1.5 s window
    plan.barrier = BarrierSettings(progress_window_s=1.5)
    report = temporal.execute(plan)
    g = group_report(report, "g")
    assert judged_decisions(report, "g") == ["extend_timeout", "all_completed"]
    assert (g["barrier"]["decision"], g["barrier"]["extensions"]) == ("all_completed", 1)
    # no progress signals: one describe at the deadline saw steady's recent heartbeat
    assert "['steady'] heartbeat within the last" in judged(report, "g")[0]["reason"]
    steady = agent_report(report, "steady")
    assert steady["status"] == "succeeded"
    assert steady["last_progress_at"] is not None
    assert [e["event"] for e in report["events"]].count("barrier_extend_timeout") == 1


def test_partial_with_defaults(temporal: TemporalHarness) -> None:
    """At the deadline with one success and no extension to give (heartbeating agents would
    earn one): cut the rest short, fill declared defaults, tell dependents what is missing,
    record the quality impact. A worker that started slow and bare late moves the deadline
    first (judged)."""
    plan = compiled_plan(
        [
            sim("quick", "design", 0.1),
            sim("slow", "design", 30.0, defaults={"out": "fallback"}),
            sim("bare", "design", 30.0),
            sim(
                "after",
                "build",
                0.1,
                inputs=["quick.out", "slow.out", "bare.out"],
                echo_inputs=True,
            ),
        ],
        [
            # a postponement for an agent no worker has started yet lasts one extension_s: short,
            # so that slow and bare (30 s) are still running at the deadline it moves to
            tuned(
                group("design", ["quick", "slow", "bare"], timeout_s=1.0),
                max_extensions=0,
                extension_s=1.0,
            ),
            group("build", ["after"], ["design"]),
        ],
    )

    async def body(handle: WorkflowHandle[Any, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        report = await handle.result()
        return report, await handle.query(PlanWorkflow.context)

    report, context = temporal.with_plan(plan, body, heartbeat_timeout_s=1.0)
    assert report["status"] == "completed"
    design = group_report(report, "design")
    assert design["status"] == "partial"
    assert judged_decisions(report, "design") == ["continue_with_partial"]
    assert design["barrier"]["extensions"] == 0
    assert design["barrier"]["quality_impact"].startswith("medium: 2 of 3")
    slow, bare = agent_report(report, "slow"), agent_report(report, "bare")
    assert (slow["status"], slow["defaulted_outputs"]) == ("defaulted", ["out"])
    assert (bare["status"], bare["defaulted_outputs"]) == ("cancelled", [])
    assert agent_report(report, "after")["missing_inputs"] == ["bare.out"]
    assert context["after.out"]["inputs"]["slow.out"] == "fallback"
    assert "bare.out" not in context
    (alert,) = report["alerts"]
    assert alert["level"] == "warning" and alert["group"] == "design"
    assert "'bare'" in alert["message"] and "['after']" in alert["message"]


def test_sequential_group_cut_short(temporal: TemporalHarness) -> None:
    """In a sequential group the deadline (no extension to give) cancels the current agent;
    agents it never reached are defaulted when they declare defaults, else skipped."""
    plan = compiled_plan(
        [
            sim("q", "g", 0.1),
            sim("s", "g", 30.0, defaults={"out": "s-default"}),
            sim("t", "g", 0.1, defaults={"out": "t-default"}),
            sim("u", "g", 0.1),
        ],
        [
            tuned(
                group("g", ["q", "s", "t", "u"], parallel=False, timeout_s=1.0),
                max_extensions=0,
                # as in test_partial_with_defaults: any postponement ends well before s would
                extension_s=1.0,
            )
        ],
    )
    report = temporal.execute(plan, heartbeat_timeout_s=1.0)
    assert judged_decisions(report, "g") == ["continue_with_partial"]
    assert {a: r["status"] for a, r in report["agents"].items()} == {
        "q": "succeeded",
        "s": "defaulted",
        "t": "defaulted",
        "u": "skipped",
    }
    assert agent_report(report, "t")["started_at"] is None
    assert positions(report, "agent_started", "u") == []


def test_sequential_fallback_after_failures(temporal: TemporalHarness) -> None:
    """Every agent fails in the group: cancel, alert, re-run them one at a time under new
    activity ids, and the group passes when they succeed there."""
    plan = compiled_plan(
        [
            sim("a", "g", 0.1, retry=NO_RETRY, fail_unless_fallback=True),
            sim("b", "g", 0.1, retry=NO_RETRY, fail_unless_fallback=True),
            sim("c", "next", 0.1, inputs=["a.out", "b.out"]),
        ],
        [group("g", ["a", "b"], timeout_s=10.0), group("next", ["c"], ["g"])],
    )
    report = temporal.execute(plan)
    g = group_report(report, "g")
    assert report["status"] == "completed"
    assert decisions(report, "g") == ["abort_and_fallback", "fallback_succeeded"]
    assert (g["status"], g["barrier"]["decision"]) == ("succeeded", "abort_and_fallback")
    assert "none succeeded" in g["barrier"]["history"][0]["reason"]
    (alert,) = report["alerts"]
    assert (alert["level"], alert["group"]) == ("critical", "g")
    for agent_id in ("a", "b"):
        agent = agent_report(report, agent_id)
        assert (agent["status"], agent["attempts"], agent["error"]) == ("succeeded", 2, None)
    # one at a time: a's re-run has ended before b's starts
    fallback = event_index(report, "fallback_started", "g")
    (a_again,) = [p for p in positions(report, "agent_started", "a") if p > fallback]
    (b_again,) = [p for p in positions(report, "agent_started", "b") if p > fallback]
    assert a_again < positions(report, "agent_succeeded", "a")[0] < b_again
    assert agent_report(report, "c")["missing_inputs"] == []


def test_sequential_fallback_after_a_deadline_with_no_success(temporal: TemporalHarness) -> None:
    """Nothing succeeded by the deadline (one agent failed, one still running, no extension to
    give): cancel, then re-run both one at a time, each under its own timeout, no group
    deadline."""
    plan = compiled_plan(
        [
            # still running at any deadline a postponement (at most 1 s at a time) moves to
            sim("a", "g", 4.0, timeout_s=10.0),
            sim("b", "g", 0.1, retry=NO_RETRY, fail_unless_fallback=True),
        ],
        [tuned(group("g", ["a", "b"], timeout_s=1.0), max_extensions=0, extension_s=1.0)],
    )
    report = temporal.execute(plan, heartbeat_timeout_s=1.0)
    assert judged_decisions(report, "g") == ["abort_and_fallback", "fallback_succeeded"]
    reason = judged(report, "g")[0]["reason"]
    assert "deadline reached with ['a'] unfinished" in reason and "none succeeded" in reason
    assert positions(report, "agent_cancelled", "a")
    assert {a: r["status"] for a, r in report["agents"].items()} == {
        "a": "succeeded",
        "b": "succeeded",
    }


def test_fallback_failing_fails_the_run(temporal: TemporalHarness) -> None:
    """When the sequential fallback fails too, the run fails naming the group and its agents."""
    plan = compiled_plan(
        [
            sim("a", "g", 0.1, retry=NO_RETRY, fail_times="always"),
            sim("b", "g", 0.1, retry=NO_RETRY, fail_times="always"),
        ],
        [group("g", ["a", "b"], timeout_s=10.0)],
    )
    with pytest.raises(WorkflowFailureError) as caught:
        temporal.execute(plan)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "GroupFailed"
    assert "group 'g' failed" in cause.message
    assert "sequential fallback failed too" in cause.message
    assert "a failed (SimulatedFailure" in cause.message
    assert "b failed (SimulatedFailure" in cause.message
    report = cause.details[0]
    assert (report["status"], group_report(report, "g")["status"]) == ("failed", "failed")
    assert decisions(report, "g") == ["abort_and_fallback", "fail"]


def test_fallback_failing_continues_with_defaults_when_the_plan_says_so(
    temporal: TemporalHarness,
) -> None:
    """partial_failure_handling: continue_with_defaults turns a failed fallback into a partial
    group on defaults, with a critical alert."""
    plan = compiled_plan(
        [
            sim("a", "g", 0.1, retry=NO_RETRY, fail_times="always", defaults={"out": 0}),
            sim("b", "g", 0.1, retry=NO_RETRY, fail_times="always"),
            sim("d", "next", 0.1, inputs=["a.out", "b.out"]),
        ],
        [
            tuned(
                group("g", ["a", "b"], timeout_s=10.0),
                partial_failure_handling="continue_with_defaults",
            ),
            group("next", ["d"], ["g"]),
        ],
    )
    report = temporal.execute(plan)
    assert report["status"] == "completed"
    assert group_report(report, "g")["status"] == "partial"
    assert decisions(report, "g") == ["abort_and_fallback", "continue_with_defaults"]
    a = agent_report(report, "a")
    assert (a["status"], a["defaulted_outputs"], a["attempts"]) == ("failed", ["out"], 2)
    assert agent_report(report, "d")["missing_inputs"] == ["b.out"]
    assert [alert["level"] for alert in report["alerts"]] == ["critical", "critical", "warning"]


def test_critical_error_aborts_the_group_at_once(temporal: TemporalHarness) -> None:
    """A non-retryable error is not retried and aborts the group immediately, cancelling the
    agents still running; the fallback then re-runs them one at a time."""
    plan = compiled_plan(
        [sim("ok", "g", 1.0), sim("crit", "g", 0.1, critical=True, fail_unless_fallback=True)],
        [group("g", ["ok", "crit"], timeout_s=10.0)],
    )
    report = temporal.execute(plan, heartbeat_timeout_s=1.0)
    assert decisions(report, "g") == ["abort_and_fallback", "fallback_succeeded"]
    assert (
        "critical (non-retryable) error in ['crit']"
        in (group_report(report, "g")["barrier"]["history"][0]["reason"])
    )
    # no retries: one attempt in the group, one in the fallback
    assert agent_report(report, "crit")["attempts"] == 2
    assert (
        positions(report, "agent_failed", "crit")[0]
        < positions(report, "agent_cancelled", "ok")[0]
        < positions(report, "agent_succeeded", "ok")[0]
    )
    assert [a["status"] for a in report["agents"].values()] == ["succeeded", "succeeded"]


def test_silent_agent_is_bounded_by_its_heartbeat_timeout(temporal: TemporalHarness) -> None:
    """An agent that never heartbeats times out by its heartbeat timeout, long before the group
    deadline; the group continues on its defaults."""
    plan = compiled_plan(
        [
            sim("quick", "g", 0.1),
            sim(
                "mute",
                "g",
                3.0,
                heartbeat=False,
                retry=NO_RETRY,
                timeout_s=20.0,
                defaults={"out": "quiet"},
            ),
        ],
        [group("g", ["quick", "mute"], timeout_s=15.0)],
    )
    report = temporal.execute(plan, heartbeat_timeout_s=1.0)
    mute = agent_report(report, "mute")
    assert (mute["status"], mute["defaulted_outputs"]) == ("timed_out", ["out"])
    assert "HEARTBEAT" in mute["error"]
    assert mute["last_progress_at"] is None
    assert decisions(report, "g") == ["continue_with_partial"]
    assert "every remaining agent failed" in group_report(report, "g")["barrier"]["reason"]
