"""Adaptive planning, the pure part: what measured durations say about a plan's next run.

Samples are agent durations in plan seconds (a run's actual duration / its time scale), kept per
plan and agent by src/pee/runtime/duration_store.py. They feed the next compile
(pee.engine.compile.graph): an agent's learned mean replaces its estimate for the analysis (critical
path, priorities, estimated makespan), and, only when the plan says `adaptive: true`, a group's
barrier deadline becomes max(plan timeout, learned p95 x margin). Simulate durations and real ones
are kept apart (a
`--simulate` run times made-up work), so each kind of run learns only from its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pee.engine.compiled import Learned
from pee.engine.language.units import MAX_DURATION_S

# runs remembered per plan, agent and mode: older samples are dropped
KEEP_SAMPLES = 20
# the two kinds of run whose timings are kept apart
SIMULATED, REAL = "simulate", "real"

__all__ = ["Learned"]  # defined with the compiled plan that carries it


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (the smallest sample with `fraction` of them at or below it)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summarise(samples: Sequence[float]) -> Learned:
    if not samples:
        raise ValueError("no samples to learn from")
    return Learned(
        len(samples), round(sum(samples) / len(samples), 3), round(percentile(samples, 0.95), 3)
    )


def mode_of(simulate: bool) -> str:
    return SIMULATED if simulate else REAL


def samples_from_report(report: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(agent, plan seconds) for every agent of a finished run that did its whole work here:
    succeeded, not served from the cache, not reused from an earlier run. Agents cut short
    (defaulted, cancelled, timed out) say only "at least this long" and are left out."""
    if report.get("status") == "running":
        return []
    scale = float(report.get("time_scale") or 1.0) or 1.0
    found = []
    for agent_id, agent in (report.get("agents") or {}).items():
        duration = agent.get("duration_s")
        if (
            agent.get("status") != "succeeded"
            or agent.get("cached")
            or agent.get("resumed")
            or agent.get("defaulted_outputs")
            or not isinstance(duration, (int, float))
        ):
            continue
        found.append((str(agent_id), round(float(duration) / scale, 3)))
    return found


def adaptive_timeout(plan_timeout_s: float, p95_s: float, margin: float) -> float:
    """The barrier deadline of an adaptive plan: never below what the plan says, never above
    the longest duration a plan may give (pee.engine.language.units.MAX_DURATION_S)."""
    return round(max(plan_timeout_s, min(p95_s * margin, MAX_DURATION_S)), 3)


def group_p95(
    agents: Sequence[str], learned: Mapping[str, Learned], parallel: bool
) -> float | None:
    """The learned p95 of a whole group: its slowest agent's, or their sum when it runs them one
    after another; None unless every member has samples."""
    if not agents or any(a not in learned for a in agents):
        return None
    values = [learned[a].p95_s for a in agents]
    return max(values) if parallel else sum(values)
