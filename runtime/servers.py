"""Which Temporal server a command talks to, starting the embedded one when that is allowed.

Rule: the address is --address, else TEMPORAL_ADDRESS, else localhost:7233 (PEE_DEV_PORT). If
nothing listens there and it is that local default, the embedded dev server is started (and stays
up); any other unreachable address is the user's mistake (exit 2), never silently replaced.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TextIO
from urllib.parse import quote

from temporalio.client import Client

from runtime.connection import (
    LOCAL_HOSTS,
    connect,
    default_address,
    is_local_default,
    listening,
    split_address,
)
from runtime.embedded import ServerError, ServerRecord, running_record, start_server


class TargetError(Exception):
    """No usable server at the address; the message says what to do (exit 2)."""


@dataclass
class Target:
    address: str
    # the embedded server, when that is the one we use
    record: ServerRecord | None = None
    started_server: bool = False
    ui_url: str | None = None
    # " --address X" for follow-up commands when X is not what they would pick by default
    address_flag: str = ""

    async def connect(self, namespace: str | None = None) -> Client:
        return await connect(self.address, namespace)


def resolve_target(
    address: str | None, *, out: TextIO | None = None, allow_start: bool = True
) -> Target:
    out = out or sys.stdout
    given = address or default_address()
    try:
        host, port = split_address(given)
    except ValueError as err:
        raise TargetError(f"--address: {err}") from None
    flag = "" if given == default_address() else f" --address {given}"
    if listening(given):
        record = running_record() if is_local_default(given) else None
        if record and record.port == port:
            return Target(record.address, record, False, record.ui_url, flag)
        return Target(given, None, False, guess_ui_url(host, port), flag)
    if not is_local_default(given):
        raise TargetError(
            f"nothing listens at {given}: start Temporal there, or leave out --address (and "
            "TEMPORAL_ADDRESS) to use the embedded dev server"
        )
    if not allow_start:
        raise TargetError(
            f"no Temporal server at {given}; `python starter.py server start` starts the "
            "embedded one (its history is kept in the state directory)"
        )
    print(f"No Temporal server at {given}: starting the embedded dev server...", file=out,
          flush=True)
    try:
        record, started = start_server()
    except (ServerError, FileNotFoundError) as err:
        raise TargetError(f"cannot start the embedded dev server: {err}") from None
    if started:
        print(describe_started(record), file=out, flush=True)
    return Target(record.address, record, started, record.ui_url, flag)


def describe_started(record: ServerRecord) -> str:
    ui = f", Web UI {record.ui_url}" if record.ui_url else ""
    if record.codec_url:
        ui += f" (payloads decoded by the codec server at {record.codec_url})"
    return (
        f"Embedded Temporal dev server up at {record.address}{ui} (pid {record.pid}, history in "
        f"{record.db_file}).\nIt stays up after this command so the history stays browsable; "
        "`python starter.py server stop` stops it."
    )


def guess_ui_url(host: str, port: int) -> str | None:
    """PEE_UI_URL; else, for a local dev server, its UI's default port (+1000) if it answers."""
    configured = os.environ.get("PEE_UI_URL")
    if configured:
        return configured.rstrip("/")
    if host in LOCAL_HOSTS and listening(f"{host}:{port + 1000}"):
        return f"http://{f'[{host}]' if ':' in host else host}:{port + 1000}"
    return None


def workflow_url(
    target: Target, namespace: str, workflow_id: str, run_id: str | None = None
) -> str | None:
    if not target.ui_url:
        return None
    url = f"{target.ui_url}/namespaces/{quote(namespace)}/workflows/{quote(workflow_id, safe='')}"
    return f"{url}/{run_id}/history" if run_id else url
