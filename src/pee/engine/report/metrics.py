"""The seed's performance metrics (``performance_monitoring.metrics_collection``), computed from
a finished run's report.

Pure: a report (the workflow result, or the report a failed run carries) goes in, metric points
come out; src/pee/runtime/run_observer.py records them with the OpenTelemetry SDK. Every point
carries the run's ``plan`` and ``status``; a metric the run cannot measure (no resource pool, no
cross-validation, no cache lookup, no agent that measured its I/O) is left out rather than
reported as 0. docs/guides/observability.md ("Metrics") defines each one; DEFINITIONS is the same
list in code.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

HISTOGRAM, GAUGE = "histogram", "gauge"


@dataclass(frozen=True)
class Definition:
    kind: str
    unit: str
    description: str


DEFINITIONS: dict[str, Definition] = {
    # execution
    "total_workflow_time": Definition(
        HISTOGRAM, "s", "the run's makespan: first group start to the end of the run"
    ),
    "individual_agent_execution_time": Definition(
        HISTOGRAM,
        "s",
        "each agent's time from its first start to its last end, retries and a "
        "fallback re-run included",
    ),
    "parallel_efficiency_ratio": Definition(
        GAUGE, "1", "the actual critical path's length / the makespan (1.0: no scheduling overhead)"
    ),
    "context_lock_wait_time": Definition(
        HISTOGRAM,
        "s",
        "time agents waited for a context store reader or writer slot, all agents together",
    ),
    "resource_utilization_percentage": Definition(
        GAUGE,
        "%",
        "the highest sampled use of a pool resource (attribute resource: cpu or "
        "memory), as a percentage of what admission may hand out",
    ),
    # quality
    "output_quality_scores": Definition(
        HISTOGRAM, "1", "each cross-validated group's mean validation score (0..1)"
    ),
    "validation_failure_rate": Definition(
        GAUGE, "1", "failed cross-validations / cross-validations"
    ),
    "context_conflict_frequency": Definition(
        GAUGE, "1", "context conflicts opened / context commits (agents' committed keys)"
    ),
    "retry_rate": Definition(GAUGE, "1", "retries / activity attempts, over the agents that ran"),
    # system
    "memory_usage_peak": Definition(
        GAUGE, "{unit}", "the most resource-pool memory units admitted at once"
    ),
    "cpu_utilization_average": Definition(
        GAUGE,
        "%",
        "resource-pool CPU units in use, averaged over the makespan, as a percentage "
        "of what admission may hand out",
    ),
    "cache_hit_ratios": Definition(
        GAUGE, "1", "agent output cache hits / lookups (attribute cache: agent_output)"
    ),
    "network_latency_impact": Definition(
        GAUGE,
        "1",
        "time agents spent waiting on the network / their backend wall time, "
        "over the successful attempts of agents that measure it (http agents)",
    ),
}


@dataclass(frozen=True)
class MetricPoint:
    name: str
    value: float
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def definition(self) -> Definition:
        return DEFINITIONS[self.name]


def run_metrics(report: Mapping[str, Any]) -> list[MetricPoint]:
    """The metric points of one run, in DEFINITIONS order (agents and groups in report order)."""
    base = {"plan": str(report.get("plan") or ""), "status": str(report.get("status") or "")}
    points = list(_points(report, base))
    order = list(DEFINITIONS)
    return sorted(points, key=lambda point: order.index(point.name))


def _points(report: Mapping[str, Any], base: dict[str, str]) -> Iterator[MetricPoint]:
    agents: dict[str, dict[str, Any]] = dict(report.get("agents") or {})
    groups: dict[str, dict[str, Any]] = dict(report.get("groups") or {})
    resources: dict[str, Any] = dict(report.get("resources") or {})

    def point(name: str, value: float | None, **attributes: str) -> Iterator[MetricPoint]:
        if value is not None:
            yield MetricPoint(name, round(float(value), 6), {**base, **attributes})

    yield from point("total_workflow_time", report.get("makespan_s"))
    for agent_id, agent in agents.items():
        if agent.get("duration_s") is None or agent.get("resumed"):
            continue
        yield from point(
            "individual_agent_execution_time",
            agent["duration_s"],
            agent=agent_id,
            group=str(agent.get("group") or ""),
            agent_status=str(agent.get("status") or ""),
            cache_status=cache_status(report, agent),
        )
    yield from point("parallel_efficiency_ratio", report.get("parallel_efficiency"))
    yield from point("context_lock_wait_time", report.get("context_lock_wait_s"))
    for resource in ("cpu", "memory"):
        yield from point(
            "resource_utilization_percentage",
            peak_sample(resources.get("samples") or [], f"{resource}_usage"),
            resource=resource,
        )

    for group_id, score in dict(report.get("output_quality_scores") or {}).items():
        yield from point("output_quality_scores", score, group=group_id)
    validations = [
        v
        for g in groups.values()
        for v in ((g.get("cross_validation") or {}).get("validations") or [])
    ]
    yield from point(
        "validation_failure_rate",
        ratio(sum(1 for v in validations if not v.get("passed")), len(validations)),
    )
    commits = sum(len(agent.get("commits") or {}) for agent in agents.values())
    yield from point(
        "context_conflict_frequency", ratio(len(report.get("conflicts") or []), commits)
    )
    ran = [
        int(agent.get("attempts") or 0)
        for agent in agents.values()
        if int(agent.get("attempts") or 0) > 0
    ]
    yield from point("retry_rate", ratio(sum(a - 1 for a in ran), sum(ran)))

    yield from point("memory_usage_peak", resources.get("peak_memory"))
    yield from point("cpu_utilization_average", resources.get("utilisation_percentage"))
    cache = dict((report.get("cache") or {}).get("agent_output") or {})
    hits, misses = int(cache.get("hits") or 0), int(cache.get("misses") or 0)
    yield from point("cache_hit_ratios", ratio(hits, hits + misses), cache="agent_output")
    measured = [
        agent
        for agent in agents.values()
        if agent.get("io_wait_s") is not None and agent.get("attempt_s")
    ]
    yield from point(
        "network_latency_impact",
        ratio(
            sum(float(a["io_wait_s"]) for a in measured),
            sum(float(a["attempt_s"]) for a in measured),
        ),
    )


def cache_status(report: Mapping[str, Any], agent: Mapping[str, Any]) -> str:
    """hit (served from the output cache), miss (looked up, then ran), resumed (reused from an
    earlier run), or off (the run did not consult the cache)."""
    if agent.get("resumed"):
        return "resumed"
    if agent.get("cached"):
        return "hit"
    cache = dict((report.get("cache") or {}).get("agent_output") or {})
    looked_up = int(cache.get("hits") or 0) + int(cache.get("misses") or 0) > 0
    return "miss" if looked_up and agent.get("started_at") else "off"


def peak_sample(samples: list[dict[str, Any]], metric: str) -> float | None:
    values = [float(row[metric]) for row in samples if row.get(metric) is not None]
    return max(values) if values else None


def ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None
