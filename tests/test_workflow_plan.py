"""PlanWorkflow on a real dev server: scheduling order, retries, failures, queries, the report.

Orders are read from the run report's recorded events, never from wall-clock thresholds.
Barrier branches have their own file (test_workflow_barrier.py).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError

from pee.workflows.plan_workflow import PlanWorkflow
from tests.helpers import (
    NO_RETRY,
    TemporalHarness,
    agent_report,
    agent_running,
    compiled_plan,
    event_index,
    group,
    group_report,
    sim,
    until_status,
)


def test_fast_branch_runs_ahead_of_an_unrelated_slow_branch(temporal: TemporalHarness) -> None:
    """fast2 (after fast) finishes before slow, so groups are scheduled on the DAG, not by level."""
    plan = compiled_plan(
        [
            sim("fast", "g_fast", 0.2),
            sim("slow", "g_slow", 1.5),
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
    assert report["status"] == "completed"
    assert event_index(report, "agent_succeeded", "fast2") < event_index(
        report, "agent_succeeded", "slow"
    )
    assert event_index(report, "agent_succeeded", "slow") < event_index(
        report, "agent_started", "join"
    )
    assert [a["status"] for a in report["agents"].values()] == ["succeeded"] * 4
    # the longest chain of what actually ran: slow, then join
    assert report["critical_path"] == ["slow", "join"]


def test_report_has_the_contract_shape(temporal: TemporalHarness) -> None:
    """The result carries ids, ISO 8601 times, per-agent and per-group entries keyed by id in
    plan order, a barrier record per group, the actual critical path and an efficiency."""
    plan = compiled_plan(
        [
            sim("a", "g1", 0.2),
            sim("b", "g2", 0.2, inputs=["a.out"]),
            sim("c", "g2", 0.1, inputs=["a.out"]),
        ],
        [group("g1", ["a"]), group("g2", ["b", "c"], ["g1"], timeout_s=20.0)],
    )
    report = temporal.execute(plan, time_scale=1.0)
    # the JSON payload converter sorts keys: compare key sets, not order
    assert sorted(report) == sorted(
        [
            "workflow_id",
            "run_id",
            "plan",
            "status",
            "error",
            "time_scale",
            "started_at",
            "finished_at",
            "makespan_s",
            "estimated_makespan_s",
            "sequential_s",
            "agents",
            "groups",
            "alerts",
            "critical_path",
            "parallel_efficiency",
            "events",
            # the versioned context (issue 4)
            "conflicts",
            "context_versions",
            "rejected_resolutions",
            "rejected_writes",
            "context_lock_wait_s",
            # resource admission (issue 6)
            "resources",
            # cross-validation quality metric (issue 5)
            "output_quality_scores",
            # the agent output cache and resume (issue 7)
            "cache",
            "resumed_from",
            "snapshots",
            # context snapshots after barriers, and the one a resume read (issue 7)
            "context_snapshots",
            "resumed_snapshot",
            # critical-path analysis of the finished run (issue 8)
            "bottlenecks",
            # the runs it continued as new from (issue 9)
            "earlier_runs",
        ]
    )
    assert (report["plan"], report["status"], report["error"]) == ("test-plan", "completed", None)
    assert sorted(report["agents"]) == ["a", "b", "c"]
    assert sorted(report["groups"]) == ["g1", "g2"]
    b = report["agents"]["b"]
    assert sorted(b) == sorted(
        [
            "status",
            "group",
            "role",
            "kind",
            "started_at",
            "finished_at",
            "duration_s",
            "attempts",
            "outputs",
            "defaulted_outputs",
            "missing_inputs",
            "error",
            "progress",
            "last_progress_at",
            "blocked_on",
            "blocked_since",
            "blocked_s",
            "snapshot",
            "commits",
            "context_lock_wait_s",
            "queue_wait_s",
            "cached",
            "resumed",
            # the worker's measures of the successful attempt (issue 8: network_latency_impact)
            "attempt_s",
            "io_wait_s",
        ]
    )
    assert (b["status"], b["group"], b["kind"], b["attempts"], b["outputs"]) == (
        "succeeded",
        "g2",
        "simulate",
        1,
        ["out"],
    )
    started, finished = (datetime.fromisoformat(b[k]) for k in ("started_at", "finished_at"))
    assert started <= finished and started.tzinfo is not None
    g2 = report["groups"]["g2"]
    assert sorted(g2) == sorted(
        [
            "status",
            "agents",
            "depends_on",
            "parallel",
            "started_at",
            "finished_at",
            "deadline_at",
            "paused_s",
            "cross_validation",
            "resumed",
            "barrier",
        ]
    )
    assert (g2["status"], g2["agents"], g2["depends_on"]) == ("succeeded", ["b", "c"], ["g1"])
    assert g2["deadline_at"] is not None and report["groups"]["g1"]["deadline_at"] is None
    assert g2["barrier"]["decision"] == "all_completed"
    assert [h["decision"] for h in g2["barrier"]["history"]] == ["all_completed"]
    assert report["critical_path"] == ["a", "b"]
    assert 0.0 < report["parallel_efficiency"] <= 1.0
    assert report["alerts"] == []
    assert (report["conflicts"], report["rejected_resolutions"], report["rejected_writes"]) == (
        [],
        [],
        [],
    )
    assert report["context_versions"] == {"a.out": 1, "b.out": 1, "c.out": 1}
    assert (b["snapshot"], b["commits"], b["blocked_on"]) == (
        {"a.out": 1},
        {"b.out": "created"},
        [],
    )
    assert datetime.fromisoformat(report["finished_at"]) >= datetime.fromisoformat(
        report["started_at"]
    )


def test_parallel_group_starts_its_agents_together(temporal: TemporalHarness) -> None:
    """All agents of a parallel group start before any of them finishes, at the same moment."""
    plan = compiled_plan(
        [sim("a", "g", 0.3), sim("b", "g", 0.3), sim("c", "g", 0.3)],
        [group("g", ["a", "b", "c"])],
    )
    report = temporal.execute(plan)
    starts = [event_index(report, "agent_started", a) for a in ("a", "b", "c")]
    first_end = min(event_index(report, "agent_succeeded", a) for a in ("a", "b", "c"))
    assert max(starts) < first_end
    assert len({agent_report(report, a)["started_at"] for a in ("a", "b", "c")}) == 1


def test_sequential_group_runs_agents_in_list_order(temporal: TemporalHarness) -> None:
    """A non-parallel group starts each agent only after the previous one has finished."""
    plan = compiled_plan(
        [sim("z", "g", 0.1), sim("y", "g", 0.1), sim("x", "g", 0.1)],
        [group("g", ["z", "y", "x"], parallel=False)],
    )
    report = temporal.execute(plan)
    order = [(e["event"], e["id"]) for e in report["events"] if e["event"].startswith("agent")]
    assert order == [
        ("agent_started", "z"),
        ("agent_succeeded", "z"),
        ("agent_started", "y"),
        ("agent_succeeded", "y"),
        ("agent_started", "x"),
        ("agent_succeeded", "x"),
    ]


def test_agent_retries_until_it_succeeds(temporal: TemporalHarness) -> None:
    """An agent that fails its first two attempts succeeds on the third, and the report says 3."""
    plan = compiled_plan([sim("flaky", "g", 0.1, fail_times=2)], [group("g", ["flaky"])])
    report = temporal.execute(plan)
    flaky = agent_report(report, "flaky")
    assert (flaky["status"], flaky["attempts"], flaky["error"]) == ("succeeded", 3, None)
    assert group_report(report, "g")["barrier"]["decision"] == "all_completed"


def test_unknown_kind_is_critical_and_fails_the_run(temporal: TemporalHarness) -> None:
    """An agent of an unknown kind fails without retrying, in the group and in the fallback."""
    plan = compiled_plan([sim("odd", "g", 0.1, kind="telepathy")], [group("g", ["odd"])])
    with pytest.raises(WorkflowFailureError) as caught:
        temporal.execute(plan)
    report = caught.value.cause.details[0]
    odd = agent_report(report, "odd")
    # one attempt in the group, one in the sequential fallback
    assert odd["attempts"] == 2
    assert "unknown kind 'telepathy'" in odd["error"]
    history = group_report(report, "g")["barrier"]["history"]
    assert [h["decision"] for h in history] == ["abort_and_fallback", "fail"]


def test_status_query_reports_running_and_pending_work(temporal: TemporalHarness) -> None:
    """While the first group runs, the status query shows it running and the next one pending;
    the plan query returns the compiled plan."""
    plan = compiled_plan(
        [sim("first", "g1", 1.0), sim("second", "g2", 0.1, inputs=["first.out"])],
        [group("g1", ["first"]), group("g2", ["second"], ["g1"])],
    )

    async def body(handle: WorkflowHandle[Any, Any]) -> tuple[Any, ...]:
        status = await until_status(
            handle, agent_running("first"), "first running", interval_s=0.05
        )
        compiled = await handle.query(PlanWorkflow.plan)
        await handle.result()
        return status, await handle.query(PlanWorkflow.status), compiled

    during, after, compiled = temporal.with_plan(plan, body)
    assert during["status"] == "running"
    assert during["finished_at"] is None
    assert group_report(during, "g1")["status"] == "running"
    assert group_report(during, "g2")["status"] == "pending"
    assert agent_report(during, "second")["status"] == "pending"
    assert after["status"] == "completed"
    assert [a["status"] for a in after["agents"].values()] == ["succeeded", "succeeded"]
    assert compiled == json.loads(plan.to_json())


def test_plan_inputs_and_optional_inputs_reach_the_snapshot(temporal: TemporalHarness) -> None:
    """Run inputs override plan inputs; an optional input not yet produced is simply absent."""
    plan = compiled_plan(
        [
            sim(
                "reader",
                "g1",
                0.1,
                inputs=["topic"],
                optional_inputs=["late.out"],
                echo_inputs=True,
            ),
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
        await until_status(handle, agent_running("busy"), "busy running", interval_s=0.05)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result()
        assert isinstance(caught.value.cause, CancelledError)
        return await handle.query(PlanWorkflow.status)

    status = temporal.with_plan(plan, body, heartbeat_timeout_s=1.0)
    assert status["status"] == "cancelled"
    assert [a["status"] for a in status["agents"].values()] == ["cancelled", "cancelled"]
    assert [g["status"] for g in status["groups"].values()] == ["cancelled", "cancelled"]


def test_a_failed_group_cancels_unrelated_work(temporal: TemporalHarness) -> None:
    """When a group fails the run, agents elsewhere are cancelled and later groups never start."""
    plan = compiled_plan(
        [
            sim("x", "bad", 0.1, fail_times="always", retry=NO_RETRY),
            sim("later", "next", 0.1, inputs=["x.out"]),
            sim("elsewhere", "other", 30.0),
        ],
        [group("bad", ["x"]), group("next", ["later"], ["bad"]), group("other", ["elsewhere"])],
    )
    with pytest.raises(WorkflowFailureError) as caught:
        temporal.execute(plan, heartbeat_timeout_s=1.0)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "GroupFailed"
    report = cause.details[0]
    assert report["status"] == "failed"
    assert report["error"] == cause.message
    assert agent_report(report, "later")["status"] == "cancelled"
    assert agent_report(report, "elsewhere")["status"] == "cancelled"
    assert group_report(report, "other")["status"] == "cancelled"


def test_agent_task_carries_simulate_and_progress_settings(temporal: TemporalHarness) -> None:
    """With `simulate`, each agent's task asks it to also take its estimate x the time scale, and
    no task asks for progress signals (liveness comes from heartbeats, read at deadlines)."""
    agent = sim("est", "g", 0.0)
    agent.estimated_s = 20.0
    plan = compiled_plan([agent], [group("g", ["est"])])

    async def body(handle: WorkflowHandle[Any, Any]) -> list[dict[str, Any]]:
        await handle.result()
        history = await handle.fetch_history()
        return [
            json.loads(event.activity_task_scheduled_event_attributes.input.payloads[0].data)
            for event in history.events
            if event.HasField("activity_task_scheduled_event_attributes")
        ]

    (task,) = temporal.with_plan(plan, body, simulate=True, time_scale=0.01)
    assert task["simulate_s"] == pytest.approx(0.2)
    assert task["progress_interval_s"] == 0
    assert task["agent"]["id"] == "est"
