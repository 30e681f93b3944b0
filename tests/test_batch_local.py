"""Batch mode's local chunks (issue 17): an agent whose timeout is at most BatchSpec.local_s and
that has no task queue of its own runs as a local activity of its AgentBatchWorkflow child (one
marker each in the child's history, no activity task). Its outcome, retries, fallback re-runs,
cancellation and liveness at a deadline mean what they mean for an agent run as an activity
(docs/guides/large-plans.md)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from temporalio.api.enums.v1 import PendingWorkflowTaskState
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionResponse
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError

from bench.scale import count_events
from pee.activities.liveness import local_liveness
from pee.engine.states import ActivityState
from pee.workflows.types import BatchSpec
from tests.helpers import (
    NO_RETRY,
    TemporalHarness,
    async_eventually,
    compiled_plan,
    group,
    sim,
)

Handle = WorkflowHandle[Any, Any]

# every test agent's timeout (the plan default, 600 s at time scale 1) is under this
LOCAL = BatchSpec(chunk_size=10, window=2, local_s=1000.0)


def kinds(history: Any) -> list[str]:
    # a patch marker (a chunk that signals outcomes records one) is not an agent's marker
    return [
        "patch_marker"
        if event.marker_recorded_event_attributes.marker_name == "core_patch"
        else event.WhichOneof("attributes") or ""
        for event in history.events
    ]


async def child_histories(temporal: TemporalHarness, workflow_id: str) -> dict[str, list[str]]:
    counted = await count_events(temporal.client, workflow_id)
    return {
        child: kinds(await temporal.client.get_workflow_handle(child).fetch_history())
        for child in counted.children
    }


def test_short_agents_run_as_local_activities_and_long_ones_as_activities(
    temporal: TemporalHarness,
) -> None:
    """`a` and `b` (timeout 5 s, under local_s) run as local activities of one child (two
    markers, no activity task); `long` (timeout 2,000 s) runs as an activity of another: a
    chunk is all local or none. All succeed with one attempt and the report's times as for any
    agent."""
    plan = compiled_plan(
        [
            sim("a", "g", 0.1, timeout_s=5.0),
            sim("b", "g", 0.2, timeout_s=5.0),
            sim("long", "g", 0.1, timeout_s=2000.0),
        ],
        [group("g", ["a", "b", "long"])],
        name="batch-local",
    )

    async def body(handle: Handle) -> tuple[dict[str, Any], dict[str, list[str]]]:
        report = await handle.result()
        return report, await child_histories(temporal, handle.id)

    report, children = temporal.with_plan(plan, body, batch=LOCAL)
    assert "completed" == report["status"]
    for agent_id in ("a", "b", "long"):
        row = report["agents"][agent_id]
        assert "succeeded" == row["status"]
        assert 1 == row["attempts"]
        assert row["started_at"] <= row["finished_at"]
        assert row["queue_wait_s"] >= 0
    local = [k for k in children.values() if "marker_recorded_event_attributes" in k]
    remote = [k for k in children.values() if "activity_task_scheduled_event_attributes" in k]
    assert 1 == len(local) and 1 == len(remote) and 2 == len(children)
    assert 2 == local[0].count("marker_recorded_event_attributes")
    assert "activity_task_scheduled_event_attributes" not in local[0]
    assert 1 == remote[0].count("activity_task_scheduled_event_attributes")


def test_an_agent_with_its_own_task_queue_is_never_local() -> None:
    """A local activity runs on the worker holding its child's workflow task, so an agent routed
    to another task queue keeps its activity, whatever its timeout; so does one over local_s,
    and with local_s 0 (`--batch-local 0`, every run recorded before it) none is local."""
    from datetime import timedelta

    from temporalio.common import RetryPolicy

    from pee.activities.types import AgentTask
    from pee.workflows.agent_batch import AgentCall
    from pee.workflows.batcher import Batcher

    def call(timeout_s: float, task_queue: str | None = None) -> AgentCall:
        agent = sim("x", "g", 0.1)
        agent.task_queue = task_queue
        task = AgentTask(agent=agent, inputs={}, missing_inputs=[], snapshot_versions={})
        return AgentCall.of(
            task,
            "x",
            timedelta(seconds=timeout_s),
            timedelta(seconds=2),
            RetryPolicy(),
            "summary",
        )

    batcher = Batcher(BatchSpec(local_s=10.0))
    assert batcher.is_local(call(10.0))
    assert not batcher.is_local(call(10.5))
    assert not batcher.is_local(call(1.0, task_queue="gpu"))
    assert not Batcher(BatchSpec()).is_local(call(1.0))


def fallback_plan() -> Any:
    return compiled_plan(
        [
            sim("a", "g", 0.1, retry=NO_RETRY, fail_unless_fallback=True),
            sim("b", "g", 0.1, retry=NO_RETRY, fail_unless_fallback=True),
            # fails twice, succeeds on its third attempt (retry interval 0.1 s)
            sim("c", "h", 0.1, fail_times=2),
        ],
        [group("g", ["a", "b"], timeout_s=10.0), group("h", ["c"], timeout_s=10.0)],
        name="batch-local-fallback",
    )


def agent_view(report: dict[str, Any]) -> dict[str, Any]:
    return {
        agent_id: (a["status"], a.get("error"), a.get("attempts"))
        for agent_id, a in report["agents"].items()
    }


def test_retries_failures_and_fallback_reruns_match_a_plain_run(temporal: TemporalHarness) -> None:
    """As local activities, `c`'s retries (two failed attempts, then success), the failures
    of `a` and `b` and their `#fallback` re-runs reach the barrier exactly as in a plain run:
    same decisions, statuses, errors and attempts."""
    plain = temporal.execute(fallback_plan())
    local = temporal.execute(fallback_plan(), batch=LOCAL)
    assert ["abort_and_fallback", "fallback_succeeded"] == [
        d["decision"] for d in local["groups"]["g"]["barrier"]["history"]
    ]
    assert ["all_completed"] == [d["decision"] for d in local["groups"]["h"]["barrier"]["history"]]
    assert agent_view(plain) == agent_view(local)
    assert ("succeeded", None, 3) == agent_view(local)["c"]
    # the first chunk, then one child per fallback re-run
    assert local["batch"]["children"] == 3


def held_plan() -> Any:
    # slow works 30 s but its own timeout is 3 s (one attempt): it times out in its child
    return compiled_plan(
        [
            sim("quick", "g", 0.1),
            sim("slow", "g", 30.0, timeout_s=3.0, retry=NO_RETRY, defaults={"out": "fallback"}),
            sim("after", "next", 0.1, inputs=["quick.out", "slow.out"]),
        ],
        [group("g", ["quick", "slow"], timeout_s=1.0), group("next", ["after"], ["g"])],
        name="batch-local-held",
    )


def test_a_local_agent_is_bounded_by_its_own_timeout_not_the_group_deadline(
    temporal: TemporalHarness,
) -> None:
    """At g's deadline (1 s) `quick` has ended but its outcome is held with `slow`'s chunk (the
    worker completes the child's workflow task only when all have ended or at its heartbeat), so
    the parent cannot tell ended from running: the child's held task says `local` and the
    deadline is postponed, no extension used. `slow`'s own timeout (3 s) then ends it; the
    barrier goes on without it."""
    report = temporal.execute(held_plan(), heartbeat_timeout_s=1.0, batch=LOCAL)
    assert "completed" == report["status"]
    history = report["groups"]["g"]["barrier"]["history"]
    decisions = [d["decision"] for d in history]
    assert "postpone_deadline" == decisions[0]
    assert "running as a local activity" in history[0]["reason"]
    assert "continue_with_partial" == decisions[-1]
    assert set(decisions[:-1]) == {"postpone_deadline"}
    assert "succeeded" == report["agents"]["quick"]["status"]
    assert "timed_out" == report["agents"]["slow"]["status"]
    assert "timed out" in (report["agents"]["slow"]["error"] or "")
    assert "succeeded" == report["agents"]["after"]["status"]


def test_a_cut_local_agent_is_cancelled_in_its_child(temporal: TemporalHarness) -> None:
    """`boom` fails critically (non-retryable): the barrier aborts g and cuts `slow` short; the
    cancel_agents signal reaches slow's child at the child's next workflow task heartbeat and
    cancels the local activity (the child's result says cancelled), then the fallback re-runs
    both one at a time."""
    plan = compiled_plan(
        [
            sim("boom", "g", 0.1, critical=True, fail_unless_fallback=True),
            sim("slow", "g", 30.0, timeout_s=60.0),
        ],
        [group("g", ["boom", "slow"], timeout_s=600.0)],
        name="batch-local-cut",
    )

    async def body(handle: Handle) -> tuple[list[Any], list[str], dict[str, Any]]:
        child = temporal.client.get_workflow_handle(f"{handle.id}/agents-1")
        outcomes = await async_eventually(
            child.result, what="the first chunk's result", timeout_s=60.0, ignore=(RPCError,)
        )
        history = kinds(await child.fetch_history())
        report = await handle.query("status")
        # the fallback's slow would work 30 s more: the run's end is not what this is about
        await handle.cancel()
        return outcomes, history, report

    outcomes, child_kinds, status = temporal.with_plan(
        plan, body, heartbeat_timeout_s=1.0, batch=LOCAL
    )
    by_agent = {o["agent_id"]: o for o in outcomes}
    assert by_agent["slow"]["cancelled"] is True
    assert by_agent["boom"]["critical"] is True
    assert "workflow_execution_signaled_event_attributes" in child_kinds
    assert "activity_task_scheduled_event_attributes" not in child_kinds
    decisions = [d["decision"] for d in status["groups"]["g"]["barrier"]["history"]]
    assert "abort_and_fallback" == decisions[0]


def describe(state: int | None) -> DescribeWorkflowExecutionResponse:
    raw = DescribeWorkflowExecutionResponse()
    raw.workflow_execution_info.start_time.FromDatetime(datetime(2026, 1, 1, 12, 0, 0))
    if state is not None:
        raw.pending_workflow_task.state = state  # type: ignore[assignment]
        raw.pending_workflow_task.started_time.FromDatetime(datetime(2026, 1, 1, 12, 0, 5))
    return raw


def test_local_liveness_reads_the_childs_workflow_task() -> None:
    """A started workflow task (a worker holds it for its local activities) says `local` (a
    heartbeat now, the child's start as the attempt's); one waiting for a worker is the
    worker's lag; none pending: the outcome is on its way."""
    now = datetime(2026, 1, 1, 12, 0, 9, tzinfo=timezone.utc)
    started = local_liveness(
        describe(PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_STARTED), ["a", "b"], now
    )
    assert [ActivityState.LOCAL] * 2 == [s.state for s in started]
    assert {now.isoformat()} == {s.heartbeat_at for s in started}
    assert "2026-01-01T12:00:00+00:00" == started[0].started_at
    assert 1 == started[0].attempt
    waiting = local_liveness(
        describe(PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_SCHEDULED), ["a"], now
    )
    assert [ActivityState.WAITING_TO_START] == [s.state for s in waiting]
    assert [ActivityState.ABSENT] == [s.state for s in local_liveness(describe(None), ["a"], now)]


def split_plan() -> Any:
    # after `root`, three short groups and three long ones become ready in one activation;
    # `after` reads the short ones only, `tail` all of them
    shorts = [sim(f"s{i}", f"gs{i}", 0.05, inputs=["root.out"]) for i in (1, 2, 3)]
    longs = [sim(f"l{i}", f"gl{i}", 6.0, inputs=["root.out"]) for i in (1, 2, 3)]
    return compiled_plan(
        [
            sim("root", "g0", 0.05),
            *shorts,
            *longs,
            sim("after", "ga", 0.05, inputs=[f"{a.id}.out" for a in shorts]),
            sim("tail", "gt", 0.05, inputs=["after.out", *(f"{a.id}.out" for a in longs)]),
        ],
        [
            group("g0", ["root"]),
            *(group(a.group, [a.id], ["g0"]) for a in [*shorts, *longs]),
            group("ga", ["after"], [a.group for a in shorts]),
            group("gt", ["tail"], ["ga", *(a.group for a in longs)]),
        ],
        name="batch-split",
    )


def test_short_groups_report_without_waiting_for_long_ones(temporal: TemporalHarness) -> None:
    """BatchSpec.split_gain_s: the six groups ready together are cut into a child of the three
    short ones and a child of the three long ones, so the short ones' outcomes reach the run
    when they end: `after` (reading only them) is started in its own child while the long
    agents (6 s) still run. A local chunk expected to end before its first workflow task
    heartbeat (0.4 x the 10 s task timeout) sends its outcomes in its result, no signal; the
    long one (6 s expected) still signals the first outcomes it has."""
    spec = BatchSpec(chunk_size=10, window=4, local_s=1000.0, split_gain_s=1.0)

    async def body(handle: Handle) -> tuple[dict[str, Any], list[Any], dict[str, Any]]:
        report = await handle.result()
        events = list((await handle.fetch_history()).events)
        children: dict[str, Any] = {}
        for event in events:
            if event.HasField("start_child_workflow_execution_initiated_event_attributes"):
                child = event.start_child_workflow_execution_initiated_event_attributes.workflow_id
                children[child] = await temporal.client.get_workflow_handle(child).fetch_history()
        return report, events, children

    report, events, children = temporal.with_plan(split_plan(), body, batch=spec)
    assert "completed" == report["status"]
    assert {"succeeded"} == {row["status"] for row in report["agents"].values()}
    by_agents: dict[tuple[str, ...], str] = {}
    for child, history in children.items():
        payloads = history.events[0].workflow_execution_started_event_attributes.input.payloads
        (value,) = temporal.run(temporal.client.data_converter.decode(payloads, [dict]))
        by_agents[tuple(sorted(call["task"]["agent"]["id"] for call in value["calls"]))] = child
    shorts, longs = ("s1", "s2", "s3"), ("l1", "l2", "l3")
    assert {("root",), shorts, longs, ("after",), ("tail",)} == set(by_agents)
    # the order the parent saw: `after`'s child started before the long agents' child ended
    order = []
    for event in events:
        if event.HasField("start_child_workflow_execution_initiated_event_attributes"):
            attrs = event.start_child_workflow_execution_initiated_event_attributes
            order.append(("started", attrs.workflow_id))
        if event.HasField("child_workflow_execution_completed_event_attributes"):
            ended = event.child_workflow_execution_completed_event_attributes
            order.append(("ended", ended.workflow_execution.workflow_id))
    assert order.index(("started", by_agents[("after",)])) < order.index(
        ("ended", by_agents[longs])
    )
    signal = "signal_external_workflow_execution_initiated_event_attributes"
    sent = {agents: signal in kinds(children[child]) for agents, child in by_agents.items()}
    assert {shorts: False, longs: True} == {k: sent[k] for k in (shorts, longs)}
    assert not any(sent[k] for k in (("root",), ("after",), ("tail",)))
