"""Resume (`run --resume-from`): a new run reuses the groups an earlier run passed and their
context values, runs only the rest, and `from_group` forces a group and its dependents again.

Plan: g1 (a ‖ b) → g2 (c reads a.out) → g3 (d reads c.out); run 1 fails at g2. The context
comes from the snapshot stored after g1's barrier, or from the `context` query without one."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError

from pee.activities.snapshot_cache import SnapshotCache
from pee.runtime.inspect import report_from_failure
from pee.runtime.resume import (
    ResumeError,
    last_snapshot,
    load_resume,
    passed_after,
    resume_input,
    snapshot_context,
)
from pee.workflows.plan_workflow import PlanWorkflow, rerun_groups
from pee.workflows.types import ResumeFrom
from tests.helpers import NO_RETRY, TemporalHarness, compiled_plan, group, sim


def plan(name: str, broken: bool) -> Any:
    failing = {"fail_times": "always", "retry": NO_RETRY} if broken else {}
    return compiled_plan(
        [
            sim("a", "g1", 0.1),
            sim("b", "g1", 0.1),
            sim("c", "g2", 0.1, inputs=["a.out"], **failing),
            sim("d", "g3", 0.1, inputs=["c.out"]),
        ],
        [group("g1", ["a", "b"]), group("g2", ["c"], ["g1"]), group("g3", ["d"], ["g2"])],
        name=name,
    )


def executed(history: Any) -> list[str]:
    """Activity ids of the run_agent activities the run scheduled, in order."""
    return [
        e.activity_task_scheduled_event_attributes.activity_id
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "run_agent"
    ]


def failed_run(
    temporal: TemporalHarness, name: str, prepare: Any = None, notes: list[str] | None = None
) -> tuple[dict, dict, ResumeFrom]:
    """Run 1 (g2 fails): its report, its context, and the ResumeFrom the starter builds
    (after ``prepare(report)``, when given, has had its way with the snapshot cache)."""
    broken = plan(name, broken=True)

    async def body(handle):
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result()
        report = report_from_failure(caught.value)
        context = await handle.query(PlanWorkflow.context)
        if prepare is not None:
            prepare(report)
        # what `run --resume-from` does (the worker is still up to answer the query)
        loaded = await load_resume(temporal.client, broken, handle.id, notes=notes)
        return report, context, loaded

    return temporal.with_plan(broken, body)


def resumed_run(temporal: TemporalHarness, name: str, resume: ResumeFrom) -> tuple[dict, list]:
    async def body(handle):
        report = await handle.result()
        return report, executed(await handle.fetch_history())

    return temporal.with_plan(plan(name, broken=False), body, resume=resume)


def test_resume_skips_passed_groups_and_reuses_their_values(temporal: TemporalHarness) -> None:
    """Run 2 of the fixed plan: g1's agents never run again, g2 and g3 run, values equal run 1's."""
    name = f"resume-{uuid.uuid4().hex[:8]}"
    first, first_context, resume = failed_run(temporal, name)
    assert "failed" == first["status"]
    assert ["g1"] == resume.passed_groups
    report, activities = resumed_run(temporal, name, resume)
    assert "completed" == report["status"]
    assert ["c", "d"] == activities
    assert resume.workflow_id == report["resumed_from"]
    assert {"a": True, "b": True, "c": False, "d": False} == {
        agent_id: entry["resumed"] for agent_id, entry in report["agents"].items()
    }
    assert "succeeded" == report["groups"]["g1"]["status"]
    assert report["groups"]["g1"]["resumed"]
    # the reused values are run 1's, byte for byte, and so is g1's snapshot hash
    assert first["snapshots"]["g1"] == report["snapshots"]["g1"]
    assert sorted(report["snapshots"]) == ["g1", "g2", "g3"]
    assert first_context["a.out"] == report_context(temporal, report)["a.out"]


def report_context(temporal: TemporalHarness, report: dict) -> dict:
    async def go():
        handle = temporal.client.get_workflow_handle(report["workflow_id"], run_id=report["run_id"])
        from pee.runtime.worker import build_worker

        description = await handle.describe()
        async with build_worker(temporal.client, description.task_queue, activities=False):
            return await handle.query(PlanWorkflow.context)

    return temporal.run(go())


def test_from_group_runs_that_group_and_its_dependents_again(temporal: TemporalHarness) -> None:
    """from_group g1: every group depends on it, so every agent runs again."""
    name = f"resume-{uuid.uuid4().hex[:8]}"
    _, _, resume = failed_run(temporal, name)
    resume.from_group = "g1"
    report, activities = resumed_run(temporal, name, resume)
    assert "completed" == report["status"]
    assert ["a", "b", "c", "d"] == sorted(activities)
    assert not any(entry["resumed"] for entry in report["agents"].values())


def test_rerun_groups_is_the_group_and_its_transitive_dependents() -> None:
    """g2 → g3 depends on it; g1 (upstream) does not run again; None runs nothing again."""
    groups = plan("p", broken=False).groups
    assert {"g2", "g3"} == rerun_groups(groups, "g2")
    assert set() == rerun_groups(groups, None)


def test_resume_input_takes_the_passed_groups_and_refuses_an_unknown_group() -> None:
    """Only groups that passed (succeeded or partial) are reused; a typo'd group is an error."""
    compiled = plan("p", broken=False)
    report = {
        "run_id": "r1",
        "groups": {
            "g1": {"status": "partial"},
            "g2": {"status": "failed"},
            "g3": {"status": "cancelled"},
        },
    }
    resume = resume_input(compiled, "wf", report, {"a.out": 1}, "g2")
    assert ResumeFrom("wf", "r1", "g2", {"a.out": 1}, ["g1"]) == resume
    with pytest.raises(ResumeError, match="not a group"):
        resume_input(compiled, "wf", report, {}, "nope")


