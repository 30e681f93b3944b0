"""What an agent's task carries of its run (src/pee/workflows/lean_task.py): the run's ids and
plan name only when the output cache files the agent's result under them, never the unread
large-value threshold, and everything in a run recorded before the patch."""

from __future__ import annotations

import pytest

from pee.workflows import lean_task
from pee.workflows.lean_task import RunFields

WHOLE = RunFields("run", "wf", "lean", 1024)


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lean_task.revision, "patched", lambda patch_id: True)


@pytest.mark.usefixtures("patched")
def test_an_uncached_agents_task_leaves_the_run_ids_out() -> None:
    assert RunFields("", "", "", None) == lean_task.run_fields(False, WHOLE)


@pytest.mark.usefixtures("patched")
def test_a_cached_agents_task_keeps_what_the_cache_files_its_result_under() -> None:
    assert RunFields("run", "wf", "lean", None) == lean_task.run_fields(True, WHOLE)


def test_a_run_recorded_before_the_patch_gets_the_whole_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lean_task.revision, "patched", lambda patch_id: False)
    assert WHOLE == lean_task.run_fields(False, WHOLE)
