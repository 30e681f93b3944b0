"""The engine's workflow revision: one patch marker stands for every patch before it.

Each `workflow.patched(id)` a run asks for the first time records a marker and the SDK's
TemporalChangeVersion search-attribute upsert: two history events and two commands. A plain
run asked three (liveness-from-describe, lean-agent-task, cache-levels-snapshots-prefetch), about
4 ms of the 20-agent overhead run's ~150 ms (bench/README, "Session 10"), and every new patch
would add one more. A run started by this code asks `REVISION` once, first thing in its
`__init__`, and every earlier patch then reads as applied without a marker of its own.

Why this replays: a history recorded before the revision has no REVISION marker, so the replay
sees `current()` False and asks each older patch as that code did; a history recorded since has
the marker at the same place, so the replay sees True and asks nothing else. A run that was in
flight when the worker was upgraded replays its first task without the marker and stays on the
older patches for good (the SDK memoizes a patch's answer per run).

Behaviour new in a revision asks `patched(<that revision's id>)`, e.g. leaving out the run's
final context snapshot (pee.workflows.cache_levels.FINAL_SNAPSHOT_PATCH, "engine-revision-2"):
when a later change bumps REVISION, runs of the new revision answer it True without a marker
and histories recorded under engine-revision-2 find their marker, as with any older patch.
"""

from __future__ import annotations

from temporalio import workflow

REVISION = "engine-revision-2"


def current() -> bool:
    """Whether this run was recorded by the revision (a marker the first time it is asked)."""
    return workflow.patched(REVISION)


def patched(patch_id: str) -> bool:
    """`workflow.patched(patch_id)`, answered True without a marker of its own in a run of the
    revision: every patch before it applies there."""
    return current() or workflow.patched(patch_id)
