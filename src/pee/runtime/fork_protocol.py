"""What `pee run` and the fork server beside the embedded dev server share: where the server
listens, the key that says whether its imported modules are the ones this `pee run` would
import, and the messages they exchange.

The client side runs in the console script before anything heavy is imported, so this module
uses little of the standard library (no pathlib, json or hashlib: each costs milliseconds of a
budget of a few hundred).

A run through the fork server involves three processes besides the client:

- the fork server (pee.cli.fork_server), which imported everything `pee run` needs once and
  forks per request;
- the relay, its child, which keeps the client's connection: it forwards the client's signals
  to the run, and sends the run's wait status back (or interrupts the run if the client dies);
- the run, the relay's child, which takes the client's argv, cwd, environment, umask and
  standard streams and runs `pee run` as the client would have.
"""

from __future__ import annotations

import marshal
import os
import signal
import socket
import sys

# typing, contextlib and collections cost the client milliseconds to import: for mypy only
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

DISABLE_ENV = "PEE_NO_FORK_SERVER"
SOCKET_NAME = "fork-server.sock"
PID_NAME = "fork-server.pid"
LOG_NAME = "fork-server.log"
SERVER_MODULE = "pee.cli.fork_server"
PROTOCOL = 1

# the signals a client passes on to its run (through the relay): what a terminal or a
# supervisor sends a command it wants to stop or tell something
CLIENT_SIGNALS = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)

# one tag byte, then its payload
REQUEST_RUN = b"Q"  # client -> server: marshal'd request, with the client's fds
REQUEST_KEY = b"K"  # anyone -> server: answer with your key (marshal'd)
STARTED = b"P"  # relay -> client: ready to start the run
GO = b"G"  # client -> relay: start it (a client that gave up has closed instead)
REFUSED = b"R"  # server -> client: run in-process instead; payload: why (utf-8)
EXITED = b"X"  # relay -> client: the run's wait status, 4 bytes big-endian
SIGNAL = b"S"  # client -> relay: forward this signal (1 byte) to the run

# what the server's imports read of the environment besides PYTHON* (site's user base; protobuf's,
# psutil's and pydantic's switches): a client with other values would not get the modules it would
# import itself, so they are part of the key (tests/test_fork_server.py records what is read)
IMPORT_ENVIRONMENT = (
    "HOME",
    "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION",
    "PSUTIL_DEBUG",
    "PYDANTIC_DISABLE_PLUGINS",
    "TEMPORARILY_DISABLE_PROTOBUF_VERSION_CHECK",
    "_PYTHON_PROJECT_BASE",
    "_PYTHON_SYSCONFIGDATA_NAME",
)

# the client's descriptors sent with a request: stdin, stdout, stderr, then its cwd
STD_FDS = (0, 1, 2)
# a Unix socket's path holds at most 107 bytes: a longer one is reached through its folder's fd
_MAX_SOCKET_PATH = 100
_LENGTH_BYTES = 4
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def disabled(environ: Any = None) -> bool:
    """PEE_NO_FORK_SERVER set to anything but empty, 0, false or no."""
    value = (os.environ if environ is None else environ).get(DISABLE_ENV, "")
    return value.strip().lower() not in ("", "0", "false", "no")


def state_dir() -> str:
    """pee.paths.state_dir() as a string, without importing pathlib
    (tests/test_fork_server.py checks they agree)."""
    return os.environ.get("PEE_STATE_DIR") or os.path.join(
        os.path.dirname(os.path.dirname(_PACKAGE_DIR)), ".temporal"
    )


def socket_file(directory: str | None = None) -> str:
    return os.path.join(directory or state_dir(), SOCKET_NAME)


def pid_file(directory: str | None = None) -> str:
    return os.path.join(directory or state_dir(), PID_NAME)


