"""The codec server that the embedded dev server's Web UI decodes payloads with.

`server start` (and `run`, when it starts the embedded server) first starts `python -m pee
codec-server` as a detached process on PEE_CODEC_PORT (default: the dev server's port + 1001,
i.e. 8234), or on a free port when that one is taken. It requires a random token, given to it in
its environment (never on a command line), refuses every Origin but the Web UI's, and the dev
server gets `--ui-codec-endpoint http://127.0.0.1:PORT/<token>`: the UI posts to
`<endpoint>/decode`, so the token travels as the path (the dev server's UI cannot add an
Authorization header). Pid, port and token go into server.json beside the server's; `server
stop` stops both, and `server start` stops one left behind by a server that died. Its log is
codec.log in the state directory.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

from pee.paths import state_dir
from pee.runtime.codec_defaults import TOKEN_ENV
from pee.runtime.connection_flags import dev_port, port_setting
from pee.runtime.devserver import (
    free_port,
    port_open,
    spawn,
    wait_until_ready,
)


def codec_port() -> int:
    return port_setting("PEE_CODEC_PORT", dev_port() + 1001)


def new_token() -> str:
    # URL-safe, so it can be the endpoint's path segment as it is
    return secrets.token_urlsafe(24)


def codec_command(ip: str, port: int, ui_origin: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pee",
        "codec-server",
        "--host",
        ip,
        "--port",
        str(port),
        "--cors-origin",
        ui_origin,
    ]


def spawn_codec_server(ip: str, ui_origin: str, token: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start it detached (own session, like the dev server), not waiting for it: (process,
    port). The dev server only needs its address, so both start at once; `wait_codec_server`
    then waits for it."""
    port = codec_port()
    if port_open(ip, port):
        # someone else's program: never fight over a port
        port = free_port(ip)
    with open(state_dir() / "codec.log", "ab") as log:
        process = spawn(codec_command(ip, port, ui_origin), log, {TOKEN_ENV: token})
    return process, port


def wait_codec_server(
    process: subprocess.Popen[bytes], ip: str, port: int, startup_timeout_s: float = 20.0
) -> None:
    """Until it accepts connections; RuntimeError or TimeoutError (and it is killed) when it
    does not come up."""
    try:
        wait_until_ready(process, ip, [port], startup_timeout_s, state_dir() / "codec.log")
    except (RuntimeError, TimeoutError):
        # never leave one behind that no record names
        process.kill()
        process.wait()
        raise


def is_codec_server(pid: int, port: int | None = None) -> bool:
    """Guard against a recycled pid: on Linux, check the command line is a codec server (on
    `port`, when given)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return sys.platform != "linux"
    if b"codec-server" not in args:
        return False
    return port is None or (
        b"--port" in args and args[args.index(b"--port") + 1 :][:1] == [str(port).encode()]
    )
