"""What an agent's task leaves out when nothing on the worker reads it (issue 17 item 4).

Every `run_agent` schedule carries its AgentTask into history, and the server stores and sends
every byte of it: at 200 no-op agents the engine's history was 2.8x the hand-written gather's,
the task a third of it (bench/history_bytes.py). Three of its fields serve only the agent output
cache (`_store_in_cache` in src/pee/activities/agents.py files the result under the plan's name
and, for a this-run-only entry, the run's id), and the large-value threshold is read by no
activity (PEE_PAYLOAD_THRESHOLD decides). Without a cache key they stay at their defaults, which
the task's encoding leaves out (pee.runtime.codec._sparse).

The task is the schedule command's input, so this sits behind `revision.patched(PATCH)`: a run
recorded before it replays with the full task (tests/test_replay.py).
"""

from __future__ import annotations

from typing import NamedTuple

from pee.workflows import revision

PATCH = "lean-agent-task"


class RunFields(NamedTuple):
    """The task's fields that name the run (AgentTask's fields of the same names)."""

    run_id: str
    workflow_id: str
    plan_name: str
    large_value_threshold: int | None


def run_fields(cached: bool, whole: RunFields) -> RunFields:
    """What an agent's task carries of ``whole``: the ids and plan name only for an agent whose
    output the cache files (``cached``), never the threshold; all of it in an older run. Given
    before the task is built, so the hot path builds one task per agent, not two."""
    if not revision.patched(PATCH):
        return whole
    if cached:
        return whole._replace(large_value_threshold=None)
    return RunFields("", "", "", None)
