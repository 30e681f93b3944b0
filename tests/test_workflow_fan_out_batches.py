"""A large fan-out's items in batch children (issue 16, item 5 of the speed goal), on a real
dev server: one child PlanWorkflow runs many items' chains, each item's chain in groups of its
own (pee.engine.compile.fan_out_slice.batch_plan). The thresholds are lowered through
PlanRunInput.fan_out_batching so a few items take the path a thousand take by default. Every
run is replayed afterwards (TemporalHarness.with_plan).
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowQueryFailedError
from temporalio.service import RPCError

from pee.engine.compiled import CompiledPlan
from pee.engine.rules.fan_out_barrier import MAX_ITEMS
from pee.runtime.resume import load_resume
from pee.stores.payloads import DEFAULT_THRESHOLD
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.types import FanOutBatching
from tests.helpers import TemporalHarness, async_eventually
from tests.test_workflow_fan_out import EPICS, STORIES, fan_out_plan, group_plan, item_of

# every fan-out batched, two items (of up to three agents) per child
TWO_PER_CHILD = FanOutBatching(above=0, group_above=0, child_agents=6)


async def finished(
    handle: WorkflowHandle[Any, Any],
) -> tuple[dict[str, Any], dict[str, Any], list[str], list[str]]:
    """The report, the final context, the child workflow ids and the run_agent activity ids
    of the parent's history."""
    try:
        report = await handle.result()
    except WorkflowFailureError as err:
        report = err.cause.details[0]  # type: ignore[union-attr]
    events = (await handle.fetch_history()).events
    children = [
        e.start_child_workflow_execution_initiated_event_attributes.workflow_id
        for e in events
        if e.HasField("start_child_workflow_execution_initiated_event_attributes")
    ]
    activities = [
        e.activity_task_scheduled_event_attributes.activity_id
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "run_agent"
    ]
    return report, await handle.query(PlanWorkflow.context), children, activities


def run(
    temporal: TemporalHarness, plan: CompiledPlan, batching: FanOutBatching | None, **more: Any
) -> tuple[dict[str, Any], dict[str, Any], list[str], list[str]]:
    return temporal.with_plan(  # type: ignore[no-any-return]
        plan, finished, time_scale=0.1, simulate=True, fan_out_batching=batching, **more
    )


def resume_after_failure(
    temporal: TemporalHarness, broken: CompiledPlan, batching: FanOutBatching | None
) -> Any:
    """Run `broken` to its failure; what `--resume-from` that run would load (ResumeFrom)."""

    async def failed(handle: WorkflowHandle[Any, Any]) -> Any:
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        return await load_resume(temporal.client, broken, handle.id)

    return temporal.with_plan(
        broken, failed, time_scale=0.1, simulate=True, fan_out_batching=batching
    )


def spans(children: list[str]) -> list[str]:
    return [child.rpartition("/")[2] for child in children]


def test_a_group_fan_out_runs_its_items_in_batch_children(temporal: TemporalHarness) -> None:
    """Three epics, two per child: two children ([0..1], [2..2]); each review verdict comes
    from its own epic through its own chain, in epic order; rows `member[i]` as before."""
    report, context, children, _ = run(temporal, group_plan(), TWO_PER_CHILD)
    assert "completed" == report["status"]
    assert ["per_epic[0..1]", "per_epic[2..2]"] == spans(children)
    assert EPICS == [item_of(v) for v in context["review.verdict"]]
    rows = report["agents"]
    assert all(
        rows[f"{m}[{i}]"]["status"] == "succeeded"
        for m in ("story", "implement", "review")
        for i in range(3)
    )
    assert "succeeded" == rows["summary"]["status"]
    assert (3, 3) == (
        report["groups"]["per_epic"]["fan_out"]["items"],
        report["groups"]["per_epic"]["fan_out"]["succeeded"],
    )


