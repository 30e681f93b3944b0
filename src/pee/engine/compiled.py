"""The compiled plan: plain, JSON-serialisable data that a workflow consumes without networkx.

Lists, not sets or dicts keyed by computed values, so iteration order is part of the data and the
workflow stays deterministic. Produced by ``pee.engine.compile.graph.compile_plan``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from functools import cache
from typing import Any

from pee.engine.language.fan_out import DEFAULT_ITEMS_ESTIMATE, FanOutLevel


@dataclass
class RetrySpec:
    max_attempts: int = 3
    initial_interval_s: float = 1.0
    backoff_coefficient: float = 2.0
    maximum_interval_s: float | None = None
    non_retryable: list[str] = field(default_factory=list)


# CompiledPlan.schema of plans whose sections are typed; a plan without it (every committed
# history, every `pee compile` file written before) carries the raw sections, which decode
# through the same resolvers compile uses
SCHEMA = 2


@dataclass(frozen=True)
class Learned:
    """What the kept samples of one agent say: how many, their mean and 95th percentile."""

    n: int
    mean_s: float
    p95_s: float

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Learned:
        return cls(int(data["n"]), float(data["mean_s"]), float(data["p95_s"]))


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
    # measured durations of earlier runs (pee.engine.compile.learning), or None
    learned: Learned | None = None
    # set when this agent runs once per item (its own for_each, or its group's): FanOut below
    fan_out: FanOut | None = None

    @property
    def expected_s(self) -> float:
        """What the scheduler should expect: the learned mean, else the plan's estimate."""
        return self.learned.mean_s if self.learned is not None else self.estimated_s

    @classmethod
    def from_dict(cls, a: Mapping[str, Any]) -> CompiledAgent:
        """The agent from its JSON (unknown keys ignored), without the SDK's generic dataclass
        walk: every AgentTask and AgentBatchWorkflow input carries agents.

        Built without the generated __init__ (a call with ~35 arguments and seven default
        factories): the defaults at once, fresh lists and dicts only for the fields the row
        leaves out (a plan's agents are written sparse), then the row. A run's first workflow
        task builds every agent of the plan this way (a fifth of it at 20,000 agents). Raises
        TypeError, as the constructor would, when a required field is missing."""
        row = _known(cls, a)
        missing = _AGENT_REQUIRED.difference(row)
        if missing:
            raise TypeError(f"CompiledAgent lacks {sorted(missing)}")
        agent = cls.__new__(cls)
        values = agent.__dict__
        values.update(_AGENT_DEFAULTS)
        for name, factory in _AGENT_FACTORIES:
            if name not in row:
                values[name] = factory()
        values.update(row)
        retry = a.get("retry")
        values["retry"] = RetrySpec(**_known(RetrySpec, retry)) if retry else RetrySpec()
        values["learned"] = Learned.from_dict(a["learned"]) if a.get("learned") else None
        values["fan_out"] = FanOut.from_dict(a.get("fan_out"))
        return agent


# CompiledAgent.from_dict's parts: fields without a default, plain defaults (immutable values:
# shared), and the default factories (a fresh list or dict per agent)
_AGENT_REQUIRED = frozenset(
    f.name for f in fields(CompiledAgent) if f.default is MISSING and f.default_factory is MISSING
)
_AGENT_DEFAULTS = {f.name: f.default for f in fields(CompiledAgent) if f.default is not MISSING}
_AGENT_FACTORIES = tuple(
    (f.name, f.default_factory)
    for f in fields(CompiledAgent)
    # retry: always built by from_dict
    if f.default_factory is not MISSING and f.name != "retry"
)


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


def _mapping(value: Any) -> Mapping[str, Any]:
    """A nested section of a raw plan dump, or an empty one where it is absent or null."""
    return value if isinstance(value, Mapping) else {}


def _given(value: Any) -> float | None:
    """A plan number as float, as the workflow read it (a bool counts, as isinstance saw it)."""
    return float(value) if isinstance(value, int | float) else None


