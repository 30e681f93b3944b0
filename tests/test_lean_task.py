"""What an agent's task leaves out (src/pee/workflows/lean_task.py): the run's ids and plan
name only when no output cache reads them, and never the fields a backend needs."""

from __future__ import annotations

import pytest

from pee.activities.types import AgentTask
from pee.workflows import lean_task
from tests.helpers import compiled_plan, group, sim


def task(cache_key: str | None) -> AgentTask:
    plan = compiled_plan([sim("a", "g", 0.1)], [group("g", ["a"])], name="lean")
    return AgentTask(
        agent=plan.agents[0],
        inputs={"x": 1},
        time_scale=0.5,
        workflow_id="wf",
        run_id="run",
        plan_name="lean",
        cache_key=cache_key,
        large_value_threshold=1024,
    )


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lean_task.workflow, "patched", lambda patch_id: True)


@pytest.mark.usefixtures("patched")
def test_an_uncached_agents_task_leaves_the_run_ids_out() -> None:
    lean = lean_task.lean(task(None))
    assert ("", "", "", None) == (
        lean.workflow_id,
        lean.run_id,
        lean.plan_name,
        lean.large_value_threshold,
    )
    assert (lean.agent, lean.inputs, lean.time_scale) == (
        task(None).agent,
        {"x": 1},
        0.5,
    )


@pytest.mark.usefixtures("patched")
def test_a_cached_agents_task_keeps_what_the_cache_files_its_result_under() -> None:
    lean = lean_task.lean(task("key-1"))
    assert ("wf", "run", "lean", "key-1") == (
        lean.workflow_id,
        lean.run_id,
        lean.plan_name,
        lean.cache_key,
    )
    assert lean.large_value_threshold is None


def test_a_run_recorded_before_the_patch_gets_the_whole_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lean_task.workflow, "patched", lambda patch_id: False)
    assert task(None) == lean_task.lean(task(None))