def test_run_options_build_an_unfilled_resume() -> None:
    """`run PLAN --resume-from W --from-group G` puts W and G in the input; the starter fills
    the rest (pee.runtime.runner)."""
    import argparse

    from pee.cli.plan_input import build_run_input
    from pee.cli.run_commands import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["run", "plan.yaml", "--resume-from", "W", "--from-group", "g2"])
    run_input = build_run_input(args, plan("p", broken=False), note_to=None)
    assert ResumeFrom("W", None, "g2") == run_input.resume
    plain = build_run_input(parser.parse_args(["run", "plan.yaml"]), plan("p", broken=False))
    assert plain.resume is None


# --- the context snapshot cache -------------------------------------------------------------


def test_a_failed_run_stores_a_snapshot_of_each_passed_group(temporal: TemporalHarness) -> None:
    """Run 1 fails at g2: one stored snapshot, g1's, keyed by group and content hash, holding
    the context at g1's barrier."""
    name = f"resume-{uuid.uuid4().hex[:8]}"
    first, context, _ = failed_run(temporal, name)
    (entry,) = first["context_snapshots"]
    assert ("g1", True) == (entry["group"], entry["stored"])
    assert entry["key"].startswith("g1#")
    stored = SnapshotCache().get(entry["key"])
    assert {"a.out", "b.out"} <= set(stored)
    assert context["a.out"] == stored["a.out"]
    assert 1 == first["cache"]["context_snapshot"]["stored"]


def test_resume_reuses_the_snapshot_of_the_last_passed_group(temporal: TemporalHarness) -> None:
    """load_resume takes the context from the stored snapshot, not from the run's history: a
    value changed in the store is the value the resumed run gets; the report counts a hit."""
    name = f"resume-{uuid.uuid4().hex[:8]}"

    def tamper(report: dict) -> None:
        key = report["context_snapshots"][-1]["key"]
        cache = SnapshotCache()
        cache.put(
            key,
            {**cache.get(key), "a.out": "from the snapshot"},
            workflow_id=report["workflow_id"],
            run_id=report["run_id"],
            plan=name,
            group_id="g1",
        )

    notes: list[str] = []
    first, _, resume = failed_run(temporal, name, tamper, notes)
    key = first["context_snapshots"][-1]["key"]
    assert key == resume.snapshot_key
    assert [f"context from snapshot {key}"] == notes
    report, activities = resumed_run(temporal, name, resume)
    assert ["c", "d"] == activities
    assert "from the snapshot" == report_context(temporal, report)["a.out"]
    assert key == report["resumed_snapshot"]
    assert (1, 0) == (
        report["cache"]["context_snapshot"]["hits"],
        report["cache"]["context_snapshot"]["misses"],
    )


