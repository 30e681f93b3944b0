"""Build and run a worker that hosts PlanWorkflow, the shared ResourcePoolWorkflow and their
activities."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import ResourceBasedSlotConfig, Worker, WorkerTuner

from pee.activities.agents import ACTIVITIES, LOCAL_ACTIVITIES
from pee.activities.liveness import LIVENESS_ACTIVITIES
from pee.activities.pool import POOL_ACTIVITIES
from pee.activities.run_rows import RUN_ROW_ACTIVITIES
from pee.runtime import collector
from pee.runtime.build_id import build_id
from pee.runtime.connection_flags import default_task_queue
from pee.runtime.sandbox_runner import LeanSandboxedWorkflowRunner
from pee.workflows.agent_batch import AgentBatchWorkflow
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.resource_pool import ResourcePoolWorkflow


@dataclass(frozen=True)
class ResourceTargets:
    """Temporal's resource-based tuner: hand out task slots only while this host's CPU and
    memory use (fractions, 0 < x <= 1) stay under the targets."""

    cpu: float = 0.8
    memory: float = 0.8

    def __post_init__(self) -> None:
        for name, value in (("cpu", self.cpu), ("memory", self.memory)):
            if not 0 < value <= 1:
                raise ValueError(f"target {name} must be a fraction in (0, 1], found {value}")


def build_tuner(
    targets: ResourceTargets, max_concurrent_activities: int | None = None
) -> WorkerTuner:
    """The resource-based tuner; `max_concurrent_activities` caps agents even when the host
    has room (the tuner and a fixed slot count are mutually exclusive on a Worker)."""
    activity = (
        ResourceBasedSlotConfig(maximum_slots=max_concurrent_activities)
        if max_concurrent_activities is not None
        else None
    )
    return WorkerTuner.create_resource_based(
        target_memory_usage=targets.memory,
        target_cpu_usage=targets.cpu,
        activity_config=activity,
        # batch mode's short agents run as local activities (BatchSpec.local_s): the same cap
        local_activity_config=activity,
    )


def build_worker(
    client: Client,
    task_queue: str | None = None,
    *,
    max_concurrent_activities: int | None = None,
    resource_based: ResourceTargets | None = None,
    activities: bool = True,
    graceful_shutdown_s: float = 5.0,
) -> Worker:
    """activities=False hosts only the workflows (answering queries on closed runs): it still
    registers the local activities, never running them (no_remote_activities), because replaying
    a history with their markers needs them known.

    Several workers on one task queue share its agents (each polls when it has a free slot, so
    the least loaded pulls); agents of a worker that dies are retried on another after their
    heartbeat timeout."""
    # the worker allocates in bursts: fewer, larger young collections (pee.runtime.collector)
    collector.pace_for_worker()
    tuner = (
        build_tuner(resource_based, max_concurrent_activities)
        if resource_based is not None
        else None
    )
    return Worker(
        client,
        task_queue=task_queue or default_task_queue(),
        # every worker hosts the shared resource pools too (started on demand by runs)
        workflows=[PlanWorkflow, ResourcePoolWorkflow, AgentBatchWorkflow],
        activities=(
            list(ACTIVITIES)
            + list(POOL_ACTIVITIES)
            + list(LIVENESS_ACTIVITIES)
            + list(RUN_ROW_ACTIVITIES)
            if activities
            else list(LOCAL_ACTIVITIES) + list(LIVENESS_ACTIVITIES) + list(RUN_ROW_ACTIVITIES)
        ),
        no_remote_activities=not activities,
        max_concurrent_activities=None if tuner is not None else max_concurrent_activities,
        # batch mode runs short agents as local activities (BatchSpec.local_s): the same cap
        max_concurrent_local_activities=None if tuner is not None else max_concurrent_activities,
        tuner=tuner,
        # on shutdown, agents get a moment to notice cancellation before being abandoned
        graceful_shutdown_timeout=timedelta(seconds=graceful_shutdown_s),
        # set, so the SDK does not hash every loaded module at each start (pee.runtime.build_id)
        build_id=build_id(),
        # the SDK's sandbox, its restrictions unchanged, without its per-call exec overhead
        # (pee.runtime.sandbox_runner; docs/adr/0016)
        workflow_runner=LeanSandboxedWorkflowRunner(),
    )


async def run_until_signalled(worker: Worker, on_ready: Callable[[], None] | None = None) -> None:
    """Run until SIGINT/SIGTERM, then shut the worker down (running agents are cancelled and
    retried by the server on another worker, as after a crash).

    ``on_ready`` (the caller's "ready" line) runs once the handlers are installed and the worker
    has started: whoever reads that line may send SIGTERM at once and still get a clean exit 0."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with worker:
            if on_ready is not None:
                on_ready()
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
