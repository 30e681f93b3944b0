"""Resource admission tables: capacity, oversubscription, strict memory, priorities, aging,
no head-of-line blocking and no starvation."""

from __future__ import annotations

import pytest

from pee.engine.rules.scheduler import Admission, Pool, Request


def req(
    agent_id: str,
    cpu: float = 10,
    memory: float = 10,
    priority: int = 7,
    remaining_s: float = 0,
    order: int = 0,
    ready_at: float = 0,
    planned: float = 0,
) -> Request:
    return Request(agent_id, cpu, memory, priority, remaining_s, order, ready_at, planned)


@pytest.mark.parametrize(("oversubscription", "expected"), [(1.0, 2), (1.2, 3)])
def test_cpu_oversubscription(oversubscription: float, expected: int) -> None:
    """Ten agents of 40 CPU: two fit in 100 units, three in 120 (oversubscription 1.2)."""
    pool = Pool.from_seed(
        100, 100, concurrent_agent_limit=10, cpu_oversubscription=oversubscription
    )
    admission = Admission(pool)
    for index in range(10):
        admission.submit(req(f"a{index}", cpu=40, memory=5, order=index))
    assert expected == len(admission.admit(0.0))


def test_memory_is_never_oversubscribed() -> None:
    """memory_strict: CPU oversubscription does not stretch memory."""
    admission = Admission(Pool.from_seed(100, 100, 10, cpu_oversubscription=1.2))
    for index in range(3):
        admission.submit(req(f"m{index}", cpu=10, memory=40, order=index))
    assert ["m0", "m1"] == admission.admit(0.0)


def test_concurrent_agent_limit() -> None:
    """No more than concurrent_agent_limit agents run, however small."""
    admission = Admission(Pool(100, 100, max_agents=3))
    for index in range(5):
        admission.submit(req(f"s{index}", cpu=1, memory=1, order=index))
    assert ["s0", "s1", "s2"] == admission.admit(0.0)
    admission.release("s1")
    assert ["s3"] == admission.admit(1.0)


def test_priority_then_remaining_path_then_order() -> None:
    """Higher priority first; on a tie the longer remaining path; then declaration order."""
    admission = Admission(Pool(100, 100, max_agents=10))
    admission.submit(req("validator", priority=5, order=0))
    admission.submit(req("side", priority=7, remaining_s=10, order=1))
    admission.submit(req("long_side", priority=7, remaining_s=90, order=2))
    admission.submit(req("critical", priority=10, order=3))
    assert ["critical", "long_side", "side", "validator"] == admission.admit(0.0)


def test_no_head_of_line_blocking() -> None:
    """A big agent that does not fit yet is passed over by smaller ones that fit now."""
    admission = Admission(Pool(100, 100, max_agents=5))
    admission.submit(req("running", cpu=60))
    assert ["running"] == admission.admit(0.0)
    admission.submit(req("big", cpu=60, priority=10, ready_at=1))
    admission.submit(req("small", cpu=20, priority=5, ready_at=1))
    assert ["small"] == admission.admit(2.0)


def test_no_starvation_of_a_big_agent() -> None:
    """Once the big agent has waited past the bound, small ones stop overtaking it."""
    admission = Admission(Pool(100, 100, max_agents=5), reserve_after_s=30)
    admission.submit(req("running", cpu=60))
    admission.admit(0.0)
    admission.submit(req("big", cpu=60, priority=10, ready_at=0))
    admission.submit(req("small", cpu=20, priority=5, ready_at=40))
    assert [] == admission.admit(40.0)
    admission.release("running")
    assert ["big", "small"] == admission.admit(41.0)


def test_aging_lifts_a_long_waiting_agent() -> None:
    """A low-priority agent gains a level per aging interval until it outranks fresh ones."""
    admission = Admission(Pool(100, 100, max_agents=1), aging_s=10)
    admission.submit(req("old", priority=5, ready_at=0))
    admission.submit(req("fresh", priority=7, ready_at=100))
    assert ["old"] == admission.admit(100.0)


