"""`starter.py ... | head`: when the reader of stdout goes away, the commands exit quietly with
141 (what a shell reports for a SIGPIPE-killed process) instead of a BrokenPipeError
traceback or a misleading "error: [Errno 32] Broken pipe" (a BrokenPipeError is a
ConnectionError, which the commands otherwise report as an unreachable server)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.exit import EXIT_BROKEN_PIPE
from tests.conftest import PROJECT_ROOT

QUICK = """\
name: quick
agents:
  a: {kind: simulate, duration: 50ms, outputs: [x]}
  b: {kind: simulate, duration: 50ms, inputs: [a.x]}
"""


def with_closed_stdout(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run starter.py with stdout a pipe whose reading end is already closed: its first write
    fails with EPIPE, as when `head` has read its lines and left."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "starter.py", *map(str, args)], cwd=PROJECT_ROOT,
                              env=env, stdout=write, stderr=subprocess.PIPE, text=True,
                              timeout=90)
    finally:
        os.close(write)


def assert_quiet(done: subprocess.CompletedProcess[str]) -> None:
    assert EXIT_BROKEN_PIPE == done.returncode, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "Broken pipe" not in done.stderr, done.stderr


def test_plan_to_a_closed_pipe_exits_quietly(cli_env: dict[str, str]) -> None:
    assert_quiet(with_closed_stdout(cli_env, "plan", "plans/seed.yaml"))


@pytest.fixture(scope="module")
def finished_run(cli_env: dict[str, str],
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    plan = tmp_path_factory.mktemp("plans") / "quick.yaml"
    plan.write_text(QUICK)
    done = subprocess.run([sys.executable, "starter.py", "run", str(plan), "--no-learn",
                           "--workflow-id", "quick-pipe"], cwd=PROJECT_ROOT, env=cli_env,
                          capture_output=True, text=True, timeout=90)
    assert 0 == done.returncode, done.stdout + done.stderr
    yield "quick-pipe"


@pytest.mark.parametrize("args", [
    ("report",), ("report", "--format", "text"), ("report", "--format", "mermaid"),
    ("report", "--bottlenecks"), ("status",), ("conflicts",),
])
def test_reading_commands_to_a_closed_pipe_exit_quietly(
        cli_env: dict[str, str], finished_run: str, args: tuple[str, ...]) -> None:
    assert_quiet(with_closed_stdout(cli_env, args[0], finished_run, *args[1:]))


def test_run_to_a_closed_pipe_exits_quietly_and_says_the_run_goes_on(
        cli_env: dict[str, str], finished_run: str, tmp_path: Path) -> None:
    plan = tmp_path / "quick.yaml"
    plan.write_text(QUICK)
    done = with_closed_stdout(cli_env, "run", plan, "--no-learn", "--workflow-id", "quick-gone")
    assert_quiet(done)
    assert "run quick-gone goes on on the server" in done.stderr, done.stderr
