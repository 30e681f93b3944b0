"""plans/seed.yaml (the seed's eight YAML blocks, concatenated) loads and analyses as meant."""

from __future__ import annotations

from pathlib import Path

import pytest

from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import load_plan

SEED = Path(__file__).parent.parent / "plans" / "seed.yaml"


@pytest.fixture(scope="module")
def plan():
    return load_plan(SEED)


@pytest.fixture(scope="module")
def compiled(plan):
    return compile_plan(plan)


def test_seed_groups(compiled) -> None:
    """Five groups in order, only the design/architecture group parallel."""
    assert [
        ("group_1_foundation", ["analyst"]),
        ("group_2_requirements", ["pm"]),
        ("group_3_design_architecture", ["ux_expert", "architect"]),
        ("group_4_implementation", ["developer"]),
        ("group_5_quality", ["qa"]),
    ] == [(g.id, g.agents) for g in compiled.groups]
    assert ["group_3_design_architecture"] == [
        g.id for g in compiled.groups if g.parallel and len(g.agents) > 1
    ]


def test_seed_critical_path(compiled) -> None:
    """analyst -> pm -> (ux_expert or architect) -> developer -> qa."""
    path = compiled.critical_path
    assert ["analyst", "pm"] == path[:2] and ["developer", "qa"] == path[3:]
    assert path[2] in ("ux_expert", "architect")


def test_seed_estimates_use_range_midpoints(compiled) -> None:
    """3-5, 4-6, 6-8, 8-12, 4-6 minutes: 4+5+7+10+5 = 31 minutes eager, 38 sequential."""
    assert 31 * 60 == compiled.estimated_makespan_s
    assert 38 * 60 == compiled.sequential_s
    assert 240.0 == compiled.agent("analyst").estimated_s
    assert (180.0, 300.0) == (
        compiled.agent("analyst").estimated_min_s,
        compiled.agent("analyst").estimated_max_s,
    )


def test_enhanced_step_refines_group_3(compiled) -> None:
    """The enhanced step's agents refine ux_expert/architect: priorities, timeouts, resources."""
    architect, ux = compiled.agent("architect"), compiled.agent("ux_expert")
    assert (8, 7) == (architect.priority, ux.priority)
    assert (600.0, 480.0) == (architect.timeout_s, ux.timeout_s)
    assert (40.0, 35.0, 30.0, 25.0) == (architect.cpu, architect.memory, ux.cpu, ux.memory)
    assert ["architecture_outputs"] == architect.writes
    assert "pm.requirements" in architect.inputs
    group = compiled.group("group_3_design_architecture")
    assert "Parallel Design & Architecture" == group.name
    assert ("at_least_one", 600.0) == (group.success_criteria.kind, group.timeout_s)
    assert ["architect", "ux_expert"] == group.cross_validation


def test_seed_agents_without_specification_take_outputs_from_references(compiled) -> None:
    """pm declares nothing, so what others read from it (pm.user_stories...) defines it."""
    assert {
        "user_stories",
        "user_personas",
        "functional_requirements",
        "non_functional_requirements",
        "requirements",
    } == set(compiled.agent("pm").outputs)


def test_seed_levels_map_to_units(compiled) -> None:
    """Group levels apply to their agents: analyst cpu medium=25, memory low=10."""
    analyst, developer = compiled.agent("analyst"), compiled.agent("developer")
    assert (25.0, 10.0) == (analyst.cpu, analyst.memory)
    assert (60.0, 40.0) == (developer.cpu, developer.memory)


def test_seed_sections_are_parsed(plan, compiled) -> None:
    """Resource pool, barrier strategies, ownership and caches come through typed."""
    pool = plan.resource_manager.resource_pool
    assert (100, 100, 3) == (
        pool.computational.total_cpu_units,
        pool.computational.total_memory_units,
        pool.computational.concurrent_agent_limit,
    )
    assert 1.2 == plan.resource_manager.allocation_strategy.resource_sharing.cpu_oversubscription
    assert 50 * 1024**2 == pool.template_engine.cache_size
    strategies = plan.barrier_synchronization.timeout_handling.timeout_strategies
    assert (300.0, 1) == (
        strategies.extend_timeout.extension.seconds,
        strategies.extend_timeout.max_extensions,
    )
    rules = plan.context_conflicts.resolution_mechanisms.conflict_prevention.ownership_rules
    assert ["user_experience", "ui_specifications", "design_system"] == rules["ux_expert"]
    levels = plan.caching_system.cache_levels
    assert (100 * 1024**2, 3600.0) == (
        levels.agent_output_cache.size_limit,
        levels.template_render_cache.ttl.seconds,
    )
    assert 10 * 1024 == plan.caching_system.cache_optimization.compression.compression_threshold
    assert (300.0, 1) == (
        compiled.group("group_3_design_architecture").extension_s,
        compiled.group("group_3_design_architecture").max_extensions,
    )


def test_seed_agents_run_as_built_in_role_agents(compiled) -> None:
    """Seed agents give no kind and are named after the seed's roles: they are role agents."""
    assert {"role"} == {a.kind for a in compiled.agents}
    assert ["analyst", "pm", "ux_expert", "architect", "developer", "qa"] == [
        a.role for a in compiled.agents
    ]


def test_seed_agents_pass_their_documents_along(compiled) -> None:
    """Agents the seed lists without a specification produce their role's documents and read
    those of the agents their group waits for, so qa reviews what developer built."""
    assert ["implementation_plan", "implementation_files"] == compiled.agent("developer").outputs
    assert ["developer.implementation_plan", "developer.implementation_files"] == (
        compiled.agent("qa").optional_inputs
    )
    assert "analyst.target_users" in compiled.agent("pm").optional_inputs
