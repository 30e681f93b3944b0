"""The example plans users are pointed at run end to end on a real dev server."""

from __future__ import annotations

from pathlib import Path

import pytest

from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import load_plan
from tests.helpers import TemporalHarness

ROOT = Path(__file__).resolve().parent.parent


def run_example(temporal: TemporalHarness, path: str, **variables: str):
    compiled = compile_plan(load_plan(ROOT / path, variables))

    async def body(handle):
        report = await handle.result()
        context = await handle.query("context")
        return report, context

    return compiled, *temporal.with_plan(compiled, body)


@pytest.mark.parametrize(
    "path", ["plans/seed.yaml", "plans/bmad-greenfield.yaml", "plans/demo.yaml"]
)
def test_example_plan_completes_with_every_output(temporal: TemporalHarness, path: str) -> None:
    """Every agent succeeds and every declared output lands in the context."""
    compiled, report, context = run_example(temporal, path)
    assert "completed" == report["status"]
    assert {a.id: "succeeded" for a in compiled.agents} == {
        agent_id: entry["status"] for agent_id, entry in report["agents"].items()
    }
    expected = sorted(f"{a.id}.{o}" for a in compiled.agents for o in a.outputs)
    assert expected == sorted(k for k in context if k in expected)


def test_seed_run_passes_documents_down_the_pipeline(temporal: TemporalHarness) -> None:
    """qa tests the stories developer implemented: documents flow analyst → ... → qa."""
    _compiled, report, context = run_example(temporal, "plans/seed.yaml")
    implemented = {
        ref
        for f in context["developer.implementation_files"]
        for ref in f["implements"]
        if ref.startswith("US-")
    }
    tested = {case["story"] for case in context["qa.test_results"]["cases"]}
    stories = {story["id"] for story in context["pm.user_stories"]}
    assert tested and tested <= implemented <= stories
    assert ["analyst", "pm", "ux_expert", "developer", "qa"] == report["critical_path"] or (
        ["analyst", "pm", "architect", "developer", "qa"] == report["critical_path"]
    )
