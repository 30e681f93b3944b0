"""The cyclic garbage collector's pace in a worker process.

CPython's defaults collect the youngest generation every 700 net allocations of container
objects. A worker allocates in bursts: every workflow activation builds and drops agent tasks,
results, payloads and asyncio handles, and a plan run's state lives for the whole run. At the
default pace most of those collections walk objects that are still alive, promote them, and walk
them again in the middle generation: in bench/overhead.py's 200-agent run the collector took
about 13 ms of the worker's ~650 ms of CPU (up to 45 ms with a full collection in the window),
against about 5 ms with a young generation of 20,000 objects; the hand-written workflow's
worker pays less either way (it allocates less). Fewer, larger young collections find the same
garbage: the objects that die young die before they are walked, so fewer are promoted. A
20,000-object young collection takes a few milliseconds, far below the SDK's 2 s deadlock
detector.

Only a process whose thresholds are still CPython's defaults is changed (an embedding program
that set its own keeps them).
"""

from __future__ import annotations

import gc

DEFAULT_THRESHOLDS = (700, 10, 10)
# youngest generation; the older two keep their defaults
YOUNG = 20_000
WORKER_THRESHOLDS = (YOUNG, 10, 10)


def pace_for_worker() -> None:
    """Set the worker's thresholds (idempotent; leaves thresholds set by someone else)."""
    if gc.get_threshold() == DEFAULT_THRESHOLDS:
        gc.set_threshold(*WORKER_THRESHOLDS)
