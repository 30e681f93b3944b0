"""`starter.py run|status|report|compile|server` and `worker.py` as a user runs them: separate
processes, the embedded dev server (in this module's own state dir and ports), exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from pee.runtime.devserver import find_temporal_binary, free_port, port_open
from tests.helpers import PROJECT_ROOT

# a -> (b | c) -> d, all quick
SMALL = """\
name: small
agents:
  a: {kind: simulate, duration: 100ms, outputs: [x]}
  b: {kind: simulate, duration: 200ms, inputs: [a.x], outputs: [y]}
  c: {kind: simulate, duration: 200ms, inputs: [a.x, greeting], outputs: [z]}
  d: {kind: simulate, duration: 100ms, inputs: [b.y, c.z]}
"""
# a fails every attempt, so its dependant never runs
DOOMED = """\
name: doomed
agents:
  a: {kind: simulate, duration: 100ms, outputs: [x], fail_times: always, retry: {max_attempts: 1}}
  b: {kind: simulate, duration: 100ms, inputs: [a.x]}
"""


class Cli:
    """Runs the entry points with an environment pointing at a private embedded server."""

    def __init__(self, env: dict[str, str], plans: Path) -> None:
        self.env = env
        self.plans = plans

    def plan(self, name: str, text: str) -> Path:
        path = self.plans / f"{name}.yaml"
        path.write_text(text)
        return path

    def starter(self, *args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "starter.py", *map(str, args)],
            cwd=PROJECT_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def worker(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "worker.py", *args],
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.env['PEE_DEV_PORT']}"


@pytest.fixture(scope="module")
def cli(cli_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """Entry points against the module's private embedded server (conftest's cli_env, which
    stops it at the end)."""
    return Cli(cli_env, tmp_path_factory.mktemp("plans"))


def test_run_starts_the_embedded_server_and_exits_zero_ten_times_in_a_row(cli: Cli) -> None:
    """The first run starts the embedded server (and says it stays up); every one of ten runs
    exits 0 with the summary and the Web UI link (no crash at interpreter exit)."""
    plan = cli.plan("small", SMALL)
    for attempt in range(10):
        done = cli.starter("run", plan, "--input", "greeting=hi")
        assert 0 == done.returncode, f"run {attempt}: {done.stdout}\n{done.stderr}"
        if attempt == 0:
            assert "Embedded Temporal dev server up at 127.0.0.1:" in done.stdout
            assert "server stop" in done.stdout
        assert "run completed" in done.stdout
        assert re.search(r"^d\s+d\s+succeeded", done.stdout, re.MULTILINE), done.stdout
        ui = f"http://127.0.0.1:{cli.env['PEE_UI_PORT']}/namespaces/default/workflows/small-"
        assert ui in done.stdout
    assert port_open("127.0.0.1", int(cli.env["PEE_DEV_PORT"]))
    status = cli.starter("server", "status")
    assert 0 == status.returncode and "running at 127.0.0.1:" in status.stdout


def test_report_file_has_the_documented_shape(cli: Cli, tmp_path: Path) -> None:
    """--report writes the run report: ids, status, makespan, agents and groups by id."""
    report_file = tmp_path / "out" / "report.json"
    done = cli.starter(
        "run",
        cli.plan("small", SMALL),
        "--input",
        "greeting=hi",
        "--workflow-id",
        "small-report",
        "--time-scale",
        "0.5",
        "--report",
        report_file,
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    report = json.loads(report_file.read_text())
    assert {
        "workflow_id",
        "run_id",
        "plan",
        "status",
        "makespan_s",
        "agents",
        "groups",
        "alerts",
        "critical_path",
        "parallel_efficiency",
    } <= set(report)
    assert ("small-report", "small", "completed", 0.5) == (
        report["workflow_id"],
        report["plan"],
        report["status"],
        report["time_scale"],
    )
    assert ["a", "b", "c", "d"] == list(report["agents"])
    for agent in report["agents"].values():
        assert "succeeded" == agent["status"]
        assert {"group", "started_at", "finished_at", "duration_s", "attempts"} <= set(agent)
    for group in report["groups"].values():
        assert "all_completed" == group["barrier"]["decision"]


def test_failed_run_exits_one_and_status_and_report_read_it_back(cli: Cli, tmp_path: Path) -> None:
    """A failing plan exits 1 and still writes its report; status and report exit 1 too."""
    report_file = tmp_path / "doomed.json"
    done = cli.starter(
        "run", cli.plan("doomed", DOOMED), "--workflow-id", "doomed-1", "--report", report_file
    )
    assert 1 == done.returncode, done.stdout + done.stderr
    assert "run failed" in done.stdout
    assert "failed" == json.loads(report_file.read_text())["status"]
    status = cli.starter("status", "doomed-1")
    assert 1 == status.returncode, status.stdout + status.stderr
    assert "doomed-1 (run " in status.stdout and ": failed" in status.stdout
    assert re.search(r"^a\s+a\s+failed", status.stdout, re.MULTILINE), status.stdout
    report = cli.starter("report", "doomed-1", "--format", "json")
    assert 1 == report.returncode
    assert "failed" == json.loads(report.stdout)["agents"]["a"]["status"]


def test_bad_input_exits_two(cli: Cli, tmp_path: Path) -> None:
    """Plan errors, malformed options, an unreachable --address, an unknown namespace or
    workflow id: exit 2."""
    assert 0 == cli.starter("server", "start").returncode
    bad = cli.plan("bad", "agents:\n  a: {duration: soon}\n")
    cases = [
        (("run", bad), "problem"),
        (("run", tmp_path / "missing.yaml"), "missing.yaml"),
        (("run", cli.plan("small", SMALL), "--input", "novalue"), "KEY=VALUE"),
        (("run", cli.plan("small", SMALL), "--time-scale", "0"), "above 0"),
        (
            (
                "run",
                cli.plan("small", SMALL),
                "--input",
                "greeting=hi",
                "--address",
                f"127.0.0.1:{free_port()}",
            ),
            "nothing listens",
        ),
        (
            ("run", cli.plan("small", SMALL), "--input", "greeting=hi", "--namespace", "nope"),
            "namespace 'nope' does not exist",
        ),
        (("status", "no-such-run"), "no run with workflow id 'no-such-run'"),
        # written when the run ends, which --detach does not wait for
        (
            (
                "run",
                cli.plan("small", SMALL),
                "--input",
                "greeting=hi",
                "--detach",
                "--output-dir",
                tmp_path,
            ),
            "pee outputs",
        ),
        (
            (
                "run",
                cli.plan("small", SMALL),
                "--input",
                "greeting=hi",
                "--detach",
                "--report",
                tmp_path / "r.json",
            ),
            "--report",
        ),
    ]
    for args, words in cases:
        done = cli.starter(*args)
        assert 2 == done.returncode, (args, done.stdout, done.stderr)
        assert words in done.stderr, (args, done.stderr)


def test_detached_run_is_served_by_a_worker_process(cli: Cli) -> None:
    """--detach prints the id and says a worker is needed; `pee-worker` (hinted) runs it; status
    and report follow it; the worker exits 0 on SIGTERM."""
    task_queue = f"detached-{uuid.uuid4().hex[:8]}"
    done = cli.starter(
        "run",
        cli.plan("small", SMALL),
        "--input",
        "greeting=hi",
        "--detach",
        "--task-queue",
        task_queue,
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    workflow_id = done.stdout.strip().splitlines()[-1]
    assert workflow_id.startswith("small-")
    assert f"No worker polls {task_queue}" in done.stdout and "pee-worker" in done.stdout
    worker = cli.worker("--task-queue", task_queue)
    try:
        assert worker.stdout is not None
        assert f"on task queue {task_queue}" in worker.stdout.readline()
        deadline = time.monotonic() + 30
        while True:
            status = cli.starter("status", workflow_id)
            if ": completed" in status.stdout or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert 0 == status.returncode, status.stdout + status.stderr
        assert ": completed" in status.stdout
        text = cli.starter("report", workflow_id, "--format", "text")
        assert 0 == text.returncode and "run completed" in text.stdout
        worker.terminate()
        assert 0 == worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_compiled_input_starts_a_run_with_the_temporal_cli(cli: Cli, tmp_path: Path) -> None:
    """`starter.py compile` writes JSON that `temporal workflow start --input-file` accepts; a
    worker runs it and `starter.py report` reads the result."""
    input_file = tmp_path / "run.json"
    compiled = cli.starter(
        "compile",
        cli.plan("small", SMALL),
        "--set",
        "greeting=hello",
        "--time-scale",
        "0.5",
        "-o",
        input_file,
    )
    assert 0 == compiled.returncode, compiled.stderr
    data = json.loads(input_file.read_text())
    assert {"plan", "inputs", "time_scale", "heartbeat_timeout_s", "simulate"} <= set(data)
    assert "temporal workflow start" in compiled.stderr
    assert "--type PlanWorkflow" in compiled.stderr
    task_queue = f"cli-{uuid.uuid4().hex[:8]}"
    worker = cli.worker("--task-queue", task_queue)
    try:
        started = subprocess.run(
            [
                str(find_temporal_binary()),
                "workflow",
                "start",
                "--address",
                cli.address,
                "--type",
                "PlanWorkflow",
                "--task-queue",
                task_queue,
                "--workflow-id",
                "from-cli",
                "--input-file",
                str(input_file),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert 0 == started.returncode, started.stdout + started.stderr
        result = subprocess.run(
            [
                str(find_temporal_binary()),
                "workflow",
                "result",
                "--address",
                cli.address,
                "--workflow-id",
                "from-cli",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert 0 == result.returncode, result.stdout + result.stderr
        report = cli.starter("report", "from-cli")
        assert 0 == report.returncode, report.stderr
        data = json.loads(report.stdout)
        assert ("completed", 0.5) == (data["status"], data["time_scale"])
    finally:
        worker.terminate()
        worker.wait(timeout=30)
