"""The `simulate` backend: pretends to work for a while, heartbeating, and returns fake outputs.

Settings (all optional): duration_s (else the agent's estimate), fail_times (fail that many first
attempts, for retry tests), output_values {output: value}, write_values {key: value},
echo_inputs (put the input snapshot's values, not just its keys, into the fake outputs).
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.types import AgentResult, AgentTask

# Heartbeat at least this often (real seconds) so cancellation reaches a sleeping agent quickly;
# the SDK throttles what actually goes to the server.
STEP_S = 0.2


def simulated_duration(task: AgentTask, scale: float) -> float:
    settings = task.agent.settings
    raw = settings.get("duration_s", settings.get("duration"))
    seconds = float(raw) if isinstance(raw, (int, float)) else float(task.agent.estimated_s)
    return max(0.0, seconds * scale)


def fake_value(task: AgentTask, name: str) -> dict[str, Any]:
    # deterministic, small and readable in the Web UI: who made it from what
    if task.agent.settings.get("echo_inputs"):
        # the whole snapshot, so tests can see exactly what the agent was given
        return {"agent": task.agent.id, "output": name, "inputs": dict(task.inputs)}
    return {"agent": task.agent.id, "output": name, "inputs": sorted(task.inputs)}


async def run(task: AgentTask, scale: float) -> AgentResult:
    info = activity.info()
    settings = task.agent.settings
    fail_times = int(settings.get("fail_times", 0) or 0)
    total = simulated_duration(task, scale)
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        elapsed = loop.time() - started
        activity.heartbeat({"progress": 1.0 if total <= 0 else min(1.0, elapsed / total)})
        if elapsed >= total:
            break
        # a cancelled activity raises CancelledError out of this sleep
        await asyncio.sleep(min(STEP_S, total - elapsed))
    if info.attempt <= fail_times:
        raise ApplicationError(
            f"simulated failure of agent '{task.agent.id}' "
            f"(attempt {info.attempt}, fail_times={fail_times})",
            type="SimulatedFailure",
            # expected by the plan: the SDK logs benign failures at debug, not with a traceback
            category=ApplicationErrorCategory.BENIGN,
        )
    values = settings.get("output_values") or {}
    writes = settings.get("write_values") or {}
    return AgentResult(
        agent_id=task.agent.id,
        outputs={name: values.get(name, fake_value(task, name)) for name in task.agent.outputs},
        writes={key: writes.get(key, fake_value(task, key)) for key in task.agent.writes},
        attempt=info.attempt,
    )