def test_an_agent_larger_than_the_pool_is_refused() -> None:
    """Submitting what can never fit is an error naming the agent."""
    admission = Admission(Pool(100, 100, 3))
    with pytest.raises(ValueError, match="'huge' needs cpu 150"):
        admission.submit(req("huge", cpu=150))


def test_queue_wait_and_peaks_are_recorded() -> None:
    """Each agent's wait between ready and start, and peak use, are kept for the report."""
    admission = Admission(Pool(100, 100, max_agents=1))
    admission.submit(req("a", cpu=30, memory=20))
    admission.submit(req("b", cpu=50, memory=10, ready_at=0, order=1))
    admission.admit(0.0)
    admission.release("a")
    admission.admit(7.5)
    assert {"a": 0.0, "b": 7.5} == admission.waited
    assert (50, 20, 1) == (admission.peak_cpu, admission.peak_memory, admission.peak_agents)


def test_planned_order_decides_among_equal_priorities() -> None:
    """Within one priority level the planned position comes before the remaining path; a
    higher priority still wins whatever the plan says."""
    admission = Admission(Pool(100, 100, max_agents=10))
    admission.submit(req("long", priority=7, remaining_s=90, order=0, planned=2))
    admission.submit(req("short", priority=7, remaining_s=10, order=1, planned=1))
    admission.submit(req("urgent", priority=10, order=2, planned=5))
    assert ["urgent", "short", "long"] == admission.admit(0.0)


def test_aging_counts_whole_levels() -> None:
    """A moment's head start is not a level: an agent queued 5 s earlier (aging 60 s) still
    ranks on remaining path; a full aging interval is one level."""
    admission = Admission(Pool(100, 100, max_agents=1), aging_s=60)
    admission.submit(req("early", priority=7, remaining_s=1, ready_at=0, order=0))
    admission.submit(req("later", priority=7, remaining_s=50, ready_at=5, order=1))
    assert ["later"] == admission.admit(10.0)
    admission.release("later")
    admission.submit(req("fresh", priority=7, remaining_s=90, ready_at=70, order=2))
    # early has waited 70 s: one level up, above fresh's longer path
    assert ["early"] == admission.admit(70.0)


@pytest.mark.parametrize(
    "units",
    [
        [1.0, 0.5, 25.0, 2.25, 1024.0],  # multiples of 1/1024: the kept sums
        [0.1, 0.2, 0.3, 1.0, 25.0],  # not: the sum taken afresh while any of them runs
        [1, 2, 3, 4, 5],  # ints: the plain sum, of type int
    ],
)
def test_units_in_use_equal_the_sum_over_running_agents(units: list[float]) -> None:
    """Agents start and end in a shuffled order; at every step the units in use are exactly
    (value and type) what summing the running agents gives, also from an initial `running`."""
    import random

    rng = random.Random(7)
    admission = Admission(Pool(1e9, 1e9, 1000))
    ids = [f"a{i}" for i in range(60)]
    for step, agent_id in enumerate(ids):
        admission.submit(req(agent_id, cpu=rng.choice(units), memory=rng.choice(units)))
        if step % 3 == 0:
            admission.admit(float(step))
        if step % 4 == 1 and admission.running:
            admission.release(rng.choice(sorted(admission.running)), float(step))
        for got, want in [
            (admission.cpu_in_use, sum(r.cpu for r in admission.running.values())),
            (admission.memory_in_use, sum(r.memory for r in admission.running.values())),
        ]:
            assert (want, type(want)) == (got, type(got))
    again = Admission(admission.pool, running=dict(admission.running))
    assert admission.cpu_in_use == again.cpu_in_use
    assert admission.memory_in_use == again.memory_in_use
    for agent_id in list(admission.running):
        admission.release(agent_id)
    assert (0, int) == (admission.cpu_in_use, type(admission.cpu_in_use))
