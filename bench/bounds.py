"""Lower bounds on a compiled plan's makespan under its resource pool (pure: no Temporal, no
I/O). Used by bench/resources.py.

Every bound here holds for ANY schedule that respects the agent-level dependencies
(pee.engine.dag.agent_dependencies) and the pool (CPU incl. oversubscription, memory, agent
limit), with each agent taking at least its estimate (simulated agents take exactly that, a real
run a little more). The engine also waits for group barriers, which only delays agents further,
so these remain lower bounds of what the engine can achieve.

- `simple_bound`: max(critical path, Σ cpu·s / cpu capacity, Σ memory·s / memory capacity,
  Σ s / agent limit), the bench's first bound.
- `energetic_bound`: head-work-tail sets. Give each agent its head (longest path of
  dependencies before it: it cannot start earlier) and tail (longest path after it). Take the
  agents T whose head >= h and tail >= t: none starts before h; their work needs at least
  work(T) = max(Σ cpu·s / cpu capacity, Σ memory·s / memory capacity, Σ s / k(T)) of wall time
  after h, where k(T) is an upper bound on how many of T can ever run at once (the most of its
  smallest that fit in each dimension, and the agent limit); and whichever of T ends last still
  has a chain of at least t after it. So makespan >= h + work(T) + t. T ranges over every pair
  (h, t) of head and tail values, each also narrowed to the agents needing at least c CPU (or
  m memory) units for every c (m) that occurs: the big agents alone, which often cannot run side
  by side (two of 70 CPU units on 100 run one after the other; simple_bound would let them
  share). With h = t = 0 and no narrowing it contains simple_bound, so it is never lower.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pee.engine.compiled import CompiledAgent, CompiledPlan
from pee.engine.dag import agent_dependencies, topological_order
from pee.engine.rules.scheduler import Pool


def heads_and_tails(plan: CompiledPlan) -> tuple[dict[str, float], dict[str, float]]:
    """agent id -> earliest possible start (head), and the longest chain after it (tail)."""
    ids = [agent.id for agent in plan.agents]
    duration = {agent.id: agent.estimated_s for agent in plan.agents}
    deps = agent_dependencies(plan.agents, plan.groups)
    order = topological_order(ids, deps)
    head: dict[str, float] = {}
    for node in order:
        head[node] = max(
            (head[d] + duration[d] for d in deps.get(node, []) if d in head), default=0.0
        )
    children: dict[str, list[str]] = {node: [] for node in ids}
    for node in ids:
        for dep in deps.get(node, []):
            if dep in children:
                children[dep].append(node)
    tail: dict[str, float] = {}
    for node in reversed(order):
        tail[node] = max((tail[c] + duration[c] for c in children[node] if c in tail), default=0.0)
    return head, tail


def simple_bound(plan: CompiledPlan) -> tuple[float, str]:
    """The bound and which term sets it."""
    pool = Pool.from_resources(plan.resources)
    terms = {
        "critical path": plan.agent_level_s,
        "cpu": sum(a.cpu * a.estimated_s for a in plan.agents) / pool.cpu,
        "memory": sum(a.memory * a.estimated_s for a in plan.agents) / pool.memory,
        "agents": sum(a.estimated_s for a in plan.agents) / pool.max_agents,
    }
    name = max(terms, key=terms.__getitem__)
    return terms[name], name


def most_at_once(agents: Sequence[CompiledAgent], pool: Pool) -> int:
    """An upper bound on how many of `agents` can run together: however many of the smallest
    fit, per dimension, and the agent limit (any set that fits is no larger)."""
    most = pool.max_agents
    for size, capacity in ((lambda a: a.cpu, pool.cpu), (lambda a: a.memory, pool.memory)):
        used, count = 0.0, 0
        for need in sorted(size(a) for a in agents):
            if used + need > capacity + 1e-9:
                break
            used, count = used + need, count + 1
        most = min(most, count)
    return max(1, most)


def energetic_bound(plan: CompiledPlan) -> tuple[float, str]:
    """The head-work-tail bound (see the module docstring) and what set it."""
    pool = Pool.from_resources(plan.resources)
    head, tail = heads_and_tails(plan)
    best, why = simple_bound(plan)
    agents = plan.agents
    sizes: list[tuple[str, Callable[[CompiledAgent], float]]] = [
        ("cpu", lambda a: a.cpu),
        ("memory", lambda a: a.memory),
    ]
    thresholds = [
        (name, value, size) for name, size in sizes for value in sorted({size(a) for a in agents})
    ]
    for h in sorted(set(head.values())):
        for t in sorted(set(tail.values())):
            window = [a for a in agents if head[a.id] >= h and tail[a.id] >= t]
            if not window:
                continue
            for name, value, size in thresholds:
                chosen = [a for a in window if size(a) >= value]
                if not chosen:
                    continue
                work = max(
                    sum(a.cpu * a.estimated_s for a in chosen) / pool.cpu,
                    sum(a.memory * a.estimated_s for a in chosen) / pool.memory,
                    sum(a.estimated_s for a in chosen) / most_at_once(chosen, pool),
                )
                if h + work + t > best + 1e-9:
                    best = h + work + t
                    why = f"{len(chosen)} agents, {name}>={value:g}"
    return best, why
