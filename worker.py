"""Run a worker for PlanWorkflow and the agent activities: `python worker.py [--task-queue Q]`."""

from __future__ import annotations

import argparse
import asyncio
import sys

from runtime.connection import connect, default_task_queue
from runtime.exit import exit_process
from runtime.worker import build_worker, run_until_signalled


async def main(args: argparse.Namespace) -> None:
    client = await connect(args.address, args.namespace)
    worker = build_worker(
        client, args.task_queue, max_concurrent_activities=args.max_concurrent_activities
    )
    target = client.service_client.config.target_host
    print(f"worker on task queue {args.task_queue} at {target}; Ctrl-C stops")
    await run_until_signalled(worker)
    print("worker stopped")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", help="HOST:PORT (default TEMPORAL_ADDRESS or localhost:7233)")
    parser.add_argument("--namespace", help="default TEMPORAL_NAMESPACE or default")
    parser.add_argument("--task-queue", default=default_task_queue())
    parser.add_argument("--max-concurrent-activities", type=int, default=None)
    try:
        asyncio.run(main(parser.parse_args()))
    except ConnectionError as err:
        print(err, file=sys.stderr)
        exit_process(1)
    # shut down in order above; now leave without letting the bridge see interpreter teardown
    exit_process(0)
