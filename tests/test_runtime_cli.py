"""`starter.py run` / `status` as a user runs them: subprocesses, embedded server, exit codes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from engine.compiled import CompiledPlan, RetrySpec
from tests.conftest import PROJECT_ROOT, TemporalHarness, compiled_plan, group, sim
from workflows.plan_workflow import PlanWorkflow
from workflows.types import PlanRunInput


def write(tmp_path: Path, plan: CompiledPlan, name: str) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(plan.to_json())
    return path


def starter(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TEMPORAL_ADDRESS", "PEE_TIME_SCALE", "PEE_DEV_DB", "PEE_TASK_QUEUE")}
    return subprocess.run(
        [sys.executable, "starter.py", *map(str, args)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )


def small_plan() -> CompiledPlan:
    return compiled_plan(
        [sim("a", "g1", 0.1), sim("b", "g2", 0.1, inputs=["a.out"]),
         sim("c", "g2", 0.1, inputs=["a.out"])],
        [group("g1", ["a"]), group("g2", ["b", "c"], ["g1"])],
        name="small",
    )


def test_run_exits_zero_every_time(tmp_path: Path) -> None:
    """Three runs in a row on the embedded server (with UI) all exit 0 and print the summary."""
    plan = write(tmp_path, small_plan(), "small")
    db = tmp_path / "dev.db"
    for _ in range(3):
        done = starter("run", "--compiled-json", plan, "--dev-db", db)
        assert (done.returncode, done.stderr) == (0, "")
        assert "run succeeded" in done.stdout
        assert "Web UI http://127.0.0.1:" in done.stdout


def test_failed_run_exits_one_and_status_reads_it_back(tmp_path: Path) -> None:
    """A run whose only group fails exits 1; `status` on the same history shows the failure."""
    plan = compiled_plan(
        [sim("x", "g", 0.1, fail_times=9, retry=RetrySpec(max_attempts=1))],
        [group("g", ["x"])],
        name="doomed",
    )
    path = write(tmp_path, plan, "doomed")
    db = tmp_path / "dev.db"
    done = starter("run", "--compiled-json", path, "--dev-db", db, "--headless", "--id", "doomed-1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "run failed: group 'g' failed" in done.stdout
    status = starter("status", "doomed-1", "--dev-db", db)
    assert status.returncode == 1, status.stdout + status.stderr
    assert "doomed-1: FAILED" in status.stdout
    assert re.search(r"^x\s+g\s+failed", status.stdout, re.MULTILINE)


def test_plan_errors_exit_two(tmp_path: Path) -> None:
    """An unreadable plan exits 2 with a message, before any server starts."""
    missing = starter("run", "--compiled-json", tmp_path / "nope.json")
    assert missing.returncode == 2
    assert "plan error" in missing.stderr


def test_worker_entry_point_runs_plans_and_stops_cleanly_on_sigterm(
    temporal: TemporalHarness,
) -> None:
    """`python worker.py` serves a run started elsewhere and exits 0 on SIGTERM."""
    task_queue = f"test-{uuid.uuid4()}"
    worker = subprocess.Popen(
        [sys.executable, "worker.py", "--address", temporal.address, "--task-queue", task_queue],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert worker.stdout is not None
        assert "worker on task queue" in worker.stdout.readline()
        report = temporal.run(
            temporal.client.execute_workflow(
                PlanWorkflow.run,
                PlanRunInput(plan=small_plan()),
                id=f"worker-{uuid.uuid4()}",
                task_queue=task_queue,
            )
        )
        assert report["status"] == "succeeded"
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
