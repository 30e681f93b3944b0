"""Where the commands' output goes, and when it cannot go there.

`starter.py ... | head`: when the reader of stdout goes away, the commands exit quietly with
141 (what a shell reports for a SIGPIPE-killed process) instead of a BrokenPipeError
traceback or a misleading "error: [Errno 32] Broken pipe" (a BrokenPipeError is a
ConnectionError, which the commands otherwise report as an unreachable server).
`report -o FILE` makes FILE's folder, and a FILE that cannot be written is exit 2 with a message;
`run --report FILE` likewise says so (the run itself completed: exit 0)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pee.runtime.exit import EXIT_BROKEN_PIPE
from tests.helpers import PROJECT_ROOT, starter

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
        return subprocess.run(
            [sys.executable, "starter.py", *map(str, args)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=90,
        )
    finally:
        os.close(write)


def assert_quiet(done: subprocess.CompletedProcess[str]) -> None:
    assert EXIT_BROKEN_PIPE == done.returncode, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "Broken pipe" not in done.stderr, done.stderr


def test_plan_to_a_closed_pipe_exits_quietly(cli_env: dict[str, str]) -> None:
    assert_quiet(with_closed_stdout(cli_env, "plan", "plans/seed.yaml"))


@pytest.fixture(scope="module")
def finished_run(
    cli_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    plan = tmp_path_factory.mktemp("plans") / "quick.yaml"
    plan.write_text(QUICK)
    done = subprocess.run(
        [
            sys.executable,
            "starter.py",
            "run",
            str(plan),
            "--no-learn",
            "--workflow-id",
            "quick-pipe",
        ],
        cwd=PROJECT_ROOT,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    yield "quick-pipe"


@pytest.mark.parametrize(
    "args",
    [
        ("report",),
        ("report", "--format", "text"),
        ("report", "--format", "mermaid"),
        ("report", "--bottlenecks"),
        ("status",),
        ("conflicts",),
    ],
)
def test_reading_commands_to_a_closed_pipe_exit_quietly(
    cli_env: dict[str, str], finished_run: str, args: tuple[str, ...]
) -> None:
    assert_quiet(with_closed_stdout(cli_env, args[0], finished_run, *args[1:]))


def test_run_to_a_closed_pipe_exits_quietly_and_says_the_run_goes_on(
    cli_env: dict[str, str], finished_run: str, tmp_path: Path
) -> None:
    plan = tmp_path / "quick.yaml"
    plan.write_text(QUICK)
    done = with_closed_stdout(cli_env, "run", plan, "--no-learn", "--workflow-id", "quick-gone")
    assert_quiet(done)
    assert "run quick-gone goes on on the server" in done.stderr, done.stderr


def test_report_output_makes_its_folder(
    cli_env: dict[str, str], finished_run: str, tmp_path: Path
) -> None:
    target = tmp_path / "new" / "folder" / "run.html"
    done = starter(cli_env, "report", finished_run, "--format", "html", "-o", target)
    assert 0 == done.returncode, done.stderr
    assert target.read_text().startswith("<!DOCTYPE html>")


def test_an_unwritable_report_output_is_bad_input(
    cli_env: dict[str, str], finished_run: str, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = starter(cli_env, "report", finished_run, "-o", blocker / "report.json")
    assert 2 == done.returncode, done.stderr
    assert f"error: cannot write {blocker / 'report.json'}" in done.stderr
    assert "choose another -o FILE" in done.stderr and "Traceback" not in done.stderr


def test_an_unwritable_run_report_is_said_and_exits_1_though_the_run_completed(
    cli_env: dict[str, str], finished_run: str, tmp_path: Path
) -> None:
    """The run completes, but the command could not deliver what was asked: exit 1."""
    plan = tmp_path / "quick.yaml"
    plan.write_text(QUICK)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = starter(
        cli_env,
        "run",
        plan,
        "--no-learn",
        "--workflow-id",
        "quick-unwritable",
        "--report",
        blocker / "r.json",
    )
    assert 1 == done.returncode, done.stderr
    assert "run completed" in done.stdout and "Traceback" not in done.stderr
    assert (
        f"error: cannot write the report to {blocker / 'r.json'}" in done.stderr
        and "report quick-unwritable -o FILE` writes it later" in done.stderr
    ), done.stderr


@pytest.mark.parametrize("form", ["html", "mermaid"])
def test_bottlenecks_with_a_visual_format_is_bad_input(
    cli_env: dict[str, str], finished_run: str, form: str
) -> None:
    done = starter(cli_env, "report", finished_run, "--bottlenecks", "--format", form)
    assert 2 == done.returncode, done.stdout + done.stderr
    assert f"--bottlenecks prints the analysis as text or json, not {form}" in done.stderr
    assert "" == done.stdout
