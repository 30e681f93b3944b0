"""`pee run plans/fan-out.yaml --simulate` end to end on a private embedded server (issue 16):
the run completes, the report lists each instance dev[i], and dev's written output is the list
of every story's code in story order."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import PROJECT_ROOT, starter

STORIES = ["login", "search", "cart", "checkout", "refund"]


def test_the_example_fan_out_plan_runs_end_to_end(cli_env: dict[str, str], tmp_path: Path) -> None:
    """Five stories, three at a time: dev[0..4] succeed, qa runs after them, dev.code in order."""
    out = tmp_path / "out"
    done = starter(
        cli_env, "run", PROJECT_ROOT / "plans" / "fan-out.yaml", "--simulate", "--output-dir", out
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    for index in range(len(STORIES)):
        assert f"agent dev[{index}] succeeded" in done.stdout
    report = json.loads((out / "report.json").read_text())
    assert "completed" == report["status"]
    ids = [f"dev[{i}]" for i in range(len(STORIES))]
    assert ids == report["groups"]["dev"]["agents"]
    assert all(report["agents"][a]["status"] == "succeeded" for a in ids)
    code = json.loads((out / "outputs" / "dev" / "code.json").read_text())
    assert ids == [entry["agent"] for entry in code]
