"""`pee run` compiles its plan in a forked child while it imports the Temporal SDK
(pee.cli.compile_ahead): the parent gets the very plan an in-process compile gives, the child
prints what compiling prints, and a plan error or a crash ends the command as before."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
from pathlib import Path

from pee.cli import compile_ahead
from pee.cli.main import build_parser
from pee.cli.plan_input import compile_from_args
from tests.helpers import PROJECT_ROOT

GOOD = """\
name: ahead
agents:
  first: {outputs: [x], estimated_duration: 2m}
  second: {inputs: [first.x], outputs: [y]}
"""


def run_args(plan: Path, *extra: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", str(plan), "--no-learn", *extra])


SAME = """
import sys
from pee.cli import compile_ahead
from pee.cli.main import build_parser
from pee.cli.plan_input import compile_from_args
args = build_parser().parse_args(["run", sys.argv[1], "--no-learn"])
ahead = compile_ahead.start(args)
forked = ahead.pid is not None
print(forked, ahead.result() == compile_from_args(args))
"""


def test_the_child_hands_back_the_plan_an_in_process_compile_gives(tmp_path: Path) -> None:
    """In a process of its own: a test runner's threads would make it compile in process."""
    plan = tmp_path / "ahead.yaml"
    plan.write_text(GOOD)
    done = subprocess.run(
        [sys.executable, "-c", SAME, str(plan)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
    )
    assert "True True" == done.stdout.strip(), done.stderr


def test_with_another_thread_running_it_compiles_in_process(tmp_path: Path) -> None:
    plan = tmp_path / "ahead.yaml"
    plan.write_text(GOOD)
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        ahead = compile_ahead.start(run_args(plan))
    finally:
        release.set()
        other.join()
    assert ahead.pid is None
    assert compile_from_args(run_args(plan)) == ahead.result()


PROBE = """
import sys
from pee.cli import compile_ahead
from pee.cli.main import build_parser
args = build_parser().parse_args(["run", sys.argv[1], "--no-learn"])
try:
    plan = compile_ahead.start(args).result()
except compile_ahead.CompileCrashed as err:
    print("crashed:", err)
else:
    print("plan:", None if plan is None else plan.name)
sys.stdout.flush()
"""


def probe(plan: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE, str(plan)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
    )


def test_a_plan_error_is_printed_once_by_the_child_and_gives_no_plan(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("agents:\n  a:\n    kind: command\n    comand: [true]\n")
    done = probe(bad)
    assert done.returncode == 0, done.stderr
    assert "plan: None" == done.stdout.strip()
    assert 1 == done.stderr.count("unknown key 'comand'")
    assert "bad.yaml:4" in done.stderr


def test_what_compiling_prints_comes_before_what_the_parent_prints(tmp_path: Path) -> None:
    """A BMAD workflow's interpretation goes to stdout from the child, ahead of the parent's
    next line, and nothing buffered before the fork is written twice."""
    done = probe(PROJECT_ROOT / "plans" / "bmad-greenfield.yaml")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1].startswith("plan: ")
    assert any("interpretation" in line for line in lines[:-1])


def test_a_crash_of_the_compiler_is_shown_and_reported(tmp_path: Path) -> None:
    """Not a plan error but a bug in the compiler (stood in for by one that raises): the
    child prints the traceback, the parent gets CompileCrashed."""
    script = PROBE.replace(
        "from pee.cli import compile_ahead",
        "from pee.cli import compile_ahead\n"
        "import pee.cli.compile_ahead as module\n"
        "def broken(args):\n"
        "    raise RuntimeError('compiler bug')\n"
        "module.compile_from_args = broken",
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "any.yaml")],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("crashed:")
    assert "RuntimeError: compiler bug" in done.stderr


def test_pee_run_of_an_invalid_plan_exits_two_without_a_server(tmp_path: Path) -> None:
    """The plan is judged before anything with a side effect: no embedded server is started
    for a plan that cannot run."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("agents:\n  a: {duration: soon}\n")
    state = tmp_path / "state"
    done = subprocess.run(
        [str(Path(sys.executable).parent / "pee"), "run", str(bad)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={
            **{k: v for k, v in os.environ.items() if k != "TEMPORAL_ADDRESS"},
            "PEE_STATE_DIR": str(state),
            "PEE_DEV_PORT": "1",
        },
        timeout=120,
    )
    assert 2 == done.returncode, (done.stdout, done.stderr)
    assert "problem" in done.stderr
    assert "starting the embedded dev server" not in done.stdout
    assert not (state / "server.json").exists()


RUN = """
import sys
import pee.cli.compile_ahead as module
from pee.cli.main import main
{patch}
sys.exit(main(["run", sys.argv[1], "--no-learn"]))
"""
# a child that dies (killed, out of memory) before or while it answers
KILLED = """
import os, signal
def killed(args):
    os.kill(os.getpid(), signal.SIGKILL)
module.compile_from_args = killed
"""
CUT_SHORT = """
import os, pickle
def cut_short(args, write_fd):
    answer = pickle.dumps(("plan", list(range(1000))))
    os.write(write_fd, answer[: len(answer) // 2])
    os._exit(0)
module._compile_and_answer = cut_short
"""


def test_a_compiler_child_that_dies_ends_pee_run_with_exit_one_and_says_so(
    tmp_path: Path,
) -> None:
    """Killed before it answers, or part-way through its answer: `pee run` says the compiler
    ended without a plan (no traceback of its own) and exits 1, starting no server."""
    plan = tmp_path / "ahead.yaml"
    plan.write_text(GOOD)
    env = {
        **{k: v for k, v in os.environ.items() if k != "TEMPORAL_ADDRESS"},
        "PEE_STATE_DIR": str(tmp_path / "state"),
        "PEE_DEV_PORT": "1",
    }
    for patch, why in ((KILLED, "signal 9"), (CUT_SHORT, "part of its answer")):
        done = subprocess.run(
            [sys.executable, "-c", RUN.format(patch=patch), str(plan)],
            capture_output=True,
            text=True,
            cwd=PROJECT_ROOT,
            env=env,
            timeout=120,
        )
        assert 1 == done.returncode, (done.stdout, done.stderr)
        assert "error: the plan's compiler" in done.stderr, done.stderr
        assert why in done.stderr, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        assert not (tmp_path / "state" / "server.json").exists()


def test_an_interrupt_that_reaches_only_the_compiler_ends_pee_run_as_interrupted(
    tmp_path: Path,
) -> None:
    """A SIGINT sent to the compiling child alone (not the whole process group): `pee run`
    ends as on Ctrl-C, saying "interrupted" with exit 130, not as a plan error with no word."""
    plan = tmp_path / "ahead.yaml"
    plan.write_text(GOOD)
    script = """
import sys
import pee.cli.compile_ahead as module
from pee.cli.main import entry
def interrupted(args):
    raise KeyboardInterrupt
module.compile_from_args = interrupted
sys.argv = ["pee", "run", sys.argv[1], "--no-learn"]
entry()
"""
    env = {
        **{k: v for k, v in os.environ.items() if k != "TEMPORAL_ADDRESS"},
        "PEE_STATE_DIR": str(tmp_path / "state"),
        "PEE_DEV_PORT": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", script, str(plan)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=120,
    )
    assert 130 == done.returncode, (done.stdout, done.stderr)
    assert "interrupted" in done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "state" / "server.json").exists()
