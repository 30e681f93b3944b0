"""Build and run a worker that hosts PlanWorkflow and the agent activities."""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.agents import ACTIVITIES
from runtime.connection import default_task_queue
from workflows.plan_workflow import PlanWorkflow


def build_worker(
    client: Client,
    task_queue: str | None = None,
    *,
    max_concurrent_activities: int | None = None,
    activities: bool = True,
    graceful_shutdown_s: float = 5.0,
) -> Worker:
    """activities=False hosts only the workflow (answering queries on closed runs)."""
    return Worker(
        client,
        task_queue=task_queue or default_task_queue(),
        workflows=[PlanWorkflow],
        activities=list(ACTIVITIES) if activities else [],
        max_concurrent_activities=max_concurrent_activities,
        # on shutdown, agents get a moment to notice cancellation before being abandoned
        graceful_shutdown_timeout=timedelta(seconds=graceful_shutdown_s),
    )


async def run_until_signalled(worker: Worker) -> None:
    """Run until SIGINT/SIGTERM, then shut the worker down (running agents are cancelled and
    retried by the server on another worker, as after a crash)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with worker:
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
