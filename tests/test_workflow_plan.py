"""PlanWorkflow on a real dev server: scheduling order, barriers, retries, failures, queries.

Orders are read from the run report's recorded events, never from wall-clock thresholds.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError

from engine.compiled import RetrySpec
from tests.conftest import (
    TemporalHarness,
    agent_report,
    compiled_plan,
    event_index,
    group,
    group_report,
    sim,
)
from workflows.plan_workflow import PlanWorkflow

NO_RETRY = RetrySpec(max_attempts=1, initial_interval_s=0.1)


def test_fast_branch_runs_ahead_of_an_unrelated_slow_branch(temporal: TemporalHarness) -> None:
    """fast2 (after fast) finishes before slow, so groups are scheduled on the DAG, not by level."""
    plan = compiled_plan(
        [
            sim("fast", "g_fast", 0.2),
            sim("slow", "g_slow", 2.0),
            sim("fast2", "g_fast2", 0.2, inputs=["fast.out"]),
            sim("join", "g_join", 0.1, inputs=["fast2.out", "slow.out"]),
        ],
        [
            group("g_fast", ["fast"]),
            group("g_slow", ["slow"]),
            group("g_fast2", ["fast2"], ["g_fast"]),
            group("g_join", ["join"], ["g_fast2", "g_slow"]),
        ],
    )
    report = temporal.execute(plan)
    assert report["status"] == "succeeded"
    assert event_index(report, "agent_succeeded", "fast2") < event_index(
        report, "agent_succeeded", "slow"
    )
    assert event_index(report, "agent_succeeded", "slow") < event_index(
        report, "agent_started", "join"
    )
    assert [a["status"] for a in report["agents"]] == ["succeeded"] * 4


def test_parallel_group_starts_its_agents_together(temporal: TemporalHarness) -> None:
    """All agents of a parallel group start before any of them finishes, at the same moment."""
    plan = compiled_plan(
        [sim("a", "g", 0.5), sim("b", "g", 0.5), sim("c", "g", 0.5)],
        [group("g", ["a", "b", "c"])],
    )
    report = temporal.execute(plan)
    starts = [event_index(report, "agent_started", a) for a in ("a", "b", "c")]
    first_end = min(event_index(report, "agent_succeeded", a) for a in ("a", "b", "c"))
    assert max(starts) < first_end
    assert len({agent_report(report, a)["started_s"] for a in ("a", "b", "c")}) == 1


def test_sequential_group_runs_agents_in_list_order(temporal: TemporalHarness) -> None:
    """A non-parallel group starts each agent only after the previous one has finished."""
    plan = compiled_plan(
        [sim("z", "g", 0.1), sim("y", "g", 0.1), sim("x", "g", 0.1)],
        [group("g", ["z", "y", "x"], parallel=False)],
    )
    report = temporal.execute(plan)
    order = [(e["event"], e["id"]) for e in report["events"] if e["event"].startswith("agent")]
    assert order == [
        ("agent_started", "z"), ("agent_succeeded", "z"),
        ("agent_started", "y"), ("agent_succeeded", "y"),
        ("agent_started", "x"), ("agent_succeeded", "x"),
    ]


def test_agent_retries_until_it_succeeds(temporal: TemporalHarness) -> None:
    """An agent that fails its first attempt succeeds on the second, and the report says 2."""
    plan = compiled_plan([sim("flaky", "g", 0.1, fail_times=1)], [group("g", ["flaky"])])
    report = temporal.execute(plan)
    assert agent_report(report, "flaky")["status"] == "succeeded"
    assert agent_report(report, "flaky")["attempts"] == 2


def test_group_deadline_cancels_stragglers_and_fills_defaults(temporal: TemporalHarness) -> None:
    """At the deadline with one success, the slow agent is cancelled and its default used."""
    plan = compiled_plan(
        [
            sim("quick", "design", 0.1),
            sim("slow", "design", 30.0, defaults={"out": "fallback"}),
            sim("after", "build", 0.1, inputs=["quick.out", "slow.out"], echo_inputs=True),
        ],
        [group("design", ["quick", "slow"], timeout_s=1.0), group("build", ["after"], ["design"])],
    )

    async def body(handle: WorkflowHandle[Any, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        report = await handle.result()
        return report, await handle.query(PlanWorkflow.context)

    report, context = temporal.with_plan(plan, body, heartbeat_timeout_s=1.0)
    assert report["status"] == "succeeded"
    assert group_report(report, "design")["decision"] == "continue_with_partial"
    assert group_report(report, "design")["status"] == "partial"
    assert agent_report(report, "slow")["status"] == "defaulted"
    assert agent_report(report, "slow")["defaulted_outputs"] == ["out"]
    assert context["slow.out"] == "fallback"
    assert context["after.out"]["inputs"]["slow.out"] == "fallback"


def test_failed_agent_in_partial_group_keeps_failed_status(temporal: TemporalHarness) -> None:
    """One failure and one success: the group continues, the failed agent's default is used."""
    plan = compiled_plan(
        [
            sim("ok", "g", 0.1),
            sim("broken", "g", 0.1, fail_times=9, retry=NO_RETRY, defaults={"out": 0}),
        ],
        [group("g", ["ok", "broken"])],
    )
    report = temporal.execute(plan)
    assert report["status"] == "succeeded"
    assert group_report(report, "g")["decision"] == "continue_with_partial"
    broken = agent_report(report, "broken")
    assert (broken["status"], broken["attempts"], broken["defaulted_outputs"]) == (
        "failed", 1, ["out"]
    )
    assert "SimulatedFailure" in broken["error"]


