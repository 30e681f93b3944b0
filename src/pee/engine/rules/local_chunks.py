"""Where a chunk of local agents is cut in two by expected duration (pure; the workflow side:
pee.workflows.batcher).

A batch child of local activities reports its agents' outcomes only when the worker completes
its workflow task, in practice once the last of them has ended (pee.workflows.agent_batch): a
short agent chunked with a long one waits for it, and so does everything downstream. In
bench/scale.py's 2,000-agent runs that wait was ~40% of the wall time along the run's critical
chain. So a chunk is cut where the short agents end well before the long ones: the short part
reports when it is done, the long part later.

A group ends when its last agent ends, so the cut is between groups (each counted with its
longest expected agent), and the waiting it saves is counted per group: a group waits for the
longest group of its part. A cut costs a child (its start, first workflow task and three parent
events; ~40 ms of server CPU), so a chunk is cut only where that saves at least ``gain_s``
seconds of waiting over its groups and leaves at least ``min_groups`` groups on each side. The
batcher cuts the longer part again on its next turn, so a chunk spread wide ends in several.
"""

from __future__ import annotations

from collections.abc import Sequence

# the cut leaves at least this many groups on each side
MIN_GROUPS = 3


def shortest_first(
    groups: Sequence[float], gain_s: float, min_groups: int = MIN_GROUPS
) -> list[int] | None:
    """The groups (indices into ``groups``, each group's longest expected duration in seconds)
    to cut off as a chunk of their own: the shorter ones, where the best cut between them and
    the rest saves at least ``gain_s`` seconds of waiting; None when no cut does. The indices
    come in their given order."""
    if gain_s <= 0 or len(groups) < 2 * min_groups:
        return None
    order = sorted(range(len(groups)), key=lambda i: (groups[i], i))
    keys = [groups[i] for i in order]
    prefix = [0.0]
    for key in keys:
        prefix.append(prefix[-1] + key)

    def waiting(lo: int, hi: int) -> float:
        # groups lo..hi-1 in one chunk: each waits for the longest, keys[hi - 1]
        return (hi - lo) * keys[hi - 1] - (prefix[hi] - prefix[lo])

    whole = waiting(0, len(keys))
    best, best_at = 0.0, None
    for at in range(min_groups, len(keys) - min_groups + 1):
        saved = whole - waiting(0, at) - waiting(at, len(keys))
        if saved >= gain_s and (best_at is None or saved > best):
            best, best_at = saved, at
    if best_at is None:
        return None
    return sorted(order[:best_at])
