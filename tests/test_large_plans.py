"""Large plans (issue 9, item 4): batch mode runs agents in AgentBatchWorkflow children so that
no history grows with the plan; the report still covers every agent, and small plans are left
exactly as they were (tests/test_replay.py replays their old histories).

The 1,000-agent run is bench/planner.py's layered random DAG (bench/scale.py runs 5,000), on a
dev server that suggests continue-as-new early, so the run goes through several runs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError
from temporalio.worker import Replayer

from bench.scale import HISTORY_BOUND, count_events, layered_plan
from pee.runtime.codec import data_converter
from pee.runtime.worker import build_worker
from pee.workflows.agent_batch import AgentBatchWorkflow
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.types import (
    BATCH_THRESHOLD,
    LOCAL_AGENT_S,
    SPLIT_GAIN_S,
    BatchSpec,
    PlanRunInput,
    choose_batch,
)
from tests.helpers import NO_RETRY, PROJECT_ROOT, TemporalHarness, compiled_plan, group, judged, sim

Handle = WorkflowHandle[Any, Any]


def kinds(history: Any) -> list[str]:
    return [event.WhichOneof("attributes") or "" for event in history.events]


def test_batch_mode_is_chosen_above_the_threshold_or_when_forced() -> None:
    """Plain runs for small plans (what they always issued), batch mode above 300 agents, and
    the flags' force/disable win over the size."""
    assert choose_batch(BATCH_THRESHOLD) is None
    assert choose_batch(BATCH_THRESHOLD + 1) == BatchSpec(
        local_s=LOCAL_AGENT_S, split_gain_s=SPLIT_GAIN_S
    )
    assert choose_batch(3, force=True, chunk_size=7) == BatchSpec(
        chunk_size=7, local_s=LOCAL_AGENT_S, split_gain_s=SPLIT_GAIN_S
    )
    # `--batch-local 0`: no agent runs as a local activity (nor is a local chunk cut)
    assert choose_batch(BATCH_THRESHOLD + 1, local_s=0) == BatchSpec()
    assert choose_batch(5000, force=False) is None
    # `--batch-split`: the gain a cut of a local chunk must save; 0 never cuts
    assert choose_batch(BATCH_THRESHOLD + 1, split_gain_s=4) == BatchSpec(
        local_s=LOCAL_AGENT_S, split_gain_s=4.0
    )
    assert choose_batch(BATCH_THRESHOLD + 1, split_gain_s=0) == BatchSpec(local_s=LOCAL_AGENT_S)


def test_thousand_agent_plan_completes_with_every_history_under_the_bound(
    suggesting: TemporalHarness,
) -> None:
    """1,000 agents complete in batch mode on a server that suggests continue-as-new at
    SUGGEST_CONTINUE_AS_NEW_AT events: the plan workflow continues as new when told, every run's
    history and each child's stay under 10,240 events (counted with fetch_history), and the
    report and the `status` query of the last run cover every agent of every run, each output
    written exactly once."""
    plan = layered_plan(1000)
    spec = choose_batch(len(plan.agents))
    assert spec is not None

    async def body(handle: Handle) -> tuple[dict[str, Any], dict[str, Any], Any]:
        report = await handle.result()
        status = await suggesting.client.get_workflow_handle(handle.id).query(PlanWorkflow.status)
        return report, status, await count_events(suggesting.client, handle.id)

    report, status, counted = suggesting.with_plan(plan, body, time_scale=0.005, batch=spec)
    assert "completed" == report["status"]
    assert 1000 == len(report["agents"])
    assert all(a["status"] == "succeeded" for a in report["agents"].values())
    assert len(counted.runs) >= 2, "the plan workflow never continued as new"
    assert list(counted.runs)[:-1] == report["earlier_runs"]
    assert {a: "succeeded" for a in report["agents"]} == {
        a: s["status"] for a, s in status["agents"].items()
    }
    outputs = [f"{a.id}.{name}" for a in plan.agents for name in a.outputs]
    assert {key: 1 for key in outputs} == {
        key: n for key, n in report["context_versions"].items() if key in outputs
    }
    assert counted.children, "batch mode started no child workflow"
    assert counted.parent < HISTORY_BOUND
    assert max(counted.children.values()) < HISTORY_BOUND
    # the agents' events live in the children: a plain run of this plan takes ~7.7 parent
    # events per agent (bench/scale.py --no-batch), batch mode ~2 over all its runs
    assert counted.parent_total < 3 * 1000
    assert report["batch"]["children"] == len(counted.children)
    assert report["batch"]["largest_chunk"] <= spec.chunk_size


