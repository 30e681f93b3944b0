"""Command-line entry: `pee {validate,plan,run,...}` (the console script the project installs;
starter.py in a checkout is the same); each command has its module."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from pee.cli import (
    cache_commands,
    codec_commands,
    compile_command,
    conflict_commands,
    outputs_command,
    plan_commands,
    run_commands,
    server_commands,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pee",
        description="Parallel Execution Engine: validate, analyse and run agent pipelines "
        "on Temporal.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    plan_commands.register(commands)
    run_commands.register(commands)
    compile_command.register(commands)
    server_commands.register(commands)
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
        from pee.runtime.telemetry import TelemetryConfigError, configure

        try:
            telemetry = configure(metrics_port=metrics_port)
        except TelemetryConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        if telemetry.metrics_address:
            print(
                f"Temporal SDK metrics for Prometheus: http://{telemetry.metrics_address}/metrics",
                file=sys.stderr,
            )
    from pee.runtime.connection_flags import PortSettingError
    from pee.stores.sql import DatabaseError
    from pee.stores.urls import StoreConfigError

    # psycopg's pool warns at each failed attempt while it retries an unreachable database;
    # a command ends with one error naming the database, so the warnings only repeat it
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    try:
        return int(args.handler(args))
    except (StoreConfigError, PortSettingError) as err:
        # a setting such as PEE_CACHE_URL, PEE_ARTIFACT_URL or PEE_DEV_PORT that cannot be
        # used as given
        print(f"error: {err}", file=sys.stderr)
        return 2
    except DatabaseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def entry() -> NoReturn:
    """The `pee` console script (and starter.py): every command shuts down its worker, client
    and event loop before returning its code; run_entry then exits hard so the Rust bridge
    cannot crash interpreter teardown (sdk-python issue 300)."""
    from pee.runtime.exit import run_entry

    run_entry(main)


if __name__ == "__main__":
    entry()
