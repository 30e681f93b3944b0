"""The embedded dev server: started by `pee run` when nothing listens at the local default
address, and left running afterwards so the run's history stays browsable in the Web UI.

State lives in state_dir() (.temporal/ or PEE_STATE_DIR): dev.db (SQLite history, kept across
restarts), server.log, and server.json (pid, ports) which `pee server stop|status` read.
Ports: PEE_DEV_PORT (7233) and PEE_UI_PORT (8233), bound to 127.0.0.1 only. With the Web UI, a
codec server comes along (src/pee/runtime/embedded_codec.py: PEE_CODEC_PORT, 8234) so the UI shows
lz4-compressed payloads decoded; it is stopped with the server, and a start after the server
died stops the one it left. temporal.toml (src/pee/runtime/temporal_cli.py) lets the `temporal` CLI
reach both. A fork server (src/pee/runtime/fork_server_control.py) starts and stops with it:
`pee run` forks its runs from that process instead of importing everything itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from pee.paths import state_dir
from pee.runtime import fork_server_control
from pee.runtime.connection_flags import LOCAL_HOSTS, dev_port, port_setting, split_address
from pee.runtime.devserver import (
    port_open,
    server_command,
    spawn,
    wait_until_ready,
)
from pee.runtime.embedded_codec import (
    is_codec_server,
    new_token,
    spawn_codec_server,
    wait_codec_server,
)
from pee.runtime.temporal_cli import connection_flags, remove_config, write_config

IP = "127.0.0.1"
# detached servers started by this process: kept referenced so no "still running" warning fires
_DETACHED: list[object] = []


def ui_port() -> int:
    return port_setting("PEE_UI_PORT", dev_port() + 1000)


class ServerError(RuntimeError):
    """The embedded server could not be started or stopped; the message says why."""


@dataclass
class ServerRecord:
    pid: int
    ip: str
    port: int
    ui_port: int | None
    db_file: str
    log_file: str
    started_at: str
    # the codec server the Web UI decodes payloads with (None: headless, or an older record)
    codec_pid: int | None = None
    codec_port: int | None = None
    # the codec server's token, the last segment of its endpoint (None: none required)
    codec_token: str | None = None

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def codec_url(self) -> str | None:
        """The endpoint the Web UI and the CLI are given: the token is its path."""
        if not self.codec_port:
            return None
        return f"http://{self.ip}:{self.codec_port}" + (
            f"/{self.codec_token}" if self.codec_token else ""
        )

    @property
    def codec_address(self) -> str | None:
        """Where it listens, without the token (for messages)."""
        return f"http://{self.ip}:{self.codec_port}" if self.codec_port else None

    @property
    def ui_url(self) -> str | None:
        return f"http://{self.ip}:{self.ui_port}" if self.ui_port else None


def record_file() -> Path:
    return state_dir() / "server.json"


def read_record() -> ServerRecord | None:
    try:
        return ServerRecord(**json.loads(record_file().read_text()))
    except (OSError, ValueError, TypeError):
        return None


def process_alive(pid: int) -> bool:
    # our own child (a test that started the server in-process) must be reaped to look dead
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError, IndexError):
        # a zombie nobody has reaped yet is gone for our purposes
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def is_dev_server(pid: int) -> bool:
    """Guard against a recycled pid: on Linux, check the command line is a dev server."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        return b"start-dev" in cmdline.read_bytes()
    except OSError:
        return sys.platform != "linux"


def running_record() -> ServerRecord | None:
    """The recorded server if its process is alive and its frontend accepts connections."""
    record = read_record()
    if record and process_alive(record.pid) and port_open(record.ip, record.port):
        return record
    return None


