"""`pee run` through the fork server (pee.cli.fork_server), when one is up and current.

Runs in the console script before anything heavy is imported. It sends what the run must take
on (argv, environment, umask, limits, signal dispositions; stdin, stdout, stderr and the cwd as
descriptors), lets the run start, passes on the signals it receives, and returns the run's exit
code. Whenever the server cannot be used (none listening, a stale one, a refusal, an error
before the run started) it returns None and the command runs in-process as before.
"""

from __future__ import annotations

import os
import signal
import socket
import sys

from pee.runtime import fork_protocol as proto

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs this path milliseconds to import
    from typing import Any

# how long the server may take to answer before the command runs in-process instead (it forks
# at once; only a stopped or swamped server is this slow)
ANSWER_TIMEOUT_S = 10.0
_DISPOSITIONS = {signal.SIG_IGN: 0, signal.SIG_DFL: 1, signal.default_int_handler: 2}


def run(argv: list[str]) -> int | None:
    """Run `pee` with ``argv`` (sys.argv) in the fork server: its exit code, or None when it
    must run here."""
    if proto.disabled() or any(stream is None for stream in (sys.stdin, sys.stdout, sys.stderr)):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # first: with no server listening the command loses no more than this
        sock.settimeout(ANSWER_TIMEOUT_S)
        with proto.SocketAddress(proto.socket_file()) as address:
            sock.connect(address)
        request, cwd = _request(argv)
    except OSError:
        sock.close()
        return None
    try:
        socket.send_fds(
            sock, [proto.frame(proto.REQUEST_RUN, proto.pack(request))], [*proto.STD_FDS, cwd]
        )
        reader = proto.Reader(sock)
        answer = reader.next()
        if answer is None or answer[0] != proto.STARTED:
            sock.close()
            return None
        # a signal from now on is the run's: held until the forwarder is in place, which
        # sends it after the go
        held = signal.pthread_sigmask(signal.SIG_BLOCK, Forwarder.HELD)
        try:
            sock.sendall(proto.frame(proto.GO))
            forwarder = Forwarder(sock)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
    except OSError:
        sock.close()
        return None
    finally:
        os.close(cwd)
    # from here on the run is started: no way back to the in-process path
    sock.settimeout(None)
    while True:
        try:
            message = reader.next()
        except OSError:
            message = None
        if message is None:
            print(
                "error: the fork server's relay for this run ended without the run's exit status",
                file=sys.stderr,
            )
            return 1
        if message[0] == proto.EXITED:
            forwarder.restore()
            return _exit_code(int.from_bytes(message[1], "big"))


def _request(argv: list[str]) -> tuple[dict[str, Any], int]:
    import resource

    umask = os.umask(0o022)
    os.umask(umask)
    rlimits = {
        name: resource.getrlimit(getattr(resource, name))
        for name in dir(resource)
        if name.startswith("RLIMIT_")
    }
    signals = {}
    for signum in signal.valid_signals():
        with_handler = signal.getsignal(signum)
        if with_handler in _DISPOSITIONS:
            signals[int(signum)] = _DISPOSITIONS[with_handler]
    request = {
        "key": proto.key(),
        "argv": list(argv),
        "env": dict(os.environb),
        "path": list(sys.path),
        "umask": umask,
        "rlimits": rlimits,
        "nice": os.nice(0),
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [],
        "signals": signals,
        "sigmask": sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])),
        "streams": [
            (s.encoding, s.errors, s.line_buffering, s.write_through)  # type: ignore[union-attr]
            for s in (sys.stdin, sys.stdout, sys.stderr)
        ],
    }
    # the cwd itself, not its name: the same directory even if renamed or unreadable
    flags = os.O_DIRECTORY | getattr(os, "O_PATH", os.O_RDONLY)
    return request, os.open(".", flags)


class Forwarder:
    """Passes the signals this process receives on to the run (through the relay); Ctrl-Z
    stops the run, then this process, and `fg` continues both."""

    FORWARDED = proto.CLIENT_SIGNALS

    HELD = frozenset(FORWARDED) | {signal.SIGTSTP}

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.previous: dict[int, Any] = {}
        for signum in self.FORWARDED:
            # one ignored here is ignored there too (the run took our dispositions)
            if signal.getsignal(signum) != signal.SIG_IGN:
                self.previous[signum] = signal.signal(signum, self.forward)
        if signal.getsignal(signal.SIGTSTP) == signal.SIG_DFL:
            self.previous[signal.SIGTSTP] = signal.signal(signal.SIGTSTP, self.suspend)

    def send(self, signum: int) -> None:
        # the relay gone: its end comes through the socket
        try:  # noqa: SIM105 (contextlib costs this path milliseconds to import)
            self.sock.sendall(proto.frame(proto.SIGNAL, bytes([signum])))
        except OSError:
            pass

    def forward(self, signum: int, frame: Any) -> None:
        self.send(signum)

    def suspend(self, signum: int, frame: Any) -> None:
        self.send(signal.SIGSTOP)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)
        # continued (`fg`, `bg`)
        signal.signal(signal.SIGTSTP, self.suspend)
        self.send(signal.SIGCONT)

    def restore(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def _exit_code(status: int) -> int:
    """The run's wait status as this process's exit: its code, or the same signal's death."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        signal.signal(signum, signal.SIG_DFL)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.kill(os.getpid(), signum)
        return 128 + signum
    return os.waitstatus_to_exitcode(status)
