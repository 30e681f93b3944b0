"""Run a worker for PlanWorkflow, the shared pool (ResourcePoolWorkflow) and their activities
until SIGINT/SIGTERM:
`pee-worker [--address HOST:PORT] [--namespace NS] [--task-queue Q]
[--max-concurrent-activities N] [--resource-based [--target-cpu F] [--target-memory F]]
[--metrics-port N]`, with TLS/mTLS and an API key from --tls* and --api-key or Temporal's
TEMPORAL_* variables; OTEL_* variables switch on OpenTelemetry traces and metrics.
Exit 0 after a clean shutdown, 2 when no server is reachable or the connection settings are
wrong."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import NoReturn

from pee.cli.common import positive_int
from pee.cli.options import add_metrics_port_option
from pee.runtime.connection_flags import (
    ConnectionFlags,
    PortSettingError,
    add_connection_arguments,
    default_task_queue,
)
from pee.runtime.exit import run_entry
from pee.runtime.servers import Target, TargetError, resolve_target
from pee.runtime.telemetry import TelemetryConfigError
from pee.runtime.telemetry import configure as configure_telemetry
from pee.runtime.telemetry import current as current_telemetry
from pee.runtime.worker import ResourceTargets, build_worker, run_until_signalled


async def serve(target: Target, args: argparse.Namespace) -> None:
    client = await target.connect(args.namespace)
    security = target.settings.describe() if target.settings else "plain text"
    worker = build_worker(
        client,
        args.task_queue,
        max_concurrent_activities=args.max_concurrent_activities,
        resource_based=resource_targets(args),
    )
    telemetry = current_telemetry()
    if telemetry.metrics_address:
        print(
            f"Temporal SDK metrics for Prometheus: http://{telemetry.metrics_address}/metrics",
            flush=True,
        )
    if telemetry.enabled:
        print(
            "OpenTelemetry: "
            + ", ".join(
                f"{kind} to {os.environ.get(variable)}"
                for kind, variable in (
                    ("traces", "OTEL_TRACES_EXPORTER"),
                    ("metrics", "OTEL_METRICS_EXPORTER"),
                )
                if (os.environ.get(variable) or "none") != "none"
            ),
            flush=True,
        )
    ready = (
        f"worker {client.identity} on task queue {args.task_queue} at {target.address} "
        f"(namespace {client.namespace}, {security}, {describe_slots(args)}; "
        f"{describe_stores()}); Ctrl-C stops"
    )
    # said only once SIGTERM/SIGINT are handled: a SIGTERM right after the line exits 0
    await run_until_signalled(worker, lambda: print(ready, flush=True))
    print("worker stopped", flush=True)


def describe_stores() -> str:
    """Where this worker's caches and large payloads are: every worker of a deployment on
    several hosts must name the same ones (docs/guides/cluster.md)."""
    from pee.stores.blobs import configured_store
    from pee.stores.urls import for_purpose

    return f"caches {for_purpose('cache').display}, payloads {configured_store().display}"


def resource_targets(args: argparse.Namespace) -> ResourceTargets | None:
    return ResourceTargets(args.target_cpu, args.target_memory) if args.resource_based else None


def describe_slots(args: argparse.Namespace) -> str:
    if args.resource_based:
        cap = (
            f", at most {args.max_concurrent_activities} agents"
            if args.max_concurrent_activities is not None
            else ""
        )
        return f"resource-based: target cpu {args.target_cpu:g}, memory {args.target_memory:g}{cap}"
    if args.max_concurrent_activities is not None:
        return f"at most {args.max_concurrent_activities} agents at once"
    return "default slots"


def fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], found {text}")
    return value


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pee-worker", description=__doc__)
    add_connection_arguments(
        parser,
        address_help="HOST:PORT (default TEMPORAL_ADDRESS or the profile's, else the "
        "embedded dev server's localhost:7233)",
    )
    parser.add_argument(
        "--task-queue",
        default=default_task_queue(),
        help="default PEE_TASK_QUEUE or 'parallel-execution-engine'; a plan "
        "routes agents elsewhere with task_queue (per agent) or task_queues "
        "(per kind)",
    )
    parser.add_argument(
        "--max-concurrent-activities",
        type=positive_int,
        default=None,
        metavar="N",
        help="agents this worker runs at once (default: the SDK's 100); with "
        "--resource-based, the most the tuner may hand out",
    )
    parser.add_argument(
        "--resource-based",
        action="store_true",
        help="Temporal's resource-based tuner: take agents only while this "
        "host's CPU and memory stay under the targets",
    )
    parser.add_argument(
        "--target-cpu",
        type=fraction,
        default=0.8,
        metavar="F",
        help="with --resource-based: target CPU use, 0-1 (default 0.8)",
    )
    parser.add_argument(
        "--target-memory",
        type=fraction,
        default=0.8,
        metavar="F",
        help="with --resource-based: target memory use, 0-1 (default 0.8)",
    )
    add_metrics_port_option(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        # a worker never starts a server: it says how to get one
        target = resolve_target(ConnectionFlags.from_args(args), allow_start=False)
        configure_telemetry(metrics_port=args.metrics_port)
        asyncio.run(serve(target, args))
    except BrokenPipeError:
        raise  # a ConnectionError too, but the reader of stdout left: run_entry exits quietly
    except (TargetError, ConnectionError, TelemetryConfigError, PortSettingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def entry() -> NoReturn:
    """The `pee-worker` console script (and worker.py in a checkout)."""
    # worker shut down, then client and event loop (asyncio.run returned): leave without letting
    # the bridge see interpreter teardown (sdk-python issue 300)
    run_entry(main)


if __name__ == "__main__":
    entry()