def test_a_failing_item_ends_only_its_own_chain_in_a_batch(temporal: TemporalHarness) -> None:
    """Item 1's story fails in the child it shares with item 0: item 0 still passes, item 1's
    later members are skipped, and under at_least 2 the group goes on with review's default."""
    plan = group_plan("{echo_inputs: true, fail_items: [1]}", ", success_criteria: {at_least: 2}")
    report, context, _, _ = run(temporal, plan, TWO_PER_CHILD)
    assert "completed" == report["status"]
    assert ["accounts", "skipped", "payments"] == [
        v if isinstance(v, str) else item_of(v) for v in context["review.verdict"]
    ]
    rows = report["agents"]
    assert ["failed", "skipped", "skipped"] == [
        rows[f"{m}[1]"]["status"] for m in ("story", "implement", "review")
    ]
    assert "succeeded" == rows["review[0]"]["status"]
    assert "partial" == report["groups"]["per_epic"]["status"]


def test_a_slow_item_holds_back_no_other_item_of_its_batch(temporal: TemporalHarness) -> None:
    """All three epics in one child; item 0's story takes 50 s: items 1 and 2 finish their
    whole chain in that child meanwhile (its status says so), then the run is cancelled."""
    plan = group_plan("{echo_inputs: true, item_durations: {'0': 500}}")

    async def go(handle: WorkflowHandle[Any, Any]) -> dict[str, Any]:
        child = temporal.client.get_workflow_handle(f"{handle.id}/per_epic[0..2]")

        def others_done(status: dict[str, Any]) -> bool:
            rows = status["agents"]
            return all(rows.get(f"review[{i}]", {}).get("status") == "succeeded" for i in (1, 2))

        async def reviewed() -> dict[str, Any] | None:
            status: dict[str, Any] = await child.query(PlanWorkflow.status)
            return status if others_done(status) else None

        # the parent marks its items running before their child exists: a query may find no
        # child (RPCError) or one whose first task has not run (WorkflowQueryFailedError)
        status = await async_eventually(
            reviewed,
            what="items 1 and 2 reviewed in the batch child",
            timeout_s=45,
            ignore=(RPCError, WorkflowQueryFailedError),
        )
        await handle.cancel()
        return status

    status = temporal.with_plan(
        plan,
        go,
        time_scale=0.1,
        simulate=True,
        fan_out_batching=FanOutBatching(above=0, group_above=0, child_agents=9),
    )
    rows = status["agents"]
    assert "running" == rows["story[0]"]["status"]
    assert "pending" == rows["review[0]"]["status"]


def test_a_large_agent_level_fan_out_runs_in_batch_children(temporal: TemporalHarness) -> None:
    """Above the threshold an agent-level fan-out's instances run in batch children (no
    `dev[i]` activity in the parent), dev.code still lists the items in order, qa reads it."""
    batching = FanOutBatching(above=2, child_agents=2)
    report, context, children, activities = run(temporal, fan_out_plan(STORIES), batching)
    assert "completed" == report["status"]
    assert ["dev[0..1]", "dev[2..3]", "dev[4..4]"] == spans(children)
    assert ["sm", "qa"] == activities
    assert STORIES == [entry["inputs"]["item"] for entry in context["dev.code"]]
    assert all(report["agents"][f"dev[{i}]"]["status"] == "succeeded" for i in range(5))


def test_max_parallel_bounds_the_items_of_batch_children(temporal: TemporalHarness) -> None:
    """max_parallel 2: batches of at most two items, one child at a time, so no three items'
    spans overlap."""
    report, _, children, _ = run(
        temporal,
        fan_out_plan(STORIES, dev="    max_parallel: 2"),
        FanOutBatching(above=0, child_agents=10),
    )
    assert "completed" == report["status"]
    assert ["dev[0..1]", "dev[2..3]", "dev[4..4]"] == spans(children)
    rows = report["agents"]
    ranges = [(rows[f"dev[{i}]"]["started_at"], rows[f"dev[{i}]"]["finished_at"]) for i in range(5)]
    assert 2 == max(sum(s <= at < e for s, e in ranges) for at, _ in ranges)


