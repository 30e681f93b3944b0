"""AgentTiming: the clocks an agent's activity runs under, from the plan, the input and the time
scale: its timeout, heartbeat timeout, progress signal interval, the barrier's progress window
and its retry policy. Pure arithmetic: it issues no command, and keeps only what it made for
reuse."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from pee.engine.compiled import CompiledAgent, CompiledPlan, RetrySpec
    from pee.workflows.floors import (
        MIN_ACTIVITY_TIMEOUT_S,
        MIN_HEARTBEAT_TIMEOUT_S,
        MIN_RETRY_INTERVAL_S,
    )

# progress signals: every signal is a history event, so not more often than this (real seconds)
MIN_PROGRESS_INTERVAL_S = 0.5
MAX_PROGRESS_INTERVAL_S = 10.0
DEFAULT_PROGRESS_WINDOW_S = 30.0
# runs since liveness-from-describe: how long an agent's activity may wait for a worker on top
# of its timeout (at least the timeout itself)
WORKER_LAG_ALLOWANCE_S = 60.0


@dataclass(frozen=True)
class AgentTiming:
    plan: CompiledPlan
    scale: float
    # PlanRunInput.heartbeat_timeout_s: None = derived from the time scale
    heartbeat_override_s: float | None
    # what activity_timeout and retry_policy made, by the values they were made of: every
    # agent asks, most with the same few values (the SDK only reads them)
    _timeouts: dict[float, timedelta] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _retry_policies: dict[tuple[Any, ...], RetryPolicy] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def heartbeat_timeout_s(self) -> float:
        if self.heartbeat_override_s is not None:
            return max(MIN_HEARTBEAT_TIMEOUT_S, self.heartbeat_override_s)
        # 10 s at real time, down to 2 s when scaled: cancellation reaches an agent only
        # through a heartbeat, and the SDK sends them at most every 0.8 x this timeout
        return max(2.0, min(10.0, 10.0 * self.scale))

    def plan_progress_window_s(self) -> float:
        window = self.plan.barrier.progress_window_s
        seconds = window if window is not None else DEFAULT_PROGRESS_WINDOW_S
        return seconds * self.scale

    def progress_interval_s(self) -> float:
        # three signals per window, within bounds that keep the history small
        return min(
            MAX_PROGRESS_INTERVAL_S,
            max(MIN_PROGRESS_INTERVAL_S, self.plan_progress_window_s() / 3),
        )

    def progress_window_s(self) -> float:
        # a scaled-down window must still span a few signals, or no agent ever looks alive
        return max(self.plan_progress_window_s(), 3 * self.progress_interval_s())

    def activity_timeout(self, agent: CompiledAgent) -> timedelta:
        seconds = agent.timeout_s or self.plan.default_agent_timeout_s
        made = self._timeouts.get(seconds)
        if made is None:
            made = self._timeouts[seconds] = timedelta(
                seconds=max(MIN_ACTIVITY_TIMEOUT_S, seconds * self.scale)
            )
        return made

    def schedule_to_close(self, agent: CompiledAgent) -> timedelta:
        """All attempts together, from scheduling: the agent's timeout plus the time its activity
        may wait for a worker (a loaded worker or a lagging workflow is not the agent's time;
        each attempt still gets only `activity_timeout` once a worker starts it)."""
        timeout = self.activity_timeout(agent)
        return timeout + max(timeout, timedelta(seconds=WORKER_LAG_ALLOWANCE_S))

    def retry_policy(self, spec: RetrySpec) -> RetryPolicy:
        """The policy of ``spec``: one object for equal specs (the SDK only reads it)."""
        key = (
            spec.initial_interval_s,
            spec.maximum_interval_s,
            spec.backoff_coefficient,
            spec.max_attempts,
            tuple(spec.non_retryable),
        )
        policy = self._retry_policies.get(key)
        if policy is None:
            policy = self._retry_policies[key] = self._retry_policy(spec)
        return policy

    def _retry_policy(self, spec: RetrySpec) -> RetryPolicy:
        initial = max(MIN_RETRY_INTERVAL_S, spec.initial_interval_s * self.scale)
        maximum = None
        if spec.maximum_interval_s is not None:
            maximum = timedelta(seconds=max(initial, spec.maximum_interval_s * self.scale))
        return RetryPolicy(
            initial_interval=timedelta(seconds=initial),
            backoff_coefficient=max(1.0, spec.backoff_coefficient),
            maximum_interval=maximum,
            maximum_attempts=max(0, spec.max_attempts),
            non_retryable_error_types=list(spec.non_retryable),
        )