def flags_for(address: str, namespace: str | None = None) -> str:
    """connection_flags for a server known only by its address: the embedded server's config
    file when that is where it runs (here, not in temporal_cli.py: it asks whether the embedded
    server is the one at that address)."""
    record = running_record()
    try:
        host, port = split_address(address)
    except ValueError:
        record = None
    else:
        if record is not None and (host not in LOCAL_HOSTS or port != record.port):
            record = None
    return connection_flags(address, namespace, record)


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """Serialise start/stop between concurrent commands (POSIX advisory lock)."""
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no lock, a racing start fails on the busy port instead
        yield
        return
    with open(directory / "server.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def start_server(*, ui: bool = True, startup_timeout_s: float = 30.0) -> tuple[ServerRecord, bool]:
    """Start the detached server unless it already runs: (record, started_now)."""
    with _locked():
        record = running_record()
        if record:
            write_config(record)  # a record from before temporal.toml existed, or deleted
            _renew_fork_server(record.pid, record.port)
            return record, False
        stop_stale(read_record())
        # one a dead server left (it ends by itself when its server is gone)
        _stop_fork_server()
        port = dev_port()
        ports = [port] + ([ui_port()] if ui else [])
        busy = [p for p in ports if port_open(IP, p)]
        if busy:
            raise ServerError(
                f"port {busy[0]} on {IP} is in use by another program; stop it, or choose other "
                "ports with PEE_DEV_PORT / PEE_UI_PORT"
            )
        directory = state_dir()
        db_file, log_file = directory / "dev.db", directory / "server.log"
        codec = codec_pid = codec_port = codec_token = None
        if ui:
            # started beside the dev server, not before it: the dev server needs only its
            # address, and each takes a moment to come up
            codec_token = new_token()
            codec, codec_port = spawn_codec_server(IP, f"http://{IP}:{ui_port()}", codec_token)
            _DETACHED.append(codec)
            codec_pid = codec.pid
        cmd = server_command(
            db_file,
            ip=IP,
            port=port,
            ui_port=ui_port() if ui else None,
            codec_endpoint=f"http://{IP}:{codec_port}/{codec_token}" if codec_port else None,
        )
        try:
            with open(log_file, "ab") as log:
                process = spawn(cmd, log)
        except BaseException:
            # no record will name the codec server: it goes too
            if codec_pid is not None:
                _terminate(codec_pid)
            raise
        _DETACHED.append(process)
        # imports while the dev server comes up; `pee run` uses it once it listens
        _renew_fork_server(process.pid, port)
        try:
            wait_until_ready(process, IP, ports, startup_timeout_s, log_file)
        except (RuntimeError, TimeoutError) as err:
            _terminate(process.pid)
            if codec_pid is not None:
                _terminate(codec_pid)
            _stop_fork_server()
            raise ServerError(str(err)) from err
        if codec is not None and codec_port is not None:
            try:
                wait_codec_server(codec, IP, codec_port)
            except (RuntimeError, TimeoutError) as err:
                _terminate(process.pid)
                _stop_fork_server()
                raise ServerError(f"the codec server for the Web UI did not start: {err}") from err
        record = ServerRecord(
            pid=process.pid,
            ip=IP,
            port=port,
            ui_port=ui_port() if ui else None,
            db_file=str(db_file),
            log_file=str(log_file),
            started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            codec_pid=codec_pid,
            codec_port=codec_port,
            codec_token=codec_token,
        )
        # owner-only: it holds the codec server's token
        record_file().unlink(missing_ok=True)
        fd = os.open(record_file(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(asdict(record), indent=2) + "\n")
        write_config(record)
        return record, True


def stop_stale(record: ServerRecord | None, timeout_s: float = 15.0) -> None:
    """Before a start: stop what an earlier record left running while its dev server is gone
    (the dev server SIGKILLed or crashed: nobody ran `server stop`), its codec server above
    all, which would otherwise hold its port and token forever."""
    if record is None or (process_alive(record.pid) and is_dev_server(record.pid)):
        return
    if (
        record.codec_pid
        and process_alive(record.codec_pid)
        and is_codec_server(record.codec_pid, record.codec_port)
    ):
        _terminate(record.codec_pid, timeout_s)
    remove_config()


def stop_server(timeout_s: float = 15.0) -> ServerRecord | None:
    """Stop the recorded server (SIGTERM, then SIGKILL); None when none was running."""
    with _locked():
        record = read_record()
        # the fork server first: it ends by itself once the dev server is gone, and one caught
        # mid-exit (its command line already empty) would be left to finish after we return
        try:
            fork_server_control.stop(timeout_s)
        except fork_server_control.ForkServerError as err:
            raise ServerError(str(err)) from err
        stopped = None
        if record and process_alive(record.pid) and is_dev_server(record.pid):
            _terminate(record.pid, timeout_s)
            stopped = record
        if (
            record
            and record.codec_pid
            and process_alive(record.codec_pid)
            and is_codec_server(record.codec_pid, record.codec_port)
        ):
            _terminate(record.codec_pid, timeout_s)
        with contextlib.suppress(FileNotFoundError):
            record_file().unlink()
        remove_config()
        return stopped


def _renew_fork_server(server_pid: int, port: int) -> None:
    """The fork server only speeds `pee run` up: not starting it fails no server start."""
    with contextlib.suppress(OSError, fork_server_control.ForkServerError):
        fork_server_control.renew(server_pid, port)


def _stop_fork_server() -> None:
    with contextlib.suppress(OSError, fork_server_control.ForkServerError):
        fork_server_control.stop()


def _terminate(pid: int, timeout_s: float = 15.0) -> None:
    for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not process_alive(pid):
                return
            time.sleep(0.1)
    raise ServerError(f"process {pid} (dev or codec server) did not stop")