def test_an_unchanged_item_is_a_cache_hit_in_batch_children(temporal: TemporalHarness) -> None:
    """With the output cache on, a rerun whose list changed only at item 1 serves dev[0] and
    dev[2] from the cache inside the batch children."""
    tag = uuid.uuid4().hex[:8]
    caching = "caching_system:\n  cache_levels:\n    agent_output_cache: {ttl: 1h}\n"
    batching = FanOutBatching(above=0, child_agents=2)
    # items of their own: the cache is shared with every other test of this worker
    before = [f"a-{tag}", f"b-{tag}", f"c-{tag}"]
    after = [before[0], f"B-{tag}", before[2]]
    first, _, _, _ = run(
        temporal, fan_out_plan(before, group=caching, name=f"bcache-{tag}"), batching
    )
    second, context, _, _ = run(
        temporal, fan_out_plan(after, group=caching, name=f"bcache-{tag}"), batching
    )
    assert "completed" == first["status"] == second["status"]
    assert [True, False, True] == [second["agents"][f"dev[{i}]"]["cached"] for i in range(3)]
    assert after == [entry["inputs"]["item"] for entry in context["dev.code"]]


@pytest.mark.parametrize("batching", [None, TWO_PER_CHILD], ids=["child-per-item", "batches"])
def test_resume_reruns_only_the_failed_items_of_a_group_fan_out(
    temporal: TemporalHarness, batching: FanOutBatching | None
) -> None:
    """Run 1: item 1's story always fails and every item is required, so the run fails;
    `--resume-from` reuses items 0 and 2 (same epic at the same index) and runs only item 1's
    chain and summary."""
    name = f"group-fan-out-items-{uuid.uuid4().hex[:8]}"
    broken = group_plan("{echo_inputs: true, fail_items: [1]}")
    broken.name = name

    resume = resume_after_failure(temporal, broken, batching)
    assert ["per_epic[0]", "per_epic[2]"] == sorted(resume.finished_items)

    fixed = group_plan()
    fixed.name = name
    report, context, children, activities = run(temporal, fixed, batching, resume=resume)
    assert "completed" == report["status"]
    assert (["per_epic[1]"] if batching is None else ["per_epic[1..1]"]) == spans(children)
    assert ["summary"] == activities
    assert EPICS == [item_of(v) for v in context["review.verdict"]]
    assert [True, False, True] == [report["agents"][f"story[{i}]"]["resumed"] for i in range(3)]


def test_a_list_over_the_payload_threshold_leaves_the_parent_history_by_reference(
    temporal: TemporalHarness,
) -> None:
    """Six items of 60 KB each (a 360 KB list, over the 256 KiB External Storage threshold):
    the fan-out runs in batch children and collects in order, and no payload the parent's
    history holds reaches the threshold (the list and the collected results went to the
    payload store, the history holds references)."""
    # random hex: the lz4 codec cannot shrink it below the threshold
    big = [f"{i}:{secrets.token_hex(30_000)}" for i in range(6)]

    async def go(handle: WorkflowHandle[Any, Any]) -> tuple[dict[str, Any], Any, int]:
        report = await handle.result()
        history = await handle.fetch_history()
        largest = max(len(p.data) for e in history.events for p in payloads(e))
        return report, await handle.query(PlanWorkflow.context), largest

    report, context, largest = temporal.with_plan(
        fan_out_plan(big),
        go,
        time_scale=0.1,
        simulate=True,
        fan_out_batching=FanOutBatching(above=0, child_agents=2),
    )
    assert "completed" == report["status"]
    assert big == [entry["inputs"]["item"] for entry in context["dev.code"]]
    assert 0 < largest < DEFAULT_THRESHOLD


def payloads(message: Any) -> list[Any]:
    """Every temporal.api.common.v1.Payload inside a protobuf message (a history event)."""
    found: list[Any] = []
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        if field.message_type.GetOptions().map_entry:
            items = list(value.values())
        elif field.is_repeated:
            items = list(value)
        else:
            items = [value]
        for item in items:
            if not hasattr(item, "ListFields"):
                continue
            if item.DESCRIPTOR.full_name == "temporal.api.common.v1.Payload":
                found.append(item)
            else:
                found += payloads(item)
    return found


