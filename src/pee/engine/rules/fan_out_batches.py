"""How a large fan-out's items are cut into batch children (pure; the workflow side:
pee.workflows.fan_out_items).

A child PlanWorkflow per item costs the worker a workflow start, a first task and a report per
item, and the parent four events and a wake-up per item: at a thousand items that, not the
agents, was the run's time. So above `above` items still to run (BATCH_ABOVE at agent level, an
item being one instance; GROUP_BATCH_ABOVE at group level) a fan-out runs its items in
children of about `child_agents` agents each: one child runs many items, each item's
chain in groups of its own (pee.engine.compile.fan_out_slice.batch_plan), so items still advance
independently inside it, and a child's history stays near 11 events x `child_agents` (2,200 at
the default), far from Temporal's 10,240. An agent-level fan-out takes the same path: in one
run, a thousand instances made each workflow task of the parent walk a thousand agents.

`max_parallel` (and a private pool's agent limit) still bound the items running at once: a batch
holds at most that many items, and only as many batches run at once as fit in it.

The thresholds differ by level: an agent-level instance in the run costs ~8 parent events and
little work, so up to BATCH_ABOVE instances stay there; a child per item costs far more (its
start, first task and report), so a group-level fan-out batches above GROUP_BATCH_ABOVE items.
Children of CHILD_AGENTS agents keep each workflow task of a child short (at 200 agents a
loaded 2-core worker took over 5 s per task, past the 10 s task timeout at times).
"""

from __future__ import annotations

from dataclasses import dataclass

# an agent-level fan-out of more instances than this runs them in batch children
BATCH_ABOVE = 200
# a group-level fan-out of more items than this runs them in batch children
GROUP_BATCH_ABOVE = 20
# agents a batch child runs at most
CHILD_AGENTS = 50
# batch children running at once (2,000 agents of 50-agent children), as BatchSpec.window bounds
# agent batches: measured on a loaded 2-core worker at 1,000 items (bench/fanout.py), 40 at
# once took 0.55x the time of 16; 100 children of 20 agents starting together starved the
# activities' heartbeats and sent items to their fallback
CHILDREN_AT_ONCE = 40


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
    above: int,
    child_agents: int = CHILD_AGENTS,
    at_once: int | None = CHILDREN_AT_ONCE,
) -> Batches | None:
    """The batches for `items` items of `members` agents each, or None when there are no more
    than `above` items (the fan-out runs as before: instances in the run, or a child per item).
    `lanes`: at most that many items at once (None: no bound); `at_once`: at most that many
    children at once (None: no bound)."""
    if items <= above:
        return None
    size = max(1, child_agents // max(1, members))
    window = at_once
    if lanes is not None:
        size = min(size, max(1, lanes))
        window = max(1, lanes // size) if at_once is None else min(at_once, max(1, lanes // size))
    batches = tuple(
        tuple(range(start, min(items, start + size))) for start in range(0, items, size)
    )
    return Batches(batches, window)
