"""Worker lag in an agent's heartbeat (issue 17: a deadline measures agents, not the engine): the
keepalive loop counts how much later than asked it woke up (a busy worker), the heartbeat
details carry it as ``behind_s``, and the liveness parsing reads it back for the barrier."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from pee.activities.liveness import liveness_from
from pee.activities.progress import Progress
from pee.activities.types import AgentTask
from pee.engine.compiled import CompiledAgent
from tests.test_activities import environment


def test_a_busy_event_loop_shows_as_behind_s_in_the_heartbeats() -> None:
    task = AgentTask(
        agent=CompiledAgent(id="a", role="a", kind="simulate", group="g", estimated_s=0.0),
        heartbeat_interval_s=0.05,
    )
    beats: list[dict[str, Any]] = []
    env = environment()
    env.on_heartbeat = lambda *details: beats.append(details[0])

    async def work() -> float:
        async with Progress(task) as progress:
            await asyncio.sleep(0.2)
            quiet = progress.behind_s
            # the worker is busy with something else for 0.6 s: no await, no wake-ups
            time.sleep(0.6)
            await asyncio.sleep(0.2)
            return progress.behind_s - quiet

    behind = asyncio.run(env.run(work))
    assert behind >= 0.4
    assert beats[-1]["behind_s"] >= 0.4
    assert beats[0]["behind_s"] == 0.0


def test_liveness_reads_behind_s_from_the_heartbeat_details() -> None:
    info = SimpleNamespace(activity_id="a", state=2, attempt=1, HasField=lambda name: False)
    found = liveness_from([info], ["a"], lambda _: {"fraction": 0.5, "behind_s": 1.25})
    assert 1.25 == found[0].behind_s
    old = liveness_from([info], ["a"], lambda _: {"fraction": 0.5})
    assert 0.0 == old[0].behind_s