def test_a_list_of_more_than_the_item_bound_fails_the_run_naming_the_count(
    temporal: TemporalHarness,
) -> None:
    """50,000 items (the bound is MAX_ITEMS, 10,000): the run fails at the fan-out with
    FanOutSourceError's message naming the count and the bound, and no item runs."""
    report, _, children, activities = run(temporal, fan_out_plan(list(range(50_000))), None)
    assert "failed" == report["status"]
    assert f"50000 items, more than the {MAX_ITEMS}" in report["error"]
    assert ([], ["sm"]) == (children, activities)


def test_a_run_continues_as_new_across_a_batched_fan_out(temporal: TemporalHarness) -> None:
    """continue_as_new_after a few events, reached while the batch children run: the run hands
    on at the group boundary after the fan-out, and the next run still has every item's rows
    and the collected list (summary reads it)."""

    async def go(handle: WorkflowHandle[Any, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        return await handle.result(), await handle.query(PlanWorkflow.context)

    report, context = temporal.with_plan(
        group_plan(),
        go,
        time_scale=0.1,
        simulate=True,
        fan_out_batching=TWO_PER_CHILD,
        continue_as_new_after=15,
    )
    assert "completed" == report["status"]
    events = [e["event"] for e in report["events"]]
    assert events.index("fan_out_ended") < events.index("continued_as_new")
    assert EPICS == [item_of(v) for v in context["review.verdict"]]
    assert ["succeeded"] * 3 == [report["agents"][f"review[{i}]"]["status"] for i in range(3)]
    assert "succeeded" == report["agents"]["summary"]["status"]


def test_a_required_item_that_fails_reruns_in_a_fallback_batch_child(
    temporal: TemporalHarness,
) -> None:
    """Every item required, item 1's story always fails: after the batches, item 1 runs again
    in a fallback batch child `per_epic[1..1]#fallback`, fails there too, and the run fails
    naming it; items 0 and 2 stay succeeded."""
    plan = group_plan("{echo_inputs: true, fail_items: [1]}")
    report, _, children, _ = run(temporal, plan, TWO_PER_CHILD)
    assert "failed" == report["status"]
    assert ["per_epic[0..1]", "per_epic[2..2]", "per_epic[1..1]#fallback"] == spans(children)
    assert "per_epic[1]" in report["error"]
    assert ["abort_and_fallback", "fail"] == [
        h["decision"] for h in report["groups"]["per_epic"]["barrier"]["history"]
    ]
    assert ["succeeded", "failed", "succeeded"] == [
        report["agents"][f"story[{i}]"]["status"] for i in range(3)
    ]


def test_resume_reuses_the_finished_instances_of_a_batched_agent_fan_out(
    temporal: TemporalHarness,
) -> None:
    """Agent level in batch children: dev[2] always fails and every item is required, so run 1
    fails; `--resume-from` reuses dev[0, 1, 3, 4] and runs only dev[2] (in a batch child of its
    own) and qa."""
    name = f"batched-items-{uuid.uuid4().hex[:8]}"
    batching = FanOutBatching(above=0, child_agents=2)
    broken = fan_out_plan(STORIES, name=name, settings="{echo_inputs: true, fail_items: [2]}")

    resume = resume_after_failure(temporal, broken, batching)
    assert ["dev[0]", "dev[1]", "dev[3]", "dev[4]"] == sorted(resume.finished_items)
    report, context, children, activities = run(
        temporal, fan_out_plan(STORIES, name=name), batching, resume=resume
    )
    assert "completed" == report["status"]
    assert (["dev[2..2]"], ["qa"]) == (spans(children), activities)
    assert STORIES == [entry["inputs"]["item"] for entry in context["dev.code"]]
    assert [True, True, False, True, True] == [
        report["agents"][f"dev[{i}]"]["resumed"] for i in range(5)
    ]
