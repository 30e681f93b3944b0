"""src/pee/engine/report/metrics.py and src/pee/engine/report/trace_spans.py: the seed's metrics and
the run's spans, computed from a run report (a constructed one here; tests/test_telemetry.py uses
real runs)."""

from __future__ import annotations

from typing import Any

from pee.engine.report.metrics import DEFINITIONS, MetricPoint, cache_status, run_metrics
from pee.engine.report.trace_spans import parse_time, run_spans

T0 = "2026-12-01T10:00:00.000+00:00"


def at(seconds: float) -> str:
    return f"2026-12-01T10:00:{seconds:06.3f}+00:00"


def agent(group: str, start: float | None, end: float | None, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "status": "succeeded",
        "group": group,
        "role": "r",
        "kind": "simulate",
        "started_at": None if start is None else at(start),
        "finished_at": None if end is None else at(end),
        "duration_s": None if start is None or end is None else round(end - start, 3),
        "attempts": 1,
        "cached": False,
        "resumed": False,
        "error": None,
        "commits": {},
        "queue_wait_s": 0.0,
        "blocked_s": 0.0,
        "attempt_s": None,
        "io_wait_s": None,
    }
    row.update(fields)
    return row


def report() -> dict[str, Any]:
    """analyst (http, 2 attempts) -> design: ux ‖ arch (cross-validated, arch cached) -> qa
    skipped; one conflict; a resource pool sampled at 40 % and 75 % CPU."""
    return {
        "workflow_id": "seed-1",
        "run_id": "r1",
        "plan": "seed",
        "status": "completed",
        "error": None,
        "started_at": T0,
        "finished_at": at(10.0),
        "makespan_s": 10.0,
        "parallel_efficiency": 0.8,
        "critical_path": ["analyst", "ux"],
        "context_lock_wait_s": 0.25,
        "alerts": [{"message": "x"}],
        "conflicts": [{"id": "c1"}],
        "cache": {"agent_output": {"hits": 1, "misses": 2, "hit_ratio": 0.333}},
        "output_quality_scores": {"design": 0.9},
        "resources": {
            "peak_memory": 65.0,
            "peak_cpu": 50.0,
            "utilisation_percentage": 42.5,
            "samples": [
                {"at_s": 0.0, "cpu_usage": 40.0, "memory_usage": 25.0},
                {"at_s": 2.0, "cpu_usage": 75.0, "memory_usage": None},
            ],
        },
        "agents": {
            "analyst": agent(
                "research",
                0.0,
                4.0,
                kind="http",
                attempts=2,
                attempt_s=3.0,
                io_wait_s=2.4,
                commits={"analyst.brief": "created"},
            ),
            "ux": agent("design", 4.0, 9.0, commits={"ux.spec": "created", "platform": "created"}),
            "arch": agent(
                "design",
                4.0,
                4.1,
                cached=True,
                attempts=0,
                commits={"arch.doc": "created", "platform": "conflict"},
            ),
            "qa": agent("verify", None, None, status="skipped", attempts=0),
        },
        "groups": {
            "research": {
                "status": "succeeded",
                "agents": ["analyst"],
                "parallel": True,
                "started_at": T0,
                "finished_at": at(4.0),
                "resumed": False,
                "cross_validation": None,
                "barrier": {
                    "decision": "all_completed",
                    "extensions": 0,
                    "history": [{"at": at(4.0), "decision": "all_completed", "reason": "ok"}],
                },
            },
            "design": {
                "status": "succeeded",
                "agents": ["ux", "arch"],
                "parallel": True,
                "started_at": at(4.0),
                "finished_at": at(9.0),
                "resumed": False,
                "cross_validation": {
                    "validations": [
                        {"validator": "ux", "validated": "arch", "passed": True},
                        {"validator": "arch", "validated": "ux", "passed": False},
                    ]
                },
                "barrier": {
                    "decision": "all_completed",
                    "extensions": 1,
                    "history": [
                        {"at": at(6.0), "decision": "extend_timeout", "reason": "alive"},
                        {"at": at(9.0), "decision": "all_completed", "reason": "ok"},
                    ],
                },
            },
            "verify": {
                "status": "cancelled",
                "agents": ["qa"],
                "parallel": True,
                "started_at": None,
                "finished_at": None,
                "resumed": False,
                "cross_validation": None,
                "barrier": {"decision": None, "extensions": 0, "history": []},
            },
        },
    }


def values(points: list[MetricPoint], name: str) -> list[float]:
    return [p.value for p in points if p.name == name]


def test_every_run_metric_comes_from_its_report_field() -> None:
    """Each metric is the report value it is defined by (README "Metrics")."""
    points = run_metrics(report())
    assert [10.0] == values(points, "total_workflow_time")
    assert [0.8] == values(points, "parallel_efficiency_ratio")
    assert [0.25] == values(points, "context_lock_wait_time")
    assert [0.9] == values(points, "output_quality_scores")
    assert [65.0] == values(points, "memory_usage_peak")
    assert [42.5] == values(points, "cpu_utilization_average")


def test_agent_execution_times_skip_agents_that_never_ran() -> None:
    """One histogram point per agent with a duration, labelled with its group, status and
    cache status; the skipped agent has none."""
    points = [p for p in run_metrics(report()) if p.name == "individual_agent_execution_time"]
    assert [
        ("analyst", 4.0, "research", "miss"),
        ("ux", 5.0, "design", "miss"),
        ("arch", 0.1, "design", "hit"),
    ] == [
        (p.attributes["agent"], p.value, p.attributes["group"], p.attributes["cache_status"])
        for p in points
    ]


