"""Continue-as-new (issue 9, item 4; src/pee/workflows/continuation.py and
src/pee/workflows/carry.py): a run whose history grows large drains (starts no more groups, lets the
running ones end) and continues as new with the run so far carried in its input, so each run's
history stays small while the report, `status`, `context` and conflicts cover the whole run.

These runs use PlanRunInput.continue_as_new_after (a small event count) to reach the path with
small plans; tests/test_large_plans.py reaches it through the server's own suggestion."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from pee.activities.pool_types import pool_workflow_id
from pee.engine.compiled import CompiledPlan
from pee.engine.rules.adaptive import AggressiveCaching, CpuBoost, GroupThrottle, TimeoutStretch
from pee.engine.rules.monitoring import MetricAlert
from pee.engine.rules.scheduler import Request
from pee.runtime.codec import data_converter
from pee.runtime.inspect import read_run, run_histories
from pee.runtime.resume import load_resume
from pee.workflows.carry import (
    AdaptiveRules,
    capture,
    decode,
    encode,
    restore,
    restore_admission,
)
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.state import AgentState, Alert, Decision, GroupState, RunState
from pee.workflows.types import BatchSpec
from tests.helpers import NO_RETRY, PROJECT_ROOT, TemporalHarness, compiled_plan, group, sim
from tests.histories.record_continued import conflict_chain
from tests.test_workflow_resources import needing, pool, with_pool
from tests.test_workflow_shared_pool import pool_state

Handle = WorkflowHandle[Any, Any]
CONTINUED = "workflow_execution_continued_as_new_event_attributes"
# small enough that a chain of six groups continues as new at least once
AFTER_EVENTS = 30


def chain_plan(length: int = 6, name: str = "chain") -> CompiledPlan:
    """Groups g0 -> g1 -> ..., each two agents reading both outputs of the group before."""
    agents, groups = [], []
    for index in range(length):
        before = [f"a{index - 1}.out", f"b{index - 1}.out"] if index else []
        agents += [
            sim(f"a{index}", f"g{index}", 0.05, inputs=before),
            sim(f"b{index}", f"g{index}", 0.05, inputs=before),
        ]
        groups.append(
            group(f"g{index}", [f"a{index}", f"b{index}"], [f"g{index - 1}"] if index else [])
        )
    return compiled_plan(agents, groups, name=name)


async def chain_facts(
    temporal: TemporalHarness, workflow_id: str
) -> tuple[list[str], list[str], list[str]]:
    """The chain's run ids and how each run ended (oldest run first), and the ids of the
    children all of them started."""
    runs, ended, children = [], [], []
    for run_id, history in await run_histories(temporal.client, workflow_id):
        runs.append(run_id)
        ended.append(history.events[-1].WhichOneof("attributes") or "")
        children += [
            e.start_child_workflow_execution_initiated_event_attributes.workflow_id
            for e in history.events
            if e.HasField("start_child_workflow_execution_initiated_event_attributes")
        ]
    return runs, ended, children


@pytest.mark.parametrize(
    "batch", [None, BatchSpec(chunk_size=10, window=2)], ids=["plain", "batch"]
)
def test_a_continued_run_reports_the_whole_run(
    temporal: TemporalHarness, batch: BatchSpec | None
) -> None:
    """The chain continues as new at least once; the final report, the `status` and `context`
    queries of the workflow id cover every agent of every run, each output written exactly
    once, with the same values as a run that never continued; every run but the last ended
    in continue-as-new, and each one replays (with_plan replays the whole chain)."""
    reference = temporal.execute(chain_plan(), batch=batch)

    async def body(handle: Handle) -> tuple[Any, ...]:
        report = await handle.result()
        latest = temporal.client.get_workflow_handle(handle.id)
        status = await latest.query(PlanWorkflow.status)
        context = await latest.query(PlanWorkflow.context)
        return report, status, context, await chain_facts(temporal, handle.id)

    report, status, context, (runs, ended, children) = temporal.with_plan(
        chain_plan(), body, continue_as_new_after=AFTER_EVENTS, batch=batch
    )
    assert "completed" == report["status"]
    assert len(runs) >= 2, "the run never continued as new"
    assert runs[:-1] == report["earlier_runs"]
    assert runs[-1] == report["run_id"]
    assert [CONTINUED] * (len(runs) - 1) == ended[:-1]
    assert "workflow_execution_completed_event_attributes" == ended[-1]
    assert len(runs) - 1 == [e["event"] for e in report["events"]].count("continued_as_new")
    # every agent of every run, once, succeeded: none lost, none run twice
    assert {f"{p}{i}" for p in "ab" for i in range(6)} == set(report["agents"])
    assert all(a["status"] == "succeeded" and a["attempts"] == 1 for a in report["agents"].values())
    started = [e["id"] for e in report["events"] if e["event"] == "group_started"]
    assert [f"g{i}" for i in range(6)] == started
    assert {f"{p}{i}.out": 1 for p in "ab" for i in range(6)} == report["context_versions"]
    assert reference["context_versions"] == report["context_versions"]
    assert reference["snapshots"] == report["snapshots"]
    # times go on counting from the first run's start
    assert report["started_at"] == status["started_at"]
    assert report["agents"]["a0"]["started_at"] < report["agents"]["a5"]["started_at"]
    assert {k: a["status"] for k, a in report["agents"].items()} == {
        k: a["status"] for k, a in status["agents"].items()
    }
    assert 12 == len([key for key in context if key.endswith(".out")])
    if batch is not None:
        # child ids go on counting across runs: each chunk its own child, none reused
        assert len(children) == len(set(children)) == report["batch"]["children"]
        assert len(children) >= len(runs)


def starter_at(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`starter.py ARGS --address ADDRESS` (the test server, no embedded one)."""
    return subprocess.run(
        [sys.executable, "starter.py", *args, "--address", address],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_a_conflict_opened_before_continue_as_new_is_resolved_after_it(
    temporal: TemporalHarness,
) -> None:
    """c1 opens in the first run; the run continues as new; `dev` blocks on c1 in a later run,
    where `starter.py status` shows the whole run and `starter.py resolve` (the update on the
    current run) settles it: the key keeps every version from every run."""

    async def body(handle: Handle) -> tuple[Any, ...]:
        latest = temporal.client.get_workflow_handle(handle.id)
        for _ in range(300):
            status = await latest.query(PlanWorkflow.status)
            if status["agents"]["dev"]["status"] == "blocked":
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("dev never got blocked on c1")
        (c1,) = await latest.query(PlanWorkflow.conflicts)
        shown = await asyncio.to_thread(starter_at, temporal.address, "status", handle.id, "--json")
        resolved = await asyncio.to_thread(
            starter_at,
            temporal.address,
            "resolve",
            handle.id,
            "c1",
            "--choice",
            "incoming",
            "--expected-version",
            str(c1["current_version"]),
        )
        report = await handle.result()
        history = await latest.query(PlanWorkflow.context_history, "platform")
        return status, shown, resolved, report, history

    status, shown, resolved, report, history = temporal.with_plan(
        conflict_chain(), body, continue_as_new_after=AFTER_EVENTS
    )
    assert status["earlier_runs"], "dev was blocked before any continue-as-new"
    assert 0 == shown.returncode, shown.stderr
    seen = json.loads(shown.stdout)
    assert ["c1"] == [c["id"] for c in seen["conflicts"]]
    assert "succeeded" == seen["agents"]["ux"]["status"]
    assert 0 == resolved.returncode, resolved.stdout + resolved.stderr
    assert "completed" == report["status"]
    (c1,) = report["conflicts"]
    assert ("resolved", "incoming") == (c1["status"], c1["resolution"]["choice"])
    assert "succeeded" == report["agents"]["dev"]["status"]
    # input, first writer, the resolution: no version lost across runs
    assert ["input", "write", "resolution"] == [v["origin"] for v in history]
    assert [1, 2, 3] == [v["version"] for v in history]
    events = [e["event"] for e in report["events"]]
    assert (
        events.index("conflict_opened")
        < events.index("continued_as_new")
        < events.index("conflict_resolved")
    )


def test_carried_state_round_trips_through_json() -> None:
    """encode/decode: what a run carries comes back equal through the project's converter,
    and restores into a fresh run; anything else is refused as not a carried run."""
    plan = chain_plan(2)
    run = RunState(
        plan=plan,
        started=datetime(2026, 1, 1, tzinfo=UTC),
        time_scale=1.0,
        agents={a.id: AgentState() for a in plan.agents},
        groups={g.id: GroupState() for g in plan.groups},
    )
    run.agents["a0"].status = "succeeded"
    run.groups["g0"].status = "succeeded"
    run.groups["g0"].history.append(Decision(0.5, "all_completed", "both succeeded"))
    run.context.put("a0.out", {"x": 1}, "a0", "2026-01-01T00:00:01+00:00", origin="write")
    run.context.open_consistency_conflict(
        ["a0.out", "b0.out"], "must match", "2026-01-01T00:00:02+00:00"
    )
    run.alerts.append(Alert(0.6, "g0", "warning", "slow"))
    run.monitor.alerts.append(MetricAlert(0.7, "response_time", 2.0, 1.0, "a0"))
    run.admission.peak_cpu = 50.0
    # every adaptive rule with learned state (at a quiescent point `held` is empty in a real
    # run; a request here checks it decodes too)
    rules = AdaptiveRules(
        throttle=GroupThrottle(1.0, {"g1": 1}, [Request("b1", 10.0, 10.0, 7)]),
        timeouts=TimeoutStretch(1.0, 5.0, {"g1": 1.5}, {"g1": [(1.5, "a0 was slow")]}),
        cpu=CpuBoost(1.0, 100.0, reported=True),
        caching=AggressiveCaching(1.0, storing=True),
    )
    carried = capture(run, "run-1", {"a0": "key"}, rules, batch_children=3, batch_largest=2)
    # through the project's converter, as PlanRunInput.carried travels
    converter = data_converter().payload_converter
    (plain,) = converter.from_payloads(converter.to_payloads([encode(carried)]), [dict])
    back = decode(plain)
    assert carried == back
    fresh = RunState(
        plan=plan,
        started=datetime(2027, 1, 1, tzinfo=UTC),
        time_scale=1.0,
        agents={a.id: AgentState() for a in plan.agents},
        groups={g.id: GroupState() for g in plan.groups},
    )
    restore(fresh, back)
    assert (run.started, ["run-1"]) == (fresh.started, fresh.earlier_runs)
    assert {"a0.out": {"x": 1}} == fresh.context.values()
    assert "pending" == fresh.groups["g1"].status
    assert ["c1"] == [c.id for c in fresh.context.open_conflicts()]
    assert run.monitor.alerts == fresh.monitor.alerts
    restore_admission(fresh.admission, back.admission, shared=False)
    assert (50.0, run.admission.pool) == (fresh.admission.peak_cpu, fresh.admission.pool)
    with pytest.raises(ValueError, match="not a carried run"):
        decode({"started": "x"})


def test_run_command_continues_as_new_and_status_reads_the_whole_run(
    temporal: TemporalHarness, tmp_path: Path
) -> None:
    """`starter.py run --continue-as-new-after N` exits 0 after a run that continued as new,
    says so under its summary, and `status` and the --report file cover all four agents."""
    workflow_id = f"demo-continued-{uuid.uuid4().hex[:8]}"
    report_file = tmp_path / "report.json"
    done = starter_at(
        temporal.address,
        "run",
        "plans/demo.yaml",
        "--time-scale",
        "0.1",
        "--continue-as-new-after",
        "20",
        "--workflow-id",
        workflow_id,
        "--report",
        str(report_file),
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    report = json.loads(report_file.read_text())
    assert report["earlier_runs"], "the demo run never continued as new"
    assert f"continued as new {len(report['earlier_runs'])} time(s)" in done.stdout
    status = starter_at(temporal.address, "status", workflow_id, "--json")
    assert 0 == status.returncode, status.stderr
    shown = json.loads(status.stdout)
    assert report["earlier_runs"] == shown["earlier_runs"]
    assert {"a": "succeeded", "b": "succeeded", "c": "succeeded", "d": "succeeded"} == {
        agent: row["status"] for agent, row in shown["agents"].items()
    }


def test_compile_writes_continue_as_new_after_and_refuses_zero() -> None:
    def compiled(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "starter.py", "compile", "plans/demo.yaml", *flags],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert json.loads(compiled().stdout)["continue_as_new_after"] is None
    assert (
        40 == json.loads(compiled("--continue-as-new-after", "40").stdout)["continue_as_new_after"]
    )
    bad = compiled("--continue-as-new-after", "0")
    assert 2 == bad.returncode
    assert "--continue-as-new-after: expected a whole number of 1 or more" in bad.stderr


def test_a_run_leasing_from_a_shared_pool_hands_its_leases_back_across_runs(
    temporal: TemporalHarness,
) -> None:
    """A plan leasing from a shared pool continues as new: the drained run gives every lease
    back, the next one connects again, and at the end the pool has granted each agent once
    and holds nothing; the resource peaks of the first run are still in the final report."""
    pool_name = f"chain-{uuid.uuid4().hex[:8]}"
    resources = pool(agents=10)
    resources["resource_pool"]["shared"] = {"name": pool_name, "holder_check_interval": 1.0}
    plan = chain_plan(3, name="pooled-chain")
    plan.agents = [needing(agent, cpu=40) for agent in plan.agents]
    plan = with_pool(plan, resources)

    async def body(handle: Handle) -> tuple[dict[str, Any], dict[str, Any]]:
        report = await handle.result()
        state = await pool_state(temporal.client, pool_name)
        await temporal.client.get_workflow_handle(pool_workflow_id(pool_name)).terminate()
        return report, state

    report, state = temporal.with_plan(plan, body, continue_as_new_after=AFTER_EVENTS)
    assert "completed" == report["status"]
    assert report["earlier_runs"], "the pooled run never continued as new"
    assert pool_name == report["resources"]["shared_pool"]
    assert 80 == report["resources"]["peak_cpu"]
    assert 6 == state["granted_total"]
    assert ([], [], []) == (state["running"], state["waiting"], state["holders"])


def test_a_hand_made_carried_input_fails_the_run_with_a_clear_error(
    temporal: TemporalHarness,
) -> None:
    """PlanRunInput.carried that no run wrote (a hand-edited JSON input): the run fails at once
    with InvalidCarriedRun naming the problem, instead of a workflow task failing forever."""

    async def body(handle: Handle) -> BaseException:
        try:
            await handle.result()
        except WorkflowFailureError as err:
            return err
        raise AssertionError("the run did not fail")

    err = temporal.with_plan(chain_plan(2), body, carried={"started": "yesterday"})
    cause = err.cause
    assert isinstance(cause, ApplicationError)
    assert "InvalidCarriedRun" == cause.type
    assert "not a carried run" in cause.message
    assert "leave `carried` out of a hand-written input" in cause.message


def test_a_failed_continued_run_resumes_with_every_runs_groups(temporal: TemporalHarness) -> None:
    """A run that fails after continuing as new is resumed like any other: --resume-from reads
    the last run, whose report and context hold every earlier run's groups, so only the failed
    group runs again."""
    failing = chain_plan(name="failing-chain")
    for agent in failing.agents:
        if agent.group == "g5":
            # both fail: the group's fallback fails too, and with it the run
            agent.settings.update(fail_times="always")
            agent.retry = NO_RETRY

    async def failed(handle: Handle) -> str:
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        return handle.id

    earlier = temporal.with_plan(failing, failed, continue_as_new_after=AFTER_EVENTS)
    plan = chain_plan(name="failing-chain")

    async def resumed_from() -> tuple[dict[str, Any], Any]:
        view = await read_run(temporal.client, earlier)
        return view.report or {}, await load_resume(temporal.client, plan, earlier)

    failed_report, resume = temporal.run(resumed_from())
    assert "failed" == failed_report["status"]
    assert failed_report["earlier_runs"], "the failing run never continued as new"
    assert [f"g{i}" for i in range(5)] == resume.passed_groups
    report = temporal.execute(plan, resume=resume)
    assert "completed" == report["status"]
    assert [f"g{i}" for i in range(5)] == [
        g for g, row in report["groups"].items() if row["resumed"]
    ]
    assert {"a5": 1, "b5": 1} == {a: report["agents"][a]["attempts"] for a in ("a5", "b5")}
