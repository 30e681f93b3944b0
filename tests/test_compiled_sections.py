"""The typed sections of CompiledPlan decode from both forms: the raw section every committed
history (and every older `pee compile` file) carries, and the typed form to_dict writes now."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory

from pee.engine.compiled import (
    SCHEMA,
    AdaptiveSettings,
    BarrierSettings,
    CacheLevel,
    CachingSettings,
    CompiledPlan,
    ConsistencyRule,
    ContextSettings,
    ContextStoreLimits,
    Learned,
    MonitoringSettings,
    OwnershipRule,
    PoolLimits,
    Resources,
    SharedPool,
)
from pee.engine.rules import plan_facts
from pee.runtime.codec import ShallowDataclassEncoder, data_converter
from pee.stores.payloads import external_storage

HISTORIES = Path(__file__).resolve().parent / "histories"
STARTED = "workflow_execution_started_event_attributes"


def recorded_plans() -> list[tuple[str, dict[str, Any]]]:
    """(history, plan as recorded) for every committed history that starts a PlanWorkflow."""
    converter = data_converter()
    plans = []
    for path in sorted(HISTORIES.rglob("*.json")):
        # a history recorded with External Storage (histories/external) reads its committed blobs
        blobs = path.parent / "blobs"
        history = WorkflowHistory.from_json(path.stem, path.read_text())
        first = history.events[0]
        if not first.HasField(STARTED):
            continue
        payloads = list(getattr(first, STARTED).input.payloads)
        reader = (
            data_converter(storage=external_storage(root=blobs)) if blobs.is_dir() else converter
        )
        (data,) = asyncio.run(reader.decode(payloads, [dict]))
        if isinstance(data, dict) and isinstance(data.get("plan"), dict):
            plans.append((str(path.relative_to(HISTORIES)), data["plan"]))
    return plans


PLANS = recorded_plans()


def test_the_histories_hold_plans() -> None:
    assert len(PLANS) >= 20


@pytest.mark.parametrize("raw", [raw for _, raw in PLANS], ids=[name for name, _ in PLANS])
def test_a_recorded_plan_decodes_its_sections_as_the_resolvers_read_them(
    raw: dict[str, Any],
) -> None:
    plan = CompiledPlan.from_dict(raw)
    if raw.get("schema") == SCHEMA:
        # recorded since the sections were typed: the typed form reads back as it was written,
        # in full (before issue 17) or as the payload converter writes it now (agents and
        # groups without their fields at defaults, with the plan's facts; before the facts
        # travelled, without them)
        written = json.loads(json.dumps(plan, cls=ShallowDataclassEncoder))
        without_facts = {k: v for k, v in written.items() if k != plan_facts.KEY}
        assert raw in (json.loads(plan.to_json()), written, without_facts)
        assert plan.resources == Resources.from_dict(raw["resources"])
        assert plan.context == ContextSettings.from_dict(raw["context"])
        assert plan.caching == CachingSettings.from_dict(raw["caching"])
        return
    if "progress_window_s" in raw["barrier"]:
        # recorded after the barrier and monitoring sections were typed and before the others
        # were (histories/external): those two in their typed form, still without a schema
        assert plan.barrier == BarrierSettings.from_dict(raw["barrier"])
        assert plan.monitoring == AdaptiveSettings.from_dict(raw["monitoring"])
    else:
        assert "timeout_handling" in raw["barrier"] or raw["barrier"] == {}
        assert plan.barrier == BarrierSettings.from_section(raw["barrier"])
        assert "actions" not in raw["monitoring"]
        assert plan.monitoring == AdaptiveSettings.from_section(raw["monitoring"])
    assert "schema" not in raw
    assert plan.resources == Resources.from_section(raw.get("resources") or {})
    assert plan.context == ContextSettings.from_section(raw.get("context") or {})
    assert plan.caching == CachingSettings.from_section(raw.get("caching") or {})
    for agent, recorded in zip(plan.agents, raw["agents"], strict=True):
        learned = recorded.get("learned")
        assert agent.learned == (Learned(**learned) if learned else None)
    # and the typed form it encodes to now comes back the same, through JSON too
    assert CompiledPlan.from_dict(plan.to_dict()) == plan
    assert CompiledPlan.from_dict(json.loads(plan.to_json())) == plan


def test_the_barrier_section_resolves_as_the_workflow_read_it() -> None:
    assert BarrierSettings(None) == BarrierSettings.from_section({})
    assert BarrierSettings(None) == BarrierSettings.from_section({"timeout_handling": None})
    window = {"timeout_handling": {"progress_window": 2}}
    assert BarrierSettings(2.0) == BarrierSettings.from_section(window)
    assert BarrierSettings(2.0) == BarrierSettings.from_dict(window)
    assert BarrierSettings(1.5) == BarrierSettings.from_dict({"progress_window_s": 1.5})
    not_a_number = {"timeout_handling": {"progress_window": "soon"}}
    assert BarrierSettings(None) == BarrierSettings.from_section(not_a_number)


def test_the_monitoring_section_resolves_the_adaptive_actions() -> None:
    listed = {
        "performance_optimization": {
            "adaptive_resource_allocation": {"actions": ["increase_cpu_allocation"]}
        }
    }
    assert ("increase_cpu_allocation",) == AdaptiveSettings.from_section(listed).actions
    assert () == AdaptiveSettings.from_section({}).actions
    not_a_list = {"performance_optimization": {"adaptive_resource_allocation": {"actions": "x"}}}
    assert () == AdaptiveSettings.from_section(not_a_list).actions
    typed = AdaptiveSettings(("adjust_parallel_group_sizes",))
    assert typed == AdaptiveSettings.from_dict({"actions": ["adjust_parallel_group_sizes"]})


def test_a_plan_without_settings_sections_resolves_to_the_defaults() -> None:
    """A hand-built plan's empty sections read as the workflow read absent keys."""
    assert Resources() == Resources.from_section({})
    assert ContextSettings() == ContextSettings.from_section({})
    assert CachingSettings() == CachingSettings.from_section({})
    assert Resources().pool is None and Resources().shared is None


