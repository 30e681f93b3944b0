"""Command-line entry: `python starter.py {validate,plan,run,...}`; each command has its module."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from cli import (
    cache_commands,
    codec_commands,
    conflict_commands,
    outputs_command,
    plan_commands,
    run_commands,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="starter.py",
        description="Parallel Execution Engine: validate, analyse and run agent pipelines "
        "on Temporal.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    plan_commands.register(commands)
    run_commands.register(commands)
    conflict_commands.register(commands)
    codec_commands.register(commands)
    cache_commands.register(commands)
    outputs_command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    metrics_port = getattr(args, "metrics_port", None)
    if metrics_port is not None or any(name.startswith("OTEL_") for name in os.environ):
        # telemetry is set up only when asked for (OTEL_* variables, --metrics-port): a
        # command without them never loads the OpenTelemetry SDK's exporters
        from runtime.telemetry import TelemetryConfigError, configure

        try:
            telemetry = configure(metrics_port=metrics_port)
        except TelemetryConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        if telemetry.metrics_address:
            print(f"Temporal SDK metrics for Prometheus: http://{telemetry.metrics_address}"
                  "/metrics", file=sys.stderr)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
