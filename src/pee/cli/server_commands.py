"""`server start|stop|status`: the embedded Temporal dev server that `run` starts and leaves up.

Its state (SQLite history dev.db, server.log, server.json with pid and ports) lives in .temporal/
(PEE_STATE_DIR); ports PEE_DEV_PORT (7233) and PEE_UI_PORT (8233), bound to 127.0.0.1. The fork
server `pee run` starts its runs from (pee.cli.fork_server) starts and stops with it; `start`
renews one that is gone or stale.
"""

from __future__ import annotations

import argparse
from typing import Any

EXIT_OK, EXIT_NOT_RUNNING, EXIT_BAD_INPUT = 0, 1, 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "server",
        help="start, stop or inspect the embedded Temporal dev server",
        description="Manage the embedded Temporal dev server (history kept in .temporal/dev.db "
        "across restarts). status exits 0 when it runs, 1 when not.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    start = actions.add_parser(
        "start", help="start it (when running: renew only its fork server, if gone or stale)"
    )
    start.add_argument("--headless", action="store_true", help="without the Web UI")
    start.set_defaults(handler=start_command)
    actions.add_parser("stop", help="stop it (no-op when not running)").set_defaults(
        handler=stop_command
    )
    actions.add_parser("status", help="say whether it runs, where, and its files").set_defaults(
        handler=status_command
    )


def start_command(args: argparse.Namespace) -> int:
    from pee.runtime.embedded import ServerError, start_server
    from pee.runtime.servers import cli_hint, describe_started

    try:
        record, started = start_server(ui=not args.headless)
    except (ServerError, FileNotFoundError) as err:
        print(f"error: {err}")
        return EXIT_BAD_INPUT
    if started:
        print(describe_started(record))
    else:
        print(
            f"already running at {record.address}"
            + (f", Web UI {record.ui_url}" if record.ui_url else "")
            + f" (pid {record.pid})\n"
            + cli_hint(record)
        )
    return EXIT_OK


def stop_command(args: argparse.Namespace) -> int:
    from pee.runtime.embedded import ServerError, stop_server

    try:
        record = stop_server()
    except ServerError as err:
        print(f"error: {err}")
        return EXIT_NOT_RUNNING
    if record is None:
        print("the embedded dev server is not running")
    else:
        print(
            f"stopped the embedded dev server at {record.address} (pid {record.pid}); "
            f"history kept in {record.db_file}"
        )
    return EXIT_OK


def status_command(args: argparse.Namespace) -> int:
    from pee.runtime.connection_flags import dev_port
    from pee.runtime.devserver import default_db_file, port_open
    from pee.runtime.embedded import IP, running_record
    from pee.runtime.servers import cli_hint

    record = running_record()
    if record is None:
        print("the embedded dev server is not running")
        if port_open(IP, dev_port()):
            print(f"(another program listens on {IP}:{dev_port()}; `run` will use it)")
        if default_db_file().exists():
            print(f"history kept in {default_db_file()}; `pee server start` brings it back")
        return EXIT_NOT_RUNNING
    print(f"running at {record.address} (pid {record.pid}, since {record.started_at})")
    if record.ui_url:
        print(f"Web UI:  {record.ui_url}")
    if record.codec_address:
        print(
            f"codec:   {record.codec_address} (pid {record.codec_pid}; the Web UI decodes with "
            "it, token in server.json)"
        )
    print(f"history: {record.db_file}\nlog:     {record.log_file}")
    print(f"fork:    {describe_fork_server()}")
    print(cli_hint(record))
    return EXIT_OK


def describe_fork_server() -> str:
    """The fork server `pee run` starts its runs from (pee.cli.fork_server), in a line."""
    from pee.runtime import fork_server_control
    from pee.runtime.fork_protocol import DISABLE_ENV, disabled

    if disabled():
        return f"no fork server ({DISABLE_ENV} is set: `pee run` imports everything itself)"
    found = fork_server_control.state()
    if found is None:
        return "no fork server (`pee server start` starts one: `pee run` then skips its imports)"
    if not found.ready:
        return f"fork server pid {found.pid} still importing"
    if not found.current:
        return (
            f"fork server pid {found.pid} is stale (the source or Python settings changed "
            "since it started; `pee run` runs in-process): `pee server start` renews it"
        )
    return f"fork server pid {found.pid} on {found.socket} (`pee run` forks from it)"
