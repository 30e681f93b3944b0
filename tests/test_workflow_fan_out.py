"""Agent-level fan-out in the workflow (issue 16, phase 2) on a real dev server: one instance
`dev[i]` per item of a list known only at run time, its item and index given, at most
max_parallel at once, the collected list in item order, an empty list, and a failing item under
`at_least`. Every run is replayed afterwards (TemporalHarness.with_plan).

Fixture shape: sm (outputs the list) -> dev[i] (for each sm.stories) -> qa (reads dev.code).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle

from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import loads_plan
from pee.engine.compiled import CompiledPlan
from pee.runtime.resume import load_resume
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.types import BatchSpec
from tests.helpers import TemporalHarness, until_status

STORIES = ["login", "search", "cart", "checkout", "refund"]


def fan_out_plan(
    stories: list[Any],
    *,
    dev: str = "",
    settings: str = "{echo_inputs: true}",
    group: str = "",
    name: str = "fan_out",
) -> CompiledPlan:
    """sm -> dev[i] -> qa, each simulate agent 1 s of plan time; `dev` adds keys to dev."""
    text = f"""\
name: {name}
agents:
  sm:
    {{kind: simulate, duration: 1s, outputs: [stories],
     values: {{stories: {json.dumps(stories)}}}}}
  dev:
    kind: simulate
    duration: 1s
    for_each: sm.stories
    inputs: [item, index]
    outputs: [code]
    settings: {settings}
    retry: {{max_attempts: 1}}
{dev}
  qa:
    {{kind: simulate, duration: 1s, inputs: [dev.code], outputs: [out],
     settings: {{echo_inputs: true}}}}
{group}"""
    return compile_plan(loads_plan(text, file="fan_out.yaml"))


def run(temporal: TemporalHarness, plan: CompiledPlan) -> tuple[dict[str, Any], dict[str, Any]]:
    """The report and the final context of a run of `plan` at time scale 0.1."""

    async def go(handle: WorkflowHandle[Any, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            report = await handle.result()
        except WorkflowFailureError as err:
            report = err.cause.details[0]  # type: ignore[union-attr]
        return report, await handle.query(PlanWorkflow.context)

    return temporal.with_plan(plan, go, time_scale=0.1, simulate=True)  # type: ignore[no-any-return]


def instance_events(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["event"], e["id"]) for e in report["events"] if e["id"].startswith("dev[")]


def test_each_item_runs_as_its_own_instance_and_collects_in_item_order(
    temporal: TemporalHarness,
) -> None:
    """dev runs once per story as dev[0..4], each given its item and index; dev.code is the list
    of their outputs in item order, and qa (after the fan-out) reads that list."""
    report, context = run(temporal, fan_out_plan(STORIES))
    assert "completed" == report["status"]
    ids = [f"dev[{i}]" for i in range(len(STORIES))]
    assert ["succeeded"] * 5 == [report["agents"][a]["status"] for a in ids]
    assert "succeeded" == report["agents"]["dev"]["status"]
    code = context["dev.code"]
    assert STORIES == [entry["inputs"]["item"] for entry in code]
    assert [0, 1, 2, 3, 4] == [entry["inputs"]["index"] for entry in code]
    assert ids == [entry["agent"] for entry in code]
    assert code == context["qa.out"]["inputs"]["dev.code"]
    started = [e for e in report["events"] if e["event"] == "fan_out_started"]
    assert [("dev", 5)] == [(e["id"], e["items"]) for e in started]
    group = report["groups"]["dev"]
    assert ("succeeded", ids) == (group["status"], group["agents"])
    row = group["fan_out"]
    assert ("sm.stories", 5, 5, 0) == (row["source"], row["items"], row["succeeded"], row["failed"])
    assert row["p50_s"] is not None and row["p50_s"] <= row["p95_s"] <= row["max_s"]


def test_max_parallel_bounds_the_instances_running_at_once(temporal: TemporalHarness) -> None:
    """max_parallel: 2 over five items: never more than two instances between their start and
    end events, two at once at some point, and every item runs."""
    report, _ = run(temporal, fan_out_plan(STORIES, dev="    max_parallel: 2"))
    assert "completed" == report["status"]
    running: set[str] = set()
    most = 0
    for event, ident in instance_events(report):
        if event == "agent_started":
            running.add(ident)
        elif event in ("agent_succeeded", "agent_failed"):
            running.discard(ident)
        most = max(most, len(running))
    assert 2 == most
    assert 5 == sum(event == "agent_succeeded" for event, _ in instance_events(report))


def test_an_empty_list_passes_with_empty_lists(temporal: TemporalHarness) -> None:
    """No stories: no instance runs, the group passes at once, dev.code is [] and qa runs."""
    report, context = run(temporal, fan_out_plan([]))
    assert "completed" == report["status"]
    assert [] == context["dev.code"]
    assert [] == instance_events(report)
    assert ["all_completed"] == [
        h["decision"] for h in report["groups"]["dev"]["barrier"]["history"]
    ]
    assert "succeeded" == report["agents"]["qa"]["status"]


def test_a_failing_item_under_at_least_leaves_its_default_in_its_slot(
    temporal: TemporalHarness,
) -> None:
    """Three items, item 1 always fails, at_least 2: the run goes on (partial), dev.code holds
    the other two items' values in their slots and dev's default in slot 1."""
    plan = fan_out_plan(
        ["a", "b", "c"],
        dev="    defaults: {code: unavailable}",
        settings="{echo_inputs: true, fail_items: [1]}",
        group="groups:\n  devs: {agents: [dev], success_criteria: {at_least: 2}}\n",
    )
    report, context = run(temporal, plan)
    assert "completed" == report["status"]
    statuses = [report["agents"][f"dev[{i}]"]["status"] for i in range(3)]
    assert ["succeeded", "failed", "succeeded"] == statuses
    code = context["dev.code"]
    assert ["a", "unavailable", "c"] == [
        c if isinstance(c, str) else c["inputs"]["item"] for c in code
    ]
    group = report["groups"]["devs"]
    assert ("partial", ["continue_with_partial"]) == (
        group["status"],
        [h["decision"] for h in group["barrier"]["history"]],
    )


def test_a_failing_item_fails_the_run_when_every_item_is_required(
    temporal: TemporalHarness,
) -> None:
    """By default every item must succeed: item 1 fails, its sequential fallback fails too, and
    the run fails naming it."""
    plan = fan_out_plan(["a", "b"], settings="{echo_inputs: true, fail_items: [1]}")
    report, _ = run(temporal, plan)
    assert "failed" == report["status"]
    history = [h["decision"] for h in report["groups"]["dev"]["barrier"]["history"]]
    assert ["abort_and_fallback", "fail"] == history
    assert "dev[1]" in report["error"]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [({"a": 1}, "expected a list of items, found dict"), ("no list", "not a JSON list")],
)
def test_a_source_that_is_no_list_fails_the_run_naming_it(
    temporal: TemporalHarness, value: Any, fragment: str
) -> None:
    """sm.stories a mapping or plain text: the run fails with FanOutSourceError's message."""
    report, _ = run(temporal, fan_out_plan(value))  # type: ignore[arg-type]
    assert "failed" == report["status"]
    assert report["error"].startswith("for_each sm.stories: ")
    assert fragment in report["error"]
    assert "failed" == report["groups"]["dev"]["status"]


