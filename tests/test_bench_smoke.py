"""bench/planner.py, bench/cache.py, bench/throughput.py, bench/scale.py, bench/timeline.py and
bench/history_bytes.py run from the repository root and print every field they promise (no
timing assertions: benchmarks print numbers, tests never judge wall-clock speed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIELDS = (
    "agents=200",
    "edges=",
    "build=",
    "compile=",
    "total=",
    "groups=",
    "parallel_groups=",
    "critical_path=",
    "makespan=",
    "sequential=",
    "makespan/sequential=",
    "speedup=",
)


def test_planner_bench_prints_its_fields() -> None:
    """`bench/planner.py --sizes 200` exits 0: one line holding every field, then a goal line."""
    done = subprocess.run(
        [sys.executable, "bench/planner.py", "--sizes", "200"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert [field for field in FIELDS if field not in lines[0]] == []
    assert lines[1].startswith("goal: ")


CACHE_FIELDS = (
    "eviction: trace of 500 accesses",
    "hit ratio lru=",
    "boosted=",
    "rerun: 3 agents",
    "first run ",
    "rerun ",
    "cached ",
    "ratio first/rerun: ",
    "(goal >= 10x: ",
    "lz4: ",
    "compression ratio ",
    "compress ",
    "decompress ",
)


def test_cache_bench_prints_its_fields() -> None:
    """`bench/cache.py` with its smallest options exits 0 and prints the eviction hit ratios,
    the first-run vs rerun times with their ratio, and the lz4 ratio and MB/s."""
    done = subprocess.run(
        [
            sys.executable,
            "bench/cache.py",
            "--length",
            "500",
            "--agents",
            "3",
            "--agent-duration",
            "0.2",
            "--reruns",
            "1",
            "--lz4-mb",
            "0.2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert 0 == done.returncode, done.stderr[-3000:]
    assert [field for field in CACHE_FIELDS if field not in done.stdout] == []
    assert "cached 3/3 agents" in done.stdout


def test_throughput_bench_prints_both_contenders_and_the_ratio() -> None:
    """`bench/throughput.py` at its smallest exits 0 and prints, for the engine and the
    hand-written workflow, runs/min, agents/s and history events per agent, then the ratio."""
    done = subprocess.run(
        [
            sys.executable,
            "bench/throughput.py",
            "--runs",
            "2",
            "--workers",
            "1",
            "--agents",
            "3",
            "--rounds",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("throughput: 2 concurrent runs of 3 no-op agents")
    for label in ("engine (PlanWorkflow)", "hand-written workflow"):
        [line] = [line for line in lines if label in line]
        assert [
            field for field in ("runs/min", "agents/s", "events/agent") if field not in line
        ] == []
    assert lines[-1].startswith("ratio engine/hand-written throughput: ")


SCALE_FIELDS = (
    "agents 40 ",
    "groups ",
    "status completed",
    "succeeded 40 ",
    "wall ",
    "parent_events ",
    "events_per_agent ",
    "children ",
    "largest_child ",
    "max_events ",
    "input ",
    "report ",
)


def test_scale_bench_prints_histories_of_a_batched_plan() -> None:
    """`bench/scale.py --agents 40 --chunk 8` exits 0: the run completed in children, every
    field printed, the parent's events by kind, and the history-bound verdict."""
    done = subprocess.run(
        [sys.executable, "bench/scale.py", "--agents", "40", "--chunk", "8", "--window", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert 0 == done.returncode, done.stderr[-3000:]
    first, decisions, kinds, verdict = done.stdout.splitlines()
    assert first.startswith("batch chunk 8 window 2 ")
    assert " fallbacks 0 " in first and " deadlock_warnings 0 " in first
    # every group passed its barrier (no partial, no fallback)
    assert decisions.startswith("barrier decisions: all_completed ")
    assert "," not in decisions
    assert [field for field in SCALE_FIELDS if field not in first] == []
    assert "children 0 " not in first
    assert kinds.startswith("parent events by kind: ")
    assert "start_child_workflow_execution_initiated" in kinds
    assert verdict == "every history under 10240 events: yes"


def test_timeline_bench_prints_where_the_time_went() -> None:
    """`bench/timeline.py --agents 40 --chunk 8` exits 0 with every agent succeeded, the
    spreads of its phases (dispatch, run, waiting for chunk mates, report) over all 40 agents
    and the realised critical chain split into those phases."""
    done = subprocess.run(
        [sys.executable, "bench/timeline.py", "--agents", "40", "--chunk", "8", "--window", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert 0 == done.returncode, done.stderr[-3000:]
    head, *spreads, chain = done.stdout.splitlines()
    assert head.startswith("agents 40 local 10 s split 10 s succeeded 40 wall ")
    names = [line.split(":")[0] for line in spreads]
    assert names == [
        "chunk size",
        "started -> real start (dispatch)",
        "real run",
        "real end -> chunk's last real end (mates)",
        "chunk's last real end -> learned (report)",
    ]
    assert all("(n 40)" in line for line in spreads[1:])
    assert chain.startswith("critical chain: ")
    for phase in ("ready", "dispatch", "run", "mates", "report"):
        assert f" {phase} " in chain


def test_history_bytes_bench_prints_bytes_by_kind_and_the_task_fields() -> None:
    """`bench/history_bytes.py --agents 5` exits 0 and prints, for both contenders, the event
    kinds with their bytes, the payload roles, the ratio and one task's fields."""
    done = subprocess.run(
        [sys.executable, "bench/history_bytes.py", "--agents", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("engine: ") and "\nhand-written: " in out
    assert out.count("activity_task_scheduled ") == 2
    assert "activity input" in out and "activity result" in out
    assert "summaries (user metadata)" in out
    assert "history bytes engine/hand-written: " in out
    # one agent's task by field: its agent's id and kind are always written
    assert "agent.id" in out and "agent.kind" in out
