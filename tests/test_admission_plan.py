"""The compile-time admission plan (engine.admission_plan): never worse than the remaining-path
order on the plan's own estimates, often better, deterministic, and absent for unlimited
pools."""

from __future__ import annotations

import random

from bench.resources import plan_text
from engine.admission_plan import plan_admission, simulate_admission
from engine.compiled import CompiledPlan
from engine.graph import compile_plan
from engine.plan import loads_plan


def random_plans(count: int, seed: int = 11) -> list[CompiledPlan]:
    rng = random.Random(seed)
    return [compile_plan(loads_plan(plan_text(rng, f"p{i}", 4, 6, 0.3, 1.5, 4), file="p"))
            for i in range(count)]


def unplanned(plan: CompiledPlan) -> CompiledPlan:
    copy = CompiledPlan.from_dict(plan.to_dict())
    for agent in copy.agents:
        agent.admission_rank = 0
    return copy


def test_the_plan_never_loses_to_remaining_path_and_sometimes_wins() -> None:
    plans = random_plans(12)
    planned = [simulate_admission(plan) for plan in plans]
    baseline = [simulate_admission(unplanned(plan)) for plan in plans]
    assert all(p <= b + 1e-9 for p, b in zip(planned, baseline, strict=True))
    assert any(p < b - 1e-9 for p, b in zip(planned, baseline, strict=True))


def test_compiling_twice_plans_the_same_order() -> None:
    (first,) = random_plans(1, seed=5)
    (second,) = random_plans(1, seed=5)
    ranks = [a.admission_rank for a in first.agents]
    assert ranks == [a.admission_rank for a in second.agents]
    assert sorted(ranks) == list(range(len(ranks)))


def test_no_plan_without_a_limited_pool() -> None:
    plan = compile_plan(loads_plan("agents:\n  a: {duration: 1s}\n  b: {duration: 2s}\n",
                                   file="p"))
    assert plan_admission(plan) == {}
    assert [a.admission_rank for a in plan.agents] == [0, 0]
