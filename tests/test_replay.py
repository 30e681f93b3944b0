"""Replay the committed histories (tests/histories/*.json, one per barrier branch, a plain run,
the conflict paths: resolved by update, by signal, by the conflict timeout, and adaptive
allocation throttling a group and moving deadlines; the shared pool's in pool/ and a
continue-as-new chain in continued/) against today's PlanWorkflow: any change to the commands
a run issues fails here.

After an intended change, re-record with `.venv/bin/python -m tests.histories.record`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from pee.runtime.codec import Lz4Codec, data_converter
from pee.workflows.agent_batch import AgentBatchWorkflow
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.resource_pool import ResourcePoolWorkflow
from tests.helpers import pee_upserts_per_task
from tests.histories.record import SCENARIOS, Scenario, expected, outcome

HISTORIES = Path(__file__).resolve().parent / "histories"


def load(name: str) -> WorkflowHistory:
    text = (HISTORIES / f"{name}.json").read_text()
    history = WorkflowHistory.from_json(f"replay-{name}", text)
    # children are named after their parent ("<workflow id>/agents-N" in batch mode,
    # "<workflow id>/<group>[i]" for a fan-out item): replay under the recorded id
    for event in history.events:
        if event.HasField("start_child_workflow_execution_initiated_event_attributes"):
            child = event.start_child_workflow_execution_initiated_event_attributes.workflow_id
            return WorkflowHistory.from_json(child.rsplit("/", 1)[0], text)
    return history


def final_report(history: WorkflowHistory) -> dict[str, Any]:
    """The run report the recorded run ended with (its result, or its failure's details)."""
    last = history.events[-1]
    if last.HasField("workflow_execution_completed_event_attributes"):
        payloads = last.workflow_execution_completed_event_attributes.result.payloads
    else:
        failure = last.workflow_execution_failed_event_attributes.failure
        payloads = failure.application_failure_info.details.payloads
    # histories recorded through the lz4 codec keep large payloads compressed
    plain = [Lz4Codec._decode(p) for p in payloads]
    (report,) = DataConverter.default.payload_converter.from_payloads(plain, [dict])
    return report


def test_every_scenario_has_a_history() -> None:
    """Each recorded scenario has its JSON file and no file is left without a scenario."""
    assert sorted(s.name for s in SCENARIOS) == sorted(p.stem for p in HISTORIES.glob("*.json"))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_history_replays(scenario: Scenario) -> None:
    """The recorded run replays without nondeterminism and shows the branch it was made for
    (barrier decisions, and for the conflict paths how c1 was settled)."""
    history = load(scenario.name)
    replayer = Replayer(workflows=[PlanWorkflow], data_converter=data_converter())
    result = asyncio.run(replayer.replay_workflow(history))
    assert result.replay_failure is None
    assert expected(scenario) == outcome(final_report(history))


POOL_HISTORIES = HISTORIES / "pool"


def event_kinds(history: WorkflowHistory) -> list[str]:
    return [event.WhichOneof("attributes") or "" for event in history.events]


def activity_types(history: WorkflowHistory) -> list[str]:
    return [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]


def test_shared_pool_history_replays() -> None:
    """The recorded pool run (tests/histories/record_pool.py) replays against today's
    ResourcePoolWorkflow, and holds what it was recorded for: lease signals in, grants out,
    holder checks, and continue-as-new at the end."""
    history = WorkflowHistory.from_json(
        "replay-pool", (POOL_HISTORIES / "pool_reclaim.json").read_text()
    )
    replayer = Replayer(workflows=[ResourcePoolWorkflow], data_converter=data_converter())
    assert asyncio.run(replayer.replay_workflow(history)).replay_failure is None
    kinds = event_kinds(history)
    assert kinds[-1] == "workflow_execution_continued_as_new_event_attributes"
    assert "workflow_execution_signaled_event_attributes" in kinds
    assert "signal_external_workflow_execution_initiated_event_attributes" in kinds
    assert "check_pool_holders" in activity_types(history)


def test_run_leasing_from_a_shared_pool_replays() -> None:
    """The recorded run that leased its agent from the pool replays against today's
    PlanWorkflow: it started the pool (ensure activity), got a grant and completed."""
    history = WorkflowHistory.from_json(
        "replay-shared-run", (POOL_HISTORIES / "shared_run.json").read_text()
    )
    replayer = Replayer(workflows=[PlanWorkflow], data_converter=data_converter())
    assert asyncio.run(replayer.replay_workflow(history)).replay_failure is None
    assert activity_types(history)[0] == "ensure_resource_pool"
    signals = [
        event.workflow_execution_signaled_event_attributes.signal_name
        for event in history.events
        if event.HasField("workflow_execution_signaled_event_attributes")
    ]
    assert "pool_grant" in signals
    report = final_report(history)
    assert report["status"] == "completed"
    assert report["resources"]["shared_pool"] == "recorded"
    assert report["resources"]["queue_wait_s"]["wait0"] > 0


def test_batch_mode_history_holds_children_and_their_signals() -> None:
    """The batch-mode scenario (PlanRunInput.batch) ran its agents in AgentBatchWorkflow
    children, got an early outcome by signal, sent the barrier's cancel to a child, and waited
    for the group deadline on the run-wide clock: the branches its replay covers."""
    history = load("batch_partial")
    kinds = event_kinds(history)
    assert "start_child_workflow_execution_initiated_event_attributes" in kinds
    assert "activity_task_scheduled_event_attributes" not in kinds
    signals = [
        event.workflow_execution_signaled_event_attributes.signal_name
        for event in history.events
        if event.HasField("workflow_execution_signaled_event_attributes")
    ]
    assert "agent_outcomes" in signals
    sent = [
        event.signal_external_workflow_execution_initiated_event_attributes.signal_name
        for event in history.events
        if event.HasField("signal_external_workflow_execution_initiated_event_attributes")
    ]
    assert ["cancel_agents"] == sent
    assert "timer_fired_event_attributes" in kinds


CONTINUED_HISTORIES = HISTORIES / "continued"


def test_a_continued_chain_replays_run_by_run() -> None:
    """The recorded continue-as-new chain (tests/histories/record_continued.py) replays run by
    run against today's PlanWorkflow: the first run drained and continued as new after the
    conflict opened, the last one restored it, resolved c1 by update and completed, its report
    covering every run."""
    paths = sorted(CONTINUED_HISTORIES.glob("run*.json"))
    assert len(paths) >= 2, "the recorded chain has a single run"
    replayer = Replayer(workflows=[PlanWorkflow], data_converter=data_converter())
    histories = [
        WorkflowHistory.from_json(f"replay-continued-{p.stem}", p.read_text()) for p in paths
    ]
    for history in histories:
        assert asyncio.run(replayer.replay_workflow(history)).replay_failure is None
    for history in histories[:-1]:
        assert event_kinds(history)[-1] == ("workflow_execution_continued_as_new_event_attributes")
    # each run's first event names the run it continued from
    continued_from = [
        h.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
        for h in histories[1:]
    ]
    report = final_report(histories[-1])
    assert continued_from == report["earlier_runs"]
    (c1,) = report["conflicts"]
    assert ("resolved", "incoming") == (c1["status"], c1["resolution"]["choice"])
    events = [e["event"] for e in report["events"]]
    assert (
        events.index("conflict_opened")
        < events.index("continued_as_new")
        < events.index("conflict_resolved")
    )
    assert all(a["status"] == "succeeded" for a in report["agents"].values())


def pee_statuses(history: WorkflowHistory) -> list[str]:
    """Every PeeStatus value the run upserted, in order."""
    found = []
    for event in history.events:
        if event.HasField("upsert_workflow_search_attributes_event_attributes"):
            upsert = event.upsert_workflow_search_attributes_event_attributes
            fields = upsert.search_attributes.indexed_fields
            if "PeeStatus" in fields:
                found.append(fields["PeeStatus"].data.decode().strip('"'))
    return found


def test_waiting_for_a_person_history_replays_with_its_upserts() -> None:
    """The recorded conflict_waiting run replays (checked by test_history_replays) and holds
    what it was recorded for: PeeStatus waiting_for_person while dev was blocked on c1, back to
    running once resolved; the malformed signal and update are in rejected_resolutions, the
    update refused by the validator (a newer expected_version) is not."""
    history = load("conflict_waiting")
    assert ["running", "waiting_for_person", "running", "completed"] == pee_statuses(history)
    report = final_report(history)
    reasons = [r["reason"] for r in report["rejected_resolutions"]]
    assert 2 == len(reasons), reasons
    assert reasons[0].startswith("malformed resolve_conflict signal: 'conflict_id' is missing")
    assert reasons[1].startswith("malformed resolve_conflict update: expected one JSON object")
    assert reasons[1].endswith("got a list")


def activity_ids(history: WorkflowHistory) -> list[str]:
    return [
        event.activity_task_scheduled_event_attributes.activity_id
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]


def patch_markers(history: WorkflowHistory) -> list[str]:
    """The ids of the workflow.patched markers the run recorded."""
    found = []
    for event in history.events:
        if event.HasField("marker_recorded_event_attributes"):
            details = event.marker_recorded_event_attributes.details
            if "patch-data" in details:
                found.append(json.loads(details["patch-data"].payloads[0].data)["id"])
    return found


def test_fan_out_histories_hold_their_instances_and_the_patch() -> None:
    """The agent-level fan-out runs (issue 16) ran one activity per item, `dev[i]`, behind the
    fan-out-v1 patch; the empty list ran none; the group-level one ran one child per item and
    no activity of its members; runs without a fan-out record no such marker."""
    agent = load("fan_out_agent")
    assert ["sm", "dev[0]", "dev[1]", "dev[2]", "dev[3]", "qa"] == activity_ids(agent)
    assert "fan-out-v1" in patch_markers(agent)
    empty = load("fan_out_empty")
    assert ["sm", "qa"] == activity_ids(empty)
    assert "fan-out-v1" in patch_markers(empty)
    partial = load("fan_out_partial")
    assert ["sm", "dev[0]", "dev[1]", "dev[2]", "qa"] == activity_ids(partial)
    group = load("fan_out_group")
    children = [
        e.start_child_workflow_execution_initiated_event_attributes.workflow_id.rsplit("/", 1)[1]
        for e in group.events
        if e.HasField("start_child_workflow_execution_initiated_event_attributes")
    ]
    assert ["per_epic[0]", "per_epic[1]", "per_epic[2]"] == children
    assert ["po", "summary"] == activity_ids(group)
    others = [s.name for s in SCENARIOS if not s.name.startswith("fan_out")]
    assert [] == [name for name in others if "fan-out-v1" in patch_markers(load(name))]
    report = final_report(partial)
    assert ["succeeded", "failed", "succeeded"] == [
        report["agents"][f"dev[{i}]"]["status"] for i in range(3)
    ]


CHILD_HISTORIES = sorted((HISTORIES / "children").glob("*/*.json"))


@pytest.mark.parametrize(
    "path", CHILD_HISTORIES, ids=[f"{p.parent.name}/{p.stem}" for p in CHILD_HISTORIES]
)
def test_a_fan_out_child_run_replays(path: Path) -> None:
    """Each recorded child run of a group-level fan-out (one item's run, or a batch of items)
    replays against today's PlanWorkflow."""
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    replayer = Replayer(workflows=[PlanWorkflow], data_converter=data_converter())
    result = asyncio.run(replayer.replay_workflow(history))
    assert result.replay_failure is None
    assert "completed" == final_report(history)["status"]


def test_the_batched_fan_out_ran_two_children_and_one_item_failed_alone() -> None:
    """fan_out_batches: the parent ran children of two items behind fan-out-batches-v1 (no
    other scenario has that marker); in the child shared by items 0 and 1, item 1's story
    failed (after its one-at-a-time fallback), its review never started, item 0 passed."""
    parent = load("fan_out_batches")
    children = [
        e.start_child_workflow_execution_initiated_event_attributes.workflow_id.rsplit("/", 1)[1]
        for e in parent.events
        if e.HasField("start_child_workflow_execution_initiated_event_attributes")
    ]
    assert ["per_epic[0..1]", "per_epic[2..2]"] == children
    assert {"fan-out-v1", "fan-out-batches-v1"} <= set(patch_markers(parent))
    others = [s.name for s in SCENARIOS if s.name != "fan_out_batches"]
    assert [] == [n for n in others if "fan-out-batches-v1" in patch_markers(load(n))]
    text = (HISTORIES / "children" / "fan_out_batches" / "per_epic[0..1].json").read_text()
    child = WorkflowHistory.from_json("child", text)
    assert {"story[0]", "story[1]", "review[0]"} <= set(activity_ids(child))
    assert "review[1]" not in activity_ids(child)
    # no context snapshot per group (a local activity each): nothing resumes a batch child
    markers = [
        e.marker_recorded_event_attributes.marker_name
        for e in child.events
        if e.HasField("marker_recorded_event_attributes")
    ]
    assert "core_local_activity" not in markers
    rows = final_report(child)["agents"]
    assert ["succeeded", "succeeded", "failed", "skipped"] == [
        rows[a]["status"] for a in ("story[0]", "review[0]", "story[1]", "review[1]")
    ]
    report = final_report(parent)
    assert ["succeeded", "failed", "succeeded"] == [
        report["agents"][f"story[{i}]"]["status"] for i in range(3)
    ]


def summaries(history: WorkflowHistory, kind: str) -> list[str]:
    """The Web UI summaries of the events of one kind (user metadata, JSON text)."""
    return [
        json.loads(event.user_metadata.summary.data)
        for event in history.events
        if event.HasField(kind) and event.user_metadata.summary.data
    ]


def test_fan_out_summaries_name_each_instance() -> None:
    """The Web UI shows each instance's activity as `agent dev[i]` and each item's child
    workflow as `per_epic[i] of <plan>`."""
    agent = summaries(load("fan_out_agent"), "activity_task_scheduled_event_attributes")
    assert [f"agent dev[{i}] (dev), group dev" for i in range(4)] == agent[1:5]
    children = summaries(
        load("fan_out_group"), "start_child_workflow_execution_initiated_event_attributes"
    )
    assert [f"per_epic[{i}] of fan-out-group" for i in range(3)] == children


def test_a_run_continued_after_a_fan_out_replays_run_by_run() -> None:
    """The fan-out chain (tests/histories/record_continued.py fan_out) replays run by run: the
    first run ran dev[0..4] and continued as new; the next one, given the expanded plan, ran qa
    over the collected list and reports every instance."""
    paths = sorted((HISTORIES / "fan_out_continued").glob("run*.json"))
    assert len(paths) >= 2
    replayer = Replayer(workflows=[PlanWorkflow], data_converter=data_converter())
    histories = [
        WorkflowHistory.from_json(f"replay-fan-out-{p.stem}", p.read_text()) for p in paths
    ]
    for history in histories:
        assert asyncio.run(replayer.replay_workflow(history)).replay_failure is None
    assert [f"dev[{i}]" for i in range(5)] == [
        a for a in activity_ids(histories[0]) if a.startswith("dev[")
    ]
    assert "qa" in activity_ids(histories[-1])
    report = final_report(histories[-1])
    assert ["succeeded"] * 5 == [report["agents"][f"dev[{i}]"]["status"] for i in range(5)]


def local_activities(history: WorkflowHistory) -> list[str]:
    """The activity types of the run's local activity markers."""
    found = []
    for event in history.events:
        if event.HasField("marker_recorded_event_attributes"):
            details = event.marker_recorded_event_attributes.details
            if "data" in details:
                data = json.loads(details["data"].payloads[0].data)
                found.append(data.get("activity_type", ""))
    return found


@pytest.mark.parametrize("name", ["liveness_extend", "liveness_partial"])
def test_liveness_histories_decide_from_one_recorded_describe(name: str) -> None:
    """The liveness scenarios (patch liveness-from-describe) send no agent_progress signal: at
    the deadline one describe_liveness local activity, recorded as a marker, told the barrier
    which agent heartbeat (extend) and which was silent (partial), and the decision says so."""
    history = load(name)
    signals = [
        event.workflow_execution_signaled_event_attributes.signal_name
        for event in history.events
        if event.HasField("workflow_execution_signaled_event_attributes")
    ]
    assert "agent_progress" not in signals
    assert 1 == local_activities(history).count("describe_liveness")
    first = final_report(history)["groups"]["g"]["barrier"]["history"][0]["reason"]
    if name == "liveness_extend":
        assert "['steady'] heartbeat within the last" in first
    else:
        assert "deadline reached with ['mute'] unfinished" in first


def test_ledger_history_flushes_rows_by_local_activity() -> None:
    """A ledger run (src/pee/workflows/ledger.py): its rows left by the flush_run_rows local
    activity (a marker each, the rows themselves not in history) and its result is a summary
    that names the run key and how many rows of each kind went to the store."""
    history = load("ledger")
    markers = [e for e in history.events if e.HasField("marker_recorded_event_attributes")]
    assert len(markers) >= 2
    report = final_report(history)
    store = report["store"]
    assert store["run_key"].startswith("record-ledger-")
    assert {"agent": 3, "group": 2} == {k: store["flushed"][k] for k in ("agent", "group")}
    assert {} == report["agents"] and {} == report["groups"]
    assert b"agent_succeeded" not in history.to_json().encode()


BATCH_CHILD_HISTORIES = sorted((HISTORIES / "batch_children").glob("*/*.json"))


@pytest.mark.parametrize(
    "path",
    BATCH_CHILD_HISTORIES,
    ids=[f"{p.parent.name}/{p.stem}" for p in BATCH_CHILD_HISTORIES],
)
def test_a_batch_child_replays(path: Path) -> None:
    """Each recorded AgentBatchWorkflow child (batch_local: agents as local activities)
    replays against today's AgentBatchWorkflow, one marker per agent and no activity task."""
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    replayer = Replayer(workflows=[AgentBatchWorkflow], data_converter=data_converter())
    assert asyncio.run(replayer.replay_workflow(history)).replay_failure is None
    kinds = event_kinds(history)
    assert "marker_recorded_event_attributes" in kinds
    assert "activity_task_scheduled_event_attributes" not in kinds


def test_the_local_batch_ran_its_retry_inside_the_child() -> None:
    """batch_local: a and b ran as local activities of agents-1 (two markers), b's failed first
    attempt was retried there (its report row says two attempts), c in agents-2."""
    text = (HISTORIES / "batch_children" / "batch_local" / "agents-1.json").read_text()
    child = WorkflowHistory.from_json("child", text)
    assert 2 == event_kinds(child).count("marker_recorded_event_attributes")
    rows = final_report(load("batch_local"))["agents"]
    assert (1, 2, 1) == tuple(rows[a]["attempts"] for a in ("a", "b", "c"))


def test_the_plan_facts_history_reads_its_ranks_from_the_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The plan_facts run (issue 17) was started with the plan's facts in its input: the
    admission ranks (`long` 0.3 s of path, `short` 0.1) put `long` first although `short` is
    declared first, and the replay reads them from the input: working them out is refused."""
    from pee.engine.rules import plan_facts
    from pee.workflows.types import PlanRunInput

    history = load("plan_facts")
    started = history.events[0].workflow_execution_started_event_attributes
    plain = [Lz4Codec._decode(p) for p in started.input.payloads]
    assert [0.1, 0.3, 0.2] == json.loads(plain[0].data)["plan"]["facts"]["remaining"]
    (decoded,) = data_converter().payload_converter.from_payloads(plain, [PlanRunInput])
    assert plan_facts.given(decoded.plan)
    assert ["long", "short", "tail"] == activity_ids(history)

    def refuse(plan: Any) -> Any:
        raise AssertionError("the workflow worked out facts its input carries")

    monkeypatch.setattr(plan_facts, "compute", refuse)
    replayer = Replayer(workflows=[PlanWorkflow], data_converter=data_converter())
    assert asyncio.run(replayer.replay_workflow(history)).replay_failure is None


def test_a_wide_ready_set_starts_in_bounded_activations() -> None:
    """bounded_starts: 120 groups became ready when `root` passed; one activation started
    START_BATCH of them (their agents one child's 100 calls, though a child takes 500), a 1 ms
    timer ended it (patch bounded-group-starts) and the next activation started the other 20.
    The replay of this history (test above) takes the same path."""
    from pee.workflows.ready_groups import BOUNDED_STARTS_PATCH, START_BATCH

    history = load("bounded_starts")
    patches = [
        json.loads(event.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)
        for event in history.events
        if event.HasField("marker_recorded_event_attributes")
    ]
    assert BOUNDED_STARTS_PATCH in [patch["id"] for patch in patches]
    timers = [
        event.timer_started_event_attributes.start_to_fire_timeout.ToMilliseconds()
        for event in history.events
        if event.HasField("timer_started_event_attributes")
    ]
    assert [1] == timers
    calls = []
    for event in history.events:
        if event.HasField("start_child_workflow_execution_initiated_event_attributes"):
            payloads = event.start_child_workflow_execution_initiated_event_attributes.input
            plain = [Lz4Codec._decode(p) for p in payloads.payloads]
            calls.append(len(json.loads(plain[0].data)["calls"]))
    assert [1, START_BATCH, 120 - START_BATCH] == calls
    assert 121 == len(final_report(history)["groups"])


def _child_agents(scenario: str, child: str) -> list[str]:
    """The agent ids an AgentBatchWorkflow child of `scenario` was started with."""
    text = (HISTORIES / "batch_children" / scenario / f"{child}.json").read_text()
    history = WorkflowHistory.from_json("child", text)
    started = history.events[0].workflow_execution_started_event_attributes.input.payloads
    plain = [Lz4Codec._decode(p) for p in started]
    (value,) = DataConverter.default.payload_converter.from_payloads(plain, [dict])
    return [call["task"]["agent"]["id"] for call in value["calls"]]


def test_the_split_history_cut_short_groups_from_long_ones() -> None:
    """batch_split (BatchSpec.split_gain_s): the six groups that became ready together ran in
    two children, the three short ones apart from the three long ones (patch
    local-chunks-by-duration in the parent), and every local chunk, expected to end long
    before its first workflow task heartbeat, sent its outcomes in its result: no signal
    in the parent's history, none sent by a child, one workflow task per child."""
    history = load("batch_split")
    assert "local-chunks-by-duration" in patch_markers(history)
    assert ["root"] == _child_agents("batch_split", "agents-1")
    assert ["s1", "s2", "s3"] == sorted(_child_agents("batch_split", "agents-2"))
    assert ["l1", "l2", "l3"] == sorted(_child_agents("batch_split", "agents-3"))
    assert ["tail"] == _child_agents("batch_split", "agents-4")
    assert "workflow_execution_signaled_event_attributes" not in event_kinds(history)
    for path in sorted((HISTORIES / "batch_children" / "batch_split").glob("*.json")):
        child = WorkflowHistory.from_json("child", path.read_text())
        kinds = event_kinds(child)
        assert "signal_external_workflow_execution_initiated_event_attributes" not in kinds
        assert 1 == kinds.count("workflow_task_completed_event_attributes")
    rows = final_report(history)["agents"]
    assert {"succeeded"} == {row["status"] for row in rows.values()}


def test_uncached_agents_tasks_leave_the_run_ids_out() -> None:
    """Patch lean-agent-task: the recorded run's uncached agents were scheduled without the
    workflow id, run id and plan name (only the output cache reads them); runs recorded before
    the patch carry them and replay as they were."""
    from pee.activities.types import AgentTask

    history = load("lean_task")
    assert "lean-agent-task" in patch_markers(history)
    converter = data_converter()
    tasks = []
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "run_agent":
                (task,) = asyncio.run(converter.decode(attrs.input.payloads, [AgentTask]))
                tasks.append(task)
    assert ["a", "b"] == sorted(task.agent.id for task in tasks)
    assert {("", "", "")} == {(t.workflow_id, t.run_id, t.plan_name) for t in tasks}
    older = load("all_completed")
    assert "lean-agent-task" not in patch_markers(older)


def local_activity_types(history: WorkflowHistory) -> list[str]:
    return [
        json.loads(event.marker_recorded_event_attributes.details["data"].payloads[0].data)[
            "activity_type"
        ]
        for event in history.events
        if event.HasField("marker_recorded_event_attributes")
        and event.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]


@pytest.mark.parametrize("name", ["revision", "revision_conflict"])
def test_a_revision_history_has_one_patch_marker_and_no_final_snapshot(name: str) -> None:
    """A run of the engine's revision (src/pee/workflows/revision.py), replayed by
    test_history_replays: its only patch marker is the revision's, the first thing it recorded,
    and it stored the snapshot of every group that passed but the last (`final` in the
    report): one snapshot local activity fewer than groups. cache_levels, recorded before it,
    holds its patch by name and stored the final snapshot too."""
    from pee.workflows.revision import REVISIONS

    history = load(name)
    assert ["engine-revision-2"] == patch_markers(history) == [REVISIONS[0]]
    first_command = next(e for e in history.events if e.event_id > 4)
    assert first_command.HasField("marker_recorded_event_attributes")
    snapshots = final_report(history)["context_snapshots"]
    *kept, last = snapshots
    assert all(entry["stored"] for entry in kept) and len(kept) >= 1
    assert (False, True) == (last["stored"], last["final"])
    assert ["store_context_snapshot"] * len(kept) == [
        t for t in local_activity_types(history) if t == "store_context_snapshot"
    ]
    # recorded before it: its patch by name, and a store of every snapshot, the final one too
    older = load("cache_levels")
    assert ["cache-levels-snapshots-prefetch"] == patch_markers(older)
    stored = [entry["stored"] for entry in final_report(older)["context_snapshots"]]
    assert [True, True] == stored
    assert 2 == local_activity_types(older).count("store_context_snapshot")


@pytest.mark.parametrize(
    ("name", "older"),
    [("revision_search", "search_attributes"), ("revision_waiting", "conflict_waiting")],
)
def test_a_revision_3_run_upserts_its_search_attributes_once_per_workflow_task(
    name: str, older: str
) -> None:
    """engine-revision-3 (pee.workflows.search.SEARCH_SYNC_PATCH), replayed by
    test_history_replays: the run's one patch marker is the revision's, and it upserted
    PeePlan/PeeStatus/PeeGroup at most once per workflow task, with the same PeeStatus values in
    the same order; the same scenario recorded before it upserted at each event, twice in the
    task where a group ended and the next started (and still replays that way)."""
    from pee.workflows.revision import REVISION

    history, before = load(name), load(older)
    assert [REVISION] == patch_markers(history)
    assert max(pee_upserts_per_task(history)) == 1
    assert max(pee_upserts_per_task(before)) >= 2
    assert pee_statuses(before) == pee_statuses(history)
    assert sum(pee_upserts_per_task(history)) < sum(pee_upserts_per_task(before))
