"""Activities of the shared resource pool: start the pool workflow on demand, and tell the pool
which of its holder runs are gone (so their leases can be reclaimed).

Both talk to the server with the worker's own client (activity.client()).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from pee.activities.pool_types import (
    POOL_WORKFLOW,
    EnsurePool,
    Holder,
    PoolCapacity,
    PoolInput,
    pool_workflow_id,
)

# the memo entry holding the capacity the pool was started with
CAPACITY_MEMO = "capacity"


@activity.defn
async def ensure_resource_pool(request: EnsurePool) -> PoolCapacity:
    """Start the pool workflow unless it runs already (USE_EXISTING: the first run to name a
    pool sets its capacity), and return the capacity it actually has."""
    client = activity.client()
    capacity = request.capacity
    handle = await client.start_workflow(
        POOL_WORKFLOW,
        PoolInput(
            name=request.name,
            capacity=capacity,
            holder_check_interval_s=request.holder_check_interval_s,
            aging_s=request.aging_s,
            reserve_after_s=request.reserve_after_s,
        ),
        id=pool_workflow_id(request.name),
        task_queue=request.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        memo={
            CAPACITY_MEMO: {
                "cpu": capacity.cpu,
                "memory": capacity.memory,
                "max_agents": capacity.max_agents,
            }
        },
        static_summary=f"shared resource pool {request.name}",
    )
    description = await handle.describe()
    memo = await description.memo_value(CAPACITY_MEMO, default=None)
    if not isinstance(memo, dict):
        # started by hand without the memo: the requested capacity is the best we know
        return capacity
    return PoolCapacity(float(memo["cpu"]), float(memo["memory"]), int(memo["max_agents"]))


@activity.defn
async def check_pool_holders(holders: list[Holder]) -> list[Holder]:
    """The holders whose run is no longer running (or no longer exists)."""
    client = activity.client()

    async def gone(holder: Holder) -> bool:
        handle = client.get_workflow_handle(holder.workflow_id, run_id=holder.run_id)
        try:
            description = await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return True
            raise
        return description.status != WorkflowExecutionStatus.RUNNING

    results = await asyncio.gather(*(gone(holder) for holder in holders))
    return [holder for holder, is_gone in zip(holders, results, strict=True) if is_gone]


POOL_ACTIVITIES: list[Callable[..., Any]] = [ensure_resource_pool, check_pool_holders]