def test_ratios_are_counts_over_their_whole() -> None:
    """Failure, conflict, retry, cache and network ratios as defined."""
    points = run_metrics(report())
    assert [0.5] == values(points, "validation_failure_rate")  # 1 of 2 validations
    assert [0.2] == values(points, "context_conflict_frequency")  # 1 conflict, 5 commits
    assert [round(1 / 3, 6)] == values(points, "retry_rate")  # 1 retry, 3 attempts
    assert [round(1 / 3, 6)] == values(points, "cache_hit_ratios")  # 1 hit of 3 lookups
    assert [0.8] == values(points, "network_latency_impact")  # 2.4 s of 3.0 s


def test_resource_utilisation_is_the_highest_sample_per_resource() -> None:
    points = [p for p in run_metrics(report()) if p.name == "resource_utilization_percentage"]
    assert [("cpu", 75.0), ("memory", 25.0)] == [
        (p.attributes["resource"], p.value) for p in points
    ]


def test_unmeasurable_metrics_are_left_out_not_zero() -> None:
    """No pool samples, cross-validation, cache lookup or measured I/O: no point at all."""
    bare = report()
    bare["resources"] = {
        "peak_memory": 10.0,
        "utilisation_percentage": None,
        "samples": [{"cpu_usage": None, "memory_usage": None}],
    }
    bare["groups"]["design"]["cross_validation"] = None
    bare["output_quality_scores"] = {}
    bare["cache"] = {"agent_output": {"hits": 0, "misses": 0}}
    bare["agents"]["analyst"]["io_wait_s"] = None
    names = {p.name for p in run_metrics(bare)}
    assert not names & {
        "resource_utilization_percentage",
        "validation_failure_rate",
        "output_quality_scores",
        "cache_hit_ratios",
        "network_latency_impact",
        "cpu_utilization_average",
    }


def test_points_carry_plan_and_status_and_a_definition() -> None:
    points = run_metrics(report())
    assert all(
        p.attributes["plan"] == "seed" and p.attributes["status"] == "completed" for p in points
    )
    assert sorted({p.name for p in points}) == sorted(DEFINITIONS)


def test_cache_status_of_an_agent() -> None:
    rep = report()
    assert "hit" == cache_status(rep, rep["agents"]["arch"])
    assert "miss" == cache_status(rep, rep["agents"]["ux"])
    assert "off" == cache_status(rep, rep["agents"]["qa"])  # never started
    assert "resumed" == cache_status(rep, {"resumed": True})
    rep["cache"] = {"agent_output": {"hits": 0, "misses": 0}}
    assert "off" == cache_status(rep, rep["agents"]["ux"])


# --- spans -----------------------------------------------------------------------------------


def test_spans_form_run_group_agent_and_barrier_tree() -> None:
    """Run at the root; groups under it; agents and barrier decisions under their group; the
    group that never started and the skipped agent have no span."""
    spans = run_spans(report())
    tree = [(s.key, s.parent, s.name) for s in spans]
    assert [
        ("run", None, "PlanRun:seed"),
        ("group:research", "run", "Group:research"),
        ("group:research:barrier:0", "group:research", "Barrier:all_completed"),
        ("agent:analyst", "group:research", "Agent:analyst"),
        ("group:design", "run", "Group:design"),
        ("group:design:barrier:0", "group:design", "Barrier:extend_timeout"),
        ("group:design:barrier:1", "group:design", "Barrier:all_completed"),
        ("agent:ux", "group:design", "Agent:ux"),
        ("agent:arch", "group:design", "Agent:arch"),
    ] == tree


def test_spans_have_the_report_times_and_attributes() -> None:
    spans = {s.key: s for s in run_spans(report())}
    ux = spans["agent:ux"]
    assert (parse_time(at(4.0)), parse_time(at(9.0))) == (ux.start, ux.end)
    assert {
        "pee.agent": "ux",
        "pee.group": "design",
        "pee.attempt": 1,
        "pee.cache_status": "miss",
    }.items() <= ux.attributes.items()
    assert 2 == spans["agent:analyst"].attributes["pee.attempt"]
    assert "hit" == spans["agent:arch"].attributes["pee.cache_status"]
    decision = spans["group:design:barrier:0"]
    assert decision.start == decision.end == parse_time(at(6.0))
    assert "alive" == decision.attributes["pee.reason"]
    run = spans["run"]
    assert (parse_time(T0), parse_time(at(10.0))) == (run.start, run.end)
    assert "completed" == run.attributes["pee.status"]
    assert "seed-1" == run.attributes["temporalWorkflowID"]


def test_failed_agents_and_runs_are_error_spans() -> None:
    rep = report()
    rep["status"], rep["error"] = "failed", "group 'design' failed"
    rep["agents"]["ux"].update(status="timed_out", error="timed out (START_TO_CLOSE)")
    spans = {s.key: s for s in run_spans(rep)}
    assert "group 'design' failed" == spans["run"].error
    assert "timed out (START_TO_CLOSE)" == spans["agent:ux"].error
    assert spans["agent:arch"].error is None


def test_a_report_without_a_start_has_no_spans() -> None:
    assert [] == run_spans({"plan": "p", "status": "running"})
