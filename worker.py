"""Run a worker for PlanWorkflow and the agent activities until SIGINT/SIGTERM:
`python worker.py [--address HOST:PORT] [--namespace NS] [--task-queue Q]
[--max-concurrent-activities N]`. Exit 0 after a clean shutdown, 2 when no server is reachable."""

from __future__ import annotations

import argparse
import asyncio
import sys

from runtime.connection import default_namespace, default_task_queue
from runtime.exit import run_entry
from runtime.servers import Target, TargetError, resolve_target
from runtime.worker import build_worker, run_until_signalled


async def serve(target: Target, args: argparse.Namespace) -> None:
    client = await target.connect(args.namespace)
    worker = build_worker(
        client, args.task_queue, max_concurrent_activities=args.max_concurrent_activities
    )
    print(
        f"worker {client.identity} on task queue {args.task_queue} at {target.address} "
        f"(namespace {args.namespace}); Ctrl-C stops",
        flush=True,
    )
    await run_until_signalled(worker)
    print("worker stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="worker.py", description=__doc__)
    parser.add_argument(
        "--address", help="HOST:PORT (default TEMPORAL_ADDRESS, else the embedded dev server's "
        "localhost:7233)",
    )
    parser.add_argument("--namespace", default=default_namespace(),
                        help="default TEMPORAL_NAMESPACE or 'default'")
    parser.add_argument("--task-queue", default=default_task_queue(),
                        help="default PEE_TASK_QUEUE or 'parallel-execution-engine'")
    parser.add_argument("--max-concurrent-activities", type=int, default=None, metavar="N",
                        help="agents this worker runs at once (default: the SDK's 1000)")
    args = parser.parse_args(argv)
    try:
        # a worker never starts a server: it says how to get one
        target = resolve_target(args.address, allow_start=False)
        asyncio.run(serve(target, args))
    except (TargetError, ConnectionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    # worker shut down, then client and event loop (asyncio.run returned): leave without letting
    # the bridge see interpreter teardown (sdk-python issue 300)
    run_entry(main)
