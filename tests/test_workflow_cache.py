"""The agent output cache in runs: a rerun of an unchanged plan executes no agent, a changed
input invalidates exactly its agent and what depends on it, and session entries stay private."""

from __future__ import annotations

import uuid

from engine.graph import compile_plan
from engine.plan import loads_plan
from tests.conftest import TemporalHarness

PLAN = """
name: cache-demo-{tag}
inputs: {{topic: parallelism}}
agents:
  brief: {{kind: simulate, duration: 0.2, inputs: [topic], outputs: [text]}}
  prd: {{kind: simulate, duration: 0.2, inputs: [brief.text], outputs: [doc]}}
  glossary: {{kind: simulate, duration: 0.2, outputs: [terms]}}
caching_system:
  cache_levels:
    agent_output_cache: {{ttl: {ttl}}}
"""


def run(temporal: TemporalHarness, text: str, **inputs: str) -> tuple[dict, int]:
    """The report and how many run_agent activities the run scheduled."""
    plan = compile_plan(loads_plan(text))

    async def body(handle):
        report = await handle.result()
        history = await handle.fetch_history()
        scheduled = [e for e in history.events if e.HasField(
            "activity_task_scheduled_event_attributes") and
            e.activity_task_scheduled_event_attributes.activity_type.name == "run_agent"]
        return report, len(scheduled)

    return temporal.with_plan(plan, body, inputs=dict(inputs))


def statuses(report: dict) -> dict[str, str]:
    """succeeded agents as "cached" when the cache served them."""
    return {agent_id: "cached" if entry["cached"] else entry["status"]
            for agent_id, entry in report["agents"].items()}


def test_rerun_of_an_unchanged_plan_executes_nothing(temporal: TemporalHarness) -> None:
    """Second run: every agent cached, no run_agent activity scheduled, outputs identical."""
    text = PLAN.format(tag=uuid.uuid4().hex[:8], ttl="1h")
    first, first_activities = run(temporal, text)
    second, second_activities = run(temporal, text)
    assert (3, 0) == (first_activities, second_activities)
    assert {"brief": "cached", "prd": "cached", "glossary": "cached"} == statuses(second)
    assert {"hits": 3, "misses": 0, "hit_ratio": 1.0, "bytes_saved": 0} == (
        second["cache"]["agent_output"])


def test_a_changed_input_invalidates_its_agent_and_downstream(temporal: TemporalHarness) -> None:
    """A new topic: brief and prd (which reads brief) run again; glossary stays cached."""
    text = PLAN.format(tag=uuid.uuid4().hex[:8], ttl="1h")
    run(temporal, text)
    changed, activities = run(temporal, text, topic="durability")
    assert {"brief": "succeeded", "prd": "succeeded", "glossary": "cached"} == statuses(changed)
    assert 2 == activities


def test_session_lifetime_entries_are_not_reused(temporal: TemporalHarness) -> None:
    """The default TTL (this run only) never serves another run: nothing is consulted."""
    text = PLAN.format(tag=uuid.uuid4().hex[:8], ttl="session_lifetime")
    run(temporal, text)
    again, activities = run(temporal, text)
    assert 3 == activities
    assert {"hits": 0, "misses": 0, "hit_ratio": 0.0, "bytes_saved": 0} == (
        again["cache"]["agent_output"])
