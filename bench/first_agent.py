"""Time to first agent: from typing `pee run PLAN` to the plan's one agent starting.

The plan's agent is a `command` agent that writes the time it starts to a file; the bench
notes the time just before it starts `pee run` as a child process, and the difference is the
time to first agent (the wait for the run to finish is not counted). Two cases:

- cold: no server yet, so `pee run` starts the embedded dev server (with its Web UI and codec
  server, and the fork server, which imports beside the run once the server listens) first, as
  on a fresh machine; once more with PEE_NO_FORK_SERVER=1 on a server of its own (no fork
  server started), for what the fork server's start costs a cold run;
- warm: the server `cold` left is already up, and the fork server started beside it
  (pee.cli.fork_server) has imported what `pee run` needs: `pee run` forks its run from there;
  each warm run is paired with one in-process (PEE_NO_FORK_SERVER=1), run right after it.

Each is measured without a bytecode cache for the project's own modules (PYTHONDONTWRITEBYTECODE,
as in this environment: pip precompiled the installed packages, but the editable install's
src/pee is compiled from source by every command) and with one (as on a user's machine: the
first runs write the cache, the measured ones read it). The embedded server lives in a
temporary state directory on free ports (PEE_STATE_DIR, PEE_DEV_PORT, PEE_UI_PORT,
PEE_CODEC_PORT) and is stopped at the end.

    .venv/bin/python bench/first_agent.py [--warm-runs 5] [--floor-runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from pee.runtime.devserver import free_port  # noqa: E402

PEE = Path(sys.executable).parent / "pee"
WARM_GOAL_S = 0.5
COLD_GOAL_S = 5.0
FORK_SERVER_MODULE = "pee.cli.fork_server"

PLAN = """\
name: first-agent
agents:
  stamp:
    kind: command
    # the time it starts, and the command line of the process that started it: the fork
    # server's when the run went through it
    command:
      - sh
      - -c
      - >-
        t=$(date +%s.%N); echo "$t $(tr "\\0" " " < /proc/$PPID/cmdline)" > "$0";
        printf '{{"stamp": "%s"}}' $t
      - {stamp}
    outputs: [stamp]