def partial_plan() -> Any:
    g = group("g", ["quick", "slow"], timeout_s=2.0)
    # one short extension: slow (30 s) is still running when it ends
    g.extension_s = 1.0
    return compiled_plan(
        [
            sim("quick", "g", 0.1),
            sim("slow", "g", 30.0, defaults={"out": "fallback"}),
            sim("after", "next", 0.1, inputs=["quick.out", "slow.out"]),
        ],
        [g, group("next", ["after"], ["g"])],
        name="batch-partial",
    )


def test_barrier_cancel_reaches_the_agent_in_its_child(temporal: TemporalHarness) -> None:
    """At the deadline `slow` is still running and its child's description shows a recent
    heartbeat, so the barrier extends once;
    at the extended deadline it goes on without `slow` (partial): quick's outcome came from the
    child before its chunk ended, and slow's activity is cancelled inside the child."""

    async def body(handle: Handle) -> tuple[dict[str, Any], list[str]]:
        report = await handle.result()
        counted = await count_events(temporal.client, handle.id)
        (first, *_rest) = counted.children
        child = await temporal.client.get_workflow_handle(first).fetch_history()
        return report, kinds(child)

    report, child_kinds = temporal.with_plan(
        partial_plan(), body, heartbeat_timeout_s=1.0, batch=BatchSpec(chunk_size=10, window=2)
    )
    assert "completed" == report["status"]
    # the time slow's child took to start it (and any time its worker was behind) is given
    # back first (postpone_deadline: engine lag is not the agent's time), then slow's own time
    # runs out: one extension for its heartbeat, then partial
    on_time = judged(report, "g")
    assert ["extend_timeout", "continue_with_partial"] == [d["decision"] for d in on_time]
    # a describe of the child at the deadline: slow's activity is started and heartbeating
    assert "['slow'] heartbeat within the last" in on_time[0]["reason"]
    assert "succeeded" == report["agents"]["quick"]["status"]
    assert report["agents"]["slow"]["status"] in ("defaulted", "cancelled")
    assert "activity_task_cancel_requested_event_attributes" in child_kinds
    assert "succeeded" == report["agents"]["after"]["status"]


def test_a_silent_agent_in_batch_mode_gets_no_extension(temporal: TemporalHarness) -> None:
    """A silent agent (no heartbeats) is not known to be alive, in batch mode as in a plain run
    without its progress signals: at the deadline the barrier goes on without it at once."""
    plan = compiled_plan(
        [
            sim("quick", "g", 0.1),
            sim("mute", "g", 30.0, heartbeat=False, defaults={"out": "fallback"}),
        ],
        [group("g", ["quick", "mute"], timeout_s=2.0)],
        name="batch-silent",
    )
    report = temporal.execute(
        plan, heartbeat_timeout_s=1.0, batch=BatchSpec(chunk_size=10, window=2)
    )
    # a child that started mute late moves the deadline first (judged)
    assert ["continue_with_partial"] == [d["decision"] for d in judged(report, "g")]
    assert "defaulted" == report["agents"]["mute"]["status"]


