"""The seed's other adaptive_resource_allocation actions inside a run (pee.engine.rules.adaptive,
src/pee/workflows/adaptation.py): modify_timeout_values, increase_cpu_allocation (also on a shared
pool, where it does not apply) and enable_aggressive_caching. Pure cases for each rule, and for each
a real run whose slow agent triggers it against a control run of the same plan without the action
(the harness replays every run's history; tests/histories/adaptive_timeout.json is committed)."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from pee.engine.compiled import AdaptiveSettings, CompiledPlan
from pee.engine.rules.adaptive import (
    AGGRESSIVE_CACHE_TTL_S,
    AggressiveCaching,
    CpuBoost,
    TimeoutStretch,
)
from pee.engine.rules.scheduler import Pool
from pee.workflows.adaptation import PATCH
from tests.helpers import TemporalHarness, group, sim, starter, with_sections
from tests.histories.record import adaptive_actions, adaptive_timeout
from tests.test_workflow_shared_pool import shared_plan

# --- pure rules ----------------------------------------------------------------------------


def test_each_rule_exists_only_when_the_plan_lists_its_action() -> None:
    plan = adaptive_timeout()
    assert TimeoutStretch.from_plan(plan, 1.0) is not None
    assert CpuBoost.from_plan(plan, 1.0) is None
    assert AggressiveCaching.from_plan(plan, 1.0, None) is None
    plan.adaptive_margin = None  # adaptive: false
    assert TimeoutStretch.from_plan(plan, 1.0) is None
    # the cap and threshold are scaled like every duration
    stretch = TimeoutStretch.from_plan(adaptive_timeout(), 0.5)
    assert stretch is not None and (0.5, 150.0) == (stretch.threshold_s, stretch.cap_s)


def test_a_slow_agent_moves_deadlines_by_its_overrun_up_to_the_cap() -> None:
    stretch = TimeoutStretch(threshold_s=1.0, cap_s=2.5)
    assert [] == stretch.observe("fast", "model", 0.9, "g", ["h"])
    changes = stretch.observe("slow", "model", 3.0, "g", ["h"])
    assert [("g", 2.0), ("h", 2.0)] == [(g, s) for g, s, _ in changes]
    assert "deadline of group 'g' moved 2 s later (its agent 'slow' took 3 s" in changes[0][2]
    # the cap bounds the total per group: only 0.5 s left for each
    assert [("g", 0.5), ("h", 0.5)] == [
        (g, s) for g, s, _ in stretch.observe("slow2", "model", 4.0, "g", ["h"])
    ]
    assert [] == stretch.observe("slow3", "model", 4.0, "g", ["h"])
    # moves for groups not started yet wait for their start, once
    assert [2.0, 0.5] == [shift for shift, _ in stretch.take("h")]
    assert [] == stretch.take("h") and [] == stretch.take("g")


def pool_plan(actions: list[str], shared: bool = False) -> CompiledPlan:
    """Pool of 100 CPU for up to 4 agents: `slow` (50 CPU, 2 s) and `long` (40, 3 s) first;
    q1 (50) and q2 (20) do not both fit beside long in 100, they do in 110."""
    agents = [
        sim("slow", "g", 2.0),
        sim("long", "g", 3.0),
        sim("q1", "g", 0.5),
        sim("q2", "g", 0.5),
    ]
    for agent, cpu in zip(agents, [50, 40, 50, 20], strict=True):
        agent.cpu, agent.memory = cpu, 10
    plan = adaptive_actions(
        actions, agents, [group("g", [a.id for a in agents])], "adaptive-cpu", threshold=1.6
    )
    pool: dict[str, Any] = {
        "computational": {
            "total_cpu_units": 100,
            "total_memory_units": 100,
            "concurrent_agent_limit": 4,
        }
    }
    if shared:
        pool["shared"] = {"name": "team"}
    return with_sections(
        plan,
        resources={
            "resource_pool": pool,
            "allocation_strategy": {
                "resource_sharing": {"cpu_oversubscription": 1.0, "memory_strict": True}
            },
            "load_balancing": {"resource_monitoring": {"alert_thresholds": {"response_time": 1.6}}},
        },
    )


def test_slow_agents_raise_the_cpu_step_by_step_up_to_the_cap_never_memory() -> None:
    boost = CpuBoost.from_plan(pool_plan(["increase_cpu_allocation"]), 1.0)
    assert boost is not None and 150.0 == boost.cap
    pool = Pool(100, 100, 4)
    assert boost.observe("fast", 1.0, pool) is None
    for expected in (110, 120, 130, 140, 150):
        outcome = boost.observe("slow", 2.0, pool)
        assert outcome is not None and outcome[0] is not None
        pool = outcome[0]
        assert (expected, 100, 4) == (pool.cpu, pool.memory, pool.max_agents)
    assert "now hands out 150 CPU units (was 140, at most 150): 'slow' took 2 s" in outcome[1]
    assert boost.observe("slow", 2.0, pool) is None  # at the cap


def test_an_oversubscription_above_the_cap_is_never_lowered() -> None:
    boost = CpuBoost(threshold_s=1.0, capacity=100.0)
    assert boost.observe("slow", 2.0, Pool(200, 100, 4)) is None
    outcome = boost.observe("slow", 2.0, Pool(145, 100, 4))
    assert outcome is not None and outcome[0] == Pool(150, 100, 4)


def test_a_shared_pool_is_not_raised_and_says_so_once() -> None:
    boost = CpuBoost.from_plan(pool_plan(["increase_cpu_allocation"], shared=True), 1.0)
    assert boost is not None
    first = boost.observe("slow", 2.0, Pool(100, 100, 4))
    assert first is not None and first[0] is None
    assert "does not apply: the run's units come from the shared pool 'team'" in first[1]
    assert boost.observe("slow", 2.0, Pool(100, 100, 4)) is None
    # no pool at all: admission is unlimited, nothing to raise
    plan = pool_plan(["increase_cpu_allocation"])
    plan.resources = replace(plan.resources, pool=None)
    assert CpuBoost.from_plan(plan, 1.0) is None


def test_aggressive_caching_stores_for_the_default_ttl_after_the_first_slow_agent() -> None:
    plan = caching_plan(["enable_aggressive_caching"], "t")
    assert AggressiveCaching.from_plan(plan, 1.0, 3600.0) is None  # already cross-run
    caching = AggressiveCaching.from_plan(plan, 1.0, None)
    assert caching is not None and caching.store_ttl_s() is None
    assert caching.observe("fast", 0.5) is None and caching.store_ttl_s() is None
    message = caching.observe("slow", 2.0)
    assert message is not None and "for 3600 s" in message
    assert AGGRESSIVE_CACHE_TTL_S == caching.store_ttl_s()
    assert caching.observe("slow2", 2.0) is None  # said once


# --- real runs against their control -------------------------------------------------------


def events(report: dict[str, Any], name: str) -> list[str]:
    return [e["id"] for e in report["events"] if e["event"] == name]


def history(report: dict[str, Any], group_id: str) -> list[str]:
    return [h["decision"] for h in report["groups"][group_id]["barrier"]["history"]]


def test_a_slow_agent_moves_its_groups_deadline_in_a_real_run(temporal: TemporalHarness) -> None:
    """slow (2 s) is 1 s over: g's deadline moves from 2.5 s past steady's 3 s and next's
    `later` (same role) gets 1.2 + ~1 s; the control run hits both deadlines."""
    adaptive = temporal.execute(adaptive_timeout(), heartbeat_timeout_s=1.0)
    control_plan = adaptive_timeout()
    control_plan.monitoring = AdaptiveSettings()
    control = temporal.execute(control_plan, heartbeat_timeout_s=1.0)
    assert (
        ["timeout_adapted", "all_completed"] == history(adaptive, "g") == history(adaptive, "next")
    )
    assert "succeeded" == adaptive["agents"]["steady"]["status"]
    assert "succeeded" == adaptive["agents"]["later"]["status"]
    why = adaptive["groups"]["next"]["barrier"]["history"][0]["reason"]
    assert "deadline of group 'next' moved" in why and "a 'model' agent's agent 'slow'" in why
    assert ["g", "next"] == events(adaptive, "timeout_adapted")
    assert 2 == sum("deadline of group" in a["message"] for a in adaptive["alerts"])
    # the control cuts steady off at 2.5 s, and later (alone in next) at 1.2 s, whose re-run
    # one at a time then succeeds
    assert ["continue_with_partial"] == history(control, "g")
    assert "abort_and_fallback" == history(control, "next")[0]
    assert "succeeded" != control["agents"]["steady"]["status"]
    assert [] == events(control, "timeout_adapted")


def spans(report: dict[str, Any]) -> dict[str, tuple[datetime, datetime]]:
    return {
        a: (datetime.fromisoformat(r["started_at"]), datetime.fromisoformat(r["finished_at"]))
        for a, r in report["agents"].items()
    }


def overlap(got: dict[str, tuple[datetime, datetime]], a: str, b: str) -> bool:
    return got[a][0] < got[b][1] and got[b][0] < got[a][1]


def test_a_slow_agent_raises_the_runs_cpu_in_a_real_run(temporal: TemporalHarness) -> None:
    """After slow (over 1.6 s) the adaptive run hands out 110 CPU: q1 and q2 both run beside
    long; the control run (100 CPU) runs them one after the other."""
    adaptive = temporal.execute(pool_plan(["increase_cpu_allocation"]))
    control = temporal.execute(pool_plan([]))
    got, base = spans(adaptive), spans(control)
    assert overlap(got, "q1", "q2") and overlap(got, "q1", "long") and overlap(got, "q2", "long")
    assert not overlap(base, "q1", "q2")
    # slow, then long (3 s) are over the threshold: two steps
    assert ["g", "g"] == events(adaptive, "cpu_allocation_raised")
    assert [] == events(control, "cpu_allocation_raised")
    first, second = [a["message"] for a in adaptive["alerts"] if "CPU units" in a["message"]]
    assert "now hands out 110 CPU units (was 100, at most 150): 'slow' took" in first
    assert "now hands out 120 CPU units (was 110, at most 150): 'long' took" in second
    assert "completed" == adaptive["status"] == control["status"]


def caching_plan(actions: list[str], tag: str) -> CompiledPlan:
    """slow (2 s, over 1 s) in `first`; b and c read its output in `second`. No cross-run TTL
    (session_lifetime)."""
    agents = [
        sim("slow", "first", 2.0, note=tag),
        sim("b", "second", 0.2, inputs=["slow.out"]),
        sim("c", "second", 0.2, inputs=["slow.out"]),
    ]
    return adaptive_actions(
        actions,
        agents,
        [group("first", ["slow"]), group("second", ["b", "c"], ["first"])],
        f"adaptive-cache-{tag}",
    )


def cached(report: dict[str, Any]) -> list[str]:
    return [a for a, r in report["agents"].items() if r["cached"]]


def test_a_slow_agent_switches_on_cross_run_caching_in_a_real_run(
    temporal: TemporalHarness,
) -> None:
    """The adaptive run's b and c (started after slow) store their outputs for 1 h, so its
    rerun serves them from the cache; slow started before and runs again. The control plan's
    rerun runs everything again."""
    tag = uuid.uuid4().hex[:8]
    first = temporal.execute(caching_plan(["enable_aggressive_caching"], tag))
    rerun = temporal.execute(caching_plan(["enable_aggressive_caching"], tag))
    assert ["first"] == events(first, "aggressive_caching_enabled")
    assert [] == cached(first)
    assert ["b", "c"] == cached(rerun)
    assert {"hits": 2, "misses": 1} == {
        k: rerun["cache"]["agent_output"][k] for k in ("hits", "misses")
    }
    control_tag = uuid.uuid4().hex[:8]
    temporal.execute(caching_plan([], control_tag))
    control_rerun = temporal.execute(caching_plan([], control_tag))
    assert [] == cached(control_rerun) == events(control_rerun, "aggressive_caching_enabled")
    assert 0 == control_rerun["cache"]["agent_output"]["hits"]


def test_a_shared_pool_run_says_once_that_cpu_cannot_be_raised(temporal: TemporalHarness) -> None:
    """Two slow agents on a shared pool: one cpu_allocation_not_applied event and alert, no
    raise; the control plan (no action) records neither."""

    def plan(actions: list[str]) -> CompiledPlan:
        built = shared_plan(
            f"adaptive-shared-{uuid.uuid4().hex[:6]}", f"adaptive-{uuid.uuid4().hex[:8]}", 2, 1.5
        )
        monitoring = replace(built.resources.monitoring, response_time_s=1.0)
        built.resources = replace(built.resources, monitoring=monitoring)
        built.monitoring = AdaptiveSettings.from_section(
            {
                "performance_optimization": {
                    "adaptive_resource_allocation": {
                        "trigger": "performance_below_threshold",
                        "actions": actions,
                    }
                }
            }
        )
        built.adaptive_margin = 1.5
        return built

    adaptive = temporal.execute(plan(["increase_cpu_allocation"]))
    control = temporal.execute(plan([]))
    assert ["g"] == events(adaptive, "cpu_allocation_not_applied")
    assert [] == events(adaptive, "cpu_allocation_raised")
    (alert,) = [a["message"] for a in adaptive["alerts"] if "increase_cpu" in a["message"]]
    assert "does not apply: the run's units come from the shared pool 'adaptive-" in alert
    assert [] == events(control, "cpu_allocation_not_applied")
    assert "completed" == adaptive["status"] == control["status"]


def patch_ids(name: str) -> list[str]:
    """The patch ids of the committed history's core_patch markers."""
    from temporalio.converter import PayloadConverter

    from tests.test_replay import load

    found = []
    for event in load(name).events:
        if event.HasField("marker_recorded_event_attributes"):
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == "core_patch":
                data = PayloadConverter.default.from_payload(
                    marker.details["patch-data"].payloads[0]
                )
                found.append(data["id"])
    return found


