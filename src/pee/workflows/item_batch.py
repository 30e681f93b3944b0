"""A batch child's rule for a failed group (PlanRunInput.item_batch: the run is a batch of a
parent's fan-out items, pee.engine.compile.fan_out_slice.batch_plan).

In a plain run a group that fails fails the run. In a batch child every group is one member of
one item, and items are independent: a failed item must not cancel the other items of its
batch. So the group's GroupFailed ends only its item's chain: the waiting groups that depend on
it (its item's later members) never start, their agents are marked skipped, and the run goes
on; the parent reads each item's outcome from the child's report rows. Any other error (a
cancellation, an internal error) ends the run as before.

Determinism: reached only with item_batch set, which only the batched fan-out path (behind
its own patch) sets, so no earlier history takes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pee.engine.compiled import CompiledGroup
    from pee.engine.states import AgentStatus, GroupStatus
    from pee.workflows.run_scope import RunScope


def absorb(
    task: asyncio.Task[Any], group_id: str, waiting: dict[str, CompiledGroup], scope: RunScope
) -> None:
    """The ended group task's result: a GroupFailed skips the group's dependents in `waiting`
    (removed from it) instead of raising; anything else raises as task.result() does."""
    try:
        task.result()
        return
    except ApplicationError as err:
        if err.type != "GroupFailed":
            raise
    for dropped in dependents(group_id, waiting):
        group = waiting.pop(dropped)
        scope.groups[dropped].status = GroupStatus.CANCELLED
        for agent_id in group.agents:
            scope.agents[agent_id].status = AgentStatus.SKIPPED
            scope.event("agent_skipped", agent_id)


def dependents(group_id: str, waiting: Mapping[str, CompiledGroup]) -> list[str]:
    """The waiting groups that depend on `group_id`, directly or through each other."""
    found = {group_id}
    changed = True
    while changed:
        changed = False
        for group in waiting.values():
            if group.id not in found and any(d in found for d in group.depends_on):
                found.add(group.id)
                changed = True
    return [g for g in waiting if g in found]
