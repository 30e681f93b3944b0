"""bench/overhead.py, bench/makespan.py and bench/resources.py run from the repository root
with their smallest options and print their ratio lines (benchmarks print numbers; no timing is
asserted here)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_bench(*argv: str, timeout_s: float = 240) -> subprocess.CompletedProcess[str]:
    # own session: on a timeout the bench's dev server goes down with it
    process = subprocess.Popen(
        [sys.executable, *argv],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"{argv[0]} did not finish in {timeout_s} s:\n{stdout}\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def test_overhead_bench_prints_the_engine_to_hand_written_ratio() -> None:
    """`bench/overhead.py --agents 2 --rounds 1` exits 0 and prints both medians, the worker's
    and the server's CPU per run, the workflow code's CPU in replays, the rounds' paired ratios,
    the ratio and whether plan_workflow.py had a bytecode cache; with --run-agent also the
    hand-written gather of run_agent and the split of the ratio."""
    done = run_bench("bench/overhead.py", "--agents", "2", "--rounds", "1", "--run-agent")
    assert 0 == done.returncode, done.stderr[-3000:]
    # --run-agent: the third contender and the split of the ratio
    assert "hand-written run_agent" in done.stdout
    assert "the agent's activity: run_agent gather/hand-written " in done.stdout
    assert "engine (PlanWorkflow)" in done.stdout
    assert "hand-written workflow" in done.stdout
    assert "worker CPU per run (median): engine " in done.stdout
    assert "server CPU per run (median): engine " in done.stdout
    assert "workflow code, replays of the last run of each" in done.stdout
    assert "ratio of each round's pair: median " in done.stdout
    assert "ratio engine/hand-written: " in done.stdout
    # where the time goes: the first workflow task, the agents, the last workflow task
    assert "where each run's time goes" in done.stdout
    assert "  engine                   first workflow task " in done.stdout
    assert "bytecode cache of plan_workflow.py: " in done.stdout


def test_makespan_bench_prints_both_ratios() -> None:
    """`bench/makespan.py` on the seed and one tiny DAG exits 0 and prints both ratio lines."""
    done = run_bench(
        "bench/makespan.py",
        "--dags",
        "1",
        "--layers",
        "2",
        "--width",
        "2",
        "--min-duration",
        "0.2",
        "--max-duration",
        "0.3",
        "--seed-seconds",
        "1",
    )
    assert 0 == done.returncode, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert any(line.strip().startswith("seed x") for line in lines)
    assert any(line.strip().startswith("random dag 0") for line in lines)
    assert any(line.startswith("median makespan/lower_bound: ") for line in lines)
    assert any(line.startswith("median makespan/level_by_level: ") for line in lines)


def test_resources_bench_prints_engine_fifo_and_simulated_ratios() -> None:
    """`bench/resources.py` on one tiny plan exits 0 and prints its row and the three summary
    lines (engine, FIFO, overhead-free simulation)."""
    done = run_bench(
        "bench/resources.py",
        "--plans",
        "1",
        "--layers",
        "2",
        "--width",
        "3",
        "--min-duration",
        "0.2",
        "--max-duration",
        "0.4",
    )
    assert 0 == done.returncode, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert any(line.strip().startswith("res0") for line in lines)
    assert any(line.startswith("engine median makespan/lower_bound: ") for line in lines)
    assert any(line.startswith("fifo median makespan/lower_bound: ") for line in lines)
    assert any(line.startswith("engine admission without overhead (sim) median ") for line in lines)