def _whole(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


# --- resource_manager ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolLimits:
    """resource_pool.computational and allocation_strategy.resource_sharing: what the admission
    controller (pee.engine.rules.scheduler.Pool) and increase_cpu_allocation read."""

    total_cpu_units: float = 100.0
    total_memory_units: float = 100.0
    concurrent_agent_limit: int = 3
    cpu_oversubscription: float = 1.0
    memory_strict: bool = True


@dataclass(frozen=True)
class ContextStoreLimits:
    """resource_pool.context_store, plan seconds (pee.workflows.locks scales and bounds them)."""

    readers: int = 5
    writers: int = 1
    lock_timeout_s: float = 30.0


@dataclass(frozen=True)
class SharedPool:
    """resource_pool.shared: lease from the pool workflow of this name."""

    name: str
    holder_check_interval_s: float = 30.0


DEFAULT_SAMPLING_INTERVAL_S = 10.0


@dataclass(frozen=True)
class MonitoringSettings:
    """load_balancing.resource_monitoring: plan seconds and the alert thresholds as given
    (pee.engine.rules.monitoring.Settings scales them); None = no threshold."""

    sampling_interval_s: float = DEFAULT_SAMPLING_INTERVAL_S
    cpu_usage: float | None = None
    memory_usage: float | None = None
    response_time_s: float | None = None
    queue_depth: float | None = None


@dataclass(frozen=True)
class Contention:
    """A parallel group whose agents, started together, would exceed the pool."""

    group: str
    agents: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Resources:
    """The plan's resource_manager, resolved. ``pool`` None: the plan gives no resource_pool
    (a hand-built plan), so admission is unlimited; ``context_store`` then keeps its
    defaults."""

    pool: PoolLimits | None = None
    context_store: ContextStoreLimits = field(default_factory=ContextStoreLimits)
    shared: SharedPool | None = None
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    contention: tuple[Contention, ...] = ()

    @classmethod
    def from_section(cls, raw: Mapping[str, Any]) -> Resources:
        """From the section as compile dumped it before it was typed (a ResourceManager dump
        plus compile's contention list; committed histories and older `pee compile` files)."""
        pool_section = _mapping(raw.get("resource_pool"))
        pool = None
        if "resource_pool" in raw:
            computational = _mapping(pool_section.get("computational"))
            sharing = _mapping(_mapping(raw.get("allocation_strategy")).get("resource_sharing"))
            pool = PoolLimits(
                total_cpu_units=float(computational.get("total_cpu_units", 100.0)),
                total_memory_units=float(computational.get("total_memory_units", 100.0)),
                concurrent_agent_limit=int(computational.get("concurrent_agent_limit", 3)),
                cpu_oversubscription=float(sharing.get("cpu_oversubscription", 1.0)),
                memory_strict=bool(sharing.get("memory_strict", True)),
            )
        store = _mapping(pool_section.get("context_store"))
        shared = pool_section.get("shared")
        balancing = _mapping(raw.get("load_balancing"))
        watching = _mapping(balancing.get("resource_monitoring"))
        thresholds = _mapping(watching.get("alert_thresholds"))
        interval = _number(watching.get("sampling_interval", DEFAULT_SAMPLING_INTERVAL_S))
        return cls(
            pool=pool,
            context_store=ContextStoreLimits(
                readers=int(store.get("concurrent_readers", 5)),
                writers=int(store.get("concurrent_writers", 1)),
                lock_timeout_s=float(store.get("lock_timeout", 30.0)),
            ),
            shared=(
                SharedPool(str(shared["name"]), float(shared.get("holder_check_interval", 30.0)))
                if isinstance(shared, Mapping) and shared.get("name")
                else None
            ),
            monitoring=MonitoringSettings(
                # not a positive number: the default (a zero interval divides the time line)
                sampling_interval_s=(
                    interval
                    if interval is not None and interval > 0
                    else DEFAULT_SAMPLING_INTERVAL_S
                ),
                cpu_usage=_number(thresholds.get("cpu_usage")),
                memory_usage=_number(thresholds.get("memory_usage")),
                response_time_s=_number(thresholds.get("response_time")),
                queue_depth=_number(thresholds.get("queue_depth")),
            ),
            contention=tuple(
                Contention(str(c["group"]), tuple(c["agents"]), str(c["reason"]))
                for c in raw.get("contention") or []
            ),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Resources:
        """The typed form (to_dict)."""
        pool = data.get("pool")
        shared = data.get("shared")
        return cls(
            pool=None if pool is None else PoolLimits(**_known(PoolLimits, pool)),
            context_store=ContextStoreLimits(
                **_known(ContextStoreLimits, _mapping(data.get("context_store")))
            ),
            shared=None if shared is None else SharedPool(**_known(SharedPool, shared)),
            monitoring=MonitoringSettings(
                **_known(MonitoringSettings, _mapping(data.get("monitoring")))
            ),
            contention=tuple(
                Contention(c["group"], tuple(c["agents"]), c["reason"])
                for c in data.get("contention") or []
            ),
        )


# --- context_conflicts --------------------------------------------------------------------------


@dataclass(frozen=True)
class OwnershipRule:
    """conflict_prevention.ownership_rules: a role or agent id and the shared keys it owns."""

    owner: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class ConsistencyRule:
    keys: tuple[str, ...]
    must: str = "equal"
    message: str | None = None


DEFAULT_CONFLICT_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class ContextSettings:
    """The plan's context_conflicts, resolved (plan seconds: the workflow scales them)."""

    conflict_timeout_s: float = DEFAULT_CONFLICT_TIMEOUT_S
    # keep_current | keep_incoming | fail
    timeout_policy: str = "keep_current"
    # reject | conflict
    ownership_violation: str = "reject"
    ownership_rules: tuple[OwnershipRule, ...] = ()
    consistency_rules: tuple[ConsistencyRule, ...] = ()
    # bytes; None = the activity's own default
    large_value_threshold: int | None = None

    @classmethod
    def from_section(cls, raw: Mapping[str, Any]) -> ContextSettings:
        """From the section as compile dumped it before it was typed."""
        prevention = _mapping(_mapping(raw.get("resolution_mechanisms")).get("conflict_prevention"))
        rules = _mapping(prevention.get("ownership_rules"))
        return cls(
            conflict_timeout_s=float(raw.get("conflict_timeout", DEFAULT_CONFLICT_TIMEOUT_S)),
            timeout_policy=str(raw.get("timeout_policy", "keep_current")),
            ownership_violation=str(raw.get("ownership_violation", "reject")),
            ownership_rules=tuple(
                OwnershipRule(str(owner), tuple(keys)) for owner, keys in rules.items()
            ),
            consistency_rules=tuple(
                ConsistencyRule(
                    tuple(rule.get("keys") or ()),
                    str(rule.get("must", "equal")),
                    rule.get("message") or None,
                )
                for rule in raw.get("consistency_rules") or []
            ),
            large_value_threshold=_whole(raw.get("large_value_threshold")),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContextSettings:
        """The typed form (to_dict)."""
        return cls(
            **{
                **_known(cls, data),
                "ownership_rules": tuple(
                    OwnershipRule(r["owner"], tuple(r["keys"]))
                    for r in data.get("ownership_rules") or []
                ),
                "consistency_rules": tuple(
                    ConsistencyRule(tuple(r["keys"]), r.get("must", "equal"), r.get("message"))
                    for r in data.get("consistency_rules") or []
                ),
            }
        )


# --- caching_system -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheLevel:
    # seconds; None = session lifetime (this run only)
    ttl_s: float | None = None
    # bytes; None = no limit given
    size_limit: int | None = None

    @classmethod
    def from_section(cls, raw: Mapping[str, Any]) -> CacheLevel:
        # a ttl that is not a number ("session_lifetime") keeps entries for this run only
        return cls(_given(raw.get("ttl")), _whole(raw.get("size_limit")))


# compression_algorithm of a plan that never compresses
NO_COMPRESSION = "none"


@dataclass(frozen=True)
class CachingSettings:
    """The plan's caching_system, resolved: what the workflow's cache levels, the agent output
    cache and the bottleneck report read."""

    enabled: bool = True
    agent_output: CacheLevel = field(default_factory=CacheLevel)
    context_snapshot: CacheLevel = field(default_factory=CacheLevel)
    prefetch_templates: bool = True
    prefetch_context: bool = True
    compression_algorithm: str | None = None
    compression_threshold: int | None = None

    @property
    def output_ttl_s(self) -> float | None:
        """The agent output cache's cross-run TTL; None: this run only (session lifetime, or
        caching switched off)."""
        return self.agent_output.ttl_s if self.enabled else None

    @classmethod
    def from_section(cls, raw: Mapping[str, Any]) -> CachingSettings:
        """From the section as compile dumped it before it was typed."""
        levels = _mapping(raw.get("cache_levels"))
        optimisation = _mapping(raw.get("cache_optimization"))
        prefetching = _mapping(optimisation.get("prefetching"))
        compression = _mapping(optimisation.get("compression"))
        algorithm = compression.get("algorithm")
        return cls(
            enabled=raw.get("enabled", True) is not False,
            agent_output=CacheLevel.from_section(_mapping(levels.get("agent_output_cache"))),
            context_snapshot=CacheLevel.from_section(
                _mapping(levels.get("context_snapshot_cache"))
            ),
            prefetch_templates=prefetching.get("prefetch_templates", True) is not False,
            prefetch_context=prefetching.get("prefetch_context", True) is not False,
            compression_algorithm=algorithm if isinstance(algorithm, str) else None,
            compression_threshold=_whole(compression.get("compression_threshold")),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CachingSettings:
        """The typed form (to_dict)."""
        return cls(
            **{
                **_known(cls, data),
                "agent_output": CacheLevel(
                    **_known(CacheLevel, _mapping(data.get("agent_output")))
                ),
                "context_snapshot": CacheLevel(
                    **_known(CacheLevel, _mapping(data.get("context_snapshot")))
                ),
            }
        )


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
    # the plan's settings sections, resolved at compile time (each section's from_section)
    resources: Resources = field(default_factory=Resources)
    barrier: BarrierSettings = field(default_factory=BarrierSettings)
    context: ContextSettings = field(default_factory=ContextSettings)
    caching: CachingSettings = field(default_factory=CachingSettings)
    monitoring: AdaptiveSettings = field(default_factory=AdaptiveSettings)
    default_agent_timeout_s: float = 600.0
    # `adaptive: true` in the plan: barrier deadlines follow learned durations, by this margin
    adaptive_margin: float | None = None
    # the shape of the sections (SCHEMA: typed); from_dict reads a plan without it as raw
    schema: int = SCHEMA

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
        # indexed like agent(): a scan per call made the details text and every group's end
        # O(groups) each, ~20% of a 5,000-agent run's workflow time (bench/scale.py profile)
        index: dict[str, int] = self.__dict__.get("_group_positions") or {}
        position = index.get(group_id)
        if position is None or position >= len(self.groups) or self.groups[position].id != group_id:
            index = {}
            for i, group in enumerate(self.groups):
                index.setdefault(group.id, i)
            self.__dict__["_group_positions"] = index
            position = index.get(group_id)
        if position is None:
            raise KeyError(group_id)
        return self.groups[position]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CompiledPlan:
        """Either shape: the typed one to_dict writes (``schema`` = SCHEMA) or the raw sections
        of a plan compiled before they were typed, resolved as compile resolves them now.
        Unknown keys are ignored, at every level, so a newer plan still decodes here."""
        typed = data.get("schema") == SCHEMA
        agents = [CompiledAgent.from_dict(a) for a in data["agents"]]
        groups = [
            CompiledGroup(
                **{
                    **_known(CompiledGroup, g),
                    "success_criteria": SuccessCriteria(
                        **_known(SuccessCriteria, g.get("success_criteria") or {})
                    ),
                    "fan_out": FanOut.from_dict(g.get("fan_out")),
                }
            )
            for g in data["groups"]
        ]
        opportunities = [
            Opportunity(**_known(Opportunity, o)) for o in data.get("parallel_opportunities", [])
        ]
        resources = _mapping(data.get("resources"))
        context = _mapping(data.get("context"))
        caching = _mapping(data.get("caching"))
        sections: dict[str, Any] = {
            "agents": agents,
            "groups": groups,
            "parallel_opportunities": opportunities,
            "barrier": BarrierSettings.from_dict(_mapping(data.get("barrier"))),
            "monitoring": AdaptiveSettings.from_dict(_mapping(data.get("monitoring"))),
            "resources": (
                Resources.from_dict(resources) if typed else Resources.from_section(resources)
            ),
            "context": (
                ContextSettings.from_dict(context)
                if typed
                else ContextSettings.from_section(context)
            ),
            "caching": (
                CachingSettings.from_dict(caching)
                if typed
                else CachingSettings.from_section(caching)
            ),
            "schema": SCHEMA,
        }
        rest = {k: v for k, v in _known(cls, data).items() if k not in sections}
        return cls(**sections, **rest)


@cache
def _field_names(kind: type) -> frozenset[str]:
    # once per class: a 5,000-agent plan asks for CompiledAgent's on every agent
    return frozenset(f.name for f in fields(kind))


def _known(kind: type, data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The entries of ``data`` that name a field of the dataclass ``kind``."""
    names = _field_names(kind)
    if names.issuperset(data):
        return data  # the usual case, kept cheap for large plans
    return {k: v for k, v in data.items() if k in names}


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

    @staticmethod
    def template_of(agent_id: str) -> tuple[str, int] | None:
        """("dev", 3) for the instance id "dev[3]"; None for any other id."""
        if not agent_id.endswith("]") or "[" not in agent_id:
            return None
        head, _, rest = agent_id.rpartition("[")
        number = rest[:-1]
        if not head or not number.isdigit():
            return None
        return head, int(number)

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
