"""The connection flags and the local-default rules every command shares, without the SDK.

Every `pee` command registers the connection flags (`--address`, `--tls*`...) when the command
line is built, and `pee validate` / `pee plan` never connect: importing the Temporal SDK for
them would cost each of those commands several tenths of a second. pee.runtime.connection
resolves these flags into a connection.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

DEFAULT_DEV_PORT = 7233
DEFAULT_NAMESPACE = "default"
DEFAULT_TASK_QUEUE = "parallel-execution-engine"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


class PortSettingError(ValueError):
    """A PEE_*_PORT variable that is not a TCP port number."""


def port_setting(variable: str, default: int) -> int:
    """The port ``variable`` names (unset or empty: ``default``); PortSettingError otherwise."""
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise PortSettingError(
            f"{variable}={text!r} is not a port number (1-65535); "
            f"set it to a free port such as {default}, or unset it"
        )
    return int(text)


def dev_port() -> int:
    """The embedded dev server's frontend port: PEE_DEV_PORT (tests use their own) or 7233."""
    return port_setting("PEE_DEV_PORT", DEFAULT_DEV_PORT)


def local_default_address() -> str:
    return f"localhost:{dev_port()}"


def default_task_queue() -> str:
    return os.environ.get("PEE_TASK_QUEUE") or DEFAULT_TASK_QUEUE


def split_address(address: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 as [::1]:7233) -> (host, port); ValueError when malformed."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, found {address!r}")
    return host.strip("[]"), int(port)


def is_local_default(address: str) -> bool:
    """True for this machine at the embedded server's port: the one address we may start."""
    try:
        host, port = split_address(address)
    except ValueError:
        return False
    return host in LOCAL_HOSTS and port == dev_port()


def listening(address: str, timeout_s: float = 0.5) -> bool:
    """Whether something accepts TCP connections at HOST:PORT (not necessarily Temporal)."""
    try:
        host, port = split_address(address)
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


# each TLS setting: (flag, environment variable) for messages
CA_SETTING = ("--tls-ca", "TEMPORAL_TLS_SERVER_CA_CERT_PATH")
CERT_SETTING = ("--tls-cert", "TEMPORAL_TLS_CLIENT_CERT_PATH")
KEY_SETTING = ("--tls-key", "TEMPORAL_TLS_CLIENT_KEY_PATH")
SERVER_NAME_SETTING = ("--tls-server-name", "TEMPORAL_TLS_SERVER_NAME")


def setting_name(setting: tuple[str, str]) -> str:
    return f"{setting[0]} (or {setting[1]})"


@dataclass(frozen=True)
class ConnectionFlags:
    """What the command line said; None everywhere = nothing given (environment and profile
    decide)."""

    address: str | None = None
    namespace: str | None = None
    profile: str | None = None
    tls: bool | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_server_name: str | None = None
    api_key: str | None = None

    @classmethod
    def from_args(cls, args: Any) -> ConnectionFlags:
        """From an argparse namespace made with add_connection_arguments (missing ones: None)."""
        return cls(**{name: getattr(args, name, None) for name in cls.__dataclass_fields__})


def add_connection_arguments(parser: Any, *, address_help: str | None = None) -> None:
    """The connection flags every command and worker.py share (argparse parser or group)."""
    parser.add_argument(
        "--address",
        metavar="HOST:PORT",
        help=address_help
        or "Temporal frontend (default TEMPORAL_ADDRESS or the profile's, else "
        "localhost:7233, the embedded dev server)",
    )
    parser.add_argument(
        "--namespace",
        metavar="NS",
        help="default TEMPORAL_NAMESPACE or the profile's, else 'default'",
    )
    parser.add_argument(
        "--profile",
        metavar="NAME",
        help="Temporal client config profile (default TEMPORAL_PROFILE, else "
        "'default'), read from TEMPORAL_CONFIG_FILE or "
        "~/.config/temporalio/temporal.toml when it exists",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        default=None,
        help="connect with TLS, trusting the system's CAs (implied by the other "
        "--tls-* options and by an API key; TEMPORAL_TLS=true)",
    )
    parser.add_argument(
        "--tls-ca",
        metavar="PEM",
        help="CA certificate(s) the server's certificate must be signed by "
        "(TEMPORAL_TLS_SERVER_CA_CERT_PATH; default: the system's CAs)",
    )
    parser.add_argument(
        "--tls-cert",
        metavar="PEM",
        help="client certificate for mTLS (TEMPORAL_TLS_CLIENT_CERT_PATH); needs --tls-key",
    )
    parser.add_argument(
        "--tls-key",
        metavar="PEM",
        help="the client certificate's private key (TEMPORAL_TLS_CLIENT_KEY_PATH)",
    )
    parser.add_argument(
        "--tls-server-name",
        metavar="NAME",
        help="the name the server's certificate must carry when it is not the "
        "address's host (TEMPORAL_TLS_SERVER_NAME)",
    )
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        help="API key, e.g. for Temporal Cloud; implies TLS. Prefer "
        "TEMPORAL_API_KEY: arguments are visible to other local users",
    )
