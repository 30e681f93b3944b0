"""Record the duration-limits replay history in tests/histories/limits/ on a throwaway dev server.

    .venv/bin/python -m tests.histories.record_limits

One scenario (`duration_out_of_range`): a hand-made input (no `run` or `compile` would write
it) whose agent timeout x time scale is longer than a run can wait. PlanWorkflow fails it at
once, non-retryably (DurationOutOfRange), behind the `durations-within-limits` patch, where it
used to raise OverflowError on every workflow task.

Re-record after a change to workflows/ that changes the commands this run issues
(tests/test_duration_limits.py then fails on the old file, which is the point).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from temporalio.client import Client, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from pee.engine.compiled import CompiledPlan
from pee.runtime.codec import data_converter
from pee.runtime.devserver import find_temporal_binary
from pee.runtime.exit import run_entry
from pee.runtime.worker import build_worker
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.types import PlanRunInput
from tests.helpers import compiled_plan, group, sim

HERE = Path(__file__).resolve().parent / "limits"
# issue 19's `timeout: 100000000000h`: past pee.engine.language.units.MAX_DURATION_S, and past what
# a Python timedelta holds (the workflow raised OverflowError on every workflow task)
TOO_LONG_S = 100000000000 * 3600.0


def out_of_range() -> CompiledPlan:
    agent = sim("a", "g", 0.1)
    agent.timeout_s = TOO_LONG_S
    return compiled_plan([agent], [group("g", ["a"])], name="duration-out-of-range")


async def record(client: Client) -> Path:
    task_queue = f"record-{uuid.uuid4()}"
    async with build_worker(client, task_queue):
        handle = await client.start_workflow(
            PlanWorkflow.run,
            PlanRunInput(plan=out_of_range()),
            id=f"record-limits-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        try:
            await handle.result()
        except WorkflowFailureError:
            pass
        else:
            raise SystemExit("the out-of-range run completed; it should have failed")
        history = await handle.fetch_history()
    HERE.mkdir(exist_ok=True)
    path = HERE / "duration_out_of_range.json"
    path.write_text(history.to_json() + "\n")
    return path


async def main() -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(find_temporal_binary()),
        ui=False,
        data_converter=data_converter(),
    )
    try:
        print(f"wrote {await record(env.client)}")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    run_entry(lambda: asyncio.run(main()))