def test_group_with_no_success_fails_the_run_and_cancels_the_rest(
    temporal: TemporalHarness,
) -> None:
    """All agents of a group fail: the run fails naming the group and agents; others stop."""
    plan = compiled_plan(
        [
            sim("x", "bad", 0.1, fail_times=9, retry=NO_RETRY),
            sim("y", "bad", 0.2, fail_times=9, retry=NO_RETRY),
            sim("later", "next", 0.1, inputs=["x.out"]),
            sim("elsewhere", "other", 30.0),
        ],
        [
            group("bad", ["x", "y"]),
            group("next", ["later"], ["bad"]),
            group("other", ["elsewhere"]),
        ],
    )
    with pytest.raises(WorkflowFailureError) as caught:
        temporal.execute(plan, heartbeat_timeout_s=1.0)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "GroupFailed"
    assert "group 'bad' failed" in cause.message
    assert "x failed" in cause.message and "y failed" in cause.message
    report = cause.details[0]
    assert report["status"] == "failed"
    assert group_report(report, "bad")["decision"] == "fail"
    assert agent_report(report, "later")["status"] == "cancelled"
    assert agent_report(report, "elsewhere")["status"] == "cancelled"


def test_deadline_without_any_success_fails_the_run(temporal: TemporalHarness) -> None:
    """A group whose only agent is still running at the deadline fails the run."""
    plan = compiled_plan([sim("slow", "g", 30.0)], [group("g", ["slow"], timeout_s=0.5)])
    with pytest.raises(WorkflowFailureError) as caught:
        temporal.execute(plan, heartbeat_timeout_s=1.0)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    assert "deadline reached" in cause.message
    assert agent_report(cause.details[0], "slow")["status"] == "cancelled"


def test_unknown_kind_fails_without_retrying(temporal: TemporalHarness) -> None:
    """An agent of an unknown kind fails once, with a message naming the kind."""
    plan = compiled_plan([sim("odd", "g", 0.1, kind="telepathy")], [group("g", ["odd"])])
    with pytest.raises(WorkflowFailureError) as caught:
        temporal.execute(plan)
    odd = agent_report(caught.value.cause.details[0], "odd")
    assert odd["attempts"] == 1
    assert "unknown kind 'telepathy'" in odd["error"]


