"""Which Temporal server a command talks to, starting the embedded one when that is allowed.

Rule: the address is --address, else TEMPORAL_ADDRESS (or the client config profile's), else
localhost:7233 (PEE_DEV_PORT). If nothing listens there and it is that local default, the embedded
dev server is started (and stays up); any other unreachable address is the user's mistake (exit
2), never silently replaced. TLS and API key settings travel with the target
(pee.runtime.connection.resolve_settings).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from typing import TextIO
from urllib.parse import quote

from temporalio.client import Client

from pee.runtime.connection import (
    ConnectionConfigError,
    ConnectionSettings,
    connect,
    resolve_settings,
)
from pee.runtime.connection_flags import (
    LOCAL_HOSTS,
    ConnectionFlags,
    is_local_default,
    listening,
    split_address,
)
from pee.runtime.devserver import default_db_file
from pee.runtime.embedded import ServerError, ServerRecord, running_record, start_server


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
    # TLS, API key and namespace as resolved; None = plain text, from the environment
    settings: ConnectionSettings | None = None

    @property
    def namespace(self) -> str:
        return self.settings.namespace if self.settings else resolve_settings().namespace

    async def connect(self, namespace: str | None = None) -> Client:
        settings = self.settings or resolve_settings()
        return await connect(replace(settings, address=self.address), namespace)


def resolve_target(
    connection: ConnectionFlags | str | None,
    *,
    out: TextIO | None = None,
    allow_start: bool = True,
) -> Target:
    """`connection`: the command's flags (ConnectionFlags.from_args), or just an address."""
    out = out or sys.stdout
    flags = (
        connection
        if isinstance(connection, ConnectionFlags)
        else ConnectionFlags(address=connection)
    )
    try:
        settings = resolve_settings(flags)
        default = resolve_settings(replace(flags, address=None)).address
    except ConnectionConfigError as err:
        raise TargetError(str(err)) from None
    given = settings.address
    host, port = split_address(given)
    flag = "" if given == default else f" --address {given}"
    if listening(given):
        record = running_record() if is_local_default(given) and not settings.tls else None
        if record and record.port == port:
            return Target(record.address, record, False, record.ui_url, flag, settings)
        return Target(given, None, False, guess_ui_url(host, port), flag, settings)
    if not is_local_default(given):
        raise TargetError(
            f"nothing listens at {given}: start Temporal there, or leave out --address (and "
            "TEMPORAL_ADDRESS) to use the embedded dev server"
        )
    if settings.tls:
        raise TargetError(
            f"nothing listens at {given}, and TLS is configured: the embedded dev server speaks "
            "plain text only; give the --address of your TLS endpoint, or leave out the TLS "
            "settings (--tls*, TEMPORAL_TLS*, the API key)"
        )
    if not allow_start:
        raise TargetError(
            f"no Temporal server at {given}; `pee server start` starts the "
            "embedded one (its history is kept in the state directory)"
        )
    print(
        f"No Temporal server at {given}: starting the embedded dev server...", file=out, flush=True
    )
    try:
        record, started = start_server()
    except (ServerError, FileNotFoundError) as err:
        raise TargetError(f"cannot start the embedded dev server: {err}") from None
    if started:
        print(describe_started(record), file=out, flush=True)
    return Target(record.address, record, started, record.ui_url, flag, settings)


def reader_target(connection: ConnectionFlags) -> Target:
    """resolve_target for the commands that read a run (status, report, outputs, conflicts,
    resolve): a stopped embedded server is restarted only when it has a history to show, and
    what that prints goes to stderr, so stdout stays what was read."""
    return resolve_target(connection, allow_start=default_db_file().exists(), out=sys.stderr)


def describe_started(record: ServerRecord) -> str:
    ui = f", Web UI {record.ui_url}" if record.ui_url else ""
    if record.codec_address:
        ui += f" (payloads decoded by the codec server at {record.codec_address})"
    return (
        f"Embedded Temporal dev server up at {record.address}{ui} (pid {record.pid}, history in "
        f"{record.db_file}).\nIt stays up after this command so the history stays browsable; "
        "`pee server stop` stops it.\n" + cli_hint(record)
    )


def cli_hint(record: ServerRecord) -> str:
    from pee.runtime.temporal_cli import binary, config_file, connection_flags, shown_path

    decoded = " and its codec server (payloads decoded)" if record.codec_url else ""
    return (
        f"temporal CLI: {shown_path(config_file())} holds its address{decoded}, e.g.\n"
        f"  {binary()} workflow list{connection_flags(record.address, None, record)}"
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
