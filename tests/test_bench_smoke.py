"""bench/planner.py runs from the repository root and prints every field it promises (no timing
assertions: benchmarks print numbers, tests never judge wall-clock speed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIELDS = ("agents=200", "edges=", "build=", "compile=", "total=", "groups=", "parallel_groups=",
          "critical_path=", "makespan=", "sequential=", "makespan/sequential=", "speedup=")


def test_planner_bench_prints_its_fields() -> None:
    """`bench/planner.py --sizes 200` exits 0: one line holding every field, then a goal line."""
    done = subprocess.run([sys.executable, "bench/planner.py", "--sizes", "200"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert [field for field in FIELDS if field not in lines[0]] == []
    assert lines[1].startswith("goal: ")
