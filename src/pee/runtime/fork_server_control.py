"""Start, check and stop the fork server (pee.cli.fork_server) beside the embedded dev server.

It is started with the dev server (pee.runtime.embedded.start_server), renewed by `pee server
start` when it is gone or stale (its source, interpreter or Python settings changed since it
imported them), stopped with the dev server, and ends by itself when that server's process is
gone. Its pid is in fork-server.pid and it listens on fork-server.sock in the state directory;
what it prints goes to fork-server.log there. PEE_NO_FORK_SERVER=1 starts none (and `pee run`
then uses none).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pee.paths import state_dir
from pee.runtime import fork_protocol as proto

# what the server's own imports may read of the environment; each run takes its client's whole
# environment instead, so the long-lived server holds no secret of the shell that started it
KEPT_ENVIRONMENT = ("PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR")
KEPT_PREFIXES = ("PYTHON", "LC_")
_DETACHED: list[subprocess.Popen[bytes]] = []


class ForkServerError(RuntimeError):
    """The fork server did not stop; the message says which process."""


@dataclass(frozen=True)
class ForkServerState:
    pid: int
    # listening (its imports done) and its key matches this interpreter's and source's
    ready: bool
    current: bool
    socket: str


def server_environment() -> dict[str, str]:
    return {
        name: value
        for name, value in os.environ.items()
        if name in KEPT_ENVIRONMENT
        or name in proto.IMPORT_ENVIRONMENT
        or name.startswith(KEPT_PREFIXES)
    }


def start(watch_pid: int, port: int) -> int | None:
    """Start one for the dev server ``watch_pid`` listening on ``port``; its pid (None when
    disabled)."""
    # Linux only: it checks its clients' uid (SO_PEERCRED) and its processes in /proc
    if proto.disabled() or sys.platform != "linux":
        return None
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / proto.LOG_NAME, "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                # no folder of its own ahead on the import path (-m would put the cwd there)
                "-P",
                "-m",
                proto.SERVER_MODULE,
                "--state-dir",
                str(directory),
                "--watch",
                str(watch_pid),
                "--after-port",
                str(port),
            ],
            env=server_environment(),
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # its own session: a Ctrl-C in the terminal that started it never reaches it
            start_new_session=True,
        )
    _DETACHED.append(process)
    _pid_path().write_text(f"{process.pid}\n")
    return process.pid


def state() -> ForkServerState | None:
    """The recorded fork server if its process is alive."""
    pid = _recorded_pid()
    if pid is None or not _is_fork_server(pid):
        return None
    key = _ask_key()
    return ForkServerState(
        pid=pid, ready=key is not None, current=key == proto.key(), socket=proto.socket_file()
    )


def renew(watch_pid: int, port: int) -> int | None:
    """Keep a current one running: start one when none runs, replace a stale one (a server
    still importing is left to finish). The running pid, None when disabled."""
    if proto.disabled():
        return None
    found = state()
    if found is not None and (found.current or not found.ready):
        return found.pid
    stop()
    return start(watch_pid, port)


def stop(timeout_s: float = 10.0) -> int | None:
    """Stop the recorded fork server (SIGTERM, then SIGKILL): its pid, None when none ran.
    Runs it started go on: each belongs to its own `pee run`."""
    pid = _recorded_pid()
    stopped = None
    if pid is not None and _is_fork_server(pid):
        for signum, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
            if _wait_gone(pid, wait_s):
                stopped = pid
                break
        else:
            raise ForkServerError(f"the fork server (pid {pid}) did not stop")
    elif pid is not None and _exiting(pid):
        # ending on its own (its dev server died): gone before we say it is
        _wait_gone(pid, timeout_s)
    for path in (_pid_path(), Path(proto.socket_file())):
        path.unlink(missing_ok=True)
    return stopped


def _pid_path() -> Path:
    return state_dir() / proto.PID_NAME


def _recorded_pid() -> int | None:
    try:
        return int(_pid_path().read_text().strip())
    except (OSError, ValueError):
        return None


def _is_fork_server(pid: int) -> bool:
    """Alive, and (against a recycled pid) running the fork server's module."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return proto.SERVER_MODULE.encode() in cmdline and _running(pid)


def _exiting(pid: int) -> bool:
    """Still running with an empty command line: a process on its way out."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return not cmdline and _running(pid)


def _running(pid: int) -> bool:
    """Not yet exited (an exiting process's cmdline is empty before it is a zombie)."""
    _reap(pid)
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return status.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _reap(pid: int) -> None:
    # started by this process (a test that started the server in-process): reap it when done
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _running(pid):
            return True
        time.sleep(0.05)
    return not _running(pid)


def _ask_key() -> object | None:
    """The key the listening server imported its modules under (None: not listening)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5.0)
        try:
            with proto.SocketAddress(proto.socket_file()) as address:
                sock.connect(address)
            sock.sendall(proto.frame(proto.REQUEST_KEY))
            answer = proto.Reader(sock).next()
        except (OSError, ValueError):
            return None
    if answer is None or answer[0] != proto.REQUEST_KEY:
        return None
    try:
        return proto.unpack(answer[1])
    except (ValueError, EOFError, TypeError):
        return None
