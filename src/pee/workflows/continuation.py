"""When and how a PlanWorkflow run continues as new (the carried state: src/pee/workflows/carry.py).

The decision is taken in the run loop, each time a group ends. Once Temporal suggests it (or the
history reaches PlanRunInput.continue_as_new_after events, or SAFETY_EVENTS on a server that
never suggests), the run drains: it starts no more groups, lets the running ones end, waits for
its non-blocking validations and snapshot stores, gives back shared-pool leases, and continues
as new with the plan, the same options and the carried state. Draining costs some overlap once
per ~4,000 history events; what it buys is that nothing in flight has to cross runs.

Why not at any moment: running agents' activities, barrier timers and child workflows belong to
the run that started them; carrying them over would mean re-attaching to each (or re-running
it), where at a quiescent point there is only recorded state to hand on.

Determinism: the suggestion flag and the history length are recorded in history (each workflow
task's started event), so a replay reaches the same decision; `workflow.patched` keeps histories
recorded before continue-as-new existed on their old path, were they ever to see a suggestion.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pee.workflows import revision
    from pee.workflows.carry import CarriedRun, encode
    from pee.workflows.types import PlanRunInput

if TYPE_CHECKING:
    from pee.workflows.batcher import Batcher

PATCH = "continue-as-new-when-suggested"
# batch mode: the run continues as new once its children have ended too (see children_ended)
CHILDREN_PATCH = "children-ended-before-continue-as-new"
# but no longer than this for a child that has not taken its cancel in yet (a local chunk does
# at its next workflow task heartbeat, 8 s by default). Well past that: the timer firing while
# the continue-as-new task is completed makes the server refuse the task just the same (seen
# with 10 s at 20,000 agents, the children closing after ~10 s)
CHILDREN_WAIT_S = 30.0
# Temporal's own limit is 10,240 events by default (51,200 hard); a server that never suggests
# continue-as-new still gets one well before it
SAFETY_EVENTS = 8000
# a ledger run (src/pee/workflows/ledger.py) goes on past Temporal's suggestion (4,096 events or
# 4 MiB by default) until SAFETY_EVENTS or this many bytes of history: its payloads are small,
# and each continuation costs a drain and a first workflow task that decodes the whole plan
SAFETY_BYTES = 8 * 1024 * 1024
# a run that has just continued as new starts with its carried state in its first event: if
# that alone is large enough for the size suggestion, it must still make progress first
MIN_GROUPS_PER_RUN = 1


@dataclass
class Continuation:
    """The run loop's continue-as-new state: draining, and how many groups ended in this run."""

    after_events: int | None = None
    # False (a ledger run): Temporal's suggestion is not enough, see SAFETY_BYTES
    on_suggestion: bool = True
    draining: bool = False
    groups_ended: int = 0
    # what made this run drain, for the event and the log
    reason: str = ""

    def group_ended(self) -> None:
        self.groups_ended += 1

    def should_drain(self, groups_left: int) -> bool:
        """Whether to stop starting groups now (asked when a group has ended and the run is
        not draining yet); True sets ``draining``."""
        if groups_left == 0 or self.groups_ended < MIN_GROUPS_PER_RUN:
            return False
        info = workflow.info()
        length = info.get_current_history_length()
        if self.on_suggestion and info.is_continue_as_new_suggested():
            reason = f"Temporal suggested continue-as-new at {length} history events"
        elif not self.on_suggestion and info.get_current_history_size() >= SAFETY_BYTES:
            reason = f"history reached {info.get_current_history_size()} bytes"
        elif self.after_events is not None and length >= self.after_events:
            reason = f"history reached {length} events (continue_as_new_after {self.after_events})"
        elif length >= SAFETY_EVENTS:
            reason = f"history reached {length} events"
        else:
            return False
        # asked only when it would change what the run does: older histories replay as before
        if not revision.patched(PATCH):
            return False
        self.draining = True
        self.reason = reason
        return True


def next_input(input: PlanRunInput, carried: CarriedRun) -> PlanRunInput:
    """The continuation's input: the same plan and options, no resume (its reused groups and
    context are in the carried state now), and the carried run."""
    return replace(input, resume=None, inputs={}, carried=encode(carried))


async def children_ended(batcher: Batcher | None) -> None:
    """Batch mode: wait (at most CHILDREN_WAIT_S) for the children still open at the drain.
    Every agent has ended by then as the run sees it, but a child holding an agent the barrier
    cut short is still taking its cancel in (a local chunk at its next workflow task heartbeat,
    ~8 s): its completion reached the server while the worker was completing the
    continue-as-new task, which the server then refused (UnhandledCommand, 20,000 agents). The
    retried task replays the whole history first (20 s at 6,500 events) and encodes the
    continuation input again. Asked only when a child is open: other histories replay as
    before."""
    if batcher is None or not batcher.open_children or not revision.patched(CHILDREN_PATCH):
        return
    # agents the barrier cut at the last group's end: their cancels had not gone out yet
    batcher.send_cancels()
    try:
        await workflow.wait_condition(
            lambda: not batcher.open_children,
            timeout=CHILDREN_WAIT_S,
            timeout_summary="children ending before continue-as-new",
        )
    except TimeoutError:
        workflow.logger.info("continuing as new with %d children still open", batcher.open_children)


async def continue_as_new(input: PlanRunInput, carried: CarriedRun) -> None:
    """Wait for update and signal handlers to finish, then continue as new (raises)."""
    await workflow.wait_condition(workflow.all_handlers_finished)
    workflow.continue_as_new(next_input(input, carried))
