"""`starter.py validate` and `starter.py plan` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def starter(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "starter.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_validate_ok_prints_one_line() -> None:
    """A valid plan exits 0 with a one-line summary naming the critical path."""
    result = starter("validate", "plans/seed.yaml")
    assert 0 == result.returncode, result.stderr
    assert 1 == len(result.stdout.strip().splitlines())
    assert "analyst -> pm" in result.stdout


def test_validate_reports_every_problem_and_exits_2(tmp_path: Path) -> None:
    """An invalid plan exits 2 and lists each problem with file and line."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("agents:\n  a: {duration: soon}\n  b: {inputs: [a.nothing]}\n")
    result = starter("validate", str(bad))
    assert 2 == result.returncode
    assert f"{bad}:2" in result.stderr and f"{bad}:3" in result.stderr
    assert "2 problems" in result.stderr


def test_a_setting_with_no_effect_is_noted_where_it_is(tmp_path: Path) -> None:
    """large_value_threshold (the former claim check's) still validates, and validate, plan and
    --json say at its line that it changes nothing and what to do instead."""
    plan = tmp_path / "old.yaml"
    plan.write_text(
        "agents:\n  a: {outputs: [x]}\ncontext_conflicts:\n  large_value_threshold: 1 KiB\n"
    )
    note = f"note: {plan}:4 (context_conflicts.large_value_threshold): large_value_threshold has"
    validated = starter("validate", str(plan))
    assert 0 == validated.returncode, validated.stderr
    assert note in validated.stdout
    assert "PEE_PAYLOAD_THRESHOLD" in validated.stdout
    planned = starter("plan", str(plan))
    assert 0 == planned.returncode and note in planned.stderr
    notices = json.loads(starter("validate", str(plan), "--json").stdout)["notices"]
    assert 1 == len(notices) and "has no effect" in notices[0]
    # a plan without it has no note
    assert "note:" not in starter("validate", "plans/seed.yaml").stdout


def test_validate_json_lists_problems(tmp_path: Path) -> None:
    """--json gives machine-readable problems with line numbers."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("agents:\n  a: {inputs: [ghost.x]}\n")
    result = starter("validate", str(bad), "--json")
    assert 2 == result.returncode
    problems = json.loads(result.stdout)["problems"]
    assert [("UnknownAgentError", 2)] == [(p["error"], p["line"]) for p in problems]


def test_set_supplies_inputs_and_bmad_conditions() -> None:
    """--set turns on a BMAD condition and supplies a requirement nobody creates."""
    result = starter(
        "plan",
        "tests/plans/bmad_brownfield.yaml",
        "--format",
        "json",
        "--set",
        "existing_documentation_or_analysis=docs/",
    )
    assert 0 == result.returncode, result.stderr
    assert "existing_documentation_or_analysis" in json.loads(result.stdout)["inputs"]
    assert 2 == starter("validate", "tests/plans/bmad_brownfield.yaml").returncode


def test_plan_json_has_the_documented_fields() -> None:
    """--format json: groups in order with id/agents/depends_on/parallel, path and estimates."""
    result = starter("plan", "plans/demo.yaml", "--format", "json")
    assert 0 == result.returncode, result.stderr
    data = json.loads(result.stdout)
    assert [
        {"id": "a", "agents": ["a"], "depends_on": [], "parallel": True},
        {"id": "design", "agents": ["b", "c"], "depends_on": ["a"], "parallel": True},
        {"id": "d", "agents": ["d"], "depends_on": ["design"], "parallel": True},
    ] == [{k: g[k] for k in ("id", "agents", "depends_on", "parallel")} for g in data["groups"]]
    assert ["a", "b", "d"] == data["critical_path"]
    assert (4.0, 6.0) == (data["estimated_makespan_s"], data["sequential_s"])
    assert [] == data["parallel_opportunities"]


@pytest.mark.parametrize(
    ("fmt", "first_line"),
    [
        ("mermaid", "flowchart LR"),
        ("dot", 'digraph "seed" {'),
        ("text", "plan seed (plans/seed.yaml)"),
    ],
)
def test_plan_formats(fmt: str, first_line: str) -> None:
    """Each format starts as its renderer expects and marks the critical path."""
    result = starter("plan", "plans/seed.yaml", "--format", fmt)
    assert 0 == result.returncode, result.stderr
    assert first_line == result.stdout.splitlines()[0]
    if fmt == "mermaid":
        assert "class n_analyst,n_pm," in result.stdout
        assert result.stdout.count("subgraph") == result.stdout.count("\n  end")


def test_bad_set_is_a_usage_error() -> None:
    """--set without '=' is refused with a message, not a traceback."""
    result = starter("validate", "plans/demo.yaml", "--set", "oops")
    assert 2 == result.returncode and "KEY=VALUE" in result.stderr
    assert "Traceback" not in result.stderr
