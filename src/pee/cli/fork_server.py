"""The fork server ("zygote") beside the embedded dev server: `pee run` without its imports.

Most of a warm `pee run`'s time before its first agent is Python importing the Temporal SDK,
the plan language and the engine. This process imports all of that once, then waits on a Unix
socket in the state directory (owner-only). A `pee run` (pee.cli.launch) sends it its argv,
environment, umask, signal dispositions and standard streams and cwd (as descriptors); it forks
a relay, which forks the run. The run takes on everything the client sent and runs the ordinary
`pee` main, so it behaves as the same command run in-process from that shell would; the relay
forwards the client's signals to it, interrupts it if the client dies, and sends its wait
status back for the client to exit with.

Started and stopped with the embedded server (pee.runtime.fork_server_control); it also ends
by itself when the dev server it was started for is gone. It keeps nothing about a run: the
request lives in the relay and the run, never on disk. It is single-threaded, and nothing it
imports starts a thread or the SDK's Rust runtime (each run creates its own after the fork).

    python -P -m pee.cli.fork_server --state-dir DIR --watch PID
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import locale
import os
import resource
import selectors
import signal
import socket
import sys
import time
from typing import Any, NoReturn

from pee.runtime import fork_protocol as proto

# what `pee run` imports before its first agent (and its worker lazily after): imported here
# once, so a run imports nothing it needs (tests/test_fork_server.py checks a run's modules)
PRELOAD = (
    "pee.cli.main",
    "pee.cli.compile_ahead",
    "pee.cli.plan_input",
    "pee.cli.plan_commands",
    "pee.engine.compile.load",
    "pee.engine.compile.graph",
    "pee.engine.compile.learning",
    "pee.engine.gc_pause",
    "pee.engine.rules.time_limits",
    "pee.runtime.runner",
    "pee.runtime.worker",
    "pee.runtime.duration_store",
    "pee.runtime.temporal_cli",
    "pee.workflows.types",
    "pee.activities.command",
    "pee.activities.agents",
    "temporalio.client",
    "temporalio.worker",
    "temporalio.worker.workflow_sandbox._in_sandbox",
    "pee.runtime.exit",
    # what the first agent's activity and the event loop's executor load on first use
    "psutil",
    "concurrent.futures.thread",
    "encodings.idna",
)
# signals the relay passes on to the run (the client forwards them to the relay)
FORWARDED = frozenset(proto.CLIENT_SIGNALS) | {signal.SIGSTOP, signal.SIGCONT}
# what ends this server (and, in the relay, what it passes on)
STOPPING = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# a client that connected but sends nothing (or does not answer) is dropped after this
REQUEST_TIMEOUT_S = 10.0
# after the client died: the run gets SIGINT (Ctrl-C), then SIGTERM, then SIGKILL
ESCALATE_AFTER_S = (15.0, 30.0)


class Stop(Exception):
    """SIGTERM, SIGINT or SIGHUP reached the server."""


def preload() -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    from pee.runtime.build_id import build_id

    # hashed files the key already stands for (it was taken before these imports)
    build_id()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -P -m pee.cli.fork_server")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--watch", type=int, required=True, help="the dev server's pid")
    parser.add_argument(
        "--after-port", type=int, help="import once the dev server listens on this local port"
    )
    args = parser.parse_args(argv)
    # before the imports: a file edited while they run makes this key stale, never wrong
    key = proto.key()

    def stop(signum: int, frame: Any) -> None:
        raise Stop

    for signum in STOPPING:
        signal.signal(signum, stop)
    try:
        if args.after_port:
            # a `pee run` that started the server goes on in-process: these imports would
            # take a core from the dev server's start it waits for
            wait_for_port(args.after_port, args.watch)
        preload()
        # relays are not waited for: the kernel reaps them
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        # what the imports allocated stays out of every run's collections (and its pages
        # shared with the server's: a collection would touch, and so copy, them)
        gc.freeze()
        server = Server(args.state_dir, args.watch, key)
        server.serve()
    except Stop:
        pass
    return 0


def wait_for_port(port: int, watch: int) -> None:
    while _alive(watch):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1.0):
            return
        time.sleep(0.05)
    raise Stop


class Server:
    def __init__(self, state: str, watch: int, key: tuple[Any, ...]) -> None:
        self.key = key
        self.path = proto.socket_file(state)
        self.pid = os.getpid()
        self.selector = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.watched = watch
        # readable when the dev server exits; without pidfds (before Linux 5.3) it is polled
        self.watched_fd: int | None = None
        try:
            self.watched_fd = os.pidfd_open(watch)
        except ProcessLookupError:
            raise Stop from None
        except (AttributeError, OSError):
            pass
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        # owner-only from the start: no moment where another user could connect
        old_umask = os.umask(0o177)
        try:
            with proto.SocketAddress(self.path) as address:
                self.listener.bind(address)
        finally:
            os.umask(old_umask)
        self.inode = os.stat(self.path).st_ino
        self.listener.listen(16)

    def serve(self) -> None:
        self.selector.register(self.listener, selectors.EVENT_READ)
        if self.watched_fd is not None:
            self.selector.register(self.watched_fd, selectors.EVENT_READ)
        try:
            while True:
                events = self.selector.select(None if self.watched_fd is not None else 1.0)
                if self.watched_fd is None and not _alive(self.watched):
                    return
                for selected, _mask in events:
                    if selected.fileobj is self.listener:
                        self.accept()
                    else:
                        return  # the dev server is gone
        finally:
            self.close()

    def close(self) -> None:
        if os.getpid() != self.pid:
            return
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self.inode:
                os.unlink(self.path)
        self.listener.close()

    def accept(self) -> None:
        try:
            conn, _address = self.listener.accept()
        except OSError:
            return
        fds: list[int] = []
        try:
            conn.settimeout(REQUEST_TIMEOUT_S)
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            if int.from_bytes(creds[4:8], sys.byteorder) != os.getuid():
                return  # the socket is owner-only; a root client is still no one to serve
            reader = proto.Reader(conn)
            message = reader.next(max_fds=len(proto.STD_FDS) + 1)
            fds = reader.fds
            if message is None:
                return
            tag, payload = message
            if tag == proto.REQUEST_KEY:
                conn.sendall(proto.frame(proto.REQUEST_KEY, proto.pack(self.key)))
                return
            if tag != proto.REQUEST_RUN:
                return
            request = proto.unpack(payload)
            why = self.refusal(request, fds)
            if why:
                conn.sendall(proto.frame(proto.REFUSED, why.encode()))
                return
            self.fork_relay(conn, reader, request, fds)
        except (OSError, ValueError, EOFError, TypeError, KeyError):
            return  # a client gone or confused: it runs in-process
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            conn.close()

    def refusal(self, request: dict[str, Any], fds: list[int]) -> str | None:
        """Why this request is run in-process instead (None: it can be served here)."""
        if request.get("key") != self.key:
            return "stale"  # another interpreter, settings or source: `pee server start` renews
        if len(fds) != len(proto.STD_FDS) + 1:
            return "descriptors missing"
        root = os.geteuid() == 0
        if request["nice"] < os.nice(0) and not root:
            return "a lower nice value than the server's"
        for stream, settings in zip(_std_streams(), request["streams"], strict=True):
            if (stream.encoding, stream.errors) != tuple(settings[:2]):
                return "another encoding of stdin, stdout or stderr"
        for name, (_soft, hard) in request["rlimits"].items():
            own_hard = resource.getrlimit(getattr(resource, name))[1]
            if not root and _above(hard, own_hard):
                return f"{name} above the server's"
        return None

    def fork_relay(
        self, conn: socket.socket, reader: proto.Reader, request: dict[str, Any], fds: list[int]
    ) -> None:
        # no signal handled between the fork and the relay's own handlers (ours would stop the
        # server from inside the relay)
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, set(STOPPING) | FORWARDED)
        try:
            pid = os.fork()
        except OSError:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            conn.sendall(proto.frame(proto.REFUSED, b"fork failed"))
            return
        if pid == 0:
            try:
                self.selector.close()
                self.listener.close()
                if self.watched_fd is not None:
                    os.close(self.watched_fd)
                Relay(conn, reader, request, fds).run()
            finally:
                os._exit(1)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


class Relay:
    """Between the client and its run: forwards signals, reports the run's wait status."""

    def __init__(
        self, conn: socket.socket, reader: proto.Reader, request: dict[str, Any], fds: list[int]
    ) -> None:
        self.conn = conn
        self.reader = reader
        self.request = request
        self.fds = fds
        self.child = 0

    def run(self) -> NoReturn:
        # its own session, so nothing sent to the server's process group reaches the run
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for signum in STOPPING:
            signal.signal(signum, self.pass_on)
        self.conn.settimeout(REQUEST_TIMEOUT_S)
        self.conn.sendall(proto.frame(proto.STARTED))
        # the client says go (or gave up and ran in-process: then nothing runs here)
        answer = self.reader.next()
        if answer is None or answer[0] != proto.GO:
            os._exit(0)
        self.conn.settimeout(None)
        self.child = os.fork()
        if self.child == 0:
            self.conn.close()
            become_run(self.request, self.fds)
        for fd in self.fds:
            os.close(fd)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        status = self.wait()
        with contextlib.suppress(OSError):
            self.conn.sendall(proto.frame(proto.EXITED, status.to_bytes(4, "big")))
        os._exit(0)

    def pass_on(self, signum: int, frame: Any) -> None:
        if self.child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.child, signum)

    def pass_signals(self) -> None:
        while (message := self.reader.take()) is not None:
            if message[0] == proto.SIGNAL and message[1] and message[1][0] in FORWARDED:
                self.pass_on(message[1][0], None)

    def wait(self) -> int:
        """The run's wait status; meanwhile signals from the client are passed on."""
        selector = selectors.DefaultSelector()
        selector.register(self.conn, selectors.EVENT_READ)
        pidfd = None
        with contextlib.suppress(AttributeError, OSError):
            pidfd = os.pidfd_open(self.child)
            selector.register(pidfd, selectors.EVENT_READ)
        client_gone_at: float | None = None
        escalation = list(zip(ESCALATE_AFTER_S, (signal.SIGTERM, signal.SIGKILL), strict=True))
        # signals that came with the go (the client holds them until it has sent it)
        self.pass_signals()
        while True:
            timeout = None if pidfd is not None else 0.1
            if client_gone_at is not None:
                timeout = 1.0
            for selected, _mask in selector.select(timeout):
                if selected.fileobj is not self.conn:
                    continue
                try:
                    more = self.reader.fill()
                except OSError:
                    more = False
                self.pass_signals()
                if not more:
                    # the client died (killed, its terminal closed): as on Ctrl-C
                    selector.unregister(self.conn)
                    client_gone_at = time.monotonic()
                    self.pass_on(signal.SIGINT, None)
            done, status = os.waitpid(self.child, os.WNOHANG)
            if done == self.child:
                return status
            if client_gone_at is not None and escalation:
                after_s, signum = escalation[0]
                if time.monotonic() - client_gone_at > after_s:
                    escalation.pop(0)
                    self.pass_on(signum, None)