def test_status_query_reports_running_and_pending_work(temporal: TemporalHarness) -> None:
    """While the first group runs, the status query shows it running and the next one pending."""
    plan = compiled_plan(
        [sim("first", "g1", 1.5), sim("second", "g2", 0.1, inputs=["first.out"])],
        [group("g1", ["first"]), group("g2", ["second"], ["g1"])],
    )

    async def body(handle: WorkflowHandle[Any, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        for _ in range(100):
            status = await handle.query(PlanWorkflow.status)
            if agent_report(status, "first")["status"] == "running":
                break
            await asyncio.sleep(0.05)
        await handle.result()
        return status, await handle.query(PlanWorkflow.status)

    during, after = temporal.with_plan(plan, body)
    assert during["status"] == "running"
    assert group_report(during, "g1")["status"] == "running"
    assert group_report(during, "g2")["status"] == "pending"
    assert agent_report(during, "second")["status"] == "pending"
    assert after["status"] == "succeeded"
    assert [a["status"] for a in after["agents"]] == ["succeeded", "succeeded"]


def test_plan_inputs_and_optional_inputs_reach_the_snapshot(temporal: TemporalHarness) -> None:
    """Run inputs override plan inputs; an optional input not yet produced is simply absent."""
    plan = compiled_plan(
        [
            sim("reader", "g1", 0.1, inputs=["topic"], optional_inputs=["late.out"],
                echo_inputs=True),
            sim("late", "g2", 0.1),
        ],
        [group("g1", ["reader"]), group("g2", ["late"], ["g1"])],
        inputs={"topic": "from plan"},
    )

    async def body(handle: WorkflowHandle[Any, Any]) -> dict[str, Any]:
        await handle.result()
        return await handle.query(PlanWorkflow.context)

    context = temporal.with_plan(plan, body, inputs={"topic": "from --set"})
    assert context["reader.out"]["inputs"] == {"topic": "from --set"}


def test_cancelling_the_run_cancels_running_agents(temporal: TemporalHarness) -> None:
    """A run cancelled from outside ends cancelled, and so do its running and pending agents."""
    plan = compiled_plan(
        [sim("busy", "g1", 30.0), sim("next", "g2", 0.1, inputs=["busy.out"])],
        [group("g1", ["busy"]), group("g2", ["next"], ["g1"])],
    )

    async def body(handle: WorkflowHandle[Any, Any]) -> dict[str, Any]:
        for _ in range(100):
            if agent_report(await handle.query(PlanWorkflow.status), "busy")["status"] == "running":
                break
            await asyncio.sleep(0.05)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result()
        assert isinstance(caught.value.cause, CancelledError)
        return await handle.query(PlanWorkflow.status)

    status = temporal.with_plan(plan, body, heartbeat_timeout_s=1.0)
    assert status["status"] == "cancelled"
    assert [a["status"] for a in status["agents"]] == ["cancelled", "cancelled"]
    assert [g["status"] for g in status["groups"]] == ["cancelled", "cancelled"]


def test_sequential_group_deadline_defaults_the_agents_it_never_reached(
    temporal: TemporalHarness,
) -> None:
    """In a sequential group, the deadline cancels the current agent and skips the rest."""
    plan = compiled_plan(
        [
            sim("q", "g", 0.1),
            sim("s", "g", 30.0, defaults={"out": "s-default"}),
            sim("t", "g", 0.1, defaults={"out": "t-default"}),
        ],
        [group("g", ["q", "s", "t"], parallel=False, timeout_s=1.0)],
    )
    report = temporal.execute(plan, heartbeat_timeout_s=1.0)
    assert group_report(report, "g")["decision"] == "continue_with_partial"
    assert [a["status"] for a in report["agents"]] == ["succeeded", "defaulted", "defaulted"]
    assert agent_report(report, "t")["started_s"] is None
