"""Dependency analysis: a validated Plan in, a plain CompiledPlan out.

The graphs are plain mappings of predecessors (pee.engine.compile.order); the workflow receives
only lists and numbers. Estimates:
- ``sequential_s``: every agent one after another;
- ``group_by_group_s``: generation by generation, each waiting for the slowest group before it;
- ``estimated_makespan_s``: groups scheduled eagerly on the DAG (what the engine does);
- ``agent_level_s``: agents scheduled eagerly, ignoring group barriers (the lower bound).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pee.engine.compile.admission_plan import plan_admission
from pee.engine.compile.checks import check_plan, group_predecessors, ordered_agents
from pee.engine.compile.fan_out import compiled_fan_outs, instance_counts
from pee.engine.compile.grouping import GroupInfo, Grouping
from pee.engine.compile.learning import Learned, adaptive_timeout, group_p95
from pee.engine.compile.order import generations, topological_order
from pee.engine.compile.references import Resolution, validation_blocks_by_default
from pee.engine.compiled import (
    AdaptiveSettings,
    BarrierSettings,
    CachingSettings,
    CompiledAgent,
    CompiledGroup,
    CompiledPlan,
    ContextSettings,
    FanOut,
    Opportunity,
    Resources,
    RetrySpec,
    SuccessCriteria,
)
from pee.engine.gc_pause import paused_gc
from pee.engine.language.errors import PlanValidationError
from pee.engine.language.models import AgentSpec, AtLeast, GroupSpec, normalise_role
from pee.engine.language.plan import Plan
from pee.engine.language.sandbox import ROOT_SETTING, sandbox_root
from pee.engine.language.units import DEFAULT_UNITS, MAX_DURATION_S, Duration

DEFAULT_ESTIMATE_S = 60.0


def agent_estimate(spec: AgentSpec, group: GroupSpec | None) -> Duration:
    for candidate in (
        spec.estimated_duration,
        spec.duration,
        group.estimated_duration if group else None,
    ):
        if candidate is not None:
            return candidate
    return Duration(DEFAULT_ESTIMATE_S, DEFAULT_ESTIMATE_S)


def _analysis(plan: Plan) -> tuple[Resolution, Grouping]:
    if plan.resolution is None or plan.grouping is None:
        problems = check_plan(plan)
        if problems:
            raise PlanValidationError(problems, file=plan.source.file)
    return plan.resolution, plan.grouping


def group_durations(grouping: Grouping, estimates: Mapping[str, Duration]) -> dict[str, float]:
    durations: dict[str, float] = {}
    for group_id, info in grouping.groups.items():
        values = [estimates[a].seconds for a in info.agents]
        if not values:
            durations[group_id] = 0.0
        elif info.parallel:
            durations[group_id] = max(values)
        else:
            durations[group_id] = sum(values)
    return durations


def eager_finish_times(
    order: list[str], depends_on: Mapping[str, list[str]], durations: Mapping[str, float]
) -> dict[str, float]:
    """Finish time of every node when each starts the moment its dependencies finish."""
    finish: dict[str, float] = {}
    for node in order:
        start = max((finish[d] for d in depends_on[node]), default=0.0)
        finish[node] = start + durations[node]
    return finish


def _fan_out_chains(
    grouping: Grouping,
    resolution: Resolution,
    fan_outs: Mapping[str, FanOut],
    estimates: Mapping[str, Duration],
) -> dict[str, tuple[float, list[str]]]:
    """A parallel fan-out group runs each item's agents as a chain along their own edges: its
    length is that chain's (the longest path inside the group), not its slowest agent's. Group
    id -> (length, the agents on that longest path)."""
    lengths: dict[str, tuple[float, list[str]]] = {}
    for group_id, info in grouping.groups.items():
        if not info.parallel or not any(a in fan_outs for a in info.agents):
            continue
        members = set(info.agents)
        inside: dict[str, list[str]] = {a: [] for a in info.agents}
        for edge in resolution.edges:
            if edge.blocking and edge.source in members and edge.target in members:
                inside[edge.target].append(edge.source)
        rank = {a: i for i, a in enumerate(info.agents)}
        order = _ordered(inside, rank)
        finish = eager_finish_times(order, inside, {a: estimates[a].seconds for a in order})
        lengths[group_id] = (
            max(finish.values(), default=0.0),
            _longest_path(order, inside, finish),
        )
    return lengths


def _longest_path(
    order: list[str], depends_on: Mapping[str, list[str]], finish: Mapping[str, float]
) -> list[str]:
    if not order:
        return []
    rank = {node: index for index, node in enumerate(order)}
    # latest-finishing node, earliest in order on ties, then walk back through the binding deps
    node = max(order, key=lambda n: (finish[n], -rank[n]))
    path = [node]
    while depends_on[node]:
        node = max(depends_on[node], key=lambda d: (finish[d], -rank[d]))
        path.append(node)
    return path[::-1]


# as build_plan: many allocations, no cycles to collect (pee.engine.gc_pause)
@paused_gc()
def _ordered(predecessors: Mapping[str, list[str]], rank: Mapping[str, int]) -> list[str]:
    order = topological_order(predecessors, rank)
    if order is None:
        # the checks refuse a plan with a cycle before it gets here
        raise ValueError("the plan's dependencies form a cycle")
    return order


# as build_plan: many allocations, no cycles to collect (pee.engine.gc_pause)
@paused_gc()
def compile_plan(plan: Plan, learned: Mapping[str, Learned] | None = None) -> CompiledPlan:
    """`learned` (pee.engine.compile.learning, from pee.runtime.duration_store): measured durations
    per agent. Their means replace the estimates in the analysis (critical path, priorities,
    makespan estimates); an `adaptive: true` plan also stretches barrier deadlines to their p95 x
    margin. The plan's own estimates stay the agents' `estimated_s` (what `--simulate` runs
    take)."""
    resolution, grouping = _analysis(plan)
    learned = {a: v for a, v in (learned or {}).items() if a in plan.agents}
    declaration = {agent_id: index for index, agent_id in enumerate(plan.agents)}
    group_specs = {g: info.spec for g, info in grouping.groups.items()}
    planned = {
        agent_id: agent_estimate(spec, group_specs[grouping.agent_group[agent_id]])
        for agent_id, spec in plan.agents.items()
    }
    per_instance = {
        a: Duration(learned[a].mean_s, learned[a].mean_s) if a in learned else e
        for a, e in planned.items()
    }
    # a fan-out agent counts as its item waves one after another (the estimated or default
    # item count over what may run at once); every other agent as itself
    fan_outs = compiled_fan_outs(plan, resolution)
    pool = plan.resource_manager.resource_pool.computational
    counts = instance_counts(
        fan_outs, pool.concurrent_agent_limit if plan.resource_pool_given else None
    )
    estimates = {
        a: Duration(e.min_s * counts[a][1], e.max_s * counts[a][1]) if a in counts else e
        for a, e in per_instance.items()
    }

    group_waits = group_predecessors(grouping)
    group_rank = {g: i for i, g in enumerate(grouping.groups)}
    group_order = _ordered(group_waits, group_rank)
    group_deps = {
        g: sorted(grouping.groups[g].depends_on, key=group_rank.__getitem__) for g in group_order
    }
    durations = group_durations(grouping, estimates)
    chains = _fan_out_chains(grouping, resolution, fan_outs, estimates)
    durations.update({g: length for g, (length, _path) in chains.items()})
    finish = eager_finish_times(group_order, group_deps, durations)
    makespan = max(finish.values(), default=0.0)
    critical_groups = _longest_path(group_order, group_deps, finish)
    critical_path: list[str] = []
    for group_id in critical_groups:
        info = grouping.groups[group_id]
        if group_id in chains:
            critical_path.extend(chains[group_id][1])
        elif info.parallel:
            critical_path.append(
                max(info.agents, key=lambda a: (estimates[a].seconds, -declaration[a]))
            )
        else:
            critical_path.extend(info.agents)

    group_by_group = sum(
        max(durations[g] for g in generation)
        for generation in generations(group_order, group_waits)
    )
    sequential = sum(
        e.seconds * (counts[a][0] if a in counts else 1) for a, e in per_instance.items()
    )

    # as the cycle check found them: in declaration order among the ready ones
    agent_preds, ordered = ordered_agents(plan, resolution.edges, grouping)
    if ordered is None:
        # the checks refuse a plan with a cycle before it gets here
        raise ValueError("the plan's dependencies form a cycle")
    agent_order = ordered
    agent_finish = eager_finish_times(
        agent_order, agent_preds, {a: estimates[a].seconds for a in agent_order}
    )
    agent_level = max(agent_finish.values(), default=0.0)

    compiled_groups = [
        _compile_group(plan, grouping.groups[g], group_deps[g], durations[g]) for g in group_order
    ]
    for group in compiled_groups:
        group.fan_out = next((fan_outs[a] for a in group.agents if a in fan_outs), None)
        declared = grouping.groups[group.id].spec
        if group.fan_out is not None and (declared is None or declared.success_criteria is None):
            # over items, silently losing some is data loss: every item must succeed unless the
            # plan says at_least (design-notes/fan-out.md, section 1)
            group.success_criteria = SuccessCriteria("all", 0)
    if learned:
        apply_learned_timeouts(compiled_groups, learned, plan.adaptive_margin)
    priorities = plan.resource_manager.allocation_strategy.priorities
    blocking_successors = {a: 0 for a in plan.agents}
    for edge in resolution.edges:
        if edge.blocking:
            blocking_successors[edge.source] += 1
    on_critical = set(critical_path)
    open_agents = set(plan.open_agents)
    compiled_agents = []
    agent_position = {a: i for i, a in enumerate(agent_order)}
    # every agent has a position: the topological sort raises on a cycle rather than drop one
    for agent_id in sorted(plan.agents, key=agent_position.__getitem__):
        spec = plan.agents[agent_id]
        if spec.priority is not None:
            priority = spec.priority
        elif agent_id in on_critical:
            priority = priorities.critical_path_agents
        elif spec.validates and blocking_successors[agent_id] == 0:
            priority = priorities.validation_agents
        else:
            priority = priorities.parallel_group_agents
        compiled_agents.append(
            _compile_agent(
                plan,
                agent_id,
                spec,
                grouping.agent_group[agent_id],
                resolution,
                planned[agent_id],
                priority,
                agent_id in on_critical,
                _completion_context(plan, grouping, resolution, agent_id, open_agents),
            )
        )
        compiled_agents[-1].depends_on = sorted(agent_preds[agent_id], key=declaration.__getitem__)
        if agent_id in learned:
            compiled_agents[-1].learned = learned[agent_id]
        compiled_agents[-1].fan_out = fan_outs.get(agent_id)

    opportunities = _opportunities(
        plan, grouping, resolution, estimates, group_order, group_deps, durations, makespan
    )
    compiled = CompiledPlan(
        name=plan.name,
        source=plan.source.file,
        agents=compiled_agents,
        groups=compiled_groups,
        critical_path=critical_path,
        estimated_makespan_s=round(makespan, 3),
        sequential_s=round(sequential, 3),
        group_by_group_s=round(group_by_group, 3),
        agent_level_s=round(agent_level, 3),
        parallel_opportunities=opportunities,
        inputs=dict(plan.inputs),
        resources=Resources.from_section(_resources(plan, grouping)),
        barrier=BarrierSettings.from_section(plan.barrier_synchronization.model_dump(mode="json")),
        context=ContextSettings.from_section(plan.context_conflicts.model_dump(mode="json")),
        caching=CachingSettings.from_section(plan.caching_system.model_dump(mode="json")),
        monitoring=AdaptiveSettings.from_section(
            plan.performance_monitoring.model_dump(mode="json")
        ),
        default_agent_timeout_s=plan.default_agent_timeout_s,
        adaptive_margin=plan.adaptive_margin,
    )
    # a limited pool: the admission order among equal priorities that packs it best
    admission = plan_admission(compiled)
    for agent in compiled.agents:
        agent.admission_rank = admission.get(agent.id, 0)
    return compiled


def render_cache_settings(plan: Plan) -> dict[str, Any]:
    """What a template agent's render cache keeps: the plan's template_render_cache ttl
    (seconds, or session_lifetime = the worker's lifetime) and size limit, the latter capped by
    resource_pool.template_engine.cache_size when the plan gives a pool; caching switched off
    = nothing kept."""
    caching = plan.caching_system
    level = caching.cache_levels.template_render_cache
    size = int(level.size_limit)
    if plan.resource_pool_given:
        size = min(size, int(plan.resource_manager.resource_pool.template_engine.cache_size))
    ttl = level.ttl if isinstance(level.ttl, str) else level.ttl.seconds
    return {"ttl": ttl, "size_limit": size if caching.enabled else 0}


def apply_learned_timeouts(
    groups: list[CompiledGroup], learned: Mapping[str, Learned], margin: float | None
) -> None:
    """An adaptive plan (margin given): each group whose members all have samples waits at its
    barrier for max(plan timeout, learned p95 x margin); a group without a deadline keeps none.
    The plan's value stays in `planned_timeout_s`."""
    if margin is None:
        return
    for group in groups:
        p95 = group_p95(group.agents, learned, group.parallel)
        if group.timeout_s is None or p95 is None:
            continue
        group.planned_timeout_s = group.timeout_s
        group.timeout_s = adaptive_timeout(group.timeout_s, p95, margin)


def _canonical(plan: Plan, ref: str) -> str:
    """Rewrite an alias prefix (an enhanced step's agent id) to the agent it names."""
    if not plan.aliases or ref in plan.inputs or "." not in ref:
        return ref
    head, rest = ref.split(".", 1)
    return f"{plan.aliases.get(head, head)}.{rest}"


def _success_criteria(value: Any) -> SuccessCriteria:
    if value in ("all", "all_agents_succeed"):
        return SuccessCriteria("all", 0)
    if isinstance(value, AtLeast):
        return SuccessCriteria("at_least", value.at_least)
    if isinstance(value, int) and not isinstance(value, bool):
        return SuccessCriteria("at_least", value)
    return SuccessCriteria("at_least_one", 1)


def _compile_group(
    plan: Plan, info: GroupInfo, depends_on: list[str], duration: float
) -> CompiledGroup:
    spec = info.spec or GroupSpec()
    handling = plan.barrier_synchronization.timeout_handling
    strategies = handling.timeout_strategies
    if spec.timeout is not None:
        timeout: float | None = spec.timeout.seconds
    elif len(info.agents) > 1 and spec.for_each is None:
        timeout = handling.default_timeout.seconds
    else:
        # a lone agent is bounded by its own timeout; a barrier deadline would only cut it short.
        # So is each instance of a fan-out: a default sized for one pass of a few agents cannot
        # bound a list whose length is known only at run time
        timeout = None
    cross = spec.cross_validation
    cross_agents: list[str] = []
    if cross is not None and cross.enabled:
        cross_agents = [plan.aliases.get(a, a) for a in cross.validation_agents] or list(
            info.agents
        )
    return CompiledGroup(
        id=info.id,
        name=spec.name or info.id,
        agents=list(info.agents),
        depends_on=list(depends_on),
        parallel=info.parallel,
        explicit=info.explicit,
        timeout_s=timeout,
        success_criteria=_success_criteria(spec.success_criteria),
        extension_s=(spec.extension or strategies.extend_timeout.extension).seconds,
        max_extensions=(
            spec.max_extensions
            if spec.max_extensions is not None
            else strategies.extend_timeout.max_extensions
        ),
        quality_impact=spec.quality_impact or strategies.continue_with_partial.quality_impact,
        partial_failure_handling=(
            spec.partial_failure_handling or "continue_with_available_results"
        ),
        cross_validation=cross_agents,
        cross_validation_timeout_s=(
            cross.validation_timeout.seconds
            if cross_agents and cross is not None and cross.validation_timeout is not None
            else None
        ),
        cross_validation_blocking=bool(cross_agents and cross is not None and cross.blocking),
        estimated_s=round(duration, 3),
    )


def _completion_context(
    plan: Plan, grouping: Grouping, resolution: Resolution, agent_id: str, open_agents: set[str]
) -> list[str]:
    """What a seed agent without a specification reads: the outputs of the agents its group
    waits for (``dependencies: [analyst.completion]``), as context, so pm's stories can build on
    analyst's brief although the seed never names the fields."""
    if agent_id not in open_agents or plan.agents[agent_id].inputs:
        return []
    refs: list[str] = []
    for dependency in grouping.groups[grouping.agent_group[agent_id]].declared:
        for producer in grouping.groups[dependency].agents:
            refs += [f"{producer}.{output}" for output in resolution.outputs[producer]]
    return refs


def _compile_agent(
    plan: Plan,
    agent_id: str,
    spec: AgentSpec,
    group: str,
    resolution: Resolution,
    estimate: Duration,
    priority: int,
    critical: bool,
    completion_context: list[str],
) -> CompiledAgent:
    requirements = spec.resource_requirements
    settings = {**spec.settings, **spec.kind_settings()}
    kind = spec.resolved_kind(agent_id)
    role = spec.role or agent_id
    if kind == "simulate":
        settings.setdefault("duration", estimate.seconds)
    elif kind == "role":
        role = normalise_role(role)
    if kind in ("command", "template"):
        # a relative cwd or template path is the plan's folder (or --bmad-dir), wherever the
        # worker was started; the engine's choice, never the plan's (pee.engine.language.sandbox)
        root = sandbox_root(plan, spec)
        if root is not None:
            settings[ROOT_SETTING] = root
        else:
            settings.pop(ROOT_SETTING, None)
    if kind == "template":
        settings.setdefault("render_cache", render_cache_settings(plan))
    if kind == "template" and plan.resource_pool_given:
        engine = plan.resource_manager.resource_pool.template_engine
        settings.setdefault(
            "template_engine",
            {
                "concurrent_renders": engine.concurrent_renders,
                "render_timeout": engine.render_timeout.seconds,
            },
        )
    # twice a long estimate could pass the longest duration a run can wait: capped there
    timeout = (
        spec.timeout.seconds
        if spec.timeout is not None
        else min(MAX_DURATION_S, max(plan.default_agent_timeout_s, 2 * estimate.max_s))
    )
    retry = spec.retry
    validation_blocking = bool(spec.validates) and (
        spec.validation_blocking
        if spec.validation_blocking is not None
        else validation_blocks_by_default(plan)
    )
    return CompiledAgent(
        id=agent_id,
        role=role,
        kind=kind,
        group=group,
        inputs=[_canonical(plan, r) for r in spec.inputs],
        optional_inputs=[_canonical(plan, r) for r in spec.optional_inputs]
        + [r for r in completion_context if r not in spec.optional_inputs],
        outputs=list(resolution.outputs[agent_id]),
        writes=list(spec.writes),
        validates=[plan.aliases.get(v, v) for v in spec.validates],
        validation_blocking=validation_blocking,
        defaults=dict(spec.defaults),
        timeout_s=timeout,
        estimated_s=round(estimate.seconds, 3),
        estimated_min_s=estimate.min_s,
        estimated_max_s=estimate.max_s,
        priority=priority,
        priority_explicit=spec.priority is not None,
        on_critical_path=critical,
        retry=RetrySpec(
            max_attempts=retry.max_attempts,
            initial_interval_s=retry.initial_interval.seconds,
            backoff_coefficient=retry.backoff_coefficient,
            maximum_interval_s=(
                retry.maximum_interval.seconds if retry.maximum_interval is not None else None
            ),
            non_retryable=list(retry.non_retryable),
        ),
        cpu=requirements.cpu if requirements.cpu is not None else DEFAULT_UNITS,
        memory=requirements.memory if requirements.memory is not None else DEFAULT_UNITS,
        task_queue=spec.task_queue or plan.task_queues.get(kind),
        optional=spec.optional,
        settings=settings,
        description=spec.description,
    )


def _resources(plan: Plan, grouping: Grouping) -> dict[str, Any]:
    """The resource manager's settings; the pool only when the plan gives one (the workflow
    treats a missing pool as unlimited)."""
    resources = plan.resource_manager.model_dump(mode="json")
    if not plan.resource_pool_given:
        resources.pop("resource_pool")
        return {**resources, "contention": []}
    return {**resources, "contention": _contention(plan, grouping)}


def _contention(plan: Plan, grouping: Grouping) -> list[dict[str, Any]]:
    """Groups whose agents, started together, would exceed the pool: resource edges that the
    admission controller will serialise (no scheduling edge, just a warning)."""
    pool = plan.resource_manager.resource_pool.computational
    sharing = plan.resource_manager.allocation_strategy.resource_sharing
    cpu_limit = pool.total_cpu_units * sharing.cpu_oversubscription
    memory_limit = pool.total_memory_units
    found: list[dict[str, Any]] = []
    for group_id, info in grouping.groups.items():
        if len(info.agents) < 2 or not info.parallel:
            continue
        specs = [plan.agents[a].resource_requirements for a in info.agents]
        cpu = sum(s.cpu if s.cpu is not None else DEFAULT_UNITS for s in specs)
        memory = sum(s.memory if s.memory is not None else DEFAULT_UNITS for s in specs)
        reasons = []
        if cpu > cpu_limit:
            reasons.append(f"cpu {cpu:g} > {cpu_limit:g}")
        if memory > memory_limit:
            reasons.append(f"memory {memory:g} > {memory_limit:g}")
        if len(info.agents) > pool.concurrent_agent_limit:
            reasons.append(f"{len(info.agents)} agents > limit {pool.concurrent_agent_limit}")
        if reasons:
            found.append(
                {"group": group_id, "agents": list(info.agents), "reason": ", ".join(reasons)}
            )
    return found


def _opportunities(
    plan: Plan,
    grouping: Grouping,
    resolution: Resolution,
    estimates: Mapping[str, Duration],
    group_order: list[str],
    group_deps: Mapping[str, list[str]],
    durations: Mapping[str, float],
    makespan: float,
) -> list[Opportunity]:
    """Explicit grouping choices that serialise independent work, with the time they cost."""
    found: list[Opportunity] = []
    data_sources: dict[str, set[str]] = {a: set() for a in plan.agents}
    for edge in resolution.edges:
        if edge.blocking:
            data_sources[edge.target].add(edge.source)

    def makespan_with(
        deps: Mapping[str, list[str]], lengths: Mapping[str, float], order: list[str]
    ) -> float:
        return max(eager_finish_times(order, deps, lengths).values(), default=0.0)

    for group_id in group_order:
        info = grouping.groups[group_id]
        if not info.explicit:
            continue
        members = info.agents
        if not info.parallel and len(members) > 1:
            internal = any(data_sources[a] & set(members) for a in members)
            if not internal:
                lengths = {**durations, group_id: max(estimates[a].seconds for a in members)}
                saving = makespan - makespan_with(group_deps, lengths, group_order)
                if saving > 0:
                    found.append(
                        Opportunity(
                            "sequential_group",
                            group_id,
                            list(members),
                            round(saving, 3),
                            f"group '{group_id}' runs {members} one after another, but none of "
                            f"them reads another's output; parallel: true would save "
                            f"{saving:g}s",
                        )
                    )
        for dependency in info.spec.depends_on if info.spec else []:
            target = next(
                (
                    g
                    for g in info.depends_on
                    if dependency in (g, f"{g}.completion")
                    or dependency.split(".")[0] in grouping.groups[g].agents
                ),
                None,
            )
            if target is None:
                continue
            needed = any(data_sources[a] & set(grouping.groups[target].agents) for a in members)
            declares_inputs = all(plan.agents[a].inputs for a in members)
            if needed or not declares_inputs:
                continue
            deps = {**group_deps, group_id: [d for d in group_deps[group_id] if d != target]}
            saving = makespan - makespan_with(deps, durations, group_order)
            if saving > 0:
                found.append(
                    Opportunity(
                        "unneeded_dependency",
                        group_id,
                        list(members),
                        round(saving, 3),
                        f"group '{group_id}' waits for '{target}' but none of its agents reads "
                        f"its outputs; dropping depends_on '{dependency}' would save {saving:g}s",
                    )
                )
        if info.parallel and len(members) > 1:
            # readiness differs when members read from different groups: the early ones wait
            own_deps = {
                a: sorted(
                    {
                        grouping.agent_group[s]
                        for s in data_sources[a]
                        if grouping.agent_group[s] != group_id
                    }
                )
                for a in members
            }
            if len({tuple(v) for v in own_deps.values()}) > 1:
                explicit = [
                    d for d in group_deps[group_id] if not any(d in v for v in own_deps.values())
                ]
                order = [g for g in group_order if g != group_id]
                deps = {g: [d for d in group_deps[g] if d != group_id] for g in order}
                lengths = dict(durations)
                split = [f"{group_id}/{a}" for a in members]
                for agent_id, node in zip(members, split, strict=True):
                    deps[node] = sorted(set(explicit) | set(own_deps[agent_id]))
                    lengths[node] = estimates[agent_id].seconds
                node_of = dict(zip(members, split, strict=True))
                for g in order:
                    if group_id in group_deps[g]:
                        # readers wait only for the members they read; declared order waits all
                        read = [
                            node_of[s]
                            for a in grouping.groups[g].agents
                            for s in sorted(data_sources[a])
                            if s in node_of
                        ]
                        deps[g] = deps[g] + (sorted(set(read)) or split)
                position = group_order.index(group_id)
                new_order = order[:position] + split + order[position:]
                saving = makespan - makespan_with(deps, lengths, new_order)
                if saving > 0:
                    found.append(
                        Opportunity(
                            "mixed_readiness",
                            group_id,
                            list(members),
                            round(saving, 3),
                            f"group '{group_id}' holds agents that become ready at different "
                            f"times; splitting it would save {saving:g}s",
                        )
                    )
    return found