"""


def first_agent_s(env: dict[str, str], plan: Path, stamp: Path) -> tuple[float, bool]:
    """One `pee run`: seconds from its start to the agent's stamp, and whether the run was
    the fork server's."""
    stamp.unlink(missing_ok=True)
    started = time.time()
    done = subprocess.run(
        [str(PEE), "run", str(plan), "--no-learn"],
        env=env,
        cwd=plan.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0 or not stamp.exists():
        raise SystemExit(f"pee run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    when, _, parent = stamp.read_text().strip().partition(" ")
    return float(when) - started, FORK_SERVER_MODULE in parent


def wait_for_fork_server(state: Path, timeout_s: float = 120.0) -> None:
    """Until the fork server the cold run's server start began listens (its imports done)."""
    deadline = time.monotonic() + timeout_s
    while not (state / "fork-server.sock").exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"no fork server in {state} after {timeout_s:g}s: see its log there")
        time.sleep(0.1)


def measure(base_env: dict[str, str], work: Path, cached: bool, warm_runs: int) -> dict[str, Any]:
    state = work / ("state-cached" if cached else "state-plain")
    state.mkdir()
    stamp = work / "stamp.txt"
    plan = work / "first-agent.yaml"
    plan.write_text(PLAN.format(stamp=stamp))
    env = {
        **base_env,
        "PEE_STATE_DIR": str(state),
        "PEE_RUNS_DIR": str(work / "runs"),
        "PEE_DEV_PORT": str(free_port()),
        "PEE_UI_PORT": str(free_port()),
        "PEE_CODEC_PORT": str(free_port()),
    }
    for name in ("TEMPORAL_ADDRESS", "PYTHONPYCACHEPREFIX", "PEE_NO_FORK_SERVER"):
        env.pop(name, None)
    if cached:
        # a private cache tree, written by the first runs, read by the measured ones
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        # fills the cache (`pee --help` imports little; validate imports the analyser)
        for args in (["--help"], ["validate", str(plan)]):
            subprocess.run([str(PEE), *args], env=env, capture_output=True, timeout=120)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    in_process = {**env, "PEE_NO_FORK_SERVER": "1"}
    forked: list[float] = []
    plain: list[float] = []
    via = 0
    # cold without the fork server's imports beside the server's start (as before it existed),
    # on a server of its own: what starting the fork server costs a cold run
    alone = {
        **in_process,
        "PEE_STATE_DIR": str(state.with_name(state.name + "-alone")),
        "PEE_DEV_PORT": str(free_port()),
        "PEE_UI_PORT": str(free_port()),
        "PEE_CODEC_PORT": str(free_port()),
    }
    try:
        cold_alone, _ = first_agent_s(alone, plan, stamp)
    finally:
        subprocess.run([str(PEE), "server", "stop"], env=alone, capture_output=True, timeout=60)
    try:
        # the cold run starts the server (and the fork server beside it): it runs in-process
        cold, _ = first_agent_s(env, plan, stamp)
        wait_for_fork_server(state)
        # side by side: each pair runs one after the other under the same load
        for _ in range(warm_runs):
            seconds, through = first_agent_s(env, plan, stamp)
            forked.append(seconds)
            via += through
            seconds, through = first_agent_s(in_process, plan, stamp)
            plain.append(seconds)
            if through:
                raise SystemExit("PEE_NO_FORK_SERVER=1 still ran through the fork server")
    finally:
        subprocess.run([str(PEE), "server", "stop"], env=env, capture_output=True, timeout=60)
    return {
        "cold": cold,
        "cold_alone": cold_alone,
        "warm": statistics.median(forked),
        "warm_min": min(forked),
        "via": via,
        "plain": statistics.median(plain),
        "plain_min": min(plain),
    }


def floor_s(runs: int, code: str) -> tuple[float, float]:
    """(median, min) seconds of a Python that runs only ``code``."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--warm-runs", type=int, default=5, help="runs against the warm server (median shown)"
    )
    parser.add_argument(
        "--floor-runs", type=int, default=5, help="runs of the import-only floor (median shown)"
    )
    args = parser.parse_args(argv)
    if not PEE.exists():
        raise SystemExit(f"no {PEE}: run `make install` first")
    runs = max(1, args.warm_runs)
    work = Path(tempfile.mkdtemp(prefix="pee-first-agent-"))
    try:
        results = {
            cached: measure(dict(os.environ), work, cached, runs) for cached in (False, True)
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    floor, floor_min = floor_s(
        max(1, args.floor_runs), "import temporalio.client, temporalio.worker"
    )
    bare, bare_min = floor_s(max(1, args.floor_runs), "import socket")
    for cached, result in results.items():
        label = "with bytecode cache" if cached else "no bytecode cache"
        print(
            f"{label}: warm first_agent={result['warm']:.3f}s via the fork server (median of "
            f"{runs}, min {result['warm_min']:.3f}s; {result['via']}/{runs} runs were its), "
            f"in-process (PEE_NO_FORK_SERVER=1) {result['plain']:.3f}s (min "
            f"{result['plain_min']:.3f}s), in-process/fork server="
            f"{result['plain'] / result['warm']:.2f}x; cold first_agent={result['cold']:.3f}s "
            f"(without starting the fork server {result['cold_alone']:.3f}s)"
        )
    cached = results[True]
    plain = results[False]
    print(
        f"bytecode cache saves: warm {plain['warm'] - cached['warm']:.3f}s (in-process "
        f"{plain['plain'] - cached['plain']:.3f}s), cold {plain['cold'] - cached['cold']:.3f}s"
    )
    print(
        f"floor: python importing temporalio.client and temporalio.worker, nothing else: "
        f"{floor:.3f}s (median of {args.floor_runs}, min {floor_min:.3f}s); warm in-process "
        f"first agent with bytecode cache / floor = {cached['plain'] / floor:.2f}x; python "
        f"importing only socket (the fork server's client starts so): {bare:.3f}s (min "
        f"{bare_min:.3f}s)"
    )
    print(
        f"goal: warm first agent {cached['warm']:.3f}s < {WARM_GOAL_S:g}s: "
        f"{'PASS' if cached['warm'] < WARM_GOAL_S else 'FAIL'}; cold {cached['cold']:.3f}s "
        f"< {COLD_GOAL_S:g}s: {'PASS' if cached['cold'] < COLD_GOAL_S else 'FAIL'} "
        f"(with bytecode cache; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
