"""The compile-time admission plan (pee.engine.compile.admission_plan): better than the
remaining-path order on durations it never saw, deterministic, and absent for unlimited pools."""

from __future__ import annotations

import random

from bench.resources import plan_text
from pee.engine.compile.admission_plan import plan_admission, simulate_admission
from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import loads_plan
from pee.engine.compiled import CompiledPlan


def random_plans(count: int, seed: int = 11) -> list[CompiledPlan]:
    rng = random.Random(seed)
    return [
        compile_plan(loads_plan(plan_text(rng, f"p{i}", 4, 6, 0.3, 1.5, 4), file="p"))
        for i in range(count)
    ]


def unplanned(plan: CompiledPlan) -> CompiledPlan:
    copy = CompiledPlan.from_dict(plan.to_dict())
    for agent in copy.agents:
        agent.admission_rank = 0
    return copy


def late(plan: CompiledPlan, seed: int) -> dict[str, float]:
    """Durations as a real run has them: every agent up to 50 ms over its estimate."""
    rng = random.Random(seed)
    return {agent.id: agent.estimated_s + rng.uniform(0, 0.05) for agent in plan.agents}


def test_the_plan_beats_remaining_path_when_agents_run_late() -> None:
    """Judged on durations the planner never saw (agents a little late, as in a real run):
    summed over a dozen random plans the planned order finishes sooner than the remaining-path
    order, and on at least one plan by more than 5%."""
    planned_total = baseline_total = 0.0
    big_win = False
    for plan in random_plans(12):
        baseline_plan = unplanned(plan)
        for seed in range(3):
            durations = late(plan, seed)
            planned = simulate_admission(plan, durations=durations)
            baseline = simulate_admission(baseline_plan, durations=durations)
            planned_total += planned
            baseline_total += baseline
            big_win = big_win or planned < 0.95 * baseline
    assert planned_total < baseline_total
    assert big_win


def test_compiling_twice_plans_the_same_order() -> None:
    (first,) = random_plans(1, seed=5)
    (second,) = random_plans(1, seed=5)
    ranks = [a.admission_rank for a in first.agents]
    assert ranks == [a.admission_rank for a in second.agents]
    assert sorted(ranks) == list(range(len(ranks)))


def test_no_plan_without_a_limited_pool() -> None:
    plan = compile_plan(loads_plan("agents:\n  a: {duration: 1s}\n  b: {duration: 2s}\n", file="p"))
    assert plan_admission(plan) == {}
    assert [a.admission_rank for a in plan.agents] == [0, 0]
