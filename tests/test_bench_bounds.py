"""The resources bench's lower bounds (bench/bounds.py) are true lower bounds: never above the
makespan of any feasible schedule, never below the simple bound, and tight where they should
be; the overhead-free admission simulation respects the pool and the dependencies."""

from __future__ import annotations

import random

import pytest

from bench.bounds import energetic_bound, heads_and_tails, simple_bound
from bench.resources import plan_text
from pee.engine.compile.admission_plan import simulate_admission
from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import loads_plan
from pee.engine.compiled import CompiledPlan
from pee.engine.dag import agent_dependencies
from pee.engine.rules.scheduler import Pool


def random_plans(count: int, seed: int = 3) -> list[CompiledPlan]:
    rng = random.Random(seed)
    return [
        compile_plan(loads_plan(plan_text(rng, f"p{i}", 4, 6, 0.3, 1.5, 4), file="p"))
        for i in range(count)
    ]


def list_schedule(plan: CompiledPlan, rank: dict[str, float]) -> float:
    """A feasible schedule built independently of bench/bounds.py: at every event start the
    ready agents (dependencies finished) that fit, lowest rank first; its makespan."""
    pool = Pool.from_resources(plan.resources)
    deps = agent_dependencies(plan.agents, plan.groups)
    agents = {a.id: a for a in plan.agents}
    finished: dict[str, float] = {}
    running: dict[str, float] = {}
    now = 0.0
    while len(finished) < len(agents):
        ready = sorted(
            (
                a
                for a in agents
                if a not in finished and a not in running and all(d in finished for d in deps[a])
            ),
            key=rank.__getitem__,
        )
        for agent_id in ready:
            agent = agents[agent_id]
            cpu = sum(agents[r].cpu for r in running) + agent.cpu
            memory = sum(agents[r].memory for r in running) + agent.memory
            if (
                len(running) < pool.max_agents
                and cpu <= pool.cpu + 1e-9
                and memory <= pool.memory + 1e-9
            ):
                running[agent_id] = now + agent.estimated_s
        now = min(running.values())
        for agent_id in [a for a, end in running.items() if end <= now + 1e-9]:
            finished[agent_id] = running.pop(agent_id)
    return now


@pytest.mark.parametrize("plan", random_plans(12), ids=lambda p: p.name)
def test_the_bound_is_below_every_schedule_and_above_the_simple_one(plan: CompiledPlan) -> None:
    """Against 200 random-priority schedules and the engine's own (simulated) admission."""
    bound, _ = energetic_bound(plan)
    assert bound >= simple_bound(plan)[0] - 1e-9
    rng = random.Random(plan.name)
    makespans = [list_schedule(plan, {a.id: rng.random() for a in plan.agents}) for _ in range(200)]
    makespans.append(simulate_admission(plan))
    makespans.append(simulate_admission(plan, fifo=True))
    assert bound <= min(makespans) + 1e-9


def test_big_agents_that_cannot_share_the_pool_run_one_after_the_other() -> None:
    """Two independent 70-unit agents of 1 s on 100 CPU units: the simple bound says 1.4 s
    (work / capacity), but they can never overlap, so 2 s; the simulation agrees."""
    plan = compile_plan(
        loads_plan(
            """
resource_manager:
  resource_pool:
    computational: {total_cpu_units: 100, total_memory_units: 100, concurrent_agent_limit: 4}
agents:
  a: {kind: simulate, duration: 1s, resource_requirements: {cpu: 70, memory: 10}}
  b: {kind: simulate, duration: 1s, resource_requirements: {cpu: 70, memory: 10}}
""",
            file="p",
        )
    )
    assert simple_bound(plan) == (1.4, "cpu")
    assert energetic_bound(plan)[0] == pytest.approx(2.0)
    assert simulate_admission(plan) == pytest.approx(2.0)


def test_heads_and_tails_follow_the_dependencies() -> None:
    plan = compile_plan(
        loads_plan(
            """
agents:
  a: {kind: simulate, duration: 1s, outputs: [out]}
  b: {kind: simulate, duration: 2s, inputs: [a.out], outputs: [out]}
  c: {kind: simulate, duration: 0.5s, inputs: [b.out]}
""",
            file="p",
        )
    )
    head, tail = heads_and_tails(plan)
    assert head == {"a": 0.0, "b": 1.0, "c": 3.0}
    assert tail == {"a": 2.5, "b": 0.5, "c": 0.0}
