"""The `temporal` CLI against the embedded dev server: a client config file, and the flags the
commands' hints print so every `temporal ...` line works as printed, payloads decoded.

`server start` writes `temporal.toml` in the state directory (.temporal/, PEE_STATE_DIR): a
`default` profile with the server's address, and with the Web UI the codec server's endpoint
(token included), so `temporal <command> --config-file .temporal/temporal.toml` reaches the
server on whatever port it got and decodes lz4 payloads. `server stop` removes it (the token
dies with the codec server). The file is readable by its owner only.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from pathlib import Path
from typing import Protocol

from pee.paths import state_dir
from pee.runtime.devserver import find_temporal_binary

DEFAULT_NAMESPACE = "default"


class ServerRecord(Protocol):
    """What the config file needs of the embedded server's record (runtime/embedded.py's
    ServerRecord): a protocol, so this module never imports embedded, which imports it."""

    @property
    def address(self) -> str: ...

    @property
    def codec_url(self) -> str | None: ...


def config_file() -> Path:
    return state_dir() / "temporal.toml"


def config_text(record: ServerRecord) -> str:
    lines = [
        "# the embedded dev server, for `temporal ... --config-file THIS_FILE`; written by",
        "# `pee server start`, removed by `pee server stop`",
        "[profile.default]",
        f'address = "{record.address}"',
        f'namespace = "{DEFAULT_NAMESPACE}"',
    ]
    if record.codec_url:
        lines += ["", "[profile.default.codec]", f'endpoint = "{record.codec_url}"']
    return "\n".join(lines) + "\n"


def write_config(record: ServerRecord) -> Path:
    path = config_file()
    # created owner-only before the token is written into it
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(config_text(record))
    return path


def remove_config() -> None:
    with contextlib.suppress(FileNotFoundError):
        config_file().unlink()


def shown_path(path: Path) -> str:
    """Relative to the current folder when inside it (as the docs write it), else absolute;
    quoted for a shell."""
    try:
        text = str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        text = str(path)
    return shlex.quote(text)


def binary() -> str:
    """The temporal binary as a user types it: `.venv/bin/temporal` from the project folder."""
    try:
        return shown_path(find_temporal_binary())
    except FileNotFoundError:
        return "temporal"


def connection_flags(
    address: str, namespace: str | None = None, record: ServerRecord | None = None
) -> str:
    """' --config-file .temporal/temporal.toml' for the embedded server (its address and codec
    endpoint), else ' --address HOST:PORT'; with ' --namespace NS' when not the default."""
    if record is not None and config_file().exists():
        flags = f" --config-file {shown_path(config_file())}"
    else:
        flags = f" --address {address}"
    if namespace and namespace != DEFAULT_NAMESPACE:
        flags += f" --namespace {shlex.quote(namespace)}"
    return flags