def fallback_plan() -> Any:
    return compiled_plan(
        [
            sim("a", "g", 0.1, retry=NO_RETRY, fail_unless_fallback=True),
            sim("b", "g", 0.1, retry=NO_RETRY, fail_unless_fallback=True),
        ],
        [group("g", ["a", "b"], timeout_s=10.0)],
        name="batch-fallback",
    )


def agent_view(report: dict[str, Any]) -> dict[str, Any]:
    return {
        agent_id: (a["status"], a.get("error"), a.get("attempts"))
        for agent_id, a in report["agents"].items()
    }


def test_failures_and_fallback_reruns_match_a_plain_run(temporal: TemporalHarness) -> None:
    """Agents failing in a child reach the barrier exactly as in a plain run (same decisions,
    statuses, errors, attempts), and the fallback re-runs go through children too."""
    plain = temporal.execute(fallback_plan())
    batched = temporal.execute(fallback_plan(), batch=BatchSpec(chunk_size=10, window=2))
    assert ["abort_and_fallback", "fallback_succeeded"] == [
        d["decision"] for d in batched["groups"]["g"]["barrier"]["history"]
    ]
    assert agent_view(plain) == agent_view(batched)
    assert batched["batch"]["children"] == 3  # the first chunk, then one per fallback re-run


@pytest.mark.parametrize("how", ["terminate", "cancel"])
def test_an_ended_run_leaves_no_child_running(temporal: TemporalHarness, how: str) -> None:
    """Children run with parent_close_policy REQUEST_CANCEL: terminating or cancelling the plan
    run cancels its chunk, which cancels its activity and ends (the agent reported cancelled)."""
    plan = compiled_plan([sim("slow", "g", 60.0)], [group("g", ["slow"])], name="batch-orphan")

    async def go() -> tuple[WorkflowExecutionStatus | None, list[str]]:
        task_queue = f"batch-orphan-{uuid.uuid4()}"
        workflow_id = f"batch-orphan-{uuid.uuid4()}"
        async with build_worker(temporal.client, task_queue):
            handle = await temporal.client.start_workflow(
                PlanWorkflow.run,
                PlanRunInput(
                    plan=plan, heartbeat_timeout_s=1.0, batch=BatchSpec(chunk_size=10, window=2)
                ),
                id=workflow_id,
                task_queue=task_queue,
            )
            child = temporal.client.get_workflow_handle(f"{workflow_id}/agents-1")
            for _ in range(100):
                with contextlib.suppress(RPCError):  # not started yet
                    history = await child.fetch_history()
                    if "activity_task_started_event_attributes" in kinds(history):
                        break
                await asyncio.sleep(0.1)
            if how == "terminate":
                await handle.terminate("test")
            else:
                await handle.cancel()
            status = None
            for _ in range(100):
                status = (await child.describe()).status
                if status != WorkflowExecutionStatus.RUNNING:
                    break
                await asyncio.sleep(0.1)
            return status, kinds(await child.fetch_history())

    status, child_kinds = temporal.run(go())
    assert status not in (None, WorkflowExecutionStatus.RUNNING)
    assert "workflow_execution_cancel_requested_event_attributes" in child_kinds
    assert "activity_task_cancel_requested_event_attributes" in child_kinds


def test_batch_child_history_replays(temporal: TemporalHarness) -> None:
    """An AgentBatchWorkflow history (a chunk of two agents) replays deterministically."""
    plan = compiled_plan(
        [sim("a", "g", 0.1), sim("b", "g", 0.3)], [group("g", ["a", "b"])], name="batch-replay"
    )

    async def body(handle: Handle) -> Any:
        await handle.result()
        child = temporal.client.get_workflow_handle(f"{handle.id}/agents-1")
        history = await child.fetch_history()
        replayer = Replayer(workflows=[AgentBatchWorkflow], data_converter=data_converter())
        return (await replayer.replay_workflow(history)).replay_failure, kinds(history)

    failure, child_kinds = temporal.with_plan(plan, body, batch=BatchSpec(chunk_size=10))
    assert failure is None
    assert 2 == child_kinds.count("activity_task_completed_event_attributes")


