"""Cross-validation: the pure check (tables) and a parallel group's validators on a dev server."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from pee.activities.cross_validation import (
    CrossValidationTask,
    check,
    check_all,
    key_fields,
    references,
)
from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import load_plan, loads_plan
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.types import ResolveConflict
from tests.helpers import PROJECT_ROOT, TemporalHarness, compiled_plan, group, sim, until_status

# --- the pure check ---------------------------------------------------------------------------

CASES = [
    # (own, theirs, declared, passed, codes)
    ({"x": {"platform": "web"}}, {"y": {"platform": "web"}}, ["y"], True, []),
    (
        {"x": {"platform": "mobile_first"}},
        {"y": {"platform": "desktop_primary"}},
        ["y"],
        False,
        ["inconsistent_field"],
    ),
    ({"x": {"target": "web"}}, {"y": {"platform": "desktop"}}, ["y"], True, []),
    ({"x": 1}, {"y": ""}, ["y"], False, ["missing_output"]),
    ({"x": 1}, {}, ["y", "z"], False, ["missing_output", "missing_output"]),
    ({"x": 1}, {}, None, False, ["missing_output"]),
    ({"x": "covers US-1 and FR-1"}, {"y": ["US-1", "US-2"]}, ["y"], True, ["uncovered_reference"]),
    # a validator that tracks no ids has nothing to compare references against
    ({"x": "no ids"}, {"y": ["US-1"]}, ["y"], True, []),
]


@pytest.mark.parametrize(("own", "theirs", "declared", "passed", "codes"), CASES)
def test_check_findings(
    own: dict[str, Any],
    theirs: dict[str, Any],
    declared: list[str] | None,
    passed: bool,
    codes: list[str],
) -> None:
    """Errors (missing outputs, differing key fields) fail; uncovered references only warn."""
    result = check("a", own, "b", theirs, declared)
    assert (passed, codes) == (result.passed, [f["code"] for f in result.findings])
    assert 0.0 <= result.score <= 1.0
    assert (result.score == 1.0) == (not codes)


def test_score_counts_errors_and_warnings() -> None:
    """1 - 0.25 per error - 0.05 per warning, never below 0."""
    one_each = check(
        "a",
        {"x": {"platform": "p", "r": "US-1"}},
        "b",
        {"y": {"platform": "q", "r": "US-2"}},
        ["y"],
    )
    assert 0.7 == one_each.score
    many = check("a", {}, "b", {}, ["o1", "o2", "o3", "o4", "o5"])
    assert 0.0 == many.score


def test_key_fields_and_references_are_deterministic() -> None:
    """Nested fields are found depth first in sorted key order; ids sort numerically."""
    value = {"b": {"platform": "inner"}, "a": [{"platform": "first"}], "t": "FR-10 FR-2 US-1"}
    assert {"platform": "first"} == key_fields(value)
    assert ["FR-2", "FR-10", "US-1"] == references(value)


def test_check_all_checks_every_other_validator() -> None:
    task = CrossValidationTask(
        "g",
        "a",
        {"a": {"o": 1}, "b": {"o": 2}, "c": {"o": 3}},
        {"a": ["o"], "b": ["o"], "c": ["o"]},
    )
    result = check_all(task)
    assert ["b", "c"] == [v.validated for v in result.validations]


# --- on a dev server --------------------------------------------------------------------------


def two_validators(blocking: bool = False) -> Any:
    plan = compiled_plan(
        [
            sim("ux", "design", 0.1, values={"out": {"platform": "mobile_first"}}),
            sim("arch", "design", 0.1, values={"out": {"platform": "desktop_primary"}}),
            sim("dev", "build", 0.1, inputs=["arch.out"]),
        ],
        [group("design", ["ux", "arch"], timeout_s=30), group("build", ["dev"], ["design"])],
        name="cross-validation",
    )
    plan.groups[0].cross_validation = ["ux", "arch"]
    plan.groups[0].cross_validation_timeout_s = 30.0
    plan.groups[0].cross_validation_blocking = blocking
    return plan


def test_a_failed_cross_validation_raises_an_alert_and_is_reported(
    temporal: TemporalHarness,
) -> None:
    """Differing platforms fail both validations: warnings, scores, dependents not held."""
    report = temporal.execute(two_validators())
    assert "completed" == report["status"]
    cross = report["groups"]["design"]["cross_validation"]
    assert [("ux", "arch", False), ("arch", "ux", False)] == [
        (v["validator"], v["validated"], v["passed"]) for v in cross["validations"]
    ]
    assert ["inconsistent_field"] == [f["code"] for f in cross["validations"][0]["findings"]]
    assert {"design": 0.75} == report["output_quality_scores"]
    assert cross["passed"] is False and cross["conflict"] is None
    alerts = [a for a in report["alerts"] if "cross-validation failed" in a["message"]]
    assert 2 == len(alerts) and all(a["level"] == "warning" for a in alerts)
    assert "succeeded" == report["agents"]["dev"]["status"]
    assert report["groups"]["build"]["cross_validation"] is None


def test_blocking_cross_validation_holds_dependents_until_resolved(
    temporal: TemporalHarness,
) -> None:
    """blocking: a consistency conflict opens; dev starts only after it is resolved."""

    async def body(handle: WorkflowHandle[Any, Any]) -> dict[str, Any]:
        status = await until_status(
            handle, lambda s: bool(s["conflicts"]), "a conflict to open", interval_s=0.05
        )
        assert "validating" == status["groups"]["design"]["status"]
        assert "pending" == status["agents"]["dev"]["status"]
        conflict = status["conflicts"][0]
        assert "consistency" == conflict["kind"]
        await handle.execute_update(
            PlanWorkflow.resolve_conflict,
            ResolveConflict(
                conflict_id=conflict["id"],
                choice="current",
                expected_version=conflict["current_version"],
                by="test",
            ),
        )
        return await handle.result()

    report = temporal.with_plan(two_validators(blocking=True), body)
    assert "completed" == report["status"]
    assert "succeeded" == report["groups"]["design"]["status"]
    assert "succeeded" == report["agents"]["dev"]["status"]
    assert "resolved" == report["conflicts"][0]["status"]
    cross = report["groups"]["design"]["cross_validation"]
    assert cross["conflict"] == report["conflicts"][0]["id"]


def test_the_seed_plans_design_group_cross_validation_passes(temporal: TemporalHarness) -> None:
    """group_3's architect and ux_expert agree: both validations pass, score in the report."""
    compiled = compile_plan(load_plan(PROJECT_ROOT / "plans" / "seed.yaml"))
    report = temporal.execute(compiled, time_scale=0.01)
    assert "completed" == report["status"]
    cross = report["groups"]["group_3_design_architecture"]["cross_validation"]
    assert cross["passed"] is True
    assert [("architect", "ux_expert"), ("ux_expert", "architect")] == [
        (v["validator"], v["validated"]) for v in cross["validations"]
    ]
    assert 0.0 < report["output_quality_scores"]["group_3_design_architecture"] <= 1.0


def test_plan_language_compiles_blocking_and_validation_timeout() -> None:
    plan = loads_plan("""
agents:
  a: {kind: simulate, outputs: [o]}
  b: {kind: simulate, outputs: [p]}
groups:
  g:
    agents: [a, b]
    cross_validation: {validation_agents: [a, b], validation_timeout: 2_minutes, blocking: true}
""")
    compiled = compile_plan(plan).group("g")
    assert (["a", "b"], 120.0, True) == (
        compiled.cross_validation,
        compiled.cross_validation_timeout_s,
        compiled.cross_validation_blocking,
    )
