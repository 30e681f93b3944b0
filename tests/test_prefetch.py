"""Prefetching: while a group runs, the worker parses the template files and resolves the
artifact references of the group most likely to start next, and that group's agents use them.

Plan (each agent its own group): research (notes: a legacy `$artifact` reference, as a context
from before External Storage holds; title: a small value) -> draft (1.5 s, reads the title only)
-> writer (a template file reading research.notes and draft.text). When draft starts, writer's
group is next: one prefetch_group activity warms writer's template and research.notes.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from pee.activities import prefetch
from pee.activities.artifacts import ArtifactStore
from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import loads_plan
from pee.engine.rules.prefetch import next_groups, references, template_agents
from tests.helpers import TemporalHarness, group, sim

NOTES = "field notes " * 400  # ~4.8 KB

PLAN = """\
name: prefetch-{tag}
agents:
  research:
    kind: simulate
    duration: 100ms
    outputs: [notes, title]
    values: {{notes: {notes}, title: Field study}}
  draft: {{kind: simulate, duration: 1500ms, inputs: [research.title], outputs: [text]}}
  writer:
    kind: template
    template: doc.md
    inputs: [research.notes, draft.text]
    outputs: [doc]
"""


def scheduled(history: Any, activity_type: str) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_id
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == activity_type
    ]


def completed(history: Any, activity_type: str) -> bool:
    """Whether an activity of that type has completed."""
    ids = [
        e.event_id
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == activity_type
    ]
    return any(
        e.activity_task_completed_event_attributes.scheduled_event_id in ids
        for e in history.events
        if e.HasField("activity_task_completed_event_attributes")
    )


def test_the_next_groups_prefetched_template_and_value_are_used(
    temporal: TemporalHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer renders with research.notes although its artifact file was deleted after the
    prefetch (only the prefetched copy can have served it); the report counts 2 prefetch hits
    (template and value) and 1 request."""
    artifacts = tmp_path / "artifacts"
    monkeypatch.setenv("PEE_ARTIFACT_DIR", str(artifacts))
    prefetch.store().clear()
    (tmp_path / "doc.md").write_text("Notes: {{research.notes}}\nDraft: {{draft.text.agent}}\n")
    plan_file = tmp_path / "plan.yaml"
    # agents no longer write artifacts: research returns a reference to one stored beforehand
    reference = ArtifactStore(artifacts).put(NOTES.strip())
    plan_file.write_text(PLAN.format(tag=uuid.uuid4().hex[:8], notes=json.dumps(reference)))
    plan = compile_plan(loads_plan(plan_file.read_text(), file=str(plan_file)))

    async def body(handle: Any) -> tuple[dict, Any]:
        # wait for the prefetch to finish while draft still works, then remove the artifacts
        for _ in range(100):
            history = await handle.fetch_history()
            if completed(history, "prefetch_group"):
                break
            await asyncio.sleep(0.05)
        files = list(artifacts.rglob("*.json*"))
        assert 1 == len(files)
        for path in files:
            path.unlink()
        return await handle.result(), await handle.fetch_history()

    report, history = temporal.with_plan(plan, body)
    assert "completed" == report["status"]
    assert ["prefetch#" + report["agents"]["writer"]["group"]] == scheduled(
        history, "prefetch_group"
    )
    rendered = report_doc(temporal, report)
    assert rendered.startswith("Notes: " + NOTES.strip())
    prefetched = report["cache"]["prefetch"]
    assert (2, 0, 1, 2) == (
        prefetched["hits"],
        prefetched["misses"],
        prefetched["requests"],
        prefetched["prefetched"],
    )
    assert {"hits": 0, "misses": 1, "hit_ratio": 0.0} == report["cache"]["template_render"]


def report_doc(temporal: TemporalHarness, report: dict) -> str:
    """writer.doc from the closed run's context (a value: nothing writes artifacts now)."""
    from pee.runtime.worker import build_worker
    from pee.workflows.plan_workflow import PlanWorkflow

    async def go() -> str:
        handle = temporal.client.get_workflow_handle(report["workflow_id"], run_id=report["run_id"])
        description = await handle.describe()
        async with build_worker(temporal.client, description.task_queue, activities=False):
            context = await handle.query(PlanWorkflow.context)
        return ArtifactStore.default().resolve(context["writer.doc"])

    return temporal.run(go())


def test_next_groups_are_the_waiting_dependents_whose_other_dependencies_passed() -> None:
    """g1 starts: g2 (needs only g1) is next; g3 (also needs the pending g2) is not; g4, which
    needs g0 (passed) and g1, is next too."""
    groups = [
        group("g0", ["z"]),
        group("g1", ["a"], ["g0"]),
        group("g2", ["b"], ["g1"]),
        group("g3", ["c"], ["g1", "g2"]),
        group("g4", ["d"], ["g0", "g1"]),
    ]
    status = {"g0": "succeeded", "g1": "running", "g2": "pending", "g3": "pending", "g4": "pending"}
    assert ["g2", "g4"] == [
        g.id for g in next_groups(groups, "g1", status, ("succeeded", "partial"))
    ]


def test_what_is_prefetched_templates_files_and_existing_references() -> None:
    """Template agents with a file (not a built-in); references among values that exist, once."""
    ref = {"$artifact": "sha256:ab", "size": 9, "preview": "x"}
    file_agent = sim("w", "g", 0, kind="template", inputs=["a.out"], template="doc.md")
    builtin = sim("p", "g", 0, kind="template", inputs=["a.out", "b.out"], template="builtin:prd")
    values = {"a.out": {"nested": [ref]}}
    assert [file_agent] == template_agents([file_agent, builtin])
    assert [ref] == references([file_agent, builtin], values.__contains__, values.__getitem__)


def test_the_recorded_cache_levels_history_holds_one_prefetch_and_two_snapshots() -> None:
    """tests/histories/cache_levels.json (replayed by test_replay): the patch marker, one
    prefetch_group for `second`, one snapshot local activity per passed barrier; plain.json,
    recorded before them, has none and still replays (its run takes the unpatched branch)."""
    from tests.test_replay import load

    def commands(name: str) -> list[str]:
        found = []
        for event in load(name).events:
            if event.HasField("marker_recorded_event_attributes"):
                found.append(event.marker_recorded_event_attributes.marker_name)
            elif event.HasField("activity_task_scheduled_event_attributes"):
                found.append(event.activity_task_scheduled_event_attributes.activity_type.name)
        return found

    recorded = commands("cache_levels")
    assert ["core_patch", "prefetch_group"] == recorded[:2]
    assert 2 == recorded.count("core_local_activity")
    assert ["run_agent"] * 3 == commands("plain")