def test_compile_writes_the_batch_choice_into_the_input() -> None:
    """`compile` leaves a small plan without batch mode, `--batch` forces it with the given
    chunk and window (short agents as local activities unless `--batch-local 0`), and a bad
    chunk size or local bound is refused with a clear message."""

    def compiled(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "starter.py", "compile", "plans/demo.yaml", *flags],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    plain = compiled()
    assert 0 == plain.returncode, plain.stderr
    assert json.loads(plain.stdout)["batch"] is None
    forced = compiled("--batch", "--batch-chunk", "7", "--batch-window", "3")
    assert 0 == forced.returncode, forced.stderr
    assert {
        "chunk_size": 7,
        "window": 3,
        "flush_s": 1.0,
        "local_s": 10.0,
        "split_gain_s": SPLIT_GAIN_S,
    } == json.loads(forced.stdout)["batch"]
    # --batch-local 0: no agent runs as a local activity of its child (nor is a chunk cut)
    remote = compiled("--batch", "--batch-local", "0")
    assert 0 == remote.returncode, remote.stderr
    assert 0.0 == json.loads(remote.stdout)["batch"]["local_s"]
    assert 0.0 == json.loads(remote.stdout)["batch"]["split_gain_s"]
    bad = compiled("--batch-chunk", "0")
    assert 2 == bad.returncode
    assert "--batch-chunk: expected a whole number of 1 or more" in bad.stderr
    split = compiled("--batch", "--batch-split", "2.5")
    assert 0 == split.returncode, split.stderr
    assert 2.5 == json.loads(split.stdout)["batch"]["split_gain_s"]
    negative = compiled("--batch-local", "-1")
    assert 2 == negative.returncode
    assert "--batch-local: expected a number of 0 or more" in negative.stderr


def test_resource_admission_happens_before_batching(temporal: TemporalHarness) -> None:
    """Six 40-unit agents on 100 CPU units (no oversubscription): in batch mode too at most two
    run at once; the queued ones join later chunks as they are admitted."""
    from tests.test_workflow_resources import max_overlap, needing, pool, with_pool

    ids = [f"a{index}" for index in range(6)]
    plan = with_pool(
        compiled_plan(
            [needing(sim(a, "g", 0.5), cpu=40) for a in ids],
            [group("g", ids)],
            name="batch-admission",
        ),
        pool(agents=10, oversubscription=1.0),
    )
    report = temporal.execute(plan, batch=BatchSpec(chunk_size=10, window=4))
    assert "completed" == report["status"]
    assert ["succeeded"] * 6 == [a["status"] for a in report["agents"].values()]
    assert 2 == max_overlap(report)
    assert report["batch"]["children"] >= 3
    assert report["batch"]["largest_chunk"] <= 2


def test_fast_plan_decoding_gives_what_the_sdk_walk_gives() -> None:
    """pee.runtime.codec decodes a CompiledPlan with from_dict (the SDK's generic walk is too slow
    for 5,000 agents in a workflow task): the same PlanRunInput either way, and JSON with an
    unknown field falls back to the SDK's walk instead of failing."""
    from temporalio.converter import DataConverter

    run_input = PlanRunInput(plan=layered_plan(60), batch=BatchSpec())
    payloads = DataConverter.default.payload_converter.to_payloads([run_input])
    fast = data_converter().payload_converter.from_payloads(payloads, [PlanRunInput])[0]
    walked = DataConverter.default.payload_converter.from_payloads(payloads, [PlanRunInput])[0]
    assert fast == walked == run_input
    data = json.loads(payloads[0].data)
    data["plan"]["agents"][0]["someday"] = 1
    payloads[0].data = json.dumps(data).encode()
    tolerant = data_converter().payload_converter.from_payloads(payloads, [PlanRunInput])[0]
    assert tolerant.plan.agents[0].id == run_input.plan.agents[0].id
