"""The seed's adaptive_resource_allocation inside a run (pee.engine.rules.adaptive): with `adaptive:
true` and `adjust_parallel_group_sizes`, an agent slower than the response_time threshold lowers its
group's concurrency. Unit cases for the throttle, and a real run against its control."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from pee.engine.compiled import AdaptiveSettings
from pee.engine.rules.adaptive import GroupThrottle, enabled_actions
from pee.engine.rules.scheduler import Admission, Pool, Request
from tests.helpers import TemporalHarness
from tests.histories.record import adaptive_throttle


def throttled_plan(adaptive: bool, response_time: float | None = 1.6):
    """The recorded replay scenario's plan (tests/histories/record.py): one group of four on a
    pool of two. Admission starts the longest first: `long` (3 s) and `slow` (2 s, over the
    threshold); when slow finishes, long still runs and q1, q2 wait. `adaptive` False is the
    control; `response_time` None drops the threshold."""
    plan = adaptive_throttle()
    plan.adaptive_margin = 1.5 if adaptive else None
    if response_time is None:
        monitoring = replace(plan.resources.monitoring, response_time_s=None)
        plan.resources = replace(plan.resources, monitoring=monitoring)
    return plan


def test_only_adaptive_plans_with_the_action_and_a_threshold_get_a_throttle() -> None:
    assert ["increase_cpu_allocation", "adjust_parallel_group_sizes"] == enabled_actions(
        throttled_plan(True)
    )
    assert [] == enabled_actions(throttled_plan(False))
    assert GroupThrottle.from_plan(throttled_plan(False), 1.0) is None
    assert GroupThrottle.from_plan(throttled_plan(True, None), 1.0) is None
    plan = throttled_plan(True)
    plan.monitoring = AdaptiveSettings()
    assert GroupThrottle.from_plan(plan, 1.0) is None
    # the threshold is scaled like every duration
    assert 0.8 == GroupThrottle.from_plan(throttled_plan(True), 0.5).threshold_s


def test_a_slow_agent_lowers_its_groups_limit_by_one_down_to_one() -> None:
    throttle = GroupThrottle(threshold_s=1.0)
    assert throttle.observe("g", "fast", 0.5, running_in_group=2) is None
    message = throttle.observe("g", "slow", 3.0, running_in_group=2)
    assert {"g": 2} == throttle.limits
    assert message is not None and "at most 2 agent(s) at once (was 3)" in message
    throttle.observe("g", "slow2", 3.0, running_in_group=2)
    assert {"g": 1} == throttle.limits
    assert throttle.observe("g", "slow3", 3.0, running_in_group=0) is None
    assert {"g": 1} == throttle.limits


def test_withheld_agents_wait_for_room_in_their_group() -> None:
    """With g limited to 1 and one of its agents running, its queued agents are withheld;
    agents of other groups stay eligible; when g's agent ends, the best ranked comes back."""
    admission = Admission(Pool(100, 100, 5))
    admission.submit(Request("run", 10.0, 10.0, 7))
    assert ["run"] == admission.admit(0.0)
    for order, (agent_id, priority) in enumerate([("g1", 7), ("g2", 9), ("h1", 7)]):
        admission.submit(Request(agent_id, 10, 10, priority, order=order))
    groups = {"run": "g", "g1": "g", "g2": "g", "h1": "h"}
    throttle = GroupThrottle(1.0, limits={"g": 1})
    throttle.apply(admission, groups, 0.0, lambda _a: True)
    assert ["h1"] == admission.admit(0.0)
    assert ["g1", "g2"] == [r.agent_id for r in throttle.held]
    admission.release("run")
    throttle.apply(admission, groups, 0.0, lambda _a: True)
    assert ["g2"] == admission.admit(0.0)  # priority 9 first
    # a withheld agent that was cancelled meanwhile is dropped, never admitted
    admission.release("g2")
    throttle.apply(admission, groups, 0.0, lambda a: a != "g1")
    assert [] == admission.admit(0.0) and [] == throttle.held


def spans(report: dict[str, Any]) -> dict[str, tuple[datetime, datetime]]:
    return {
        a: (datetime.fromisoformat(r["started_at"]), datetime.fromisoformat(r["finished_at"]))
        for a, r in report["agents"].items()
    }


def test_a_slow_agent_throttles_its_group_in_a_real_run(temporal: TemporalHarness) -> None:
    """slow takes 2 s, over the 1.6 s threshold, while long runs: the control run starts q1
    beside long at once, the adaptive run (g limited to 1) only once long is done."""
    adaptive = temporal.execute(throttled_plan(True))
    control = temporal.execute(throttled_plan(False))
    got, base = spans(adaptive), spans(control)
    assert base["q1"][0] < base["long"][1], "control: q1 starts while long still runs"
    assert got["q1"][0] >= got["long"][1], "adaptive: q1 waits for long"
    assert got["q2"][0] >= got["q1"][1], "adaptive: one at a time from then on"
    assert ["g"] == [e["id"] for e in adaptive["events"] if e["event"] == "group_throttled"]
    assert [] == [e for e in control["events"] if e["event"] == "group_throttled"]
    (alert,) = [a for a in adaptive["alerts"] if "agent(s) at once" in a["message"]]
    assert "group 'g' now runs at most 1 agent(s) at once (was 2): 'slow' took" in alert["message"]
    assert "completed" == adaptive["status"] == control["status"]
