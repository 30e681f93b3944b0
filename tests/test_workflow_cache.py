"""The agent output cache in runs: a rerun of an unchanged plan executes no agent, a changed
input invalidates exactly its agent and what depends on it, and session entries stay private."""

from __future__ import annotations

import uuid

from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import loads_plan
from tests.helpers import TemporalHarness

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
        scheduled = [
            e
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
            and e.activity_task_scheduled_event_attributes.activity_type.name == "run_agent"
        ]
        return report, len(scheduled)

    return temporal.with_plan(plan, body, inputs=dict(inputs))


def statuses(report: dict) -> dict[str, str]:
    """succeeded agents as "cached" when the cache served them."""
    return {
        agent_id: "cached" if entry["cached"] else entry["status"]
        for agent_id, entry in report["agents"].items()
    }


def test_rerun_of_an_unchanged_plan_executes_nothing(temporal: TemporalHarness) -> None:
    """Second run: every agent cached, no run_agent activity scheduled, outputs identical."""
    text = PLAN.format(tag=uuid.uuid4().hex[:8], ttl="1h")
    first, first_activities = run(temporal, text)
    second, second_activities = run(temporal, text)
    assert (3, 0) == (first_activities, second_activities)
    assert {"brief": "cached", "prd": "cached", "glossary": "cached"} == statuses(second)
    assert {"hits": 3, "misses": 0, "hit_ratio": 1.0, "bytes_saved": 0} == (
        second["cache"]["agent_output"]
    )


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
        again["cache"]["agent_output"]
    )


def test_snapshots_follow_the_plans_context_snapshot_cache_settings(
    temporal: TemporalHarness,
) -> None:
    """By default every passed barrier stores a snapshot (bytes saved counted) but the one the
    run completes with (listed `final`, not stored: pee.workflows.cache_levels); size_limit 0
    or caching switched off: none, and no local activity marker in the history."""

    def snapshots(extra: str) -> tuple[list, int, dict]:
        text = PLAN.format(tag=uuid.uuid4().hex[:8], ttl="session_lifetime") + extra
        plan = compile_plan(loads_plan(text))

        async def body(handle):
            report = await handle.result()
            history = await handle.fetch_history()
            markers = [
                e
                for e in history.events
                if e.HasField("marker_recorded_event_attributes")
                and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
            ]
            return report, len(markers)

        report, markers = temporal.with_plan(plan, body)
        return report["context_snapshots"], markers, report["cache"]

    taken, markers, cache = snapshots("")
    *kept, last = taken
    assert len(kept) == markers == cache["context_snapshot"]["stored"] >= 1
    assert all(entry["stored"] and "final" not in entry for entry in kept)
    assert (False, True) == (last["stored"], last["final"])
    assert ([], 0) == snapshots("    context_snapshot_cache: {size_limit: 0}\n")[:2]
    assert ([], 0) == snapshots("  enabled: false\n")[:2]


def test_cache_counters_report_every_level_and_the_bytes_saved() -> None:
    """Counters from workflow and workers add up per level; bytes saved is the sum of the
    agent output and snapshot savings."""
    from pee.engine.report.cache_stats import CacheCounters

    counters = CacheCounters()
    counters.add({"template_render": {"hits": 1, "misses": 0}, "prefetch": {"hits": 2}})
    counters.add({"template_render": {"misses": 1}, "agent_output": {"bytes_saved": 100}})
    counters.bump("context_snapshot", "bytes_saved", 50)
    report = counters.report()
    assert {"hits": 1, "misses": 1, "hit_ratio": 0.5} == report["template_render"]
    assert (2, 1.0) == (report["prefetch"]["hits"], report["prefetch"]["hit_ratio"])
    assert 150 == report["bytes_saved_by_compression"]
