"""pee.engine.gc_pause.hold: a large run's objects stay in the permanent generation (out of the
full collections' walks, which landed inside its later activations) from its first activation
until the worker evicts it; the last holder's release gives them back to the collector."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from temporalio.worker import Replayer

from bench.first_task import first_task_history
from bench.scale import layered_plan
from pee.engine import gc_pause
from pee.runtime import sandbox_runner
from pee.runtime.codec import data_converter
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.types import BatchSpec, LedgerSpec, PlanRunInput


def test_the_last_holder_to_go_unfreezes() -> None:
    first, second = object(), object()
    assert 0 == gc_pause.holders()
    gc_pause.hold(first)
    assert gc.get_freeze_count() > 0
    gc_pause.hold(second)
    gc_pause.release(first)
    # second still holds: everything alive at its hold stays frozen
    assert gc.get_freeze_count() > 0
    gc_pause.release(first)  # twice: nothing
    assert 1 == gc_pause.holders()
    gc_pause.release(second)
    assert 0 == gc_pause.holders()
    assert 0 == gc.get_freeze_count()


def test_a_large_pause_ending_leaves_held_objects_frozen() -> None:
    """A pause that allocated many objects ages them (freeze, then unfreeze) so no young
    collection walks them at its end: with a holder, the unfreeze is left out."""
    owner = object()
    gc_pause.hold(owner)
    try:
        with gc_pause.paused_gc():
            kept = [[i] for i in range(gc_pause.LARGE_PAUSE + 10)]
        assert gc.get_freeze_count() > len(kept)
    finally:
        gc_pause.release(owner)
    assert 0 == gc.get_freeze_count()


@pytest.mark.parametrize(("agents", "held"), [(3000, True), (20, False)])
def test_a_large_runs_first_activation_holds_until_its_eviction(agents: int, held: bool) -> None:
    """Replaying a run's first task under the worker's runner: a 3,000-agent plan's input
    (over predecode.PREPARE_BYTES of JSON) makes its first activation hold the freeze, and the
    replay's eviction releases it; a 20-agent plan's does not hold it."""
    calls: list[tuple[str, int]] = []
    hold, release = gc_pause.hold, gc_pause.release

    def holding(owner: Any) -> None:
        calls.append(("hold", gc_pause.holders()))
        hold(owner)

    def releasing(owner: Any) -> None:
        release(owner)
        calls.append(("release", gc_pause.holders()))

    run_input = PlanRunInput(
        plan=layered_plan(agents), time_scale=0.005, batch=BatchSpec(), ledger=LedgerSpec()
    )
    history = first_task_history(run_input)
    replayer = Replayer(
        workflows=[PlanWorkflow],
        data_converter=data_converter(storage=None),
        workflow_runner=sandbox_runner.LeanSandboxedWorkflowRunner(),
        debug_mode=True,
    )
    gc_pause.hold, gc_pause.release = holding, releasing  # type: ignore[assignment]
    try:
        result = asyncio.run(replayer.replay_workflow(history, raise_on_replay_failure=False))
    finally:
        gc_pause.hold, gc_pause.release = hold, release  # type: ignore[assignment]
    assert result.replay_failure is None
    if held:
        assert [("hold", 0), ("release", 0)] == [c for c in calls if c[0] == "hold"] + [
            c for c in calls if c[0] == "release"
        ]
    else:
        assert "hold" not in [kind for kind, _ in calls]
    assert 0 == gc_pause.holders()
    assert 0 == gc.get_freeze_count()


class _Owner:
    """Weakly referenceable, as a workflow instance is."""


def test_a_holder_dropped_without_release_releases_its_hold() -> None:
    """An instance the worker discards without an eviction activation must not keep the
    process's objects frozen for good."""
    owner = _Owner()
    gc_pause.hold(owner)
    assert 1 == gc_pause.holders() and gc.get_freeze_count() > 0
    del owner  # freed by reference counting: its finalizer releases the hold
    assert 0 == gc_pause.holders()
    assert 0 == gc.get_freeze_count()
