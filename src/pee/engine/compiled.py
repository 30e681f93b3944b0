"""The compiled plan: plain, JSON-serialisable data that a workflow consumes without networkx.

Lists, not sets or dicts keyed by computed values, so iteration order is part of the data and the
workflow stays deterministic. Produced by ``pee.engine.compile.graph.compile_plan``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pee.engine.language.fan_out import DEFAULT_ITEMS_ESTIMATE, FanOutLevel


@dataclass
class RetrySpec:
    max_attempts: int = 3
    initial_interval_s: float = 1.0
    backoff_coefficient: float = 2.0
    maximum_interval_s: float | None = None
    non_retryable: list[str] = field(default_factory=list)


@dataclass
class CompiledAgent:
    id: str
    # the seed's role name ("ux_expert" for the enhanced step's "ux_expert_parallel")
    role: str
    kind: str
    group: str
    # blocking data inputs as "agent.output" (or a shared key / plan input name)
    inputs: list[str] = field(default_factory=list)
    # context inputs: used when ready at start, never waited for
    optional_inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    # shared context keys (no agent prefix) this agent writes
    writes: list[str] = field(default_factory=list)
    # agents whose outputs this agent validates after they complete
    validates: list[str] = field(default_factory=list)
    # every agent this one must wait for (data, shared keys, validation, declared group order),
    # in plan order: the analyser's answer, so nobody downstream re-derives it
    depends_on: list[str] = field(default_factory=list)
    validation_blocking: bool = False
    defaults: dict[str, Any] = field(default_factory=dict)
    # bounds the whole execution, retries included (schedule-to-close); None = plan default
    timeout_s: float | None = None
    estimated_s: float = 60.0
    estimated_min_s: float = 60.0
    estimated_max_s: float = 60.0
    priority: int = 7
    priority_explicit: bool = False
    # position in the admission order planned at compile time for a limited pool (lower starts
    # first among equal priorities; pee.engine.compile.admission_plan); 0 for every agent when not
    # planned
    admission_rank: int = 0
    on_critical_path: bool = False
    retry: RetrySpec = field(default_factory=RetrySpec)
    cpu: float = 25.0
    memory: float = 25.0
    task_queue: str | None = None
    optional: bool = False
    # kind-specific settings (simulate: duration_s, fail_times, outputs values...; command: argv...)
    settings: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    # measured durations of earlier runs (pee.engine.compile.learning.Learned as {n, mean_s,
    # p95_s}), or None
    learned: dict[str, Any] | None = None
    # set when this agent runs once per item (its own for_each, or its group's): FanOut below
    fan_out: FanOut | None = None

    @property
    def expected_s(self) -> float:
        """What the scheduler should expect: the learned mean, else the plan's estimate."""
        return float(self.learned["mean_s"]) if self.learned else self.estimated_s


@dataclass
class SuccessCriteria:
    # "all" | "at_least_one" | "at_least"
    kind: str = "at_least_one"
    count: int = 1


@dataclass
class CompiledGroup:
    id: str
    agents: list[str]
    depends_on: list[str] = field(default_factory=list)
    parallel: bool = True
    explicit: bool = False
    timeout_s: float | None = None
    success_criteria: SuccessCriteria = field(default_factory=SuccessCriteria)
    extension_s: float = 300.0
    max_extensions: int = 1
    quality_impact: str = "medium"
    partial_failure_handling: str = "continue_with_available_results"
    cross_validation: list[str] = field(default_factory=list)
    # validation_timeout (None = 3 minutes) and whether a failed validation blocks dependents
    cross_validation_timeout_s: float | None = None
    cross_validation_blocking: bool = False
    estimated_s: float = 0.0
    name: str = ""
    # the plan's own deadline when an adaptive plan stretched timeout_s to learned durations
    planned_timeout_s: float | None = None
    # set when the group runs per item (a group for_each, or the group of one fan-out agent):
    # its success_criteria then count items, not agents
    fan_out: FanOut | None = None


@dataclass
class Opportunity:
    """An explicit grouping choice that serialises independent work, and what it costs."""

    kind: str
    group: str
    agents: list[str]
    saving_s: float
    message: str


def _number(value: Any) -> float | None:
    """A plan number as float; None for anything else (a bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass(frozen=True)
class BarrierSettings:
    """The plan's barrier_synchronization, resolved: what the workflow reads of it."""

    # timeout_handling.progress_window, plan seconds (scaled at run time); None = not set, the
    # workflow's default applies
    progress_window_s: float | None = None

    @classmethod
    def from_section(cls, raw: Mapping[str, Any]) -> BarrierSettings:
        """From the section as compile dumped it before it was typed (committed histories and
        older `pee compile` files carry this form)."""
        handling = raw.get("timeout_handling")
        window = handling.get("progress_window") if isinstance(handling, Mapping) else None
        return cls(progress_window_s=_number(window))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BarrierSettings:
        """Either form: the typed one (to_dict) or the raw section."""
        if "progress_window_s" in data:
            return cls(progress_window_s=_number(data["progress_window_s"]))
        return cls.from_section(data)


