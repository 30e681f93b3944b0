"""Pause the cyclic garbage collector while a plan is read and analysed.

Reading and analysing a plan allocates several objects per agent and frees almost none until
the end, and none of them form cycles that need the collector. CPython starts a collection
every few hundred allocations and a full one whenever the heap has grown by a quarter, so on a
10,000-agent plan the collector walked the growing heap for about as long as the analysis
itself ran. Reference counting still frees everything as usual; the collector resumes (and
catches up on its own schedule) when the outermost pause ends.
"""

from __future__ import annotations

import functools
import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


# objects allocated during the pauses (net) past which their end does not leave them young
LARGE_PAUSE = 50_000


def _age_young() -> None:
    """Move every tracked object to the oldest generation, without a walk (freeze and unfreeze
    only splice lists). Left young, the objects a large pause allocated (a 20,000-agent plan
    decoded and its per-agent state built: about a million) were walked by the first young
    collection, right as the pause ended, still inside the workflow task it was meant to keep
    short (0.1 s of 0.6); in the oldest generation they wait for the next full collection, as
    any long-lived object does. Cycles among them are found there too."""
    gc.freeze()
    gc.unfreeze()


# pauses in progress, over all threads, and whether the collector was on when the first began
_lock = threading.Lock()
_pauses = 0
_was_enabled = False


@contextmanager
def paused_gc() -> Iterator[None]:
    """Nestable, and across threads: the collector comes back on when the last pause in
    progress ends (if it was on when the first began). A worker runs workflow activations on
    several threads: when the first pause to end turned it back on, a 20,000-agent run's first
    task, still inside its own pause, ran with the collector on and took 2.7 s instead of 0.6."""
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                if gc.get_count()[0] > LARGE_PAUSE:
                    _age_young()
                gc.enable()


def gc_paused(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` runs with the collector paused (a workflow's __init__ building per-agent
    state right after its input was decoded: with the collector on, 10,000 AgentStates took
    0.7 s of the first workflow task's 2 s, walking the freshly decoded plan again and again;
    off, 13 ms)."""

    @functools.wraps(function)
    def paused(*args: P.args, **kwargs: P.kwargs) -> R:
        with paused_gc():
            return function(*args, **kwargs)

    return paused
