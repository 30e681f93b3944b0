"""A batch run continues as new once the children it started have ended
(pee.workflows.continuation.children_ended): a child still open at the drain (here the one whose
agent the barrier cut short, still taking its cancel in) would otherwise complete while the
worker completes the continue-as-new task, which the server then refuses (UnhandledCommand)
and the worker retries after replaying the whole history."""

from __future__ import annotations

import json
from typing import Any

from temporalio.client import WorkflowHandle

from pee.runtime.inspect import run_histories
from pee.workflows.revision import REVISION
from pee.workflows.types import BatchSpec
from tests.helpers import TemporalHarness
from tests.test_large_plans import partial_plan

Handle = WorkflowHandle[Any, Any]

CHILD_CLOSED = (
    "child_workflow_execution_completed_event_attributes",
    "child_workflow_execution_canceled_event_attributes",
    "child_workflow_execution_failed_event_attributes",
)


def test_a_batch_run_continues_as_new_after_its_children_have_ended(
    temporal: TemporalHarness,
) -> None:
    """g cuts `slow` short (partial); the run drains as soon as g has ended
    (continue_as_new_after 1) and continues as new only after slow's child has closed: in the
    first run's history every child's closing event comes before the continue-as-new; the run
    is one of the engine's revision (its one patch marker stands for CHILDREN_PATCH)."""

    async def body(handle: Handle) -> tuple[dict[str, Any], list[Any]]:
        report = await handle.result()
        return report, await run_histories(temporal.client, handle.id)

    report, chain = temporal.with_plan(
        partial_plan(),
        body,
        heartbeat_timeout_s=1.0,
        batch=BatchSpec(chunk_size=10, window=2),
        continue_as_new_after=1,
    )
    assert "completed" == report["status"]
    assert "succeeded" == report["agents"]["after"]["status"]
    assert len(chain) >= 2, "the run never continued as new"
    _run_id, first = chain[0]
    kinds = [event.WhichOneof("attributes") or "" for event in first.events]
    assert "workflow_execution_continued_as_new_event_attributes" == kinds[-1]
    started = kinds.count("start_child_workflow_execution_initiated_event_attributes")
    closed = sum(kinds.count(kind) for kind in CHILD_CLOSED)
    assert started >= 1
    assert started == closed, "continued as new with a child still open"
    patches = [
        event.marker_recorded_event_attributes.details["patch-data"].payloads[0].data
        for event in first.events
        if event.marker_recorded_event_attributes.marker_name == "core_patch"
    ]
    # one marker, the revision's: CHILDREN_PATCH applies without its own
    assert [REVISION] == [json.loads(data)["id"] for data in patches]