def test_the_resources_section_resolves_pool_store_shared_and_monitoring() -> None:
    raw = {
        "resource_pool": {
            "computational": {"total_cpu_units": 80, "concurrent_agent_limit": 2},
            "context_store": {"concurrent_readers": 2, "lock_timeout": 5},
            "shared": {"name": "farm", "holder_check_interval": 0.5},
        },
        "allocation_strategy": {"resource_sharing": {"cpu_oversubscription": 1.5}},
        "load_balancing": {
            "resource_monitoring": {
                "sampling_interval": 0,
                "alert_thresholds": {"response_time": 2, "cpu_usage": True, "queue_depth": 3},
            }
        },
        "contention": [{"group": "g", "agents": ["a", "b"], "reason": "cpu 120 > 100"}],
    }
    resources = Resources.from_section(raw)
    assert PoolLimits(80.0, 100.0, 2, 1.5, True) == resources.pool
    assert ContextStoreLimits(2, 1, 5.0) == resources.context_store
    assert SharedPool("farm", 0.5) == resources.shared
    # an interval of 0 took the default; a bool is no threshold
    assert MonitoringSettings(10.0, None, None, 2.0, 3.0) == resources.monitoring
    assert ("a", "b") == resources.contention[0].agents
    # a pool given as null still limits (with the defaults); a shared pool without a name
    # is a private pool
    nulled = Resources.from_section({"resource_pool": None})
    assert PoolLimits() == nulled.pool
    assert Resources.from_section({"resource_pool": {"shared": {"name": ""}}}).shared is None


def test_the_context_section_resolves_rules_and_policies() -> None:
    raw = {
        "conflict_timeout": 90,
        "timeout_policy": "fail",
        "resolution_mechanisms": {
            "conflict_prevention": {"ownership_rules": {"pm": ["requirements", "scope"]}}
        },
        "consistency_rules": [{"keys": ["a.x", "b.x"], "message": ""}],
        "large_value_threshold": 1024,
    }
    context = ContextSettings.from_section(raw)
    assert 90.0 == context.conflict_timeout_s and "fail" == context.timeout_policy
    assert "reject" == context.ownership_violation
    assert (OwnershipRule("pm", ("requirements", "scope")),) == context.ownership_rules
    # an empty message falls back to the generated one, as the workflow did
    assert (ConsistencyRule(("a.x", "b.x"), "equal", None),) == context.consistency_rules
    assert 1024 == context.large_value_threshold


def test_the_caching_ttl_is_a_number_or_this_run_only() -> None:
    """One resolver for the agent output TTL: the workflow stores across runs only with a
    number, and the bottleneck report reads the same answer (it used to count any ttl other
    than "session_lifetime", e.g. null, as cross-run)."""
    for ttl, expected in (
        (3600, 3600.0),
        ("session_lifetime", None),
        (None, None),
        ("1h", None),
    ):
        raw = {"cache_levels": {"agent_output_cache": {"ttl": ttl, "size_limit": 10}}}
        caching = CachingSettings.from_section(raw)
        assert CacheLevel(expected, 10) == caching.agent_output
        assert expected == caching.output_ttl_s
    off = CachingSettings.from_section(
        {"enabled": False, "cache_levels": {"agent_output_cache": {"ttl": 60}}}
    )
    assert off.output_ttl_s is None and 60.0 == off.agent_output.ttl_s
    none = {"cache_optimization": {"compression": {"algorithm": "none"}}}
    assert "none" == CachingSettings.from_section(none).compression_algorithm


def test_the_typed_shape_carries_its_schema_and_unknown_keys_are_ignored() -> None:
    (name, raw), *_ = PLANS
    plan = CompiledPlan.from_dict(raw)
    data = json.loads(plan.to_json())
    assert SCHEMA == data["schema"]
    data["from_a_newer_version"] = 1
    data["agents"][0]["unknown"] = True
    data["resources"]["monitoring"]["unknown"] = True
    data["caching"]["agent_output"]["unknown"] = True
    assert plan == CompiledPlan.from_dict(data), name
