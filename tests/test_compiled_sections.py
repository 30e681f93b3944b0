"""The typed sections of CompiledPlan decode from both forms: the raw section every committed
history (and every older `pee compile` file) carries, and the typed form to_dict writes now."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory

from pee.engine.compiled import AdaptiveSettings, BarrierSettings, CompiledPlan
from pee.runtime.codec import data_converter

HISTORIES = Path(__file__).resolve().parent / "histories"
STARTED = "workflow_execution_started_event_attributes"


def recorded_plans() -> list[tuple[str, dict[str, Any]]]:
    """(history, plan as recorded) for every committed history that starts a PlanWorkflow."""
    converter = data_converter()
    plans = []
    for path in sorted(HISTORIES.rglob("*.json")):
        history = WorkflowHistory.from_json(path.stem, path.read_text())
        first = history.events[0]
        if not first.HasField(STARTED):
            continue
        payloads = list(getattr(first, STARTED).input.payloads)
        (data,) = asyncio.run(converter.decode(payloads, [dict]))
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
    assert "timeout_handling" in raw["barrier"] or raw["barrier"] == {}
    assert plan.barrier == BarrierSettings.from_section(raw["barrier"])
    assert "actions" not in raw["monitoring"]
    assert plan.monitoring == AdaptiveSettings.from_section(raw["monitoring"])
    # and the typed form it encodes to now comes back the same
    assert CompiledPlan.from_dict(plan.to_dict()) == plan


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