def test_the_new_actions_sit_behind_a_patch_older_histories_replay_without() -> None:
    """adaptive_timeout.json has the patch marker; adaptive_throttle.json (its plan lists
    increase_cpu_allocation too) was recorded before it and still replays (test_replay), its run
    taking the unpatched branch, so in-flight runs of such plans keep their commands."""
    assert PATCH in patch_ids("adaptive_timeout")
    assert PATCH not in patch_ids("adaptive_throttle")


ALL_ACTIONS = """\
name: adaptive-cli-{tag}
adaptive: true
performance_monitoring:
  performance_optimization:
    adaptive_resource_allocation:
      trigger: performance_below_threshold
      actions: [modify_timeout_values, increase_cpu_allocation, enable_aggressive_caching]
resource_manager:
  resource_pool:
    computational: {{total_cpu_units: 100, total_memory_units: 100, concurrent_agent_limit: 3}}
  load_balancing:
    resource_monitoring:
      alert_thresholds: {{response_time: 1}}
agents:
  slow: {{kind: simulate, duration: 1500ms, outputs: [x]}}
  quick: {{kind: simulate, duration: 100ms, outputs: [y]}}
  last: {{kind: simulate, duration: 100ms, inputs: [slow.x, quick.y]}}
groups:
  both: {{agents: [slow, quick], timeout: 10s}}
"""


