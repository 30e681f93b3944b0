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
True in runs of that revision and of every later one, False in runs recorded before it.

Revisions are ordered (REVISIONS, oldest first) and a run asks them newest first: a new run's
first question, the newest, records its marker and ends the search; a history recorded under an
older revision has no marker for the newer ones (the replay answers False to those, leaving no
command) and finds its own; a history recorded before any finds none. So a history of every
revision replays with the answers it was recorded with, and a run of any revision answers True
for every plain patch id before the first revision.
"""

from __future__ import annotations

from temporalio import workflow

# oldest first; a new revision is appended, never inserted (an index is what a run answers)
REVISIONS = (
    "engine-revision-2",
    # the search attributes upserted once per activation (pee.workflows.run_scope)
    "engine-revision-3",
)
REVISION = REVISIONS[-1]


def run_revision() -> int:
    """The index in REVISIONS of the revision this run was recorded by, -1 for none (a marker
    the first time a new run asks; the SDK memoizes every answer per run)."""
    for index in range(len(REVISIONS) - 1, -1, -1):
        if workflow.patched(REVISIONS[index]):
            return index
    return -1


def current() -> bool:
    """Whether this run was recorded by a revision (a marker the first time it is asked)."""
    return run_revision() >= 0


def patched(patch_id: str) -> bool:
    """For a revision's id: whether the run's revision is that one or a later one. For any
    other patch: `workflow.patched(patch_id)`, answered True without a marker of its own in a
    run of a revision (every plain patch came before the first revision)."""
    if patch_id in REVISIONS:
        return run_revision() >= REVISIONS.index(patch_id)
    return current() or workflow.patched(patch_id)
