"""Durations as a run uses them: every one, scaled by the run's time scale, stays representable.

The plan language caps each duration it reads at MAX_DURATION_S (pee.engine.language.units). A run
then multiplies them by its time scale (`run --time-scale F`, PEE_TIME_SCALE) before the workflow
turns them into Temporal timeouts and timers or adds them to workflow.now(). This module names
every duration of a compiled plan the workflow scales, and says which ones a time scale would
push past the cap, so `run` and `compile` refuse the combination up front and the workflow
fails such a hand-made input with a reason instead of raising on every workflow task.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from pee.engine.compiled import CompiledPlan
from pee.engine.language.units import MAX_DURATION_S, MAX_DURATION_TEXT


def _number(value: Any) -> float | None:
    # the exact types first: in a workflow task the sandbox replaces isinstance with a Python
    # wrapper, and this runs once per agent in a run's first task
    kind = type(value)
    if kind is float or kind is int:
        return float(value)
    if value is None or kind is bool or kind is str:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def plan_seconds(plan: CompiledPlan) -> Iterator[float]:
    """scaled_durations without the names (the names are built only for a plan with a problem:
    10,000 agents made 50,000 strings in a run's first workflow task for nothing)."""
    yield plan.default_agent_timeout_s
    for agent in plan.agents:
        if agent.timeout_s is not None:
            yield agent.timeout_s
        yield agent.estimated_max_s
        yield agent.retry.initial_interval_s
        if agent.retry.maximum_interval_s is not None:
            yield agent.retry.maximum_interval_s
        duration = _number(agent.settings.get("duration"))
        if duration is not None:
            yield duration
    for group in plan.groups:
        if group.timeout_s is not None:
            yield group.timeout_s
        yield group.extension_s
        if group.cross_validation_timeout_s is not None:
            yield group.cross_validation_timeout_s


def scaled_durations(plan: CompiledPlan) -> Iterator[tuple[str, float]]:
    """(where, seconds) of every duration the workflow multiplies by the time scale."""
    yield "default_agent_timeout", plan.default_agent_timeout_s
    for agent in plan.agents:
        where = f"agent '{agent.id}'"
        if agent.timeout_s is not None:
            yield f"{where} timeout", agent.timeout_s
        yield f"{where} estimate", agent.estimated_max_s
        yield f"{where} retry initial_interval", agent.retry.initial_interval_s
        if agent.retry.maximum_interval_s is not None:
            yield f"{where} retry maximum_interval", agent.retry.maximum_interval_s
        duration = _number(agent.settings.get("duration"))
        if duration is not None:
            yield f"{where} duration", duration
    for group in plan.groups:
        where = f"group '{group.id}'"
        if group.timeout_s is not None:
            yield f"{where} timeout", group.timeout_s
        yield f"{where} extension", group.extension_s
        if group.cross_validation_timeout_s is not None:
            yield f"{where} validation_timeout", group.cross_validation_timeout_s
    yield from _plan_level(plan)


def _plan_level(plan: CompiledPlan) -> Iterator[tuple[str, float]]:
    """The plan-wide durations of scaled_durations (besides default_agent_timeout)."""
    for where, value in (
        (
            "barrier_synchronization.timeout_handling.progress_window",
            plan.barrier.progress_window_s,
        ),
        ("context_conflicts.conflict_timeout", plan.context.conflict_timeout_s),
        (
            "resource_pool.context_store.lock_timeout",
            # named with the pool it belongs to, as the plan gives it
            plan.resources.context_store.lock_timeout_s if plan.resources.pool else None,
        ),
        (
            "load_balancing.resource_monitoring.sampling_interval",
            plan.resources.monitoring.sampling_interval_s,
        ),
        ("alert_thresholds.response_time", plan.resources.monitoring.response_time_s),
    ):
        seconds = _number(value)
        if seconds is not None:
            yield where, seconds


def time_scale_problems(
    plan: CompiledPlan,
    time_scale: float,
    heartbeat_timeout_s: float | None = None,
    bounds: tuple[float, float] | None = None,
) -> list[str]:
    """Why this plan cannot run at ``time_scale`` (empty: it can). ``bounds``: the least and
    the largest of plan_seconds(plan) when known (pee.engine.rules.plan_facts), so the usual
    case is checked without a walk over every agent."""
    if not (isinstance(time_scale, int | float) and math.isfinite(time_scale) and time_scale > 0):
        return [f"the time scale must be a finite number above 0, found {time_scale!r}"]
    problems: list[str] = []
    if heartbeat_timeout_s is not None and not (
        math.isfinite(heartbeat_timeout_s) and 0 < heartbeat_timeout_s <= MAX_DURATION_S
    ):
        problems.append(
            f"the heartbeat timeout must be above 0 and at most "
            f"{MAX_DURATION_TEXT}, found {heartbeat_timeout_s!r}"
        )
    if (bounds is not None and 0 <= bounds[0] and bounds[1] * time_scale <= MAX_DURATION_S) or all(
        0 <= seconds and seconds * time_scale <= MAX_DURATION_S for seconds in plan_seconds(plan)
    ):
        # the usual case (NaN fails the comparison, infinity the limit): only the plan-level
        # values are left to check, with their names
        durations = list(_plan_level(plan))
    else:
        durations = list(scaled_durations(plan))
    problems += [
        f"{where} is {seconds!r} s, not a duration"
        for where, seconds in durations
        if not (math.isfinite(seconds) and seconds >= 0)
    ]
    too_long = [
        (where, seconds)
        for where, seconds in durations
        if math.isfinite(seconds) and seconds * time_scale > MAX_DURATION_S
    ]
    if too_long:
        where, seconds = max(too_long, key=lambda item: item[1])
        problems.append(
            f"time scale {time_scale:g} makes {len(too_long)} duration(s) longer than "
            f"{MAX_DURATION_TEXT}, the longest a run may wait (the longest: {where}, "
            f"{seconds:g} s x {time_scale:g}); use a time scale of at most "
            f"{MAX_DURATION_S / seconds:.3g}"
        )
    return problems