def become_run(request: dict[str, Any], fds: list[int]) -> NoReturn:
    """In the run's process: take on the client's state, then run `pee` as it would have."""
    from pee.runtime.exit import run_entry

    stdin, stdout, stderr, cwd = fds
    for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
        os.dup2(fd, target)
    for fd in (stdin, stdout, stderr):
        if fd > 2:
            os.close(fd)

    def setup_and_main() -> int:
        # in run_entry: a failure here is shown on the client's stderr, Ctrl-C is exit 130
        take_on(request, cwd)
        from pee.cli.main import main as pee_main

        return pee_main()

    run_entry(setup_and_main)


# modules that keep the cwd they were imported in (tests/test_fork_server.py records them)
CWD_AT_IMPORT = {"multiprocessing.process": "ORIGINAL_DIR"}


def take_on(request: dict[str, Any], cwd: int) -> None:
    os.fchdir(cwd)
    os.close(cwd)
    for name, attribute in CWD_AT_IMPORT.items():
        if name in sys.modules:
            setattr(sys.modules[name], attribute, os.path.abspath(os.getcwd()))
    os.environ.clear()
    os.environb.update(request["env"])
    # what the interpreter reads from the environment at its start
    time.tzset()
    with contextlib.suppress(locale.Error):
        locale.setlocale(locale.LC_CTYPE, "")
    if "tempfile" in sys.modules:
        import tempfile

        tempfile.tempdir = None  # read from TMPDIR on its first use
    os.umask(request["umask"])
    for name, limits in request["rlimits"].items():
        with contextlib.suppress(OSError, ValueError):
            if resource.getrlimit(getattr(resource, name)) != tuple(limits):
                resource.setrlimit(getattr(resource, name), tuple(limits))
    if request["nice"] != os.nice(0):
        with contextlib.suppress(OSError):
            os.nice(request["nice"] - os.nice(0))
    if request["affinity"]:
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setaffinity(0, request["affinity"])
    sys.argv = list(request["argv"])
    sys.path[:] = request["path"]
    for stream, settings in zip(_std_streams(), request["streams"], strict=True):
        # line-buffered for a terminal (and write-through with -u), as the client's: its
        # encoding is this process's already (refusal() checked), and changing it would make
        # the stream seek, which a pipe cannot
        _encoding, _errors, line_buffering, write_through = settings
        stream.reconfigure(line_buffering=line_buffering, write_through=write_through)
    for signum in signal.valid_signals():
        if signum in (signal.SIGKILL, signal.SIGSTOP):
            continue
        handler = request["signals"].get(int(signum), 1)
        with contextlib.suppress(OSError, ValueError):
            signal.signal(signum, _handler(handler))
    # the signals passed on while this process set up arrive now, handled as the client would
    signal.pthread_sigmask(signal.SIG_SETMASK, set(request["sigmask"]))


def _std_streams() -> tuple[Any, Any, Any]:
    return sys.stdin, sys.stdout, sys.stderr


def _handler(code: int) -> Any:
    return {0: signal.SIG_IGN, 1: signal.SIG_DFL, 2: signal.default_int_handler}[code]


def _above(limit: int, other: int) -> bool:
    infinity = resource.RLIM_INFINITY
    if limit == other:
        return False
    return other != infinity and (limit == infinity or limit > other)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


if __name__ == "__main__":
    main()
    sys.exit(0)
