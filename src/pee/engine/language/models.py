"""Pydantic models of the plan language: agents, groups and the seed's configuration sections.

Every model forbids unknown keys so a typo is reported (with a suggestion) instead of ignored.
Purely descriptive seed fields (``description``, ``example``, ``algorithm``...) are accepted
as text.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from pee.engine.language.json_values import json_problem
from pee.engine.language.units import Duration, parse_duration, parse_size, parse_units

DurationValue = Annotated[
    Duration, BeforeValidator(parse_duration), PlainSerializer(lambda d: d.seconds)
]


def _above_zero(why: str) -> AfterValidator:
    """Zero is refused where it would mean something else than it says (the default, an
    instant deadline...): ``why`` tells the user what."""

    def check(value: Duration) -> Duration:
        if value.max_s <= 0:
            raise ValueError(f"must be above 0: {why}")
        return value

    return AfterValidator(check)


# the reasons a zero is refused, one per meaning
AGENT_TIMEOUT_ZERO = (
    "0 would not bound the agent: it silently meant the default; leave "
    "timeout out for max(default_agent_timeout, 2 x the estimate)"
)
GROUP_TIMEOUT_ZERO = (
    "a deadline of 0 ends the group at once (its agents cut short, then a "
    "sequential fallback); leave timeout out for the default barrier deadline"
)
EXTENSION_ZERO = "an extension of 0 extends nothing; set max_extensions: 0 for no extension"
Timeout = Annotated[DurationValue, _above_zero(AGENT_TIMEOUT_ZERO)]
GroupTimeout = Annotated[DurationValue, _above_zero(GROUP_TIMEOUT_ZERO)]
Extension = Annotated[DurationValue, _above_zero(EXTENSION_ZERO)]
Units = Annotated[float, BeforeValidator(parse_units)]
Size = Annotated[int, BeforeValidator(parse_size)]


def _as_list(value: Any) -> Any:
    # BMAD and hand-written plans often give a single reference as a bare string
    if isinstance(value, str):
        return [value]
    return [] if value is None else value


StrList = Annotated[list[str], BeforeValidator(_as_list)]

# for_each names the list it runs over as `agent.output` (docs/reference/plan-language.md,
# "Fan-out"); the whole-plan checks (pee.engine.compile.fan_out) then find that agent
FAN_OUT_SOURCE = re.compile(r"[^.\s]+\.[^\s]+")


def _fan_out_source(value: Any) -> Any:
    if isinstance(value, str) and not FAN_OUT_SOURCE.fullmatch(value):
        raise ValueError(
            "for_each names a list an earlier agent outputs, as 'agent.output' "
            "(e.g. for_each: sm.stories)"
        )
    return value


FanOutSource = Annotated[str, AfterValidator(_fan_out_source)]
# at most this many items of one fan-out run at once (above it, only resource admission bounds it)
MaxParallel = Annotated[int, Field(ge=1, le=10_000)]
# how many items `plan` assumes when estimating a fan-out (the list exists only at run time)
ItemsEstimate = Annotated[int, Field(ge=0, le=1_000_000)]


def _json_data(value: dict[str, Any]) -> dict[str, Any]:
    problem = json_problem(value)
    if problem:
        raise ValueError(problem)
    return value


# a free-form mapping that is passed on to the workflow and the agent backends
JsonMapping = Annotated[dict[str, Any], AfterValidator(_json_data)]
Text = Annotated[str, BeforeValidator(lambda v: v if not isinstance(v, int | float) else str(v))]

# `adaptive: true`: barrier deadlines follow learned p95 x this (`adaptive: {margin: M}`
# overrides; pee.engine.compile.learning applies it)
DEFAULT_MARGIN = 1.5
# a learned deadline of p95 x 100 is already a deadline that does not bind
MAX_MARGIN = 100.0

AGENT_KINDS = ("simulate", "role", "template", "command", "python", "http")

# Agents the engine can play itself (kind "role"): an agent with no kind whose role is one of
# these produces that role's documents; BMAD's spellings map onto them.
BUILTIN_ROLES = ("analyst", "pm", "ux_expert", "architect", "developer", "qa", "po", "sm")
ROLE_ALIASES = {
    "dev": "developer",
    "ux": "ux_expert",
    "product_owner": "po",
    "scrum_master": "sm",
    "product_manager": "pm",
}
# what a role agent produces when the plan names none of its outputs (a seed agent listed
# without a specification that nobody reads from, such as developer and qa)
ROLE_DEFAULT_OUTPUTS: dict[str, tuple[str, ...]] = {
    "analyst": ("project_brief", "target_users", "technical_constraints"),
    "pm": ("user_stories", "user_personas", "requirements"),
    "ux_expert": ("ui_spec", "user_journeys", "component_specifications"),
    "architect": ("system_architecture", "technology_stack", "api_specifications"),
    "developer": ("implementation_plan", "implementation_files"),
    "qa": ("test_plan", "test_results", "qa_report"),
    "po": ("validation_report",),
    "sm": ("story",),
}

# Settings that only make sense for one backend; using them on another kind is reported.
KIND_SETTINGS: dict[str, tuple[str, ...]] = {
    "role": (),
    "simulate": ("duration", "fail_times", "values", "heartbeat", "critical"),
    "template": ("template",),
    "command": ("command", "env", "cwd"),
    "python": ("callable",),
    "http": ("base_url", "model", "api_key_env", "system", "prompt", "output_schema"),
}

_ALL_KIND_SETTINGS = tuple(name for names in KIND_SETTINGS.values() for name in names)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Described(Strict):
    """A seed block that mostly documents intent."""

    description: Text | None = None
    example: Text | None = None


class RetryModel(Strict):
    max_attempts: int = Field(3, ge=1, le=100)
    initial_interval: DurationValue = Duration(1.0, 1.0)
    backoff_coefficient: float = Field(2.0, ge=1.0, le=100.0)
    maximum_interval: DurationValue | None = None
    non_retryable: StrList = Field(default_factory=list)

    @model_validator(mode="after")
    def _maximum_not_below_initial(self) -> RetryModel:
        if self.maximum_interval is not None and (
            self.maximum_interval.seconds < self.initial_interval.seconds
        ):
            # Temporal refuses such a policy; the workflow would quietly raise it to initial
            raise ValueError(
                f"retry maximum_interval {self.maximum_interval} is below initial_interval "
                f"{self.initial_interval}; give a maximum_interval at least as long, or none"
            )
        return self


class ResourceRequirements(Strict):
    cpu: Units | None = None
    memory: Units | None = None
    # the seed's descriptive access pattern, e.g. "read_multiple_write_ux"
    context_access: Text | None = None


def normalise_role(name: str) -> str:
    role = name.strip().lower().replace("-", "_").replace(" ", "_")
    return ROLE_ALIASES.get(role, role)


class AgentSpec(Strict):
    role: str | None = None
    # None: a built-in role agent when the role is one, else simulate (see resolved_kind)
    kind: Literal["simulate", "role", "template", "command", "python", "http"] | None = None
    description: Text = ""
    inputs: StrList = Field(default_factory=list)
    optional_inputs: StrList = Field(default_factory=list)
    outputs: StrList = Field(default_factory=list)
    writes: StrList = Field(default_factory=list)
    validates: StrList = Field(default_factory=list)
    validation_blocking: bool | None = None
    defaults: JsonMapping = Field(default_factory=dict)
    timeout: Timeout | None = None
    estimated_duration: DurationValue | None = None
    priority: int | None = Field(None, ge=0, le=100)
    retry: RetryModel = Field(default_factory=RetryModel)
    resource_requirements: ResourceRequirements = Field(default_factory=ResourceRequirements)
    task_queue: str | None = None
    optional: bool = False
    settings: JsonMapping = Field(default_factory=dict)
    # kind-specific settings (see KIND_SETTINGS)
    duration: DurationValue | None = None
    fail_times: Annotated[int, Field(ge=0)] | Literal["always"] | None = None
    values: JsonMapping | None = None
    heartbeat: bool | None = None
    critical: bool | None = None
    template: str | None = None
    command: StrList | None = None
    env: dict[str, str] | None = None
    cwd: str | None = None
    callable: str | None = None
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    system: str | None = None
    prompt: str | None = None
    output_schema: JsonMapping | None = None
    # fan-out: one instance per item of the list `agent.output`, each receiving `item`/`index`
    for_each: FanOutSource | None = None
    max_parallel: MaxParallel | None = None
    items_estimate: ItemsEstimate | None = None

    @field_validator("outputs", "writes")
    @classmethod
    def _no_duplicates(cls, names: list[str]) -> list[str]:
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise ValueError(f"'{name}' is listed twice")
            seen.add(name)
        return names

    def resolved_kind(self, agent_id: str) -> str:
        """The backend: the given kind; else simulate when a simulate setting is used; else the
        built-in role agent when the role (or id) is one; else simulate."""
        if self.kind is not None:
            return self.kind
        if any(getattr(self, name) is not None for name in self.given(KIND_SETTINGS["simulate"])):
            return "simulate"
        if normalise_role(self.role or agent_id) in BUILTIN_ROLES:
            return "role"
        return "simulate"

    def given(self, names: tuple[str, ...]) -> list[str]:
        """Those of ``names`` (fields that default to None) the plan wrote: the others are None
        (a large plan has thousands of agents, each asked about every kind's settings)."""
        written = self.model_fields_set
        return [name for name in names if name in written]

    def kind_settings(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in self.given(_ALL_KIND_SETTINGS):
            value = getattr(self, name)
            if value is not None:
                values[name] = value.seconds if isinstance(value, Duration) else value
        return values


class AtLeast(Strict):
    at_least: int = Field(ge=1)


SuccessCriteriaValue = (
    Literal["all", "all_agents_succeed", "at_least_one_agent_succeeds", "at_least_one"]
    | AtLeast
    | int
)


class CrossValidation(Strict):
    enabled: bool = True
    validation_agents: StrList = Field(default_factory=list)
    validation_timeout: (
        Annotated[
            DurationValue,
            _above_zero(
                "a validation timeout of 0 silently meant the default (180 s); "
                "leave it out for that"
            ),
        ]
        | None
    ) = None
    # a failed validation blocks the group's dependents until resolved like a conflict
    blocking: bool = False


class SynchronizationStrategy(Strict):
    type: str | None = None
    timeout: GroupTimeout | None = None
    partial_failure_handling: str | None = None
    # the seed writes a strategy name ("post_completion_validation") here
    cross_validation: str | CrossValidation | None = None
    success_criteria: SuccessCriteriaValue | None = None
    failure_criteria: str | None = None
    barrier_type: str | None = None


class GroupSpec(Strict):
    name: str | None = None
    agents: StrList = Field(default_factory=list)
    depends_on: StrList = Field(default_factory=list)
    parallel: bool | None = None
    timeout: GroupTimeout | None = None
    success_criteria: SuccessCriteriaValue | None = None
    extension: Extension | None = None
    max_extensions: int | None = Field(None, ge=0, le=10)
    quality_impact: str | None = None
    partial_failure_handling: str | None = None
    cross_validation: CrossValidation | None = None
    estimated_duration: DurationValue | None = None
    # fan-out: the group's agents run as one sub-pipeline per item of the list `agent.output`
    for_each: FanOutSource | None = None
    max_parallel: MaxParallel | None = None
    items_estimate: ItemsEstimate | None = None


# ---- seed sections -------------------------------------------------------------------------


class DependencyType(Described):
    blocking: bool | None = None


class DependencyGraphGeneration(Strict):
    algorithm: str | None = None
    optimization: str | None = None
    output: str | None = None


class DependencyAnalyzer(Strict):
    analysis_scope: str | None = None
    dependency_types: dict[str, DependencyType] = Field(default_factory=dict)
    dependency_graph_generation: DependencyGraphGeneration | None = None

    @field_validator("dependency_types")
    @classmethod
    def _known_types(cls, types: dict[str, DependencyType]) -> dict[str, DependencyType]:
        known = (
            "data_dependency",
            "context_dependency",
            "validation_dependency",
            "resource_dependency",
        )
        for name in types:
            if name not in known:
                raise ValueError(f"unknown dependency type '{name}'; known: {list(known)}")
        data = types.get("data_dependency")
        if data is not None and data.blocking is False:
            raise ValueError(
                "data_dependency must be blocking: an agent cannot run without its "
                "data; use optional_inputs (context dependencies) instead"
            )
        return types


class Computational(Strict):
    total_cpu_units: float = Field(100, gt=0)
    total_memory_units: float = Field(100, gt=0)
    concurrent_agent_limit: int = Field(3, ge=1)


class ContextStore(Strict):
    concurrent_readers: int = Field(5, ge=1)
    concurrent_writers: int = Field(1, ge=1)
    lock_timeout: Annotated[
        DurationValue,
        _above_zero(
            "0 would not mean 'never wait': a context slot is always waited for at least 1 s"
        ),
    ] = Duration(30.0, 30.0)


class TemplateEngine(Strict):
    concurrent_renders: int = Field(3, ge=1)
    cache_size: Size = 50 * 1024**2
    render_timeout: Annotated[
        DurationValue, _above_zero("a render timeout of 0 fails every render")
    ] = Duration(120.0, 120.0)


# a shared pool's name becomes part of a workflow id (resource-pool-NAME)
SHARED_POOL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$"


class SharedPool(Strict):
    """Lease CPU, memory and agent slots from the long-lived pool workflow of this name
    (src/pee/workflows/resource_pool.py), shared by every run naming it, instead of a private
    pool."""

    name: str
    # how often the pool asks the server whether its holders' runs still exist (real seconds):
    # leases of a terminated or timed-out run come back within about this long
    holder_check_interval: DurationValue = Duration(30.0, 30.0)

    @field_validator("name")
    @classmethod
    def _usable_in_a_workflow_id(cls, name: str) -> str:
        if not re.match(SHARED_POOL_NAME, name):
            raise ValueError(
                "a shared pool name is 1-80 ASCII letters, digits, '_', '.' or '-' starting "
                "with a letter or digit (it names the workflow resource-pool-NAME)"
            )
        return name

    @field_validator("holder_check_interval")
    @classmethod
    def _sensible_interval(cls, value: Duration) -> Duration:
        if not 0.5 <= value.seconds <= 3600:
            # the error adds what was found, as written in the plan
            raise ValueError("holder_check_interval must be between 0.5 s and 1 h")
        return value


def _shared_pool_name(value: Any) -> Any:
    # `shared: build-farm` is short for `shared: {name: build-farm}`
    return {"name": value} if isinstance(value, str) else value


class ResourcePool(Strict):
    computational: Computational = Field(default_factory=Computational)
    context_store: ContextStore = Field(default_factory=ContextStore)
    template_engine: TemplateEngine = Field(default_factory=TemplateEngine)
    shared: Annotated[SharedPool, BeforeValidator(_shared_pool_name)] | None = None


class Priorities(Strict):
    critical_path_agents: int = Field(10, ge=0, le=100)
    parallel_group_agents: int = Field(7, ge=0, le=100)
    validation_agents: int = Field(5, ge=0, le=100)


class ResourceSharing(Strict):
    cpu_oversubscription: float = Field(1.0, ge=1.0, le=10.0)
    memory_strict: bool = True
    context_queuing: bool = True


class AllocationStrategy(Strict):
    algorithm: str = "priority_based_fair_sharing"
    priorities: Priorities = Field(default_factory=Priorities)
    resource_sharing: ResourceSharing = Field(default_factory=ResourceSharing)


class AgentAssignment(Strict):
    strategy: str | None = None
    health_check: str | None = None
    failover: str | None = None


class AlertThresholds(Strict):
    cpu_usage: float | None = Field(None, ge=0)
    memory_usage: float | None = Field(None, ge=0)
    response_time: DurationValue | None = None
    queue_depth: int | None = Field(None, ge=0)


class ResourceMonitoring(Strict):
    metrics: StrList = Field(default_factory=list)
    sampling_interval: Annotated[
        DurationValue, _above_zero("a sampling interval of 0 silently meant the default (10 s)")
    ] = Duration(10.0, 10.0)
    alert_thresholds: AlertThresholds = Field(default_factory=AlertThresholds)


class LoadBalancing(Strict):
    agent_assignment: AgentAssignment = Field(default_factory=AgentAssignment)
    resource_monitoring: ResourceMonitoring = Field(default_factory=ResourceMonitoring)


class ResourceManager(Strict):
    resource_pool: ResourcePool = Field(default_factory=ResourcePool)
    allocation_strategy: AllocationStrategy = Field(default_factory=AllocationStrategy)
    load_balancing: LoadBalancing = Field(default_factory=LoadBalancing)


class ContinueWithPartial(Strict):
    condition: str | None = None
    action: str | None = None
    quality_impact: str = "medium"


class ExtendTimeout(Strict):
    condition: str | None = None
    extension: Extension = Duration(300.0, 300.0)
    max_extensions: int = Field(1, ge=0, le=10)

    @field_validator("extension")
    @classmethod
    def _at_most_five_minutes(cls, value: Duration) -> Duration:
        if value.max_s > 300:
            raise ValueError(f"an extension is at most 5 minutes, found {value}")
        return value


class AbortAndFallback(Strict):
    condition: str | None = None
    action: str = "fall_back_to_sequential_execution"
    notification: str | None = None


class TimeoutStrategies(Strict):
    continue_with_partial: ContinueWithPartial = Field(default_factory=ContinueWithPartial)
    extend_timeout: ExtendTimeout = Field(default_factory=ExtendTimeout)
    abort_and_fallback: AbortAndFallback = Field(default_factory=AbortAndFallback)


class TimeoutHandling(Strict):
    default_timeout: Annotated[
        DurationValue, _above_zero("a deadline of 0 ends every group of several agents at once")
    ] = Duration(600.0, 600.0)
    timeout_strategies: TimeoutStrategies = Field(default_factory=TimeoutStrategies)
    # how recent a heartbeat must be for an agent to count as "making progress"
    progress_window: Annotated[
        DurationValue,
        _above_zero("no heartbeat falls inside a window of 0 (it was silently raised to 1.5 s)"),
    ] = Duration(30.0, 30.0)


class BarrierSynchronization(Strict):
    implementation: str = "smart_barrier_with_partial_results"
    phases: dict[str, StrList] = Field(default_factory=dict)
    timeout_handling: TimeoutHandling = Field(default_factory=TimeoutHandling)


class ConflictType(Described):
    resolution: str | None = None


class OptimisticConcurrency(Strict):
    strategy: str | None = None
    conflict_detection: str = "content_hash_comparison"
    resolution: str = "three_way_merge_with_validation"


class ContextVersioning(Strict):
    strategy: str | None = None
    merge_strategy: str = "semantic_merge_where_possible"
    fallback: str = "manual_conflict_resolution"


class ConflictPrevention(Strict):
    strategy: str | None = None
    ownership_rules: dict[str, StrList] = Field(default_factory=dict)


class ResolutionMechanisms(Strict):
    optimistic_concurrency: OptimisticConcurrency = Field(default_factory=OptimisticConcurrency)
    context_versioning: ContextVersioning = Field(default_factory=ContextVersioning)
    conflict_prevention: ConflictPrevention = Field(default_factory=ConflictPrevention)


class ConsistencyRule(Strict):
    """Post-completion check: e.g. {keys: [ux_expert.platform, architect.platform], must: equal}."""

    keys: StrList = Field(min_length=2)
    must: Literal["equal"] = "equal"
    message: str | None = None


class ContextConflicts(Strict):
    conflict_types: dict[str, ConflictType] = Field(default_factory=dict)
    resolution_mechanisms: ResolutionMechanisms = Field(default_factory=ResolutionMechanisms)
    # how long an unresolved conflict may block its readers before timeout_policy applies
    conflict_timeout: DurationValue = Duration(3600.0, 3600.0)
    timeout_policy: Literal["keep_current", "keep_incoming", "fail"] = "keep_current"
    ownership_violation: Literal["reject", "conflict"] = "reject"
    consistency_rules: list[ConsistencyRule] = Field(default_factory=list)
    # accepted for plans written for the former claim check, and ignored: payloads still over
    # PEE_PAYLOAD_THRESHOLD after lz4 leave the history through External Storage (ADR 0015)
    large_value_threshold: Size = 256 * 1024


Ttl = Literal["session_lifetime"] | DurationValue


class CacheLevel(Strict):
    scope: str | None = None
    key_strategy: str | None = None
    ttl: Ttl = "session_lifetime"
    size_limit: Size = 100 * 1024**2


class CacheLevels(Strict):
    agent_output_cache: CacheLevel = Field(default_factory=CacheLevel)
    template_render_cache: CacheLevel = Field(
        default_factory=lambda: CacheLevel(ttl=Duration(3600.0, 3600.0), size_limit=50 * 1024**2)
    )
    context_snapshot_cache: CacheLevel = Field(
        default_factory=lambda: CacheLevel(size_limit=200 * 1024**2)
    )


class Prefetching(Strict):
    strategy: str | None = None
    prefetch_templates: bool = True
    prefetch_context: bool = True


class Compression(Strict):
    algorithm: Literal["lz4_fast_compression", "lz4", "none"] = "lz4_fast_compression"
    compression_threshold: Size = 10 * 1024


class Eviction(Strict):
    policy: Literal["lru_with_priority_boosting", "lru"] = "lru_with_priority_boosting"
    priority_factors: StrList = Field(default_factory=list)


class CacheOptimization(Strict):
    prefetching: Prefetching = Field(default_factory=Prefetching)
    compression: Compression = Field(default_factory=Compression)
    eviction: Eviction = Field(default_factory=Eviction)


class CachingSystem(Strict):
    enabled: bool = True
    # accepted only to say where the cache file is set: it belongs to each worker's host
    path: str | None = None
    cache_levels: CacheLevels = Field(default_factory=CacheLevels)
    cache_optimization: CacheOptimization = Field(default_factory=CacheOptimization)

    @field_validator("path")
    @classmethod
    def _worker_owns_the_file(cls, path: str | None) -> str | None:
        # a plan runs on many workers, on many hosts: one file named here could not be theirs
        if path is not None:
            raise ValueError(
                "the cache file is each worker's, not the plan's: set PEE_CACHE_PATH where the "
                "worker runs (default .temporal/cache.db; `pee cache stats` shows it) and "
                "remove caching_system.path"
            )
        return path


class PerformanceMonitoring(Strict):
    metrics_collection: dict[str, StrList] = Field(default_factory=dict)
    performance_optimization: JsonMapping = Field(default_factory=dict)


# ---- the enhanced workflow step ------------------------------------------------------------


class ContextRequirements(Strict):
    read: StrList = Field(default_factory=list)
    write: StrList = Field(default_factory=list)


class ParallelConfiguration(Strict):
    execution_mode: str | None = None
    resource_isolation: bool | None = None
    context_sharing: str | None = None


class StepAgent(AgentSpec):
    id: str
    agent: str | None = None
    context_requirements: ContextRequirements = Field(default_factory=ContextRequirements)


class EnhancedStep(Strict):
    id: str
    name: str | None = None
    type: Literal["parallel_group", "sequential_group", "group"] = "parallel_group"
    parallel_configuration: ParallelConfiguration = Field(default_factory=ParallelConfiguration)
    agents: list[StepAgent] = Field(default_factory=list)
    depends_on: StrList = Field(default_factory=list)
    timeout: GroupTimeout | None = None
    synchronization: SynchronizationStrategy = Field(default_factory=SynchronizationStrategy)
    cross_validation: CrossValidation | None = None