def test_resume_without_a_snapshot_falls_back_to_the_query_and_says_so(
    temporal: TemporalHarness,
) -> None:
    """Snapshots cleared: the context comes from the `context` query, the note says why, the
    resumed run still skips g1 and counts a snapshot miss."""
    name = f"resume-{uuid.uuid4().hex[:8]}"
    cleared: list[int] = []
    notes: list[str] = []
    _, context, resume = failed_run(
        temporal, name, lambda report: cleared.append(SnapshotCache().clear(plan=name)), notes
    )
    assert [1] == cleared
    assert resume.snapshot_key is None
    assert context["a.out"] == resume.context["a.out"]
    (note,) = notes
    assert "is not in the context snapshot cache" in note and "by query" in note
    report, activities = resumed_run(temporal, name, resume)
    assert ["c", "d"] == activities
    assert report["resumed_snapshot"] is None
    assert (0, 1) == (
        report["cache"]["context_snapshot"]["hits"],
        report["cache"]["context_snapshot"]["misses"],
    )


def test_last_snapshot_skips_groups_that_did_not_pass_and_unstored_ones() -> None:
    """Only stored snapshots of passed groups count; the last one wins. It covers the groups
    that passed up to it: g4 passed after it (its snapshot left out as the run completed, or
    its store failed), resumed g0 was in the context from the start."""
    report = {
        "groups": {
            "g0": {"status": "succeeded", "resumed": True},
            "g1": {"status": "succeeded"},
            "g2": {"status": "partial"},
            "g3": {"status": "failed"},
            "g4": {"status": "succeeded"},
        },
        "context_snapshots": [
            {"group": "g1", "key": "g1#a", "stored": True},
            {"group": "g2", "key": "g2#b", "stored": True},
            {"group": "g3", "key": "g3#c", "stored": True},
            {"group": "g2", "key": "g2#d", "stored": False},
            {"group": "g4", "key": "g4#e", "stored": False, "final": True},
        ],
    }
    entry = last_snapshot(report)
    assert "g2#b" == entry["key"]
    assert ["g4"] == passed_after(report, entry)
    # why the resume reads the context by query instead, as its Resuming line says
    assert "(a completed run does not store its final context)" in snapshot_context(report)[2]
    del report["context_snapshots"][-1]["final"]
    assert (
        "g4 passed after the last stored snapshot (their snapshots were not stored)"
        in (snapshot_context(report)[2])
    )
    report["groups"]["g4"]["status"] = "cancelled"
    assert [] == passed_after(report, entry)
    assert last_snapshot({"groups": {}, "context_snapshots": []}) is None


def test_a_completed_run_is_resumed_from_its_history_with_its_last_group(
    temporal: TemporalHarness,
) -> None:
    """A completed run leaves its final snapshot out (g3's: listed `final`, not stored), so a
    resume of it reads the context by query: g3's value is there, the note says why, and
    `--from-group g3` runs d alone again."""
    name = f"resume-{uuid.uuid4().hex[:8]}"
    fixed = plan(name, broken=False)
    notes: list[str] = []

    async def body(handle):
        report = await handle.result()
        loaded = await load_resume(temporal.client, fixed, handle.id, "g3", notes=notes)
        return report, await handle.query(PlanWorkflow.context), loaded

    first, context, resume = temporal.with_plan(fixed, body)
    assert [("g1", True, False), ("g2", True, False), ("g3", False, True)] == [
        (entry["group"], entry["stored"], entry.get("final", False))
        for entry in first["context_snapshots"]
    ]
    assert resume.snapshot_key is None
    assert context["c.out"] == resume.context["c.out"] and "d.out" in resume.context
    (note,) = notes
    assert "g3 passed after the last stored snapshot" in note and "by query" in note
    report, activities = resumed_run(temporal, name, resume)
    assert ("completed", ["d"]) == (report["status"], activities)
