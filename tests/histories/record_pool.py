"""Record the shared-pool replay histories in tests/histories/pool/ on a throwaway dev server.

    .venv/bin/python -m tests.histories.record_pool

One scenario: a one-slot pool whose holder check runs every 0.5 s and that continues-as-new
after CONTINUE_AFTER events; run `hold` takes the slot with a long agent, run `wait` queues
behind it, `hold` is terminated, the pool reclaims its lease and `wait` runs. Written:

- pool_reclaim.json: the run of the pool's chain whose holder check found `hold` gone (lease
  signals, grants, the reclaim, continue-as-new; run `tail` keeps the pool busy until then);
- shared_run.json: run `wait` (the ensure activity, lease signals out, a grant in).

Re-record after a change to src/pee/workflows/resource_pool.py or src/pee/workflows/pool_lease.py
that changes the commands they issue (tests/test_replay.py then fails on the old files, which is the
point).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from pee.activities.pool_types import PoolCapacity, PoolInput, pool_workflow_id
from pee.runtime.codec import data_converter
from pee.runtime.devserver import find_temporal_binary
from pee.runtime.exit import run_entry
from pee.runtime.worker import build_worker
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.resource_pool import ResourcePoolWorkflow
from pee.workflows.types import PlanRunInput
from tests.helpers import async_eventually, compiled_plan, group, sim, with_sections

HERE = Path(__file__).resolve().parent / "pool"
POOL = "recorded"
CONTINUE_AFTER = 60


def plan(name: str, duration_s: float) -> Any:
    agent = sim(f"{name}0", "g", duration_s)
    agent.cpu = 50
    recorded = compiled_plan([agent], [group("g", [agent.id])], name=name)
    return with_sections(
        recorded,
        resources={
            "resource_pool": {
                "computational": {
                    "total_cpu_units": 100,
                    "total_memory_units": 100,
                    "concurrent_agent_limit": 1,
                },
                "shared": {"name": POOL, "holder_check_interval": 0.5},
            },
            "allocation_strategy": {"resource_sharing": {"cpu_oversubscription": 1.0}},
        },
    )


async def until(check: Any) -> None:
    # any exception: the pool workflow has not started yet
    await async_eventually(
        check, what="the scenario's next step", timeout_s=30, ignore=(Exception,)
    )


async def record(client: Client) -> tuple[WorkflowHistory, WorkflowHistory]:
    task_queue = f"record-pool-{uuid.uuid4()}"
    pool_id = pool_workflow_id(POOL)
    async with build_worker(client, task_queue):
        pool = await client.start_workflow(
            ResourcePoolWorkflow.run,
            PoolInput(
                POOL,
                PoolCapacity(100.0, 100.0, 1),
                holder_check_interval_s=0.5,
                continue_after_events=CONTINUE_AFTER,
            ),
            id=pool_id,
            task_queue=task_queue,
            memo={"capacity": {"cpu": 100.0, "memory": 100.0, "max_agents": 1}},
        )
        first_run = pool.result_run_id
        hold = await client.start_workflow(
            PlanWorkflow.run,
            PlanRunInput(plan=plan("hold", 60)),
            id=f"hold-{uuid.uuid4()}",
            task_queue=task_queue,
        )

        async def holding() -> bool:
            status = await hold.query(PlanWorkflow.status)
            return status["agents"]["hold0"]["status"] == "running"

        await until(holding)
        wait = await client.start_workflow(
            PlanWorkflow.run,
            PlanRunInput(plan=plan("wait", 0.2)),
            id=f"wait-{uuid.uuid4()}",
            task_queue=task_queue,
        )

        async def queued() -> bool:
            return len((await pool.query("state"))["waiting"]) == 1

        await until(queued)
        await hold.terminate("recording: a run that never says goodbye")
        report = await wait.result()
        if report["status"] != "completed":
            raise SystemExit(f"run wait ended {report['status']}")

        # keep the pool busy (holder checks) so the run that reclaimed also continues-as-new
        tail = await client.start_workflow(
            PlanWorkflow.run,
            PlanRunInput(plan=plan("tail", 6)),
            id=f"tail-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        await tail.result()
        run_history = await wait.fetch_history()
        pool_history = await reclaiming_run(client, pool_id, first_run or "")
        await client.get_workflow_handle(pool_id).terminate("recording done")
    return pool_history, run_history


async def reclaiming_run(client: Client, pool_id: str, run_id: str) -> WorkflowHistory:
    """The run of the pool's chain whose holder check found a gone run and that then
    continued-as-new."""
    converter = data_converter()
    while run_id:
        history = await client.get_workflow_handle(pool_id, run_id=run_id).fetch_history()
        reclaimed = False
        for event in history.events:
            if event.HasField("activity_task_completed_event_attributes"):
                payloads = event.activity_task_completed_event_attributes.result.payloads
                (gone,) = await converter.decode(payloads, [list])
                reclaimed = reclaimed or bool(gone)
        last = history.events[-1]
        if not last.HasField("workflow_execution_continued_as_new_event_attributes"):
            break
        if reclaimed:
            return history
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    raise SystemExit("no run of the pool both reclaimed a lease and continued-as-new")


async def main() -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(find_temporal_binary()),
        ui=False,
        data_converter=data_converter(),
    )
    try:
        pool_history, run_history = await record(env.client)
    finally:
        await env.shutdown()
    HERE.mkdir(exist_ok=True)
    for name, history in (("pool_reclaim", pool_history), ("shared_run", run_history)):
        path = HERE / f"{name}.json"
        path.write_text(history.to_json() + "\n")
        print(f"recorded {path} ({len(history.events)} events)")


if __name__ == "__main__":
    run_entry(lambda: asyncio.run(main()))
