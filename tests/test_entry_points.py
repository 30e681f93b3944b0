"""The commands a user types: the `pee` and `pee-worker` console scripts the project installs
(starter.py and worker.py stay as shims), the hints they print run verbatim, no user-facing
text names `python starter.py`, and a worker SIGTERMed right after its ready line exits 0."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.helpers import PROJECT_ROOT, TemporalHarness

BIN = Path(sys.executable).parent
PEE = BIN / "pee"
PEE_WORKER = BIN / "pee-worker"


def shell_env() -> dict[str, str]:
    """A shell whose PATH has the venv's bin first (an activated venv), no TEMPORAL_* steering."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(*args: str | Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=PROJECT_ROOT,
        env=shell_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_pee_is_installed_with_the_same_commands_as_starter_py() -> None:
    """`pee --help` and `pee validate plans/seed.yaml` work from the installed script and say
    the same as `python starter.py`; `pee-worker --help` is worker.py's."""
    assert PEE.exists() and PEE_WORKER.exists()
    helped = run(PEE, "--help")
    assert 0 == helped.returncode, helped.stderr
    assert helped.stdout.startswith("usage: pee ")
    for command in ("validate", "run", "status", "report", "conflicts", "resolve"):
        assert command in helped.stdout
    validated = run(PEE, "validate", "plans/seed.yaml")
    shim = run(sys.executable, "starter.py", "validate", "plans/seed.yaml")
    assert (0, 0) == (validated.returncode, shim.returncode), validated.stderr + shim.stderr
    assert "valid plan 'seed'" in validated.stdout
    assert validated.stdout == shim.stdout
    worker_help = run(PEE_WORKER, "--help")
    assert 0 == worker_help.returncode, worker_help.stderr
    assert worker_help.stdout.startswith("usage: pee-worker ")


def test_printed_hints_name_pee_and_run_verbatim(temporal: TemporalHarness) -> None:
    """`pee run --detach` with no worker hints `pee-worker ...` and `pee status ...`; the worker
    line, typed as printed, serves the run, and the status line then reports it completed."""
    task_queue = f"hints-{uuid.uuid4().hex[:8]}"
    started = run(
        PEE,
        "run",
        "plans/demo.yaml",
        "--time-scale",
        "0.01",
        "--detach",
        "--address",
        temporal.address,
        "--task-queue",
        task_queue,
    )
    assert 0 == started.returncode, started.stdout + started.stderr
    assert "python starter.py" not in started.stdout
    (worker_line,) = [
        line.strip()
        for line in started.stdout.splitlines()
        if line.strip().startswith("pee-worker ")
    ]
    (status_line,) = re.findall(r"Follow it: (pee status .+)", started.stdout)
    # split as a shell would, and run without one: the SIGTERM below reaches the worker itself
    worker = subprocess.Popen(
        shlex.split(worker_line),
        cwd=PROJECT_ROOT,
        env=shell_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline:
            status = subprocess.run(
                shlex.split(status_line),
                cwd=PROJECT_ROOT,
                env=shell_env(),
                capture_output=True,
                text=True,
                timeout=60,
            )
            if ": completed" in status.stdout:
                break
            time.sleep(0.5)
        assert status is not None and ": completed" in status.stdout, status
        assert 0 == status.returncode, status.stderr
    finally:
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=60)
    assert 0 == worker.returncode, out


def test_no_user_facing_text_names_python_starter_py() -> None:
    """Hints and messages in the packages say `pee`/`pee-worker`: `python starter.py` and
    `python worker.py` fail under a plain `python` without the project's environment."""
    found = []
    for package in ("cli", "runtime", "engine", "workflows", "activities"):
        for path in sorted((PROJECT_ROOT / "src" / "pee" / package).rglob("*.py")):
            text = path.read_text()
            for pattern in ("python starter.py", "python worker.py"):
                if pattern in text:
                    found.append(f"{path.relative_to(PROJECT_ROOT)}: {pattern}")
    assert [] == found


def test_worker_sigterm_right_after_its_ready_line_exits_0(temporal: TemporalHarness) -> None:
    """The worker installs its SIGTERM/SIGINT handlers before it prints its ready line: a
    SIGTERM sent the moment the line appears shuts it down cleanly (exit 0), every time."""
    for attempt in range(3):
        worker = subprocess.Popen(
            [
                str(PEE_WORKER),
                "--address",
                temporal.address,
                "--task-queue",
                f"sigterm-{attempt}-{uuid.uuid4().hex[:6]}",
            ],
            cwd=PROJECT_ROOT,
            env=shell_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert worker.stdout is not None
        lines = []
        try:
            while not lines or "Ctrl-C stops" not in lines[-1]:
                line = worker.stdout.readline()
                assert line, "".join(lines)
                lines.append(line)
        finally:
            worker.send_signal(signal.SIGTERM)
            out, _ = worker.communicate(timeout=60)
        assert 0 == worker.returncode, "".join(lines) + out
        assert "worker stopped" in out
