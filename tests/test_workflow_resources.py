"""Resource admission in PlanWorkflow on a real dev server: the pool bounds what runs at once
(checked from the recorded start and finish times), queued agents start best first, waits and
peaks reach the report, and an agent that can never fit fails the run up front."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from pee.engine.compiled import CompiledAgent, CompiledPlan
from tests.helpers import TemporalHarness, compiled_plan, group, sim, with_sections


def pool(
    cpu: float = 100, memory: float = 100, agents: int = 3, oversubscription: float = 1.0
) -> dict[str, Any]:
    """CompiledPlan.resources as compile_plan writes it (the parts admission reads)."""
    return {
        "resource_pool": {
            "computational": {
                "total_cpu_units": cpu,
                "total_memory_units": memory,
                "concurrent_agent_limit": agents,
            }
        },
        "allocation_strategy": {
            "resource_sharing": {"cpu_oversubscription": oversubscription, "memory_strict": True}
        },
    }


def needing(
    agent: CompiledAgent, cpu: float, memory: float = 5, priority: int = 7
) -> CompiledAgent:
    agent.cpu, agent.memory, agent.priority = cpu, memory, priority
    return agent


def with_pool(plan: CompiledPlan, resources: dict[str, Any]) -> CompiledPlan:
    return with_sections(plan, resources=resources)


def max_overlap(report: dict[str, Any]) -> int:
    """Most agents running at one instant, from started_at/finished_at ([start, end) intervals:
    one that finishes as another starts does not overlap it)."""
    spans = [
        (datetime.fromisoformat(a["started_at"]), datetime.fromisoformat(a["finished_at"]))
        for a in report["agents"].values()
    ]
    changes = sorted([(end, -1) for _, end in spans] + [(start, 1) for start, _ in spans])
    running = most = 0
    for _, delta in changes:
        running += delta
        most = max(most, running)
    return most


def start_order(report: dict[str, Any]) -> list[str]:
    return [e["id"] for e in report["events"] if e["event"] == "agent_started"]


@pytest.mark.parametrize(("oversubscription", "most"), [(1.2, 3), (1.0, 2)])
def test_cpu_bounds_how_many_agents_run_at_once(
    temporal: TemporalHarness, oversubscription: float, most: int
) -> None:
    """Ten 40-unit agents in one parallel group on 100 CPU units (agent limit 10): at most 3 run
    at once with oversubscription 1.2, at most 2 with 1.0; all succeed, the rest queued."""
    ids = [f"a{index}" for index in range(10)]
    plan = with_pool(
        compiled_plan([needing(sim(a, "g", 1.0), cpu=40) for a in ids], [group("g", ids)]),
        pool(agents=10, oversubscription=oversubscription),
    )
    report = temporal.execute(plan)
    assert report["status"] == "completed"
    assert [a["status"] for a in report["agents"].values()] == ["succeeded"] * 10
    assert most == max_overlap(report)
    resources = report["resources"]
    assert (resources["peak_agents"], resources["peak_cpu"]) == (most, 40 * most)
    assert resources["peak_memory"] == 5 * most
    assert 0 < resources["utilisation_percentage"] <= 100
    waits = resources["queue_wait_s"]
    assert sorted(waits) == sorted(ids)
    # the first `most` start at once; every later one waited for a slot
    assert sorted(waits, key=waits.__getitem__)[:most] == ids[:most]
    assert all(waits[a] == 0 for a in ids[:most]) and all(waits[a] > 0 for a in ids[most:])
    assert waits["a9"] == report["agents"]["a9"]["queue_wait_s"]
    assert any(e["event"] == "agent_queued" and e["id"] == "a9" for e in report["events"])


def test_queued_agents_start_by_priority_then_remaining_path(temporal: TemporalHarness) -> None:
    """One agent at a time: agents start by priority, and between equal priorities the one with
    more work after it (feeds, read by tail) goes first; groups that become ready together (g0
    and g at the start) compete on rank, whichever group task runs first."""
    plan = with_pool(
        compiled_plan(
            [
                needing(sim("first", "g0", 0.3), cpu=10),
                needing(sim("low", "g", 0.2), cpu=10, priority=5),
                needing(sim("plain", "g", 0.2), cpu=10, priority=7),
                needing(sim("feeds", "g", 0.2), cpu=10, priority=7),
                needing(sim("high", "g", 0.2), cpu=10, priority=10),
                needing(sim("tail", "g2", 0.2, inputs=["feeds.out"]), cpu=10),
            ],
            [
                group("g0", ["first"]),
                group("g", ["low", "plain", "feeds", "high"]),
                group("g2", ["tail"], ["g"]),
            ],
        ),
        pool(agents=1),
    )
    report = temporal.execute(plan)
    assert report["status"] == "completed"
    # high (priority 10) beats g0's first (7); first (0.3 s to go) ranks between feeds (0.4 s
    # with tail) and plain (0.2 s)
    assert ["high", "feeds", "first", "plain", "low", "tail"] == start_order(report)
    assert max_overlap(report) == 1


def test_sequential_groups_and_unlimited_plans_queue_nothing(temporal: TemporalHarness) -> None:
    """A sequential group under a one-agent pool runs in list order; a plan without a
    resource_pool has an unlimited one: no waits, no utilisation figure."""
    limited = with_pool(
        compiled_plan(
            [sim("z", "g", 0.1), sim("y", "g", 0.1)], [group("g", ["z", "y"], parallel=False)]
        ),
        pool(agents=1),
    )
    report = temporal.execute(limited)
    assert ["z", "y"] == start_order(report)
    assert report["resources"]["queue_wait_s"] == {"z": 0.0, "y": 0.0}
    unlimited = temporal.execute(
        compiled_plan([sim("a", "g", 0.1), sim("b", "g", 0.1)], [group("g", ["a", "b"])])
    )
    resources = unlimited["resources"]
    assert (resources["peak_agents"], resources["utilisation_percentage"]) == (2, None)


def test_an_agent_larger_than_the_pool_fails_the_run(temporal: TemporalHarness) -> None:
    """An agent needing more than the pool can ever admit is named in an InvalidCompiledPlan
    failure before anything starts."""
    plan = with_pool(
        compiled_plan([needing(sim("huge", "g", 0.1), cpu=150)], [group("g", ["huge"])]),
        pool(oversubscription=1.2),
    )
    with pytest.raises(WorkflowFailureError) as caught:
        temporal.execute(plan)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidCompiledPlan"
    assert "agent 'huge' needs cpu 150/memory 5 but the pool admits at most 120/100" in str(
        cause.message
    )
