"""BMAD's `repeats: for_each_epic` as a fan-out (issue 16): with `--set bmad_repeats=for_each` the
story cycle (sm -> dev -> qa) becomes one group with for_each over the epics, and a run gives
each epic its own chain; without it the cycle runs once and the interpretation says how to fan
it out. Fixture: tests/plans/bmad/repeats_for_each_epic.yaml (its header gives the shape)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import load_plan
from pee.engine.language.bmad import bmad_to_native
from pee.engine.language.errors import PlanValidationError
from pee.engine.language.yamlsrc import load_yaml
from pee.workflows.plan_workflow import PlanWorkflow
from tests.helpers import TemporalHarness

FIXTURE = Path(__file__).parent / "plans" / "bmad" / "repeats_for_each_epic.yaml"
GREENFIELD = Path(__file__).parent.parent / "plans" / "bmad-greenfield.yaml"


def imported(path: Path, **variables: str) -> dict[str, Any]:
    data, source = load_yaml(path)
    return bmad_to_native(data, source, variables)


def test_the_story_cycle_fans_out_over_the_pms_epics() -> None:
    """No shard step: the group is sm, dev, qa for each pm.epics, pm outputs the list, sm is
    given its epic, and the note says so."""
    plan = imported(FIXTURE, bmad_repeats="for_each")
    assert {"story_cycle": {"agents": ["sm", "dev", "qa"], "for_each": "pm.epics"}} == plan[
        "groups"
    ]
    assert "epics" in plan["agents"]["pm"]["outputs"]
    assert {"item", "index"} <= set(plan["agents"]["sm"]["optional_inputs"])
    assert any("runs once per epic of pm.epics" in note for note in plan["notes"])


def test_with_a_shard_step_the_cycle_fans_out_over_the_shards() -> None:
    """The greenfield workflow shards the documents per epic: the cycle runs over them."""
    plan = imported(GREENFIELD, bmad_repeats="for_each")
    assert "po_2.sharded_docs" == plan["groups"]["story_cycle"]["for_each"]
    assert ["sm", "dev", "qa"] == plan["groups"]["story_cycle"]["agents"]


def test_without_the_setting_the_cycle_runs_once_and_says_how_to_fan_out() -> None:
    plan = imported(FIXTURE)
    assert "groups" not in plan
    assert any("--set bmad_repeats=for_each runs the story cycle" in n for n in plan["notes"])


def test_an_unknown_way_to_repeat_is_refused() -> None:
    with pytest.raises(PlanValidationError) as caught:
        imported(FIXTURE, bmad_repeats="sometimes")
    assert "bmad_repeats=sometimes" in str(caught.value)


def test_each_epic_runs_its_own_story_cycle(temporal: TemporalHarness) -> None:
    """A run: one child per epic, each sm[i] drafts a story of its own epic, and qa's reviewed
    files come back as a list with one entry per epic."""
    compiled = compile_plan(load_plan(FIXTURE, {"bmad_repeats": "for_each"}))

    async def go(handle: WorkflowHandle[Any, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        return await handle.result(), await handle.query(PlanWorkflow.context)

    report, context = temporal.with_plan(compiled, go, time_scale=0.01)
    assert "completed" == report["status"]
    epics = context["pm.epics"]
    assert len(epics) >= 2
    stories = context["sm.story.md"]
    assert len(epics) == len(stories) == len(context["qa.implementation_files"])
    assert [e["title"] for e in epics] == [s["epic"] for s in stories]
    assert len(epics) == report["groups"]["story_cycle"]["fan_out"]["succeeded"]
