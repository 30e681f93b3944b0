"""pee.engine.gc_pause: the collector is paused for exactly the wrapped call, nested or not,
and comes back when the call raises."""

from __future__ import annotations

import gc

import pytest

from pee.engine.gc_pause import gc_paused, paused_gc


def test_gc_paused_pauses_the_call_and_restores_the_collector() -> None:
    seen: list[bool] = []

    @gc_paused
    def build(n: int) -> int:
        seen.append(gc.isenabled())
        return n + 1

    @gc_paused
    def fail() -> None:
        raise ValueError("boom")

    assert gc.isenabled()
    assert 2 == build(1)
    assert [False] == seen
    assert gc.isenabled()
    with pytest.raises(ValueError):
        fail()
    assert gc.isenabled()
    with paused_gc():
        assert 3 == build(2)
        # the inner pause leaves the outer one in force
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_pause_on_another_thread_ending_first_leaves_this_one_in_force() -> None:
    """Workflow activations run on several threads: a pause that ends while another thread's
    is still in progress must not turn the collector back on under it."""
    import threading

    entered, release = threading.Event(), threading.Event()
    seen: list[bool] = []

    def other() -> None:
        with paused_gc():
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    assert entered.wait(10)
    with paused_gc():
        release.set()
        thread.join(10)
        # the other thread's pause began first and has ended: this one still holds
        seen.append(gc.isenabled())
    assert [False] == seen
    assert gc.isenabled()
