"""Live progress of running agents for `pee status`, a running `pee report` and `pee run`'s
printer, read by the client from the server (queries cannot call it).

Agents send no progress signals any more (each was a history event and a workflow task): their
heartbeats carry the progress, and the server keeps the last one per pending activity. One
describe of the run (and, in batch mode, of each running AgentBatchWorkflow child) fills
`progress`, `last_progress_at`, `attempts` and `activity_state` of the report's running agents,
with the same parsing the workflow's deadline check uses (pee.activities.liveness). Cost: one
RPC per workflow, no history event. A failed describe leaves the report as the query gave it.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import Client

from pee.activities.liveness import LivenessTarget, describe_pending


async def overlay(
    client: Client, workflow_id: str, run_id: str | None, report: dict[str, Any]
) -> dict[str, Any]:
    agents = report.get("agents") or {}
    running = [a for a, row in agents.items() if row.get("status") == "running"]
    if not running:
        return report
    targets = [LivenessTarget(workflow_id, run_id, list(running))]
    try:
        description = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
        children = [c.workflow_id for c in description.raw_description.pending_children]
        if children:
            # batch mode: the agents' activities run in the children
            targets = [LivenessTarget(child, None, list(running)) for child in children]
        for target in targets:
            for seen in await describe_pending(client, target):
                row = agents[seen.activity_id]
                if seen.state == "absent" and row.get("activity_state"):
                    continue  # found in another child already
                row["activity_state"] = seen.state
                if seen.fraction is not None:
                    row["progress"] = seen.fraction
                if seen.heartbeat_at is not None:
                    row["last_progress_at"] = seen.heartbeat_at
                if seen.attempt:
                    row["attempts"] = max(int(row.get("attempts") or 0), seen.attempt)
    except Exception:  # live progress is a bonus: the query's report stands
        return report
    return report