EPICS = ["accounts", "catalogue", "payments"]


def group_plan(settings: str = "{echo_inputs: true}", group: str = "") -> CompiledPlan:
    """po -> per_epic[i] = story -> implement -> review (for each po.epics) -> summary."""
    text = f"""\
name: group_fan_out
agents:
  po: {{kind: simulate, duration: 1s, outputs: [epics], values: {{epics: {json.dumps(EPICS)}}}}}
  story:
    {{kind: simulate, duration: 1s, inputs: [item, index], outputs: [text],
     settings: {settings}, retry: {{max_attempts: 1}}}}
  implement:
    {{kind: simulate, duration: 1s, inputs: [story.text], outputs: [code],
     settings: {{echo_inputs: true}}}}
  review:
    {{kind: simulate, duration: 1s, inputs: [implement.code], outputs: [verdict],
     settings: {{echo_inputs: true}}, defaults: {{verdict: skipped}}}}
  summary: {{kind: simulate, duration: 1s, inputs: [review.verdict], outputs: [out]}}
groups:
  per_epic: {{agents: [story, implement, review], for_each: po.epics{group}}}
"""
    return compile_plan(loads_plan(text, file="group_fan_out.yaml"))


def item_of(verdict: dict[str, Any]) -> Any:
    """The epic a review verdict was made from, through its item's own chain."""
    code = verdict["inputs"]["implement.code"]
    return code["inputs"]["story.text"]["inputs"]["item"]


