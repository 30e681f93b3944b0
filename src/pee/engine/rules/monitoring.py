"""Resource monitoring (the seed's ``load_balancing.resource_monitoring``): samples of the run's
admission state, summarised per ``sampling_interval``, and alerts over ``alert_thresholds``.

Sampling is event-driven: the workflow observes a sample whenever admission changes (an agent
is admitted, queued or released), not on a timer. Between two changes nothing moves, so a timer
would only repeat the last value while adding history events; a bucket of ``sampling_interval``
seconds in which nothing changed simply has no row. Each row keeps the worst value of every
metric seen in its bucket.

Metrics:
- ``cpu_usage`` / ``memory_usage``: units in use as a percentage of what admission may hand out
  (CPU oversubscription included, like the report's utilisation); None for an unlimited pool;
- ``queue_depth``: agents ready but waiting for resources;
- ``response_time``: the duration of the agent that just finished (None in other samples).

A metric alerts when it goes over its threshold (strictly greater), once per crossing: it must
come back to or under the threshold before it can alert again.

Pure and deterministic: callers pass times in run-relative seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pee.engine.compiled import DEFAULT_SAMPLING_INTERVAL_S, Resources

METRICS = ("cpu_usage", "memory_usage", "response_time", "queue_depth")
MAX_SAMPLES = 200
DEFAULT_INTERVAL_S = DEFAULT_SAMPLING_INTERVAL_S
UNITS = {"cpu_usage": "%", "memory_usage": "%", "response_time": " s", "queue_depth": ""}


@dataclass(frozen=True)
class Sample:
    at_s: float
    cpu_usage: float | None = None
    memory_usage: float | None = None
    queue_depth: int = 0
    response_time: float | None = None
    # who the sample is about (the finished agent, for response_time)
    agent: str | None = None

    def value(self, metric: str) -> float | None:
        value = getattr(self, metric)
        return None if value is None else float(value)


def usage_percent(in_use: float, capacity: float) -> float | None:
    """Units in use as a percentage of capacity; None when capacity is unlimited or zero."""
    if not math.isfinite(capacity) or capacity <= 0:
        return None
    return round(100.0 * in_use / capacity, 1)


def take_sample(
    at_s: float,
    *,
    cpu_in_use: float,
    cpu_capacity: float,
    memory_in_use: float,
    memory_capacity: float,
    queue_depth: int,
    response_time: float | None = None,
    agent: str | None = None,
) -> Sample:
    return Sample(
        at_s=round(at_s, 3),
        cpu_usage=usage_percent(cpu_in_use, cpu_capacity),
        memory_usage=usage_percent(memory_in_use, memory_capacity),
        queue_depth=int(queue_depth),
        response_time=None if response_time is None else round(response_time, 3),
        agent=agent,
    )


@dataclass(frozen=True)
class Thresholds:
    cpu_usage: float | None = None
    memory_usage: float | None = None
    response_time: float | None = None
    queue_depth: float | None = None

    def of(self, metric: str) -> float | None:
        return getattr(self, metric)


@dataclass(frozen=True)
class Settings:
    thresholds: Thresholds = field(default_factory=Thresholds)
    interval_s: float = DEFAULT_INTERVAL_S

    @classmethod
    def from_resources(cls, resources: Resources, time_scale: float = 1.0) -> Settings:
        """From ``CompiledPlan.resources`` (durations in plan seconds); the sampling interval
        and response_time threshold are scaled like every duration."""
        given = resources.monitoring

        def scaled(value: float | None, scale: float = 1.0) -> float | None:
            return None if value is None else round(value * scale, 3)

        return cls(
            Thresholds(
                scaled(given.cpu_usage),
                scaled(given.memory_usage),
                scaled(given.response_time_s, time_scale),
                scaled(given.queue_depth),
            ),
            # a scaled interval never drops to zero (it divides the time line)
            max(1e-3, given.sampling_interval_s * time_scale),
        )


@dataclass(frozen=True)
class MetricAlert:
    at_s: float
    metric: str
    value: float
    threshold: float
    agent: str | None = None

    @property
    def message(self) -> str:
        unit = UNITS[self.metric]
        about = f" (agent '{self.agent}')" if self.agent else ""
        return (
            f"{self.metric} {self.value:g}{unit} is over its alert threshold "
            f"{self.threshold:g}{unit}{about}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "at_s": self.at_s,
            "metric": self.metric,
            "value": self.value,
            "threshold": self.threshold,
            "agent": self.agent,
            "message": self.message,
        }


@dataclass
class Monitor:
    settings: Settings = field(default_factory=Settings)
    max_samples: int = MAX_SAMPLES
    # one row per sampling_interval bucket that saw a change: the worst value of each metric
    rows: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[MetricAlert] = field(default_factory=list)
    # metrics currently over their threshold (alerted; cleared when back under)
    over: list[str] = field(default_factory=list)

    def observe(self, sample: Sample) -> list[MetricAlert]:
        """Record a sample; returns the alerts it raised (metrics that just went over)."""
        # each metric's value read once (in METRICS order): the workflow samples at every
        # admission and agent end, and per-metric lookups were most of it (bench/overhead.py)
        values = [
            None if value is None else float(value)
            for value in (
                sample.cpu_usage,
                sample.memory_usage,
                sample.response_time,
                sample.queue_depth,
            )
        ]
        self._summarise(sample.at_s, values)
        thresholds = self.settings.thresholds
        if (
            thresholds.cpu_usage is None
            and thresholds.memory_usage is None
            and thresholds.response_time is None
            and thresholds.queue_depth is None
        ):
            # nothing can go over (and so nothing is over): no alert
            return []
        raised: list[MetricAlert] = []
        for metric, value in zip(METRICS, values, strict=True):
            threshold = thresholds.of(metric)
            if value is None or threshold is None:
                continue
            if value > threshold:
                if metric not in self.over:
                    self.over.append(metric)
                    raised.append(
                        MetricAlert(
                            sample.at_s,
                            metric,
                            value,
                            threshold,
                            sample.agent if metric == "response_time" else None,
                        )
                    )
            elif metric in self.over:
                self.over.remove(metric)
        self.alerts += raised
        return raised

    def _summarise(self, at_s: float, values: list[float | None]) -> None:
        interval = self.settings.interval_s
        start = round(math.floor(at_s / interval + 1e-9) * interval, 3)
        if self.rows and self.rows[-1]["at_s"] == start:
            row = self.rows[-1]
        else:
            row = {"at_s": start, "samples": 0, **{metric: None for metric in METRICS}}
            self.rows.append(row)
            del self.rows[: -self.max_samples]
        row["samples"] += 1
        for metric, value in zip(METRICS, values, strict=True):
            if value is not None and (row[metric] is None or value > row[metric]):
                row[metric] = int(value) if metric == "queue_depth" else value

    def report(self) -> dict[str, Any]:
        thresholds = self.settings.thresholds
        return {
            "sampling_interval_s": self.settings.interval_s,
            "alert_thresholds": {
                m: thresholds.of(m) for m in METRICS if thresholds.of(m) is not None
            },
            "samples": [dict(row) for row in self.rows],
            "alerts": [alert.to_dict() for alert in self.alerts],
        }