class SocketAddress:
    """``with SocketAddress(path) as address``: an address for bind/connect, the path itself
    or, when too long for a Unix socket, the same file through its folder's /proc/self/fd."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.folder: int | None = None

    def __enter__(self) -> str:
        if len(os.fsencode(self.path)) <= _MAX_SOCKET_PATH:
            return self.path
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
        self.folder = os.open(os.path.dirname(self.path) or ".", flags)
        return f"/proc/self/fd/{self.folder}/{os.path.basename(self.path)}"

    def __exit__(self, *exc: object) -> None:
        if self.folder is not None:
            os.close(self.folder)
            self.folder = None


def import_path() -> list[str]:
    """sys.path without the running script's folder, which the client (the console script's
    bin/) and the server (python -P -m) do not share; the run takes the client's whole path."""
    safe_path = getattr(sys.flags, "safe_path", False)  # -P (Python 3.11)
    return list(sys.path if safe_path else sys.path[1:])


def key() -> tuple[Any, ...]:
    """What must be the same in the client and the server for the server's imported modules to
    be the ones the client would import: the interpreter, its flags, PYTHON* settings and the
    variables its imports read (IMPORT_ENVIRONMENT), the import path (with each folder's mtime:
    an install or removal changes it), and every file of the pee package (path, mtime, size: an
    edited checkout never runs stale code)."""
    flags = tuple(
        (name, getattr(sys.flags, name))
        for name in type(sys.flags).__match_args__
        # -P: the server runs with it so that no folder of its own shadows a module
        if name != "safe_path"
    )
    path = import_path()
    return (
        PROTOCOL,
        sys.executable,
        sys.version,
        flags,
        tuple(sys.warnoptions),
        tuple(sorted((str(k), str(v)) for k, v in sys._xoptions.items())),
        tuple(
            sorted(
                (k, v)
                for k, v in os.environ.items()
                if k.startswith("PYTHON") or k in IMPORT_ENVIRONMENT
            )
        ),
        tuple((entry, _mtime(entry)) for entry in path),
        tuple(_package_files(_PACKAGE_DIR)),
    )


def _mtime(path: str) -> int:
    try:
        return os.stat(path or ".").st_mtime_ns
    except OSError:
        return -1


def _package_files(root: str) -> Iterator[tuple[str, int, int]]:
    folders = [root]
    while folders:
        folder = folders.pop()
        with os.scandir(folder) as entries:
            found = sorted(entries, key=lambda entry: entry.name)
        for entry in found:
            if entry.name == "__pycache__":
                continue
            if entry.is_dir(follow_symlinks=False):
                folders.append(entry.path)
                continue
            info = entry.stat()
            yield entry.path[len(root) :], info.st_mtime_ns, info.st_size


# --- framing: a tag byte, a 4-byte length, the payload ----------------------------------------


def frame(tag: bytes, payload: bytes = b"") -> bytes:
    return tag + len(payload).to_bytes(_LENGTH_BYTES, "big") + payload


def pack(value: Any) -> bytes:
    # marshal: built in (no import), and both ends are this interpreter
    return marshal.dumps(value)


def unpack(data: bytes) -> Any:
    return marshal.loads(data)


class Reader:
    """Frames from a stream socket, and the descriptors that came with the first one."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.fds: list[int] = []

    def next(self, max_fds: int = 0) -> tuple[bytes, bytes] | None:
        """The next (tag, payload), or None at the end of the stream."""
        while True:
            found = self.take()
            if found is not None:
                return found
            if not self.fill(max_fds):
                return None

    def take(self) -> tuple[bytes, bytes] | None:
        """A whole frame already received, if any (nothing is read)."""
        head = 1 + _LENGTH_BYTES
        if len(self.buffer) >= head:
            size = int.from_bytes(self.buffer[1:head], "big")
            if len(self.buffer) >= head + size:
                tag, payload = self.buffer[:1], self.buffer[head : head + size]
                self.buffer = self.buffer[head + size :]
                return tag, payload
        return None

    def fill(self, max_fds: int = 0) -> bool:
        """Receive what the socket has (blocking until something comes); False at its end."""
        if max_fds and not self.fds:
            data, fds, _flags, _addr = socket.recv_fds(self.sock, 1 << 16, max_fds)
            self.fds = list(fds)
        else:
            data = self.sock.recv(1 << 16)
        self.buffer += data
        return bool(data)
