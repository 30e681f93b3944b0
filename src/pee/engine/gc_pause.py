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
import weakref
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
    with _hold_lock:
        if not _holders:
            gc.unfreeze()


# --- holding a large run's objects frozen ----------------------------------------------------
#
# A 10,000-agent run's first workflow activation decodes its plan and builds per-agent state:
# about a million objects that live as long as the run does. A full (oldest-generation)
# collection walks every tracked object, and it starts whenever the objects that reached the
# oldest generation since the last one pass a quarter of it: every so often, inside whichever
# workflow activation happens to allocate then. Profiled at 10,000 agents, such an activation
# took 0.4-0.5 s of CPU instead of ~0.1 (the time landing in a list comprehension or in
# `create_task`, wherever the collection began), 0.7 s at 20,000, and on a loaded machine one of
# them per run tripped the SDK's 2 s deadlock detector.
#
# So the worker (pee.runtime.sandbox_runner) has a run whose first activation read a large run
# input (pee.runtime.predecode's PREPARE_BYTES of JSON or more: ~1,000 agents) hold every
# tracked object in the permanent generation
# (`gc.freeze()`: a list splice, no walk) until the run is evicted; full collections meanwhile
# walk only what was allocated since. When the last holder has gone, the objects go back to the
# oldest generation (`gc.unfreeze()`), where the next full collection finds whatever of them
# became garbage. Reference counting frees as usual all along; only cycles that became garbage
# while frozen wait for the unfreeze.

# reentrant: a holder's finalizer (below) may run inside hold() or release(), on the thread
# that dropped the last reference to it
_hold_lock = threading.RLock()
# the holders (workflow instances), by id, each with the finalizer that releases it if it is
# dropped without `release` (an instance the worker discards without an eviction activation):
# keyed by id alone, such a holder kept the process's objects frozen for good, and a later
# object given the same id could have released the wrong hold
_holders: dict[int, weakref.finalize | None] = {}


def hold(owner: object) -> None:
    """``owner``'s objects (with everything else alive now) to the permanent generation, until
    ``release(owner)`` or until ``owner`` is freed."""
    with _hold_lock:
        key = id(owner)
        if key not in _holders:
            try:
                _holders[key] = weakref.finalize(owner, _release_key, key)
            except TypeError:  # not weakly referenceable: only release() ends its hold
                _holders[key] = None
        gc.freeze()


def release(owner: object) -> None:
    """``owner`` is gone: the last holder to go unfreezes."""
    _release_key(id(owner))


def _release_key(key: int) -> None:
    with _hold_lock:
        if key not in _holders:
            return
        finalizer = _holders.pop(key)
        if finalizer is not None:
            finalizer.detach()
        if not _holders:
            gc.unfreeze()


_asked = threading.local()


def hold_after_activation() -> None:
    """Called while a run input of a large plan is decoded inside a workflow activation: the
    runner holds the freeze for that run once the activation ends (same thread)."""
    _asked.hold = True


def take_hold_request() -> bool:
    """Whether this thread's activation asked for a hold since the last call; clears it."""
    asked = bool(getattr(_asked, "hold", False))
    _asked.hold = False
    return asked


def holders() -> int:
    """How many holders keep objects frozen (for tests)."""
    with _hold_lock:
        return len(_holders)


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