@dataclass(frozen=True)
class AdaptiveSettings:
    """The plan's performance_monitoring, resolved: the adaptive_resource_allocation actions an
    `adaptive: true` plan lists (pee.engine.rules.adaptive reads them)."""

    actions: tuple[str, ...] = ()

    @classmethod
    def from_section(cls, raw: Mapping[str, Any]) -> AdaptiveSettings:
        """From the section as compile dumped it before it was typed."""
        optimisation = raw.get("performance_optimization") or {}
        allocation = optimisation.get("adaptive_resource_allocation") or {}
        actions = allocation.get("actions") if isinstance(allocation, Mapping) else None
        return cls(actions=tuple(str(a) for a in actions) if isinstance(actions, list) else ())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AdaptiveSettings:
        """Either form: the typed one (to_dict) or the raw section."""
        if "actions" in data:
            return cls(actions=tuple(str(a) for a in data["actions"]))
        return cls.from_section(data)


@dataclass
class CompiledPlan:
    name: str
    source: str | None
    agents: list[CompiledAgent]
    # in a valid execution order (topological over group dependencies)
    groups: list[CompiledGroup]
    critical_path: list[str]
    # eager DAG over groups (what the engine does)
    estimated_makespan_s: float
    # one agent after another
    sequential_s: float
    # generation by generation, each waiting for the slowest group of the previous one
    group_by_group_s: float
    # agent-level eager DAG, ignoring group barriers: the lower bound
    agent_level_s: float
    parallel_opportunities: list[Opportunity] = field(default_factory=list)
    # values supplied for plan inputs (BMAD requirements nobody produces, --set values)
    inputs: dict[str, Any] = field(default_factory=dict)
    # resource pool, barrier defaults, context and caching settings, as plain mappings
    resources: dict[str, Any] = field(default_factory=dict)
    barrier: BarrierSettings = field(default_factory=BarrierSettings)
    context: dict[str, Any] = field(default_factory=dict)
    caching: dict[str, Any] = field(default_factory=dict)
    monitoring: AdaptiveSettings = field(default_factory=AdaptiveSettings)
    default_agent_timeout_s: float = 600.0
    # `adaptive: true` in the plan: barrier deadlines follow learned durations, by this margin
    adaptive_margin: float | None = None

    def agent(self, agent_id: str) -> CompiledAgent:
        # position index (not a dataclass field: never serialised), checked on every use so a
        # changed agents list is simply re-indexed
        index: dict[str, int] = self.__dict__.get("_agent_positions") or {}
        position = index.get(agent_id)
        if position is None or position >= len(self.agents) or self.agents[position].id != agent_id:
            index = {}
            for i, agent in enumerate(self.agents):
                index.setdefault(agent.id, i)  # the first of duplicates, as a scan finds
            self.__dict__["_agent_positions"] = index
            position = index.get(agent_id)
        if position is None:
            raise KeyError(agent_id)
        return self.agents[position]

    def group(self, group_id: str) -> CompiledGroup:
        for group in self.groups:
            if group.id == group_id:
                return group
        raise KeyError(group_id)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompiledPlan:
        agents = [
            CompiledAgent(
                **{
                    **a,
                    "retry": RetrySpec(**a.get("retry", {})),
                    "fan_out": FanOut.from_dict(a.get("fan_out")),
                }
            )
            for a in data["agents"]
        ]
        groups = [
            CompiledGroup(
                **{
                    **g,
                    "success_criteria": SuccessCriteria(**g.get("success_criteria", {})),
                    "fan_out": FanOut.from_dict(g.get("fan_out")),
                }
            )
            for g in data["groups"]
        ]
        opportunities = [Opportunity(**o) for o in data.get("parallel_opportunities", [])]
        barrier = BarrierSettings.from_dict(data.get("barrier") or {})
        monitoring = AdaptiveSettings.from_dict(data.get("monitoring") or {})
        rest = {
            k: v
            for k, v in data.items()
            if k not in {"agents", "groups", "parallel_opportunities", "barrier", "monitoring"}
        }
        return cls(
            agents=agents,
            groups=groups,
            parallel_opportunities=opportunities,
            barrier=barrier,
            monitoring=monitoring,
            **rest,
        )


@dataclass(frozen=True)
class FanOut:
    """A for_each, compiled: who runs once per item of which run-time list, how many at once.

    The same value sits on every agent that runs per item and on its group
    (design-notes/fan-out.md; the plan language: pee.engine.language.fan_out)."""

    # the agent (level AGENT) or group (level GROUP) that declares for_each
    owner: str
    level: FanOutLevel
    # "agent.output" of the list, aliases resolved
    source: str
    # the agents that run once per item, in execution order
    members: tuple[str, ...] = ()
    # None: only resource admission bounds how many items run at once
    max_parallel: int | None = None
    # the item count the estimates assume: the plan's items_estimate, else the default
    items_estimate: int = DEFAULT_ITEMS_ESTIMATE
    items_estimate_declared: bool = False

    @property
    def source_agent(self) -> str:
        return self.source.split(".", 1)[0]

    @staticmethod
    def instance_id(agent_id: str, index: int) -> str:
        """`agent[index]`: how the run, the report and every view name one item's instance."""
        return f"{agent_id}[{index}]"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> FanOut | None:
        """From to_dict's form; None (no fan-out, or a plan compiled before fan-out) stays None."""
        if not data:
            return None
        return cls(
            owner=str(data["owner"]),
            level=FanOutLevel(data["level"]),
            source=str(data["source"]),
            members=tuple(str(m) for m in data.get("members", ())),
            max_parallel=data.get("max_parallel"),
            items_estimate=int(data.get("items_estimate", DEFAULT_ITEMS_ESTIMATE)),
            items_estimate_declared=bool(data.get("items_estimate_declared", False)),
        )