def test_a_group_runs_as_one_chain_per_item(temporal: TemporalHarness) -> None:
    """Each epic runs story -> implement -> review as its own child run; review.verdict lists
    the verdicts in epic order, each made from its own epic, and summary reads that list."""
    report, context = run(temporal, group_plan())
    assert "completed" == report["status"]
    verdicts = context["review.verdict"]
    assert EPICS == [item_of(v) for v in verdicts]
    rows = report["agents"]
    for i in range(3):
        statuses = [rows[f"{m}[{i}]"]["status"] for m in ("story", "implement", "review")]
        assert ["succeeded"] * 3 == statuses
    ended = [e["id"] for e in report["events"] if e["event"] == "fan_out_item_succeeded"]
    assert ["per_epic[0]", "per_epic[1]", "per_epic[2]"] == sorted(ended)
    assert "succeeded" == rows["summary"]["status"]
    row = report["groups"]["per_epic"]["fan_out"]
    assert (3, 3, ["story", "implement", "review"]) == (
        row["items"],
        row["succeeded"],
        row["members"],
    )


def test_a_slow_item_holds_back_no_other(temporal: TemporalHarness) -> None:
    """Item 0's story takes 50 s; items 1 and 2 run their whole chain meanwhile: the report
    shows both reviews succeeded while item 0 still runs (then the run is cancelled)."""
    plan = group_plan("{echo_inputs: true, item_durations: {'0': 500}}")

    async def go(handle: WorkflowHandle[Any, Any]) -> dict[str, Any]:
        def others_done(status: dict[str, Any]) -> bool:
            rows = status["agents"]
            return all(rows.get(f"review[{i}]", {}).get("status") == "succeeded" for i in (1, 2))

        status = await until_status(handle, others_done, "items 1 and 2 reviewed", timeout_s=45)
        await handle.cancel()
        return status

    status = temporal.with_plan(plan, go, time_scale=0.1, simulate=True)
    rows = status["agents"]
    assert "running" == rows["story[0]"]["status"]
    assert "running" == rows["review[0]"]["status"]
    row = status["groups"]["per_epic"]["fan_out"]
    assert (3, 2, 1) == (row["items"], row["succeeded"], row["running"])


def test_a_failing_item_of_a_group_under_at_least(temporal: TemporalHarness) -> None:
    """Item 1's story always fails and at least 2 of 3 items must pass: the group goes on
    (partial), item 1's review slot holds review's default."""
    report, context = run(
        temporal,
        group_plan("{echo_inputs: true, fail_items: [1]}", ", success_criteria: {at_least: 2}"),
    )
    assert "completed" == report["status"]
    verdicts = context["review.verdict"]
    assert ["accounts", "skipped", "payments"] == [
        v if isinstance(v, str) else item_of(v) for v in verdicts
    ]
    assert "failed" == report["agents"]["story[1]"]["status"]
    group = report["groups"]["per_epic"]
    assert ("partial", ["continue_with_partial"]) == (
        group["status"],
        [h["decision"] for h in group["barrier"]["history"]],
    )
    # the group-level barrier judges items (each a chain of agents), and says so
    assert "2/3 succeeded, at least 2 item(s) succeed" in group["barrier"]["reason"]


def test_an_unchanged_item_is_a_cache_hit(temporal: TemporalHarness) -> None:
    """With the cross-run output cache on, a rerun whose list changed only at item 1 serves
    dev[0] and dev[2] from the cache and runs dev[1] again (item and index are its inputs)."""
    tag = uuid.uuid4().hex[:8]
    caching = "caching_system:\n  cache_levels:\n    agent_output_cache: {ttl: 1h}\n"
    first, _ = run(temporal, fan_out_plan(["a", "b", "c"], group=caching, name=f"cache-{tag}"))
    second, context = run(
        temporal, fan_out_plan(["a", "B", "c"], group=caching, name=f"cache-{tag}")
    )
    assert "completed" == first["status"] == second["status"]
    assert [True, False, True] == [second["agents"][f"dev[{i}]"]["cached"] for i in range(3)]
    assert ["a", "B", "c"] == [entry["inputs"]["item"] for entry in context["dev.code"]]


