"""Resource admission: which ready agents may start now, given a pool of CPU and memory units.

The seed's ``priority_based_fair_sharing``:
- capacity: CPU ``total_cpu_units × cpu_oversubscription`` (1.2 → 120 of 100), memory
  ``total_memory_units`` (never oversubscribed when ``memory_strict``), at most
  ``concurrent_agent_limit`` agents at once;
- order: priority (critical path 10, parallel group 7, validation 5; explicit priorities win),
  raised by one whole level per full ``aging_s`` seconds of waiting so nothing starves; within a
  level, the admission order planned at compile time (``Request.planned``, from
  pee.engine.compile.admission_plan; 0 for all when there is none), then the longest remaining path,
  then declaration order. Whole levels, so that agents queued a moment apart still compare on plan
  and path instead of on who queued first;
- no head-of-line blocking: an agent that does not fit is passed over and smaller ones behind it
  that fit start now; but once it has waited ``reserve_after_s``, nothing ranked below it starts
  until it fits (its reservation), so a large agent is not starved by a stream of small ones.

``fifo=True`` is the baseline the resources bench compares with: first ready, first admitted
(declaration order on ties), ignoring priority, remaining path and aging; it still skips ahead
when the head does not fit, and still reserves for a head that has waited ``reserve_after_s``.

Usage is integrated over time (``cpu_seconds``, ``memory_seconds``) when callers pass ``now`` to
``release`` as well as to ``admit``: the run report's utilisation comes from it.

Pure and deterministic: callers pass ``now`` (seconds) and get agent ids back, in order.

The units in use are kept as running sums (a monitoring sample reads them at every admission
and every agent's end: summing every running agent there was O(running) per event). Agents
start through ``admit`` and end through ``release`` only, which keep the sums; ``running`` is
read, never written, from outside. The sums equal ``sum(...)`` over ``running`` bit for bit:
units that are multiples of 1/1024 below 2**20 (whole units, halves, quarters: all plans seen
so far) add exactly in any order; while any running agent's units are not, the sum is taken
afresh as before (and so it is with no agent running, or units that are not floats, so that
the type of the result does not change either).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pee.engine.compiled import Resources
from pee.engine.dag import topological_order


@dataclass(frozen=True)
class Pool:
    cpu: float = 100.0
    memory: float = 100.0
    max_agents: int = 3

    @classmethod
    def from_seed(
        cls,
        total_cpu_units: float = 100.0,
        total_memory_units: float = 100.0,
        concurrent_agent_limit: int = 3,
        cpu_oversubscription: float = 1.0,
        memory_strict: bool = True,
        memory_oversubscription: float = 1.0,
    ) -> Pool:
        memory = total_memory_units * (1.0 if memory_strict else memory_oversubscription)
        return cls(total_cpu_units * cpu_oversubscription, memory, concurrent_agent_limit)

    @classmethod
    def unlimited(cls) -> Pool:
        return cls(math.inf, math.inf, 2**31 - 1)

    @classmethod
    def from_resources(cls, resources: Resources) -> Pool:
        """The pool of ``CompiledPlan.resources``; a plan without a ``resource_pool`` (a
        hand-built compiled plan) gets an unlimited one."""
        limits = resources.pool
        if limits is None:
            return cls.unlimited()
        return cls.from_seed(
            total_cpu_units=limits.total_cpu_units,
            total_memory_units=limits.total_memory_units,
            concurrent_agent_limit=limits.concurrent_agent_limit,
            cpu_oversubscription=limits.cpu_oversubscription,
            memory_strict=limits.memory_strict,
        )

    @property
    def limited(self) -> bool:
        return math.isfinite(self.cpu)


@dataclass
class Request:
    agent_id: str
    cpu: float
    memory: float
    priority: int
    # estimated seconds from this agent's start to the end of the run along its longest path
    remaining_s: float = 0.0
    order: int = 0
    ready_at: float = 0.0
    # position in the planned admission order (lower first; pee.engine.compile.admission_plan)
    planned: float = 0.0


@dataclass
class Admission:
    pool: Pool
    aging_s: float = 60.0
    reserve_after_s: float = 120.0
    waiting: list[Request] = field(default_factory=list)
    running: dict[str, Request] = field(default_factory=dict)
    # agent id -> seconds it waited between ready and admitted
    waited: dict[str, float] = field(default_factory=dict)
    peak_cpu: float = 0.0
    peak_memory: float = 0.0
    peak_agents: int = 0
    fifo: bool = False
    # integrals of units in use over time, up to ``accounted_s``
    cpu_seconds: float = 0.0
    memory_seconds: float = 0.0
    accounted_s: float | None = None
    # running sums of units in use (see the module's docstring); _inexact counts running agents
    # whose units do not add exactly
    _cpu: float = field(default=0.0, init=False, repr=False, compare=False)
    _memory: float = field(default=0.0, init=False, repr=False, compare=False)
    _inexact: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for request in self.running.values():
            self._add(request, 1)

    def _add(self, request: Request, sign: int) -> None:
        if _adds_exactly(request.cpu) and _adds_exactly(request.memory):
            self._cpu += sign * request.cpu
            self._memory += sign * request.memory
        else:
            self._inexact += sign

    def _start(self, request: Request) -> None:
        """The one way an agent enters ``running``."""
        self.running[request.agent_id] = request
        self._add(request, 1)

    def fits_ever(self, request: Request) -> bool:
        return request.cpu <= self.pool.cpu and request.memory <= self.pool.memory

    @property
    def cpu_in_use(self) -> float:
        if self._inexact or not self.running:
            return sum(r.cpu for r in self.running.values())
        return self._cpu

    @property
    def memory_in_use(self) -> float:
        if self._inexact or not self.running:
            return sum(r.memory for r in self.running.values())
        return self._memory

    def submit(self, request: Request) -> None:
        if not self.fits_ever(request):
            raise ValueError(
                f"agent '{request.agent_id}' needs cpu {request.cpu:g}/memory "
                f"{request.memory:g} but the pool has {self.pool.cpu:g}/{self.pool.memory:g}"
            )
        self.waiting.append(request)

    def account(self, now: float) -> None:
        """Add the units in use since the last call to the usage integrals."""
        if self.accounted_s is not None and now > self.accounted_s:
            elapsed = now - self.accounted_s
            self.cpu_seconds += self.cpu_in_use * elapsed
            self.memory_seconds += self.memory_in_use * elapsed
        if self.accounted_s is None or now > self.accounted_s:
            self.accounted_s = now

    def release(self, agent_id: str, now: float | None = None) -> None:
        if now is not None:
            self.account(now)
        request = self.running.pop(agent_id, None)
        if request is not None:
            self._add(request, -1)
        if self.waiting:
            self.waiting = [r for r in self.waiting if r.agent_id != agent_id]

    def rank(self, request: Request, now: float) -> tuple[float, float, float, int]:
        if self.fifo:
            return (request.ready_at, 0.0, 0.0, request.order)
        aged = request.priority + math.floor(max(0.0, now - request.ready_at) / self.aging_s + 1e-9)
        return (-aged, request.planned, -request.remaining_s, request.order)

    def _fits_now(self, request: Request, cpu: float, memory: float, count: int) -> bool:
        return (
            count < self.pool.max_agents
            and cpu + request.cpu <= self.pool.cpu + 1e-9
            and memory + request.memory <= self.pool.memory + 1e-9
        )

    def admit(self, now: float) -> list[str]:
        """Start what fits, best first; returns the admitted agent ids in admission order."""
        self.account(now)
        admitted: list[str] = []
        cpu, memory, count = self.cpu_in_use, self.memory_in_use, len(self.running)
        for request in sorted(self.waiting, key=lambda r: self.rank(r, now)):
            if self._fits_now(request, cpu, memory, count):
                admitted.append(request.agent_id)
                self._start(request)
                self.waited[request.agent_id] = max(0.0, now - request.ready_at)
                cpu, memory, count = cpu + request.cpu, memory + request.memory, count + 1
            elif now - request.ready_at >= self.reserve_after_s:
                break  # its reservation: nothing ranked below it overtakes it any longer
        if admitted:
            self.waiting = [r for r in self.waiting if r.agent_id not in self.running]
            self.peak_cpu = max(self.peak_cpu, cpu)
            self.peak_memory = max(self.peak_memory, memory)
            self.peak_agents = max(self.peak_agents, count)
        return admitted


def _adds_exactly(units: float) -> bool:
    """Whether sums of such values are exact in floating point whatever the order (multiples
    of 1/1024 of magnitude under 2**20: any sum of fewer than 2**23 of them stays within the 53
    bits of a double)."""
    # ints (and other numbers) keep the plain sum, whose type follows theirs
    return type(units) is float and abs(units) < 2.0**20 and (units * 1024.0).is_integer()


def remaining_paths(
    ids: Sequence[str], deps: Mapping[str, Sequence[str]], durations: Mapping[str, float]
) -> dict[str, float]:
    """agent id -> the longest duration-weighted path from the agent (itself included) to the end
    of the run: the admission tie-break, so work with the most left behind it starts first."""
    children: dict[str, list[str]] = {node: [] for node in ids}
    for node in ids:
        for dep in deps.get(node, ()):
            if dep in children:
                children[dep].append(node)
    remaining: dict[str, float] = {}
    for node in reversed(topological_order(ids, deps)):
        after = max((remaining[c] for c in children[node] if c in remaining), default=0.0)
        remaining[node] = max(0.0, durations.get(node, 0.0)) + after
    # agents on a cycle (never in a valid plan) get their own duration
    return {node: round(remaining.get(node, durations.get(node, 0.0)), 3) for node in ids}
