"""What an agent's task leaves out when nothing on the worker reads it (issue 17 item 4).

Every `run_agent` schedule carries its AgentTask into history, and the server stores and sends
every byte of it: at 200 no-op agents the engine's history was 2.8x the hand-written gather's,
the task a third of it (bench/history_bytes.py). Three of its fields serve only the agent output
cache (`_store_in_cache` in src/pee/activities/agents.py files the result under the plan's name
and, for a this-run-only entry, the run's id), and the large-value threshold is read by no
activity (PEE_PAYLOAD_THRESHOLD decides). Without a cache key they stay at their defaults, which
the task's encoding leaves out (pee.runtime.codec._sparse).

The task is the schedule command's input, so this sits behind `workflow.patched(PATCH)`: a run
recorded before it replays with the full task (tests/test_replay.py).
"""

from __future__ import annotations

import dataclasses

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pee.activities.types import AgentTask

PATCH = "lean-agent-task"


def lean(task: AgentTask) -> AgentTask:
    """`task` without the fields no activity reads for it; the same task in an older run."""
    if not workflow.patched(PATCH):
        return task
    if task.cache_key is not None:
        # the cache files the result under these
        return dataclasses.replace(task, large_value_threshold=None)
    return dataclasses.replace(
        task, run_id="", workflow_id="", plan_name="", large_value_threshold=None
    )