def test_a_yaml_plan_with_the_actions_through_starter_run_and_report(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The README's commands: `run` a YAML plan listing the three actions (slow is over the
    1 s threshold), its report names each application; the rerun serves `last` (started after
    slow) from the cache; `report --format html` draws the agent graph."""
    plan = tmp_path / "adaptive.yaml"
    plan.write_text(ALL_ACTIONS.format(tag=uuid.uuid4().hex[:8]))
    for workflow_id in ("adaptive-cli-1", "adaptive-cli-2"):
        done = starter(
            cli_env, "run", plan, "--no-learn", "--workflow-id", workflow_id, "--time-scale", "1"
        )
        assert 0 == done.returncode, done.stdout + done.stderr
    first, second = (
        json.loads(starter(cli_env, "report", w).stdout)
        for w in ("adaptive-cli-1", "adaptive-cli-2")
    )
    assert {"cpu_allocation_raised", "aggressive_caching_enabled"} <= {
        e["event"] for e in first["events"]
    }
    # slow was the last of `both` to finish: no deadline of its own group left to move, and
    # no later group holds a `slow` role
    assert [] == events(first, "timeout_adapted")
    assert ["last"] == cached(second)
    page = tmp_path / "report.html"
    html = starter(cli_env, "report", "adaptive-cli-1", "--format", "html", "--output", page)
    assert 0 == html.returncode, html.stderr
    text = page.read_text(encoding="utf-8")
    assert text.count('class="anode') == 3 and 'data-from="slow" data-to="last"' in text