def test_a_run_continues_as_new_across_a_fan_out(temporal: TemporalHarness) -> None:
    """continue_as_new_after a few events: the run hands on at a group boundary after the
    fan-out, and the next run still knows each instance and the collected list."""
    plan = fan_out_plan(STORIES, name="fan-out-continued")

    async def go(handle: WorkflowHandle[Any, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        return await handle.result(), await handle.query(PlanWorkflow.context)

    # 20 events: past what the first group writes (~6 per agent since liveness came from the
    # server), reached during the fan-out, so the run hands on at the boundary after it
    report, context = temporal.with_plan(
        plan, go, time_scale=0.1, simulate=True, continue_as_new_after=20
    )
    assert "completed" == report["status"]
    events = [e["event"] for e in report["events"]]
    assert events.index("fan_out_ended") < events.index("continued_as_new")
    assert STORIES == [entry["inputs"]["item"] for entry in context["dev.code"]]
    assert ["succeeded"] * 5 == [report["agents"][f"dev[{i}]"]["status"] for i in range(5)]


def test_a_large_fan_out_starts_its_instances_a_chunk_per_workflow_task(
    temporal: TemporalHarness,
) -> None:
    """120 items: the instances start 50 per workflow task (a short timer between chunks, so no
    task outlasts the deadlock detector, named in the Web UI), and every item still runs and
    collects in order."""
    items = [f"s{i}" for i in range(120)]

    async def go(handle: WorkflowHandle[Any, Any]) -> tuple[dict[str, Any], dict[str, Any], int]:
        report = await handle.result()
        history = await handle.fetch_history()
        chunk_timer = "start the next chunk of agent instances"
        named = [
            json.loads(e.user_metadata.summary.data or b"null")
            for e in history.events
            if e.HasField("timer_started_event_attributes")
        ]
        timers = named.count(chunk_timer)
        return report, await handle.query(PlanWorkflow.context), timers

    report, context, timers = temporal.with_plan(
        fan_out_plan(items, name="fan-out-chunks"), go, time_scale=0.1, simulate=True
    )
    assert "completed" == report["status"]
    assert 120 == report["groups"]["dev"]["fan_out"]["succeeded"]
    assert items == [entry["inputs"]["item"] for entry in context["dev.code"]]
    assert timers >= 2


def test_a_group_fan_out_timeout_goes_on_without_the_slow_item(temporal: TemporalHarness) -> None:
    """timeout 60 s (6 s here) and at least 2 of 3 items: item 0's story takes 500 s, so at the
    deadline its child is cancelled and the group passes partial, item 0's slot holding
    review's default."""
    plan = group_plan(
        "{echo_inputs: true, item_durations: {'0': 500}}",
        ", timeout: 60s, success_criteria: {at_least: 2}",
    )
    report, context = run(temporal, plan)
    assert "completed" == report["status"]
    assert "skipped" == context["review.verdict"][0]
    assert EPICS[1:] == [item_of(v) for v in context["review.verdict"][1:]]
    assert "cancelled" == report["agents"]["story[0]"]["status"]
    group = report["groups"]["per_epic"]
    assert ("partial", ["continue_with_partial"]) == (
        group["status"],
        [h["decision"] for h in group["barrier"]["history"]],
    )


async def report_ran_and_context(
    handle: WorkflowHandle[Any, Any],
) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    """A resumed run's report, the agents it ran (run_agent activities, in order) and its
    context."""
    report = await handle.result()
    history = await handle.fetch_history()
    ran = [
        e.activity_task_scheduled_event_attributes.activity_id
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "run_agent"
    ]
    return report, ran, await handle.query(PlanWorkflow.context)


def test_resume_reuses_a_fan_out_that_passed(temporal: TemporalHarness) -> None:
    """Run 1 fails in qa after the fan-out passed; `--resume-from` (load_resume) reuses the
    fan-out: run 2 runs only qa, which reads run 1's collected dev.code."""
    name = f"fan-out-resume-{uuid.uuid4().hex[:8]}"
    broken = fan_out_plan(STORIES, name=name)
    qa = broken.agent("qa")
    qa.settings = {**qa.settings, "fail_times": "always"}
    qa.retry = type(qa.retry)(max_attempts=1, initial_interval_s=0.1)

    async def first(handle: WorkflowHandle[Any, Any]) -> tuple[dict[str, Any], Any]:
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        context = await handle.query(PlanWorkflow.context)
        return context, await load_resume(temporal.client, broken, handle.id)

    first_context, resume = temporal.with_plan(broken, first, time_scale=0.1, simulate=True)
    assert ["sm", "dev"] == resume.passed_groups

    report, ran, context = temporal.with_plan(
        fan_out_plan(STORIES, name=name),
        report_ran_and_context,
        time_scale=0.1,
        simulate=True,
        resume=resume,
    )
    assert "completed" == report["status"]
    assert ["qa"] == ran
    assert report["agents"]["dev"]["resumed"]
    assert first_context["dev.code"] == context["qa.out"]["inputs"]["dev.code"]


def test_a_private_pool_bounds_how_many_items_run_at_once(temporal: TemporalHarness) -> None:
    """concurrent_agent_limit 2 and four epics: a child cannot lease from the parent's pool, so
    at most two items run at once (their recorded spans never overlap three deep)."""
    pool = (
        "resource_manager:\n  resource_pool:\n    computational:\n"
        "      total_cpu_units: 100\n      total_memory_units: 100\n"
        "      concurrent_agent_limit: 2\n"
    )
    text = f"""\
name: pooled_fan_out
agents:
  po: {{kind: simulate, duration: 1s, outputs: [epics], values: {{epics: [a, b, c, d]}}}}
  story: {{kind: simulate, duration: 1s, inputs: [item], outputs: [text]}}
  review: {{kind: simulate, duration: 1s, inputs: [story.text], outputs: [verdict]}}
groups:
  per_epic: {{agents: [story, review], for_each: po.epics}}
{pool}"""
    report, _ = run(temporal, compile_plan(loads_plan(text, file="pooled.yaml")))
    assert "completed" == report["status"]
    rows = report["agents"]
    spans = [
        (rows[f"story[{i}]"]["started_at"], rows[f"review[{i}]"]["finished_at"]) for i in range(4)
    ]
    deepest = max(sum(s <= at < e for s, e in spans) for at, _ in spans)
    assert 2 == deepest


def test_batch_mode_runs_the_instances_in_agent_batch_children(temporal: TemporalHarness) -> None:
    """In batch mode (PlanRunInput.batch) the instances run in AgentBatchWorkflow children like
    any agent, and still collect in item order."""

    async def go(handle: WorkflowHandle[Any, Any]) -> tuple[dict[str, Any], dict[str, Any], int]:
        report = await handle.result()
        history = await handle.fetch_history()
        children = sum(
            e.HasField("start_child_workflow_execution_initiated_event_attributes")
            for e in history.events
        )
        return report, await handle.query(PlanWorkflow.context), children

    report, context, children = temporal.with_plan(
        fan_out_plan(STORIES, name="fan-out-batch"),
        go,
        time_scale=0.1,
        simulate=True,
        batch=BatchSpec(chunk_size=2, window=4),
    )
    assert "completed" == report["status"]
    assert children >= 3
    assert STORIES == [entry["inputs"]["item"] for entry in context["dev.code"]]


def test_resume_reruns_only_the_failed_items_of_a_fan_out(temporal: TemporalHarness) -> None:
    """Run 1: dev[2] always fails and every item is required, so the run fails; `--resume-from`
    reuses dev[0,1,3,4] (same item at the same index) and runs only dev[2] and qa."""
    name = f"fan-out-items-{uuid.uuid4().hex[:8]}"
    broken = fan_out_plan(STORIES, name=name, settings="{echo_inputs: true, fail_items: [2]}")
    notes: list[str] = []

    async def first(handle: WorkflowHandle[Any, Any]) -> Any:
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        return await load_resume(temporal.client, broken, handle.id, notes=notes)

    resume = temporal.with_plan(broken, first, time_scale=0.1, simulate=True)
    assert ["dev[0]", "dev[1]", "dev[3]", "dev[4]"] == sorted(resume.finished_items)
    assert any("4 finished fan-out item(s)" in note for note in notes)

    report, ran, context = temporal.with_plan(
        fan_out_plan(STORIES, name=name),
        report_ran_and_context,
        time_scale=0.1,
        simulate=True,
        resume=resume,
    )
    assert "completed" == report["status"]
    assert ["dev[2]", "qa"] == ran
    assert [True, True, False, True, True] == [
        report["agents"][f"dev[{i}]"]["resumed"] for i in range(5)
    ]
    assert STORIES == [entry["inputs"]["item"] for entry in context["dev.code"]]
