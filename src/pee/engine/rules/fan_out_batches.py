"""How a large fan-out's items are cut into batch children (pure; the workflow side:
pee.workflows.fan_out_items).

A child PlanWorkflow per item costs the worker a workflow start, a first task and a report per
item, and the parent four events and a wake-up per item: at a thousand items that, not the
agents, was the run's time. So above `above` instances (items x agents per item) a fan-out runs
its items in children of about `child_agents` agents each: one child runs many items, each item's
chain in groups of its own (pee.engine.compile.fan_out_slice.batch_plan), so items still advance
independently inside it, and a child's history stays near 11 events x `child_agents` (2,200 at
the default), far from Temporal's 10,240. An agent-level fan-out takes the same path: in one
run, a thousand instances made each workflow task of the parent walk a thousand agents.

`max_parallel` (and a private pool's agent limit) still bound the items running at once: a batch
holds at most that many items, and only as many batches run at once as fit in it.
"""

from __future__ import annotations

from dataclasses import dataclass

# a fan-out with more instances than this runs its items in batch children
BATCH_ABOVE = 200
# agents a batch child runs at most
CHILD_AGENTS = 200


@dataclass(frozen=True)
class Batches:
    # item indices per child, in item order
    batches: tuple[tuple[int, ...], ...]
    # children running at once (None: all)
    window: int | None


def item_batches(
    items: int,
    members: int,
    lanes: int | None,
    above: int = BATCH_ABOVE,
    child_agents: int = CHILD_AGENTS,
) -> Batches | None:
    """The batches for `items` items of `members` agents each, or None when the fan-out is
    small enough to run as before (instances in the run, or a child per item). `lanes`: at most
    that many items at once (None: no bound)."""
    if items * members <= above:
        return None
    size = max(1, child_agents // max(1, members))
    window = None
    if lanes is not None:
        size = min(size, max(1, lanes))
        window = max(1, lanes // size)
    batches = tuple(
        tuple(range(start, min(items, start + size))) for start in range(0, items, size)
    )
    return Batches(batches, window)
