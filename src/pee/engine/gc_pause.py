"""Pause the cyclic garbage collector while a plan is read and analysed.

Reading and analysing a plan allocates several objects per agent and frees almost none until
the end, and none of them form cycles that need the collector. CPython starts a collection
every few hundred allocations and a full one whenever the heap has grown by a quarter, so on a
10,000-agent plan the collector walked the growing heap for about as long as the analysis
itself ran. Reference counting still frees everything as usual; the collector resumes (and
catches up on its own schedule) when the outermost pause ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Nestable: only the pause that disabled the collector enables it again."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
